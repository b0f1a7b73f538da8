/* pi.c - Monte Carlo pi on redcoll: master, worker, or in-process yardstick.
 *
 * One binary plays every role, so a fleet needs only this file installed:
 *   pi                         embedded default: private redis-server + local workers
 *   pi --redis URL ...         master on a shared Redis (workers elsewhere)
 *   pi --redis URL --worker    worker serving the queue until stopped
 *   pi --local                 the same kernel with OpenMP in this process, no Redis
 * The job is a reduce (SUM of uint64 hit counts) over --tasks tasks; the total
 * sample count travels as the broadcast blob and the seed as the job seed, so
 * the estimate is the same bits for any pool size and thread count. */
#include "bench_common.h"
#include "pi_compare.h"
#include "pi_kernel.h"
#include "redcoll.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static rc_ctx *g_ctx;
static volatile sig_atomic_t g_signals;

static void on_signal(int sig)
{
    (void)sig;
    g_signals++;
    if (g_ctx)
        rc_ctx_interrupt(g_ctx);
    if (g_signals >= 3)
        _exit(130); /* the user insists */
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pi [options]\n"
            "Monte Carlo estimate of pi on a redcoll worker pool.\n\n"
            "With no Redis address, starts a private redis-server and --workers local\n"
            "workers, runs the job and removes everything (the embedded default).\n\n"
            "  --samples N       total samples (default 1000000000)\n"
            "  --tasks T         tasks the samples are split into (default 64)\n"
            "  --seed S          random seed (default 1); same seed, same bits\n"
            "  --threads K       OpenMP threads per worker (default 1; --local: all cores)\n"
            "  --workers W       local workers of the embedded default (default: cores)\n"
            "  --redis URL       redis://[user:pass@]host:port/db or unix:///path (or REDCOLL_URL,\n"
            "                    or REDCOLL_URL_FILE: a 0600 file holding the URL, so a password\n"
            "                    shows in neither ps nor the environment)\n"
            "  --key-file F      shared key (or REDCOLL_KEY_FILE); make one with `redcoll keygen F`\n"
            "  --queue Q         queue name (default pi)\n"
            "  --worker          serve the queue instead of submitting a job\n"
            "  --linger SECONDS  a worker idle this long exits (default: never)\n"
            "  --lease SECONDS   task lease before redelivery (default 5)\n"
            "  --heartbeat SECONDS  lease renewal period (default lease/4)\n"
            "  --poll SECONDS    an idle worker's blocking poll slice (default 30; at most 5 when\n"
            "                    set; BENCHMARKS.md section 6)\n"
            "  --max-attempts N  a task is started at most N times (default 3)\n"
            "  --drain-timeout SECONDS  on SIGTERM, hand the task back if it runs longer\n"
            "                    than this (default: finish it)\n"
            "  --timeout SECONDS master gives up after this (default: never)\n"
            "  --redis-deadline SECONDS  master gives up when Redis is unreachable this long\n"
            "                    (default 60)\n"
            "  --retention SECONDS  job state expires this long after its master last\n"
            "                    touched it (default 86400)\n"
            "  --attach JOBID    collect a job submitted by an earlier master (same --samples\n"
            "                    is not needed: it is read from Redis)\n"
            "  --encrypt         seal tasks and results (XChaCha20-Poly1305), not only sign them\n"
            "  --local           run the kernel in this process with OpenMP, no Redis\n"
            "  --compare R       R rounds alternating the embedded default (--workers single-\n"
            "                    threaded workers) with --local on as many threads and on one,\n"
            "                    plus a tiny job's start-up time; prints the efficiency\n"
            "                    (default --samples 1e10)\n"
            "  --startup-samples N  samples of --compare's start-up job (default 1e6)\n"
            "  --json            print one JSON object on stdout\n"
            "  -v, --verbose     more log output (repeat for debug)\n"
            "  -q, --quiet       errors only, no progress line\n"
            "  --help            this text\n\n"
            "Signals: SIGTERM/SIGINT make a worker finish and deliver its task, then exit 0\n"
            "(a second one hands the task back to the queue and exits at once: the way to\n"
            "use EC2's two-minute spot notice); Ctrl-C on the master cancels the job and\n"
            "stops what it started.\n");
}

static int parse_u64(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double d = 0;
    if (s[0] < '0' || s[0] > '9') { /* strtoull would take " -1" as 2^64-1 */
        fprintf(stderr, "pi: %s: '%s' is not a whole number\n", opt, s);
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (*end == 'e' || *end == 'E' || *end == '.') { /* 1e10 */
        d = strtod(s, &end);
        if (*end || d < 0 || d > 1.8e19 || d != floor(d)) {
            fprintf(stderr, "pi: %s: '%s' is not a whole number\n", opt, s);
            return -1;
        }
        v = (unsigned long long)d;
    } else if (errno || *end || s[0] == '-' || !s[0]) {
        fprintf(stderr, "pi: %s: '%s' is not a whole number\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_secs(const char *opt, const char *s, long long *ms)
{
    char *end;
    double d = strtod(s, &end);
    if (*end || !s[0] || !(d >= 0 && d <= 1e7)) { /* also refuses nan */
        fprintf(stderr, "pi: %s: '%s' is not a number of seconds\n", opt, s);
        return -1;
    }
    *ms = (long long)(d * 1000.0 + 0.5);
    return 0;
}

static int pi_kernel(rc_task *t, void *user)
{
    (void)user;
    size_t n;
    const uint64_t *total = rc_task_bcast(t, &n);
    if (n != sizeof(uint64_t))
        return rc_task_fail(t, "pi: broadcast is %zu bytes, expected 8 (the total sample count)", n);
    uint64_t mine = pi_task_samples(*total, rc_task_ntasks(t), rc_task_rank(t));
    uint64_t *out;
    if (rc_task_output(t, sizeof *out, (void **)&out) != RC_OK)
        return rc_task_fail(t, "pi: out of memory");
    *out = pi_count_hits(rc_task_seed(t), rc_task_rank(t), mine, rc_task_threads(t));
    return 0;
}

/* The master's progress: one redrawn line on a terminal, a plain line every
 * few seconds otherwise (logs, CI), nothing with -q. */
static void show_progress(const rc_job *job, const rc_job_stats *st, void *user)
{
    (void)job;
    static double last_line;
    int tty = *(const int *)user;
    double frac = st->tasks ? (double)st->done / (double)st->tasks : 0.0;
    double rate = st->seconds > 0 ? (double)st->done / st->seconds : 0.0;
    double eta = rate > 0 ? (double)(st->tasks - st->done) / rate : 0.0;
    int finished = st->done == st->tasks;
    if (tty) {
        char bar[31];
        int fill = (int)(frac * 30.0);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %llu/%llu tasks %.1f/s ETA %.0fs workers %llu redelivered %llu%s", bar,
                (unsigned long long)st->done, (unsigned long long)st->tasks, rate, eta,
                (unsigned long long)st->workers_seen, (unsigned long long)st->redelivered, finished ? "\n" : "");
    } else if (finished || st->seconds - last_line >= 5.0) {
        last_line = st->seconds;
        fprintf(stderr, "pi: %llu/%llu tasks (%.0f%%), %.1f tasks/s, ETA %.0f s, %llu workers, %llu redelivered\n",
                (unsigned long long)st->done, (unsigned long long)st->tasks, 100.0 * frac, rate, eta,
                (unsigned long long)st->workers_seen, (unsigned long long)st->redelivered);
    }
}

static void abandon_now(void *user)
{
    (void)user;
    _exit(0); /* the task is back in the queue; the kernel cannot be stopped otherwise */
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void cpu_model(char *out, size_t n)
{
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ') c++;
                c[strcspn(c, "\n")] = '\0';
                snprintf(out, n, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

static void report(int json, const char *mode, uint64_t hits, uint64_t samples, uint64_t tasks, uint64_t seed,
                   uint64_t workers, int threads, double secs, const rc_job_stats *st)
{
    double pi = 4.0 * (double)hits / (double)samples;
    double err = pi - M_PI;
    double rate = secs > 0 ? (double)samples / secs : 0.0;
    char host[256] = "unknown", cpu[256];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    cpu_model(cpu, sizeof cpu);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (json) {
        printf("{\"pi\":%.17g,\"error\":%.6e,\"hits\":%" PRIu64 ",\"samples\":%" PRIu64 ",\"tasks\":%" PRIu64
               ",\"seed\":%" PRIu64 ",\"workers_seen\":%" PRIu64 ",\"threads\":%d,\"seconds\":%.6f"
               ",\"samples_per_s\":%.6e,\"mode\":\"%s\",\"duplicates\":%" PRIu64 ",\"rejected\":%" PRIu64
               ",\"republished\":%" PRIu64 ",\"redelivered\":%" PRIu64 ",\"machine\":{\"host\":",
               pi, err, hits, samples, tasks, seed, workers, threads, secs, rate, mode,
               st ? st->duplicates : 0, st ? st->rejected : 0, st ? st->republished : 0,
               st ? st->redelivered : 0);
        json_str(host);
        printf(",\"cpu\":");
        json_str(cpu);
        printf(",\"cores\":%ld}}\n", cores);
    } else {
        printf("pi = %.17g  (error %+.3e)\n", pi, err);
        printf("%" PRIu64 " samples in %" PRIu64 " tasks, %" PRIu64 " worker(s) seen, %.3f s, %.3e samples/s (%s)\n",
               samples, tasks, workers, secs, rate, mode);
        if (st && (st->duplicates || st->rejected || st->republished))
            printf("duplicates ignored %" PRIu64 ", results rejected %" PRIu64 ", tasks re-sent %" PRIu64 "\n",
                   st->duplicates, st->rejected, st->republished);
        printf("machine: %s, %s, %ld cores\n", host, cpu, cores);
    }
    fflush(stdout);
}

static void catch_stop_signals(void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

enum { O_SAMPLES = 256, O_TASKS, O_SEED, O_THREADS, O_WORKERS, O_REDIS, O_KEY, O_QUEUE, O_WORKER, O_LINGER,
       O_LOCAL, O_JSON, O_HELP, O_LEASE, O_TIMEOUT, O_HEARTBEAT, O_MAXATT, O_DRAIN, O_DEADLINE, O_RETENTION, O_POLL,
       O_ATTACH, O_ENCRYPT, O_COMPARE, O_STARTUP };

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"samples", required_argument, 0, O_SAMPLES}, {"tasks", required_argument, 0, O_TASKS},
        {"seed", required_argument, 0, O_SEED},       {"threads", required_argument, 0, O_THREADS},
        {"workers", required_argument, 0, O_WORKERS}, {"redis", required_argument, 0, O_REDIS},
        {"key-file", required_argument, 0, O_KEY},    {"queue", required_argument, 0, O_QUEUE},
        {"worker", no_argument, 0, O_WORKER},         {"linger", required_argument, 0, O_LINGER},
        {"local", no_argument, 0, O_LOCAL},           {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, O_HELP},             {"lease", required_argument, 0, O_LEASE},
        {"poll", required_argument, 0, O_POLL},
        {"timeout", required_argument, 0, O_TIMEOUT}, {"verbose", no_argument, 0, 'v'},
        {"quiet", no_argument, 0, 'q'},               {"heartbeat", required_argument, 0, O_HEARTBEAT},
        {"max-attempts", required_argument, 0, O_MAXATT}, {"drain-timeout", required_argument, 0, O_DRAIN},
        {"redis-deadline", required_argument, 0, O_DEADLINE}, {"retention", required_argument, 0, O_RETENTION},
        {"attach", required_argument, 0, O_ATTACH},   {"encrypt", no_argument, 0, O_ENCRYPT},
        {"compare", required_argument, 0, O_COMPARE}, {"startup-samples", required_argument, 0, O_STARTUP},
        {0, 0, 0, 0}};
    uint64_t samples = 1000000000ULL, tasks = 64, seed = 1, threads = 0, workers = 0;
    const char *redis = NULL, *keyfile = NULL, *queue = "pi";
    int worker = 0, local = 0, json = 0, loglevel = -1, encrypt = 0; /* -1: REDCOLL_LOG or warnings */
    long long linger = 0, lease = 0, timeout = 0, heartbeat = 0, drain = 0, deadline = 0, retention = 0, poll = -1;
    uint64_t max_attempts = 0, compare = 0, startup_samples = 1000000;
    int samples_given = 0;
    const char *attach = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "vq", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_SAMPLES: bad = parse_u64("--samples", optarg, &samples); samples_given = 1; break;
        case O_TASKS: bad = parse_u64("--tasks", optarg, &tasks); break;
        case O_SEED: bad = parse_u64("--seed", optarg, &seed); break;
        case O_THREADS: bad = parse_u64("--threads", optarg, &threads); break;
        case O_WORKERS: bad = parse_u64("--workers", optarg, &workers); break;
        case O_REDIS: redis = optarg; break;
        case O_KEY: keyfile = optarg; break;
        case O_QUEUE: queue = optarg; break;
        case O_WORKER: worker = 1; break;
        case O_LINGER: bad = parse_secs("--linger", optarg, &linger); break;
        case O_LEASE: bad = parse_secs("--lease", optarg, &lease); break;
        case O_TIMEOUT: bad = parse_secs("--timeout", optarg, &timeout); break;
        case O_HEARTBEAT: bad = parse_secs("--heartbeat", optarg, &heartbeat); break;
        case O_POLL:
            bad = parse_secs("--poll", optarg, &poll);
            if (!bad && (poll < 1 || poll > 5000)) {
                fprintf(stderr, "pi: --poll: '%s' is not between 0.001 and 5 seconds\n", optarg);
                bad = 1;
            }
            break;
        case O_DRAIN: bad = parse_secs("--drain-timeout", optarg, &drain); break;
        case O_DEADLINE: bad = parse_secs("--redis-deadline", optarg, &deadline); break;
        case O_RETENTION: bad = parse_secs("--retention", optarg, &retention); break;
        case O_MAXATT: bad = parse_u64("--max-attempts", optarg, &max_attempts); break;
        case O_ATTACH: attach = optarg; break;
        case O_ENCRYPT: encrypt = 1; break;
        case O_COMPARE:
            bad = parse_u64("--compare", optarg, &compare);
            if (!bad && (compare == 0 || compare > 50)) {
                fprintf(stderr, "pi: --compare takes 1 to 50 rounds\n");
                bad = 1;
            }
            break;
        case O_STARTUP: bad = parse_u64("--startup-samples", optarg, &startup_samples); break;
        case O_LOCAL: local = 1; break;
        case O_JSON: json = 1; break;
        case 'v': loglevel = loglevel < 1 ? 2 : loglevel + 1; break;
        case 'q': loglevel = 0; break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "pi: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    if (compare && !samples_given)
        samples = 10000000000ULL; /* the figure the performance targets are stated for */
    if (samples == 0 || tasks == 0 || tasks > samples) {
        fprintf(stderr, "pi: need 1 <= --tasks <= --samples (got %" PRIu64 " tasks, %" PRIu64 " samples)\n",
                tasks, samples);
        return 2;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    if (threads > 1024 || workers > 1024) {
        fprintf(stderr, "pi: --threads and --workers must be at most 1024\n");
        return 2;
    }
    if (worker && local) {
        fprintf(stderr, "pi: --worker and --local exclude each other\n");
        return 2;
    }

    if (compare) {
        if (local || worker || redis || attach) {
            fprintf(stderr, "pi: --compare runs the embedded default itself: no --local, --worker, --redis or --attach\n");
            return 2;
        }
        if (startup_samples < 2) {
            fprintf(stderr, "pi: --startup-samples must be at least 2\n");
            return 2;
        }
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0) {
            fprintf(stderr, "pi: cannot find my own executable: %s\n", strerror(errno));
            return 1;
        }
        self[n] = '\0';
        catch_stop_signals(bc_on_signal);
        return pi_compare(self, (int)compare, samples, tasks, seed,
                          workers ? (int)workers : (int)cores, startup_samples, json);
    }
    if (local) {
        int th = threads ? (int)threads : (int)cores;
        double t0 = now_s();
        uint64_t hits = 0;
        for (uint64_t t = 0; t < tasks; t++)
            hits += pi_count_hits(seed, t, pi_task_samples(samples, tasks, t), th);
        report(json, "local", hits, samples, tasks, seed, 1, th, now_s() - t0, NULL);
        return 0;
    }

    rc_ctx *ctx = rc_ctx_create();
    if (!ctx) {
        fprintf(stderr, "pi: cannot create a redcoll context (out of memory or libsodium failed)\n");
        return 1;
    }
    g_ctx = ctx;
    catch_stop_signals(on_signal);

    int rc = 1;
    rc_local *loc = NULL;
    rc_job *job = NULL;
    rc_status st = loglevel < 0 ? RC_OK : rc_ctx_set_int(ctx, RC_OPT_LOG_LEVEL, loglevel > 3 ? 3 : loglevel);
    if (st == RC_OK) st = rc_ctx_set_str(ctx, RC_OPT_QUEUE, queue);
    if (st == RC_OK) st = rc_ctx_set_int(ctx, RC_OPT_THREADS, threads ? (long long)threads : 1);
    if (st == RC_OK && lease) st = rc_ctx_set_int(ctx, RC_OPT_LEASE_MS, lease);
    if (st == RC_OK && linger) st = rc_ctx_set_int(ctx, RC_OPT_LINGER_MS, linger);
    if (st == RC_OK && timeout) st = rc_ctx_set_int(ctx, RC_OPT_JOB_TIMEOUT_MS, timeout);
    if (st == RC_OK && heartbeat) st = rc_ctx_set_int(ctx, RC_OPT_HEARTBEAT_MS, heartbeat);
    if (st == RC_OK && poll > 0) st = rc_ctx_set_int(ctx, RC_OPT_POLL_MS, poll);
    if (st == RC_OK && drain) st = rc_ctx_set_int(ctx, RC_OPT_DRAIN_TIMEOUT_MS, drain);
    if (st == RC_OK && deadline) st = rc_ctx_set_int(ctx, RC_OPT_REDIS_DEADLINE_MS, deadline);
    if (st == RC_OK && retention) st = rc_ctx_set_int(ctx, RC_OPT_RETENTION_MS, retention);
    if (st == RC_OK && max_attempts) st = rc_ctx_set_int(ctx, RC_OPT_MAX_ATTEMPTS, (long long)max_attempts);
    if (st == RC_OK) st = rc_ctx_set_abandon_handler(ctx, abandon_now, NULL);
    if (st == RC_OK && encrypt) st = rc_ctx_set_int(ctx, RC_OPT_ENCRYPT, 1);
    if (st == RC_OK && redis) st = rc_ctx_set_str(ctx, RC_OPT_URL, redis);
    if (st == RC_OK) st = rc_register_kernel(ctx, "pi", pi_kernel, NULL);
    if (st != RC_OK)
        goto fail;
    int embedded = !redis && !(getenv("REDCOLL_URL") && *getenv("REDCOLL_URL")) &&
                   !(getenv("REDCOLL_URL_FILE") && *getenv("REDCOLL_URL_FILE"));
    if (attach && (embedded || worker)) {
        fprintf(stderr, "pi: --attach needs a Redis address and excludes --worker\n");
        rc_ctx_destroy(ctx);
        return 2;
    }
    if (worker && embedded) {
        fprintf(stderr, "pi: --worker needs a Redis address: --redis URL or REDCOLL_URL\n");
        rc_ctx_destroy(ctx);
        return 2;
    }
    if (!keyfile)
        keyfile = getenv("REDCOLL_KEY_FILE");
    if (!embedded || worker) {
        if (!keyfile || !*keyfile) {
            fprintf(stderr, "pi: no key: give --key-file F or set REDCOLL_KEY_FILE "
                            "(create one with `redcoll keygen F` and copy it to every node)\n");
            goto out;
        }
        if ((st = rc_ctx_load_key(ctx, keyfile)) != RC_OK)
            goto fail;
    }
    if (worker) {
        st = rc_worker_run(ctx);
        if (st != RC_OK)
            goto fail;
        rc = 0;
        goto out;
    }
    if (embedded) {
        char self[4096], thr[32], lease_s[32];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0) {
            fprintf(stderr, "pi: cannot find my own executable: %s\n", strerror(errno));
            goto out;
        }
        self[n] = '\0';
        snprintf(thr, sizeof thr, "%" PRIu64, threads ? threads : 1);
        snprintf(lease_s, sizeof lease_s, "%.3f", (double)(lease ? lease : 5000) / 1000.0);
        const char *wargv[] = {self, "--worker", "--queue", queue, "--threads", thr, "--lease", lease_s,
                               loglevel == 0 ? "-q" : loglevel >= 2 ? "-v" : NULL, NULL};
        int nw = workers ? (int)workers : (int)cores;
        if ((st = rc_local_start(ctx, wargv, nw, &loc)) != RC_OK)
            goto fail;
    }
    uint64_t hits = 0;
    if (attach) {
        /* the job's own record says how many samples and tasks it has */
        if ((st = rc_job_attach(ctx, attach, &job)) != RC_OK)
            goto fail;
        if (strcmp(rc_job_kernel(job), "pi") != 0) {
            fprintf(stderr, "pi: job %s runs kernel '%s', not pi\n", attach, rc_job_kernel(job));
            goto out;
        }
        tasks = rc_job_ntasks(job);
        samples = 0; /* filled from the descriptor below */
        if ((st = rc_job_reduce(job, &hits, 1, RC_UINT64, rc_op_builtin(RC_SUM))) != RC_OK)
            goto fail;
        const void *blob;
        size_t blen;
        rc_job_broadcast(job, &blob, &blen);
        if (blen != sizeof samples) {
            fprintf(stderr, "pi: job %s's broadcast is %zu bytes, not a sample count\n", attach, blen);
            goto out;
        }
        memcpy(&samples, blob, sizeof samples);
        seed = rc_job_seed(job);
        fprintf(stderr, "pi: attached to job %s (%" PRIu64 " tasks)\n", attach, tasks);
    } else {
        if ((st = rc_job_create(ctx, "pi", tasks, &job)) != RC_OK || (st = rc_job_set_seed(job, seed)) != RC_OK ||
            (st = rc_job_bcast(job, &samples, 1, RC_UINT64)) != RC_OK)
            goto fail;
        if ((st = rc_job_reduce(job, &hits, 1, RC_UINT64, rc_op_builtin(RC_SUM))) != RC_OK)
            goto fail;
        if ((st = rc_job_submit(job)) != RC_OK)
            goto fail;
        if (!embedded)
            fprintf(stderr, "pi: job %s submitted to queue '%s' (collect it later with --attach %s)\n",
                    rc_job_id(job), queue, rc_job_id(job));
    }
    int tty = isatty(STDERR_FILENO);
    if (loglevel != 0)
        rc_job_set_progress(job, show_progress, &tty);
    if ((st = rc_job_wait(job)) != RC_OK)
        goto fail;
    rc_job_stats js;
    rc_job_get_stats(job, &js);
    report(json, embedded ? "embedded" : "redis", hits, samples, tasks, seed, js.workers_seen,
           threads ? (int)threads : 1, js.seconds, &js);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "pi: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
    rc = st == RC_ECANCELED ? 130 : 1;
out:
    rc_job_destroy(job);
    rc_local_stop(loc);
    g_ctx = NULL;
    rc_ctx_destroy(ctx);
    return rc;
}
