/* testworker.c - a redcoll worker serving the kernels the integration tests drive.
 *
 * Why: the integration tests need real worker processes they can start, add
 * mid-job, SIGTERM, SIGSTOP and kill -9, running kernels whose outputs prove
 * what each task saw (its input, the broadcast, its rank, its worker's pid)
 * and that can fail, sleep or emit odd sizes on demand.  The formulas the
 * kernels follow are in harness.h's kernel contract, shared with the tests.
 *
 * Kernels (the broadcast blob carries their parameters as uint64 words):
 *   identity   output = input
 *   square     input doubles, output their squares
 *   bcast_sum  {rank, FNV-1a(bcast), bcast bytes}
 *   varsize    hk_varsize_len(rank) bytes of hk_varsize_byte (0 bytes too)
 *   fail       bcast {rank}: that rank fails with HK_FAIL_TEXT; others {rank}
 *   sleep      bcast {ms, salt[, yields]}: sleeps ms, outputs {hk_sleep_value, pid};
 *              first gives its CPU up `yields` times (sched_yield), each a
 *              switch while runnable, as a preemption on a crowded CPU is
 *   locs       bcast {type 0: rc_double_loc, 1: rc_int32_loc; count}
 *   rngsum     bcast {count}: count hk_rng_value doubles, one rng block each
 * Kernels for the resilience tests (test_resilience.c, chaos.c):
 *   record     bcast {ms, tag, samples}: appends "S tag rank pid\n" to the
 *              file $RC_TEST_RECORD (O_APPEND, one write) when it starts and
 *              "E tag rank pid\n" when it ends, so a driver can count the
 *              executions of every task, see who ran them and in what order,
 *              and tell a run that was abandoned from one that finished;
 *              sleeps ms (wall clock), then outputs: with a scattered input
 *              of doubles, their squares; without, two doubles {hits, spread}
 *              (see rec_value below)
 *   flaky      bcast {rank or UINT64_MAX for all}: the first attempt of that
 *              task fails (a marker file in $RC_TEST_STATE_DIR remembers it
 *              across processes); later attempts output {rank * 3 + 1}
 *   crash      bcast {rank}: that rank raises SIGSEGV, killing its worker, on
 *              every attempt; others output {rank}
 * Kernel of the security tests (test_security.c):
 *   audit      bcast {ms, tag, ...}: appends "A tag seed rank ntasks fnv(input)
 *              input-bytes fnv(bcast) bcast-bytes pid\n" to $RC_TEST_AUDIT (one
 *              O_APPEND write) before anything else, so a driver can check that
 *              every input any worker ever ran was one the master sent; sleeps
 *              ms, then outputs its input unchanged (identity)
 *
 * Options: --redis URL, --key-file F (or REDCOLL_URL / REDCOLL_KEY_FILE),
 * --queue Q, --lease S, --linger S, --threads N, --poll MS, --heartbeat S,
 * --max-attempts N, --max-batch N, --no-prefetch, --drain-timeout S, --retention S, --exit-on-abandon (exit 0
 * at once when the task in hand is handed back, as pi does), -v, -q.
 * SIGTERM/SIGINT call rc_ctx_interrupt: the task in hand is finished and
 * delivered, then the worker exits 0. */
#define HARNESS_KERNEL_SIDE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static rc_ctx *g_ctx;

static void on_signal(int sig)
{
    (void)sig;
    if (g_ctx)
        rc_ctx_interrupt(g_ctx);
}

/* Parameter word i of the broadcast, or dflt if it is too short. */
static uint64_t param(const rc_task *t, size_t i, uint64_t dflt)
{
    size_t n;
    const unsigned char *b = rc_task_bcast(t, &n);
    if (n < (i + 1) * sizeof(uint64_t))
        return dflt;
    uint64_t v;
    memcpy(&v, b + i * sizeof v, sizeof v);
    return v;
}

static int k_identity(rc_task *t, void *u)
{
    (void)u;
    size_t n;
    const void *in = rc_task_input(t, &n);
    void *out;
    if (rc_task_output(t, n, &out) != RC_OK)
        return rc_task_fail(t, "identity: cannot get %zu output bytes", n);
    if (n)
        memcpy(out, in, n);
    return 0;
}

static int k_square(rc_task *t, void *u)
{
    (void)u;
    size_t n;
    const unsigned char *in = rc_task_input(t, &n);
    if (n % sizeof(double))
        return rc_task_fail(t, "square: input of %zu bytes is not whole doubles", n);
    unsigned char *out;
    if (rc_task_output(t, n, (void **)&out) != RC_OK)
        return rc_task_fail(t, "square: cannot get %zu output bytes", n);
    for (size_t i = 0; i < n; i += sizeof(double)) {
        double d;
        memcpy(&d, in + i, sizeof d);
        d *= d;
        memcpy(out + i, &d, sizeof d);
    }
    return 0;
}

static int k_bcast_sum(rc_task *t, void *u)
{
    (void)u;
    size_t n;
    const void *b = rc_task_bcast(t, &n);
    uint64_t *out;
    if (rc_task_output(t, 3 * sizeof *out, (void **)&out) != RC_OK)
        return rc_task_fail(t, "bcast_sum: out of memory");
    out[0] = rc_task_rank(t);
    out[1] = hk_fnv1a(b, n);
    out[2] = n;
    return 0;
}

static int k_varsize(rc_task *t, void *u)
{
    (void)u;
    uint64_t r = rc_task_rank(t);
    size_t n = hk_varsize_len(r);
    unsigned char *out;
    if (rc_task_output(t, n, (void **)&out) != RC_OK)
        return rc_task_fail(t, "varsize: cannot get %zu output bytes", n);
    for (size_t i = 0; i < n; i++)
        out[i] = hk_varsize_byte(r, i);
    return 0;
}

static int k_fail(rc_task *t, void *u)
{
    (void)u;
    uint64_t r = rc_task_rank(t);
    if (r == param(t, 0, UINT64_MAX))
        return rc_task_fail(t, HK_FAIL_TEXT " %llu", (unsigned long long)r);
    uint64_t *out;
    if (rc_task_output(t, sizeof *out, (void **)&out) != RC_OK)
        return rc_task_fail(t, "fail: out of memory");
    *out = r;
    return 0;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int k_sleep(rc_task *t, void *u)
{
    (void)u;
    uint64_t ms = param(t, 0, 0), salt = param(t, 1, 0), yields = param(t, 2, 0);
    for (uint64_t i = 0; i < yields; i++)
        sched_yield();
    /* wall-clock deadline: signals (SIGTERM, SIGSTOP/SIGCONT) do not
       shorten or restart it */
    long long end = mono_ms() + (long long)ms;
    for (long long left; (left = end - mono_ms()) > 0;) {
        struct timespec ts = {(time_t)(left / 1000), (long)(left % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    uint64_t *out;
    if (rc_task_output(t, 2 * sizeof *out, (void **)&out) != RC_OK)
        return rc_task_fail(t, "sleep: out of memory");
    out[0] = hk_sleep_value(rc_task_rank(t), salt);
    out[1] = (uint64_t)getpid();
    return 0;
}

static int k_locs(rc_task *t, void *u)
{
    (void)u;
    uint64_t type = param(t, 0, 0), count = param(t, 1, 0), r = rc_task_rank(t), nt = rc_task_ntasks(t);
    if (type == 0) {
        rc_double_loc *out;
        if (rc_task_output(t, count * sizeof *out, (void **)&out) != RC_OK)
            return rc_task_fail(t, "locs: out of memory");
        for (uint64_t i = 0; i < count; i++) {
            out[i].val = (double)hk_loc_val(r, i);
            out[i].loc = hk_loc_loc(r, nt);
        }
        return 0;
    }
    if (type == 1) {
        rc_int32_loc *out;
        if (rc_task_output(t, count * sizeof *out, (void **)&out) != RC_OK)
            return rc_task_fail(t, "locs: out of memory");
        for (uint64_t i = 0; i < count; i++) {
            memset(&out[i], 0, sizeof out[i]);
            out[i].val = hk_loc_val(r, i);
            out[i].loc = hk_loc_loc(r, nt);
        }
        return 0;
    }
    return rc_task_fail(t, "locs: unknown type %llu", (unsigned long long)type);
}

static int k_rngsum(rc_task *t, void *u)
{
    (void)u;
    uint64_t count = param(t, 0, 0);
    double *out;
    if (rc_task_output(t, count * sizeof *out, (void **)&out) != RC_OK)
        return rc_task_fail(t, "rngsum: out of memory");
    for (uint64_t b = 0; b < count; b++) {
        rc_rng rng;
        rc_task_rng(t, b, &rng);
        out[b] = hk_rng_value(&rng);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Kernels of the resilience tests                                      */

/* record without input: {hits, spread} from the task's streams, the same
 * formula test_resilience.c and chaos.c compute locally (rec_value there):
 * hits = points of stream block 0 inside the unit circle (pi-like), spread =
 * hk_rng_value of block 1 (magnitudes 2^-30..2^30, so a reduce in another
 * order would change the bits). */
static void rec_value(uint64_t seed, uint64_t rank, uint64_t samples, double out[2])
{
    rc_rng r;
    rc_rng_seed(&r, seed, rank, 0);
    uint64_t hits = 0;
    for (uint64_t i = 0; i < samples; i++) {
        double x = rc_rng_double(&r), y = rc_rng_double(&r);
        hits += x * x + y * y < 1.0;
    }
    rc_rng_seed(&r, seed, rank, 1);
    out[0] = (double)hits;
    out[1] = hk_rng_value(&r);
}

/* One line to $RC_TEST_RECORD: a single write() with O_APPEND, so lines of
 * concurrent workers never interleave. */
static void rec_line(char kind, uint64_t tag, uint64_t rank)
{
    const char *path = getenv("RC_TEST_RECORD");
    if (!path || !*path)
        return;
    char line[96];
    int n = snprintf(line, sizeof line, "%c %" PRIu64 " %" PRIu64 " %ld\n", kind, tag, rank, (long)getpid());
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    ssize_t w = write(fd, line, (size_t)n);
    (void)w;
    close(fd);
}

static int k_record(rc_task *t, void *u)
{
    (void)u;
    uint64_t ms = param(t, 0, 0), tag = param(t, 1, 0), samples = param(t, 2, 0), r = rc_task_rank(t);
    rec_line('S', tag, r);
    long long end = mono_ms() + (long long)ms;
    for (long long left; (left = end - mono_ms()) > 0;) {
        struct timespec ts = {(time_t)(left / 1000), (long)(left % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    size_t n;
    const unsigned char *in = rc_task_input(t, &n);
    if (n) {
        if (n % sizeof(double))
            return rc_task_fail(t, "record: input of %zu bytes is not whole doubles", n);
        unsigned char *out;
        if (rc_task_output(t, n, (void **)&out) != RC_OK)
            return rc_task_fail(t, "record: cannot get %zu output bytes", n);
        for (size_t i = 0; i < n; i += sizeof(double)) {
            double d;
            memcpy(&d, in + i, sizeof d);
            d *= d;
            memcpy(out + i, &d, sizeof d);
        }
    } else {
        double *out;
        if (rc_task_output(t, 2 * sizeof *out, (void **)&out) != RC_OK)
            return rc_task_fail(t, "record: out of memory");
        rec_value(rc_task_seed(t), r, samples, out);
    }
    rec_line('E', tag, r);
    return 0;
}

static int k_flaky(rc_task *t, void *u)
{
    (void)u;
    uint64_t which = param(t, 0, UINT64_MAX), r = rc_task_rank(t);
    if (which == UINT64_MAX || which == r) {
        const char *dir = getenv("RC_TEST_STATE_DIR");
        if (!dir || !*dir)
            return rc_task_fail(t, "flaky: RC_TEST_STATE_DIR is not set");
        char path[600];
        snprintf(path, sizeof path, "%s/flaky-%016" PRIx64 "-%" PRIu64, dir, rc_task_seed(t), r);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
            return rc_task_fail(t, "flaky: first attempt of rank %" PRIu64 " fails on purpose", r);
        }
        if (errno != EEXIST)
            return rc_task_fail(t, "flaky: cannot create %s: %s", path, strerror(errno));
    }
    uint64_t *out;
    if (rc_task_output(t, sizeof *out, (void **)&out) != RC_OK)
        return rc_task_fail(t, "flaky: out of memory");
    *out = r * 3 + 1;
    return 0;
}

static int k_crash(rc_task *t, void *u)
{
    (void)u;
    uint64_t r = rc_task_rank(t);
    if (r == param(t, 0, UINT64_MAX)) {
        /* a real crash: default action (also under ASan, whose handler
           would turn it into exit 1), and no core file */
        struct rlimit nocore = {0, 0};
        setrlimit(RLIMIT_CORE, &nocore);
        fprintf(stderr, "testworker: crash kernel: raising SIGSEGV on rank %" PRIu64 "\n", r);
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
        _exit(139); /* not reached */
    }
    uint64_t *out;
    if (rc_task_output(t, sizeof *out, (void **)&out) != RC_OK)
        return rc_task_fail(t, "crash: out of memory");
    *out = r;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Kernel of the security tests                                         */

static int k_audit(rc_task *t, void *u)
{
    (void)u;
    size_t n, bn;
    const unsigned char *in = rc_task_input(t, &n);
    const void *b = rc_task_bcast(t, &bn);
    uint64_t ms = param(t, 0, 0), tag = param(t, 1, 0);
    const char *path = getenv("RC_TEST_AUDIT");
    if (path && *path) {
        char line[256];
        int len = snprintf(line, sizeof line, "A %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %016" PRIx64
                           " %zu %016" PRIx64 " %zu %ld\n", tag, rc_task_seed(t), rc_task_rank(t),
                           rc_task_ntasks(t), hk_fnv1a(in, n), n, hk_fnv1a(b, bn), bn, (long)getpid());
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, line, (size_t)len) != (ssize_t)len) {
            if (fd >= 0)
                close(fd);
            return rc_task_fail(t, "audit: cannot append to %s: %s", path, strerror(errno));
        }
        close(fd);
    }
    long long end = mono_ms() + (long long)ms;
    for (long long left; (left = end - mono_ms()) > 0;) {
        struct timespec ts = {(time_t)(left / 1000), (long)(left % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    void *out;
    if (rc_task_output(t, n, &out) != RC_OK)
        return rc_task_fail(t, "audit: cannot get %zu output bytes", n);
    if (n)
        memcpy(out, in, n);
    return 0;
}

static void exit_on_abandon(void *user)
{
    (void)user;
    _exit(0); /* the task in hand is back in the queue; like pi's handler */
}

static int seconds_ms(const char *opt, const char *s, long long *ms)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || *end || !*s || d < 0 || d > 1e6) {
        fprintf(stderr, "testworker: %s: '%s' is not a number of seconds\n", opt, s);
        return -1;
    }
    *ms = (long long)(d * 1000.0 + 0.5);
    return 0;
}

int main(int argc, char **argv)
{
    enum { O_REDIS = 256, O_KEY, O_QUEUE, O_LEASE, O_LINGER, O_THREADS, O_POLL, O_HEARTBEAT, O_MAXATT, O_DRAIN,
           O_ABANDON, O_RETENTION, O_MAXBATCH, O_CMDTIMEOUT, O_NOPREFETCH };
    static const struct option opts[] = {
        {"redis", required_argument, 0, O_REDIS},   {"key-file", required_argument, 0, O_KEY},
        {"queue", required_argument, 0, O_QUEUE},   {"lease", required_argument, 0, O_LEASE},
        {"linger", required_argument, 0, O_LINGER}, {"threads", required_argument, 0, O_THREADS},
        {"poll", required_argument, 0, O_POLL},     {"verbose", no_argument, 0, 'v'},
        {"quiet", no_argument, 0, 'q'},             {"heartbeat", required_argument, 0, O_HEARTBEAT},
        {"max-attempts", required_argument, 0, O_MAXATT}, {"drain-timeout", required_argument, 0, O_DRAIN},
        {"exit-on-abandon", no_argument, 0, O_ABANDON}, {"retention", required_argument, 0, O_RETENTION},
        {"max-batch", required_argument, 0, O_MAXBATCH}, {"command-timeout", required_argument, 0, O_CMDTIMEOUT},
        {"no-prefetch", no_argument, 0, O_NOPREFETCH}, {0, 0, 0, 0}};
    const char *url = NULL, *key = getenv("REDCOLL_KEY_FILE"), *queue = NULL;
    long long lease = 0, linger = 0, threads = 0, poll = 0, heartbeat = 0, max_attempts = 0, drain = 0, retention = 0,
              max_batch = 0, cmd_timeout = 0;
    int loglevel = 1, c, abandon = 0, no_prefetch = 0;
    while ((c = getopt_long(argc, argv, "vq", opts, NULL)) != -1) {
        switch (c) {
        case O_REDIS: url = optarg; break;
        case O_KEY: key = optarg; break;
        case O_QUEUE: queue = optarg; break;
        case O_LEASE: if (seconds_ms("--lease", optarg, &lease)) return 2; break;
        case O_LINGER: if (seconds_ms("--linger", optarg, &linger)) return 2; break;
        case O_THREADS: threads = atoll(optarg); break;
        case O_POLL: poll = atoll(optarg); break;
        case O_HEARTBEAT: if (seconds_ms("--heartbeat", optarg, &heartbeat)) return 2; break;
        case O_MAXATT: max_attempts = atoll(optarg); break;
        case O_MAXBATCH: max_batch = atoll(optarg); break;
        case O_NOPREFETCH: no_prefetch = 1; break;
        case O_CMDTIMEOUT: if (seconds_ms("--command-timeout", optarg, &cmd_timeout)) return 2; break;
        case O_DRAIN: if (seconds_ms("--drain-timeout", optarg, &drain)) return 2; break;
        case O_ABANDON: abandon = 1; break;
        case O_RETENTION: if (seconds_ms("--retention", optarg, &retention)) return 2; break;
        case 'v': loglevel++; break;
        case 'q': loglevel = 0; break;
        default: return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "testworker: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!key || !*key) {
        fprintf(stderr, "testworker: no key: --key-file F or REDCOLL_KEY_FILE\n");
        return 2;
    }
    rc_ctx *ctx = rc_ctx_create();
    if (!ctx) {
        fprintf(stderr, "testworker: rc_ctx_create failed\n");
        return 1;
    }
    g_ctx = ctx;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* the harness waits for this line before it may signal us */
    fprintf(stderr, "testworker: pid %ld ready\n", (long)getpid());

    static const struct { const char *name; rc_kernel_fn fn; } kernels[] = {
        {"identity", k_identity}, {"square", k_square}, {"bcast_sum", k_bcast_sum},
        {"varsize", k_varsize},   {"fail", k_fail},     {"sleep", k_sleep},
        {"locs", k_locs},         {"rngsum", k_rngsum}, {"record", k_record},
        {"flaky", k_flaky},       {"crash", k_crash},
        {"audit", k_audit}};
    rc_status st = rc_ctx_set_int(ctx, RC_OPT_LOG_LEVEL, loglevel > 3 ? 3 : loglevel);
    if (st == RC_OK && url) st = rc_ctx_set_str(ctx, RC_OPT_URL, url);
    if (st == RC_OK && queue) st = rc_ctx_set_str(ctx, RC_OPT_QUEUE, queue);
    if (st == RC_OK && lease) st = rc_ctx_set_int(ctx, RC_OPT_LEASE_MS, lease);
    if (st == RC_OK && linger) st = rc_ctx_set_int(ctx, RC_OPT_LINGER_MS, linger);
    if (st == RC_OK && threads) st = rc_ctx_set_int(ctx, RC_OPT_THREADS, threads);
    if (st == RC_OK && poll) st = rc_ctx_set_int(ctx, RC_OPT_POLL_MS, poll);
    if (st == RC_OK && heartbeat) st = rc_ctx_set_int(ctx, RC_OPT_HEARTBEAT_MS, heartbeat);
    if (st == RC_OK && max_attempts) st = rc_ctx_set_int(ctx, RC_OPT_MAX_ATTEMPTS, max_attempts);
    if (st == RC_OK && max_batch) st = rc_ctx_set_int(ctx, RC_OPT_MAX_BATCH, max_batch);
    if (st == RC_OK && no_prefetch) st = rc_ctx_set_int(ctx, RC_OPT_PREFETCH, 0);
    if (st == RC_OK && cmd_timeout) st = rc_ctx_set_int(ctx, RC_OPT_COMMAND_TIMEOUT_MS, cmd_timeout);
    if (st == RC_OK && drain) st = rc_ctx_set_int(ctx, RC_OPT_DRAIN_TIMEOUT_MS, drain);
    if (st == RC_OK && abandon) st = rc_ctx_set_abandon_handler(ctx, exit_on_abandon, NULL);
    if (st == RC_OK && retention) st = rc_ctx_set_int(ctx, RC_OPT_RETENTION_MS, retention);
    if (st == RC_OK) st = rc_ctx_load_key(ctx, key);
    for (size_t i = 0; st == RC_OK && i < sizeof kernels / sizeof kernels[0]; i++)
        st = rc_register_kernel(ctx, kernels[i].name, kernels[i].fn, NULL);
    if (st == RC_OK)
        st = rc_worker_run(ctx);
    int rc = 0;
    if (st != RC_OK) {
        fprintf(stderr, "testworker: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
        rc = 1;
    }
    g_ctx = NULL;
    rc_ctx_destroy(ctx);
    return rc;
}
