/* harness.h - shared helpers for the redcoll integration tests.
 *
 * Why: every integration test needs the same scaffolding - the fixture's
 * Redis URL, a fresh key file, worker processes it can start, signal, kill
 * and reap, direct Redis access to inspect or corrupt keys, deadlines to
 * poll conditions against (never sleeps as assertions), and failures that
 * say file:line and exactly what differed.  On failure the harness dumps the
 * workers' logs and kills every worker it started, so a failing test neither
 * hides its evidence nor leaves processes behind.
 *
 * The first section (the "kernel contract") is shared with testworker.c: the
 * formulas the test kernels use and the tests check against.  testworker.c
 * defines HARNESS_KERNEL_SIDE and gets only that section.
 *
 * Everything is static in this header: each test program is one translation
 * unit. */
#ifndef RC_TEST_HARNESS_H
#define RC_TEST_HARNESS_H

#include "redcoll.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Kernel contract (shared with testworker.c)                           */

/* varsize: rank-dependent output length, 0 at ranks 0, 5, 10, ... and one
 * large output at rank 7. */
static inline size_t hk_varsize_len(uint64_t rank)
{
    if (rank % 5 == 0)
        return 0;
    if (rank == 7)
        return 100003;
    return (size_t)((rank * 37) % 200 + 1);
}

static inline unsigned char hk_varsize_byte(uint64_t rank, size_t i)
{
    return (unsigned char)(rank * 131u + i * 7u + (i >> 8));
}

/* bcast_sum: FNV-1a of the broadcast bytes. */
static inline uint64_t hk_fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* sleep: the value each task reports (besides its worker's pid). */
static inline uint64_t hk_sleep_value(uint64_t rank, uint64_t salt)
{
    return rank * 1000003ull + salt;
}

/* locs: value of element i on rank r (few distinct values: many ties) and
 * its location, deliberately not monotonic in rank, so "lower loc wins"
 * differs from "lower rank wins". */
static inline int32_t hk_loc_val(uint64_t rank, uint64_t i)
{
    return (int32_t)((rank * 7 + i * 3) % 5) - 2;
}
static inline int64_t hk_loc_loc(uint64_t rank, uint64_t ntasks)
{
    return (int64_t)((rank * 7) % ntasks) + 100;
}

/* rngsum: one double from a task's random stream, with magnitudes spread
 * over 2^-30..2^30 and random signs, so summation order changes the bits. */
static inline double hk_rng_value(rc_rng *r)
{
    double d = rc_rng_double(r);
    uint64_t u = rc_rng_u64(r);
    double v = ldexp(1.0 + d, (int)(u % 61) - 30);
    return (u >> 32) & 1 ? -v : v;
}

/* The fail kernel's message for the chosen rank. */
#define HK_FAIL_TEXT "deliberate failure requested for rank"

#ifndef HARNESS_KERNEL_SIDE

#include <hiredis/hiredis.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Generous: a loaded 2-core machine running two tests at once. */
#define H_DEADLINE_MS 60000

#define H_MAXW 32

typedef struct h_worker {
    pid_t pid;
    int alive;        /* not reaped yet */
    int status;       /* wait status once reaped */
    int killed;       /* killed on purpose by the test (h_kill9) */
    char log[600];
} h_worker;

static struct {
    const char *test;         /* subtest name */
    const char *worker_bin;   /* testworker path */
    char url[256];
    char host[128];
    int port;
    char dir[400];            /* private temp dir */
    char keyfile[520];        /* the default key file */
    char queue[64];
    h_worker w[H_MAXW];
    int nw;
    redisContext *redis;
    int in_cleanup;
} H;

/* ------------------------------------------------------------------ */
/* Time and deadlines                                                    */

static inline long long h_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static inline void h_nap_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

/* A deadline: h_deadline(ms) then h_expired(dl). */
static inline long long h_deadline(long long ms) { return h_now_ms() + ms; }
static inline int h_expired(long long dl) { return h_now_ms() > dl; }

/* ------------------------------------------------------------------ */
/* Failure reporting                                                     */

static void h_dump_logs(void);
static void h_kill_all(void);

static _Noreturn void h_fail_at(const char *file, int line, const char *what, const char *fmt, ...)
    RC_PRINTF(4, 5);
static _Noreturn void h_fail_at(const char *file, int line, const char *what, const char *fmt, ...)
{
    fflush(stdout);
    fprintf(stderr, "%s:%d: FAIL [%s]: %s", file, line, H.test ? H.test : "?", what);
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    if (!H.in_cleanup) {
        H.in_cleanup = 1;
        h_kill_all();
        h_dump_logs();
    }
    exit(1);
}

/* H_CHECK(cond, fmt, ...): fail with the condition's text and a message. */
#define H_CHECK(cond, ...)                                                      \
    do {                                                                        \
        if (!(cond))                                                            \
            h_fail_at(__FILE__, __LINE__, "check failed: " #cond, __VA_ARGS__); \
    } while (0)

#define H_FAIL(...) h_fail_at(__FILE__, __LINE__, "failed", __VA_ARGS__)

static inline const char *h_stname(rc_status st)
{
    static const char *const n[] = {"RC_OK", "RC_EINVAL", "RC_ENOMEM", "RC_EREDIS", "RC_ETIMEDOUT",
                                     "RC_EAUTH", "RC_EPROTO", "RC_EKERNEL", "RC_ENOKERNEL", "RC_EKEY",
                                     "RC_ECANCELED", "RC_EIO", "RC_EAGAIN", "RC_ETYPE", "RC_ESTATE",
                                     "RC_ENOTFOUND"};
    return (int)st >= 0 && (size_t)st < sizeof n / sizeof n[0] ? n[st] : "RC_?";
}

/* H_ST(ctx, expr, want): expr must return status want; ctx (may be NULL)
 * supplies the error detail. */
#define H_ST(ctx, expr, want)                                                                   \
    do {                                                                                        \
        rc_status h_st_ = (expr);                                                               \
        rc_status h_want_ = (want);                                                             \
        if (h_st_ != h_want_)                                                                   \
            h_fail_at(__FILE__, __LINE__, #expr, "returned %s (%d), expected %s; errmsg: \"%s\"", \
                      h_stname(h_st_), (int)h_st_, h_stname(h_want_),                           \
                      (ctx) ? rc_ctx_errmsg(ctx) : "");                                         \
    } while (0)
#define H_OK(ctx, expr) H_ST(ctx, expr, RC_OK)

#define H_EQ_U64(a, b)                                                                     \
    do {                                                                                   \
        uint64_t h_a_ = (uint64_t)(a), h_b_ = (uint64_t)(b);                               \
        if (h_a_ != h_b_)                                                                  \
            h_fail_at(__FILE__, __LINE__, #a " == " #b, "%" PRIu64 " (0x%" PRIx64 ") != %" PRIu64 \
                      " (0x%" PRIx64 ")", h_a_, h_a_, h_b_, h_b_);                         \
    } while (0)

#define H_EQ_I64(a, b)                                                                     \
    do {                                                                                   \
        int64_t h_a_ = (int64_t)(a), h_b_ = (int64_t)(b);                                  \
        if (h_a_ != h_b_)                                                                  \
            h_fail_at(__FILE__, __LINE__, #a " == " #b, "%" PRId64 " != %" PRId64, h_a_, h_b_); \
    } while (0)

/* Byte-exact comparison; reports the first differing offset. */
static inline void h_memeq_at(const char *file, int line, const char *what, const void *got,
                              const void *want, size_t n)
{
    const unsigned char *a = got, *b = want;
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            size_t ndiff = 0;
            for (size_t k = i; k < n; k++)
                ndiff += a[k] != b[k];
            size_t lo = i & ~(size_t)7;
            char ga[64] = "", wa[64] = "";
            for (size_t k = lo; k < lo + 8 && k < n; k++) {
                snprintf(ga + strlen(ga), sizeof ga - strlen(ga), "%02x", a[k]);
                snprintf(wa + strlen(wa), sizeof wa - strlen(wa), "%02x", b[k]);
            }
            h_fail_at(file, line, what,
                      "first difference at byte %zu of %zu (%zu bytes differ); bytes %zu..: got %s, want %s", i,
                      n, ndiff, lo, ga, wa);
        }
    }
}
#define H_MEMEQ(got, want, n) h_memeq_at(__FILE__, __LINE__, "bytes of " #got " == " #want, got, want, n)

#define H_CONTAINS(hay, needle)                                                                    \
    do {                                                                                           \
        const char *h_h_ = (hay), *h_n_ = (needle);                                                \
        if (!h_h_ || !strstr(h_h_, h_n_))                                                          \
            h_fail_at(__FILE__, __LINE__, #hay " contains " #needle, "\"%s\" not found in \"%s\"", \
                      h_n_, h_h_ ? h_h_ : "(null)");                                               \
    } while (0)

/* Poll until cond holds; fail with the message after ms. */
#define H_WAIT(cond, ms, ...)                                                          \
    do {                                                                               \
        long long h_dl_ = h_deadline(ms);                                              \
        while (!(cond)) {                                                              \
            if (h_expired(h_dl_))                                                      \
                h_fail_at(__FILE__, __LINE__, "timed out waiting for " #cond, __VA_ARGS__); \
            h_nap_ms(20);                                                              \
        }                                                                              \
    } while (0)

/* ------------------------------------------------------------------ */
/* Files                                                                 */

/* Whole file as a NUL-terminated string (malloc'd), NULL if unreadable. */
static inline char *h_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            return NULL;
        }
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        cap *= 2;
        buf = realloc(buf, cap);
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Make a fresh key file `name` in the test's directory. */
static inline void h_keyfile(const char *name, char *out, size_t outlen)
{
    char msg[512];
    snprintf(out, outlen, "%s/%s", H.dir, name);
    rc_status st = rc_keygen_file(out, msg, sizeof msg);
    if (st != RC_OK)
        H_FAIL("rc_keygen_file(%s): %s: %s", out, h_stname(st), msg);
}

/* ------------------------------------------------------------------ */
/* Worker processes                                                      */

static inline h_worker *h_find(pid_t pid)
{
    for (int i = 0; i < H.nw; i++)
        if (H.w[i].pid == pid)
            return &H.w[i];
    return NULL;
}

/* Reap pid if it exited; 1 if it is gone (status in *status). */
static inline int h_reap(pid_t pid, int *status)
{
    h_worker *w = h_find(pid);
    if (w && !w->alive) {
        if (status)
            *status = w->status;
        return 1;
    }
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
        if (w) {
            w->alive = 0;
            w->status = st;
        }
        if (status)
            *status = st;
        return 1;
    }
    return 0;
}

static inline int h_alive(pid_t pid) { return !h_reap(pid, NULL); }

static inline void h_describe_status(int st, char *out, size_t n)
{
    if (WIFEXITED(st))
        snprintf(out, n, "exit status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(out, n, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(out, n, "wait status 0x%x", (unsigned)st);
}

/* Start testworker with --redis, --key-file keyfile (NULL: the default
 * key), --queue and the extra arguments (NULL-terminated, may be NULL).
 * Its stdout and stderr go to a log file (H.w[i].log).  Returns once the
 * worker has its signal handlers in place (it says "ready"), so a SIGTERM
 * from the test always means "finish and exit 0". */
static inline pid_t h_spawn_worker_key(const char *keyfile, const char *const *extra)
{
    if (H.nw >= H_MAXW)
        H_FAIL("too many workers");
    h_worker *w = &H.w[H.nw];
    snprintf(w->log, sizeof w->log, "%s/worker-%d.log", H.dir, H.nw);
    const char *argv[64];
    int n = 0;
    argv[n++] = H.worker_bin;
    argv[n++] = "--redis";
    argv[n++] = H.url;
    argv[n++] = "--key-file";
    argv[n++] = keyfile ? keyfile : H.keyfile;
    argv[n++] = "--queue";
    argv[n++] = H.queue;
    for (int i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        H_FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        if (getppid() != parent)
            _exit(127);
        int fd = open(w->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    w->pid = pid;
    w->alive = 1;
    w->status = 0;
    w->killed = 0;
    H.nw++;
    long long dl = h_deadline(H_DEADLINE_MS);
    for (;;) {
        char *t = h_read_file(w->log);
        int ready = t && strstr(t, "testworker: pid ") && strstr(t, " ready\n");
        free(t);
        if (ready)
            break;
        int st;
        if (h_reap(pid, &st)) {
            char d[64];
            h_describe_status(st, d, sizeof d);
            H_FAIL("worker %ld ended (%s) before it was ready", (long)pid, d);
        }
        if (h_expired(dl))
            H_FAIL("worker %ld not ready after %d ms", (long)pid, H_DEADLINE_MS);
        h_nap_ms(2);
    }
    return pid;
}
static inline pid_t h_spawn_worker(const char *const *extra) { return h_spawn_worker_key(NULL, extra); }

/* Start n workers with the same extra arguments; pids into out (may be NULL). */
static inline void h_spawn_workers(int n, const char *const *extra, pid_t *out)
{
    for (int i = 0; i < n; i++) {
        pid_t p = h_spawn_worker(extra);
        if (out)
            out[i] = p;
    }
}

/* Wait (polling) for pid to exit within ms; fail unless it exits 0. */
#define H_EXPECT_EXIT0(pid, ms) h_expect_exit0_at(__FILE__, __LINE__, pid, ms)
static inline void h_expect_exit0_at(const char *file, int line, pid_t pid, long long ms)
{
    long long dl = h_deadline(ms);
    int st = 0;
    while (!h_reap(pid, &st)) {
        if (h_expired(dl))
            h_fail_at(file, line, "worker exit", "worker %ld still running after %lld ms", (long)pid, ms);
        h_nap_ms(20);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char d[64];
        h_describe_status(st, d, sizeof d);
        h_fail_at(file, line, "worker exit", "worker %ld ended with %s, expected exit status 0", (long)pid, d);
    }
}

static inline void h_signal(pid_t pid, int sig)
{
    if (kill(pid, sig) != 0)
        H_FAIL("kill(%ld, %d): %s", (long)pid, sig, strerror(errno));
}

/* kill -9 and reap. */
static inline void h_kill9(pid_t pid)
{
    h_signal(pid, SIGKILL);
    h_worker *w = h_find(pid);
    if (w)
        w->killed = 1;
    long long dl = h_deadline(H_DEADLINE_MS);
    while (!h_reap(pid, NULL)) {
        if (h_expired(dl))
            H_FAIL("worker %ld survives SIGKILL", (long)pid);
        h_nap_ms(5);
    }
}

/* SIGTERM every live worker and require each to exit 0 (workers the test
 * killed on purpose excepted). */
#define H_STOP_ALL() h_stop_all_at(__FILE__, __LINE__)
static inline void h_stop_all_at(const char *file, int line)
{
    for (int i = 0; i < H.nw; i++)
        if (H.w[i].alive && h_alive(H.w[i].pid))
            kill(H.w[i].pid, SIGTERM);
    for (int i = 0; i < H.nw; i++)
        if (H.w[i].pid && !H.w[i].killed)
            h_expect_exit0_at(file, line, H.w[i].pid, H_DEADLINE_MS);
}

static void h_kill_all(void)
{
    for (int i = 0; i < H.nw; i++) {
        if (!H.w[i].alive)
            continue;
        kill(H.w[i].pid, SIGCONT);
        kill(H.w[i].pid, SIGKILL);
        int st;
        if (waitpid(H.w[i].pid, &st, 0) == H.w[i].pid) {
            H.w[i].alive = 0;
            H.w[i].status = st;
        }
    }
}

static void h_dump_logs(void)
{
    for (int i = 0; i < H.nw; i++) {
        char *text = h_read_file(H.w[i].log);
        size_t n = text ? strlen(text) : 0;
        const char *start = text ? text : "(no log)";
        if (n > 6000)
            start = text + n - 6000; /* the end says the most */
        fprintf(stderr, "----- worker %d (pid %ld) log%s -----\n%s", i, (long)H.w[i].pid,
                n > 6000 ? " (tail)" : "", start);
        if (!n || text[n - 1] != '\n')
            fputc('\n', stderr);
        free(text);
    }
    if (H.nw)
        fprintf(stderr, "----- end of worker logs -----\n");
}

/* Log text of a worker (malloc'd). */
static inline char *h_worker_log(pid_t pid)
{
    h_worker *w = h_find(pid);
    return w ? h_read_file(w->log) : NULL;
}

static inline int h_log_contains(pid_t pid, const char *needle)
{
    char *t = h_worker_log(pid);
    int found = t && strstr(t, needle);
    free(t);
    return found;
}

/* ------------------------------------------------------------------ */
/* Redis, directly (hiredis): inspect and corrupt the queue's keys        */

static inline redisContext *h_redis(void)
{
    if (H.redis)
        return H.redis;
    struct timeval tv = {10, 0};
    H.redis = redisConnectWithTimeout(H.host, H.port, tv);
    if (!H.redis || H.redis->err)
        H_FAIL("cannot connect to %s: %s", H.url, H.redis ? H.redis->errstr : "out of memory");
    redisSetTimeout(H.redis, tv);
    return H.redis;
}

/* One command; fails the test on a connection error or an error reply. */
static inline redisReply *h_cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(h_redis(), fmt, ap);
    va_end(ap);
    if (!r)
        H_FAIL("redis command '%s': %s", fmt, H.redis->errstr);
    if (r->type == REDIS_REPLY_ERROR)
        H_FAIL("redis command '%s': %s", fmt, r->str);
    return r;
}

static inline long long h_cmd_int(const char *fmt, const char *arg)
{
    redisReply *r = h_cmd(fmt, arg);
    if (r->type != REDIS_REPLY_INTEGER)
        H_FAIL("redis command '%s %s': not an integer reply (type %d)", fmt, arg, r->type);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static inline void h_tasks_key(char *out, size_t n) { snprintf(out, n, "rc:{%s}:tasks", H.queue); }
/* The consumer name worker pid registered in rc:{Q}:workers ("" while it
 * has none): the key of its details, rc:{Q}:worker:<consumer>. */
static inline void h_consumer_of(pid_t pid, char *out, size_t n)
{
    char reg[300], tag[32];
    snprintf(reg, sizeof reg, "rc:{%s}:workers", H.queue);
    snprintf(tag, sizeof tag, ":%ld:", (long)pid);
    out[0] = '\0';
    redisReply *r = h_cmd("ZRANGE %s 0 -1", reg);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (strstr(r->element[i]->str, tag))
            snprintf(out, n, "%s", r->element[i]->str);
    freeReplyObject(r);
}
static inline void h_meta_key(const rc_job *job, char *out, size_t n)
{
    snprintf(out, n, "rc:{%s}:job:%s", H.queue, rc_job_id(job));
}
static inline void h_res_key(const rc_job *job, char *out, size_t n)
{
    snprintf(out, n, "rc:{%s}:job:%s:res", H.queue, rc_job_id(job));
}

/* Results waiting in result stream `res`: one per field, since a small
   delivery's results share one entry. */
static inline long long h_results(const char *res)
{
    redisReply *r = h_cmd("XRANGE %s - +", res);
    long long n = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_ARRAY && r->element[i]->elements == 2 &&
            r->element[i]->element[1]->type == REDIS_REPLY_ARRAY)
            n += (long long)r->element[i]->element[1]->elements / 2;
    freeReplyObject(r);
    return n;
}

static inline long long h_xlen(void)
{
    char k[300];
    h_tasks_key(k, sizeof k);
    return h_cmd_int("XLEN %s", k);
}

/* Calls of one command (lower case, as INFO commandstats names it) since
 * the last h_reset_stats. */
static inline long long h_calls(const char *cmd)
{
    redisReply *r = h_cmd("INFO commandstats");
    char key[64];
    snprintf(key, sizeof key, "cmdstat_%s:calls=", cmd);
    const char *p = r->type == REDIS_REPLY_STRING ? strstr(r->str, key) : NULL;
    long long n = p ? atoll(p + strlen(key)) : 0;
    freeReplyObject(r);
    return n;
}

static inline void h_reset_stats(void) { freeReplyObject(h_cmd("CONFIG RESETSTAT")); }

/* Connections blocked right now in XREADGROUP (CLIENT LIST flags=b): idle
 * workers waiting for a task.  A stream deleted while a worker is blocked on
 * it wakes that worker with an error at once, so every blocked worker sees
 * the deletion - none can miss it because another recreated the stream. */
static inline size_t h_blocked_readers(void)
{
    redisReply *r = h_cmd("CLIENT LIST");
    size_t n = 0;
    const char *p = r->type == REDIS_REPLY_STRING ? r->str : "";
    for (const char *line = p; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf - 1 ? len : sizeof buf - 1), line);
        const char *flags = strstr(buf, " flags=");
        n += flags && strchr(flags + 7, 'b') && strchr(flags + 7, 'b') < strchr(flags + 7, ' ') &&
             strstr(buf, " cmd=xreadgroup ") != NULL;
        line = nl ? nl + 1 : NULL;
    }
    freeReplyObject(r);
    return n;
}


/* Number of keys matching rc:{Q}:<suffix> (e.g. "job:*", "*"). */
static inline size_t h_count_keys(const char *suffix)
{
    char pat[400];
    snprintf(pat, sizeof pat, "rc:{%s}:%s", H.queue, suffix);
    redisReply *r = h_cmd("KEYS %s", pat);
    size_t n = 0;
    /* authenticated end markers (job:J:end, removed) are not state left
       behind: they record how a job or queue ended and expire by themselves */
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const char *k = r->element[i]->str;
        size_t l = r->element[i]->len;
        if (!((l > 4 && strcmp(k + l - 4, ":end") == 0) || (l > 8 && strcmp(k + l - 8, ":removed") == 0)))
            n++;
    }
    freeReplyObject(r);
    return n;
}

/* The pending entries of the queue's group: who holds what. */
typedef struct h_pend {
    char id[48];
    long pid;          /* from the consumer name host:pid:hex */
    long long idle, deliveries;
} h_pend;

static inline size_t h_pending(h_pend *out, size_t max)
{
    char k[300];
    h_tasks_key(k, sizeof k);
    redisReply *r = redisCommand(h_redis(), "XPENDING %s w - + %d", k, (int)max); /* hiredis: no %zu */
    if (!r)
        H_FAIL("XPENDING: %s", H.redis->errstr);
    size_t n = 0;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements && n < max; i++) {
            redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 4 || e->element[0]->type != REDIS_REPLY_STRING ||
                e->element[1]->type != REDIS_REPLY_STRING)
                continue;
            h_pend *p = &out[n++];
            snprintf(p->id, sizeof p->id, "%.*s", (int)e->element[0]->len, e->element[0]->str);
            const char *c = e->element[1]->str;
            const char *last = strrchr(c, ':');
            const char *s = last;
            while (s && s > c && s[-1] != ':')
                s--;
            p->pid = s ? strtol(s, NULL, 10) : 0;
            p->idle = e->element[2]->integer;
            p->deliveries = e->element[3]->integer;
        }
    }
    /* NOGROUP (no stream yet) just means nothing is pending */
    freeReplyObject(r);
    return n;
}

/* The envelope bytes of stream entry `id` (malloc'd; NULL if gone). */
static inline unsigned char *h_entry_bytes(const char *id, size_t *len)
{
    char k[300];
    h_tasks_key(k, sizeof k);
    redisReply *r = h_cmd("XRANGE %s %s %s", k, id, id);
    unsigned char *out = NULL;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        redisReply *f = r->element[0]->element[1];
        if (f->type == REDIS_REPLY_ARRAY && f->elements >= 2) {
            *len = f->element[1]->len;
            out = malloc(*len ? *len : 1);
            memcpy(out, f->element[1]->str, *len);
        }
    }
    freeReplyObject(r);
    return out;
}

/* ------------------------------------------------------------------ */
/* Envelopes, read and forged from the documented layout (internal.h):
 * magic 'R''C', version 2, kind, u32 key id, u64 job, rank, ntasks, aux,
 * u32 status, u16 kernel length, u16 0, u64 payload length, kernel, zero
 * padding to a multiple of 8, payload, 32-byte MAC (payloads under 4 KiB,
 * the only ones these helpers forge; larger ones carry kind | 0x40 and a
 * 24-byte nonce + 16-byte Poly1305 tag instead); little-endian.  Written
 * here, not borrowed from lib/wire.c, so a test forges what an attacker
 * would. */
#define H_VERSION 2
#define H_HDR 56u
#define H_MAC 32u
/* Offset of the payload for a kernel name of kl bytes. */
static inline size_t h_payload_off(size_t kl) { return H_HDR + kl + ((8 - (kl & 7)) & 7); }
enum { H_KIND_JOB = 1, H_KIND_TASK = 2, H_KIND_RESULT = 3, H_KIND_REJECT = 4 };

static inline uint64_t h_get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static inline void h_put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline void h_put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

typedef struct h_env {
    unsigned kind;
    uint32_t keyid;
    uint64_t job, rank, ntasks, aux;
    uint32_t status;
    size_t kernel_len;
    uint64_t payload_len;
} h_env;

static inline int h_env_parse(const unsigned char *b, size_t len, h_env *e)
{
    if (len < H_HDR + H_MAC || b[0] != 'R' || b[1] != 'C')
        return -1;
    e->kind = b[3];
    e->keyid = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
    e->job = h_get64(b + 8);
    e->rank = h_get64(b + 16);
    e->ntasks = h_get64(b + 24);
    e->aux = h_get64(b + 32);
    e->status = (uint32_t)b[40] | (uint32_t)b[41] << 8 | (uint32_t)b[42] << 16 | (uint32_t)b[43] << 24;
    e->kernel_len = (size_t)(b[44] | b[45] << 8);
    e->payload_len = h_get64(b + 48);
    return 0;
}

/* An envelope with a correct-looking header and a random MAC (malloc'd). */
static inline unsigned char *h_forge(unsigned kind, uint32_t keyid, uint64_t job, uint64_t rank, uint64_t ntasks,
                                     uint32_t status, const char *kernel, const void *payload, size_t plen,
                                     size_t *len)
{
    size_t kl = strlen(kernel), po = h_payload_off(kl);
    *len = po + plen + H_MAC;
    unsigned char *b = calloc(1, *len);
    b[0] = 'R';
    b[1] = 'C';
    b[2] = H_VERSION;
    b[3] = (unsigned char)kind;
    h_put32(b + 4, keyid);
    h_put64(b + 8, job);
    h_put64(b + 16, rank);
    h_put64(b + 24, ntasks);
    h_put64(b + 32, 0x1234);
    h_put32(b + 40, status);
    b[44] = (unsigned char)kl;
    b[45] = (unsigned char)(kl >> 8);
    h_put64(b + 48, plen);
    memcpy(b + H_HDR, kernel, kl); /* calloc'd: the padding is zero */
    if (plen)
        memcpy(b + po, payload, plen);
    for (size_t i = po + plen; i < *len; i++)
        b[i] = (unsigned char)(i * 37 + 11);
    return b;
}

static inline uint64_t h_job_id(const rc_job *job) { return strtoull(rc_job_id(job), NULL, 16); }

/* ------------------------------------------------------------------ */
/* Setup                                                                 */

static void h_cleanup(void)
{
    if (!H.in_cleanup) {
        H.in_cleanup = 1;
        h_kill_all();
    }
    if (H.redis)
        redisFree(H.redis);
    H.redis = NULL;
}

/* A master context on the fixture's Redis with the default key and queue,
 * and a job timeout so a hang becomes a failure, not a CTest timeout. */
static inline rc_ctx *h_ctx_key(const char *keyfile)
{
    rc_ctx *ctx = rc_ctx_create();
    if (!ctx)
        H_FAIL("rc_ctx_create returned NULL");
    H_OK(ctx, rc_ctx_set_str(ctx, RC_OPT_URL, H.url));
    H_OK(ctx, rc_ctx_set_str(ctx, RC_OPT_QUEUE, H.queue));
    if (keyfile)
        H_OK(ctx, rc_ctx_load_key(ctx, keyfile));
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_JOB_TIMEOUT_MS, H_DEADLINE_MS));
    return ctx;
}
static inline rc_ctx *h_ctx(void) { return h_ctx_key(H.keyfile); }

/* ------------------------------------------------------------------ */
/* Jobs the integration tests share                                      */

/* A "sleep" job of bcast params (np words: ms, salt[, yields]) gathering
 * {hk_sleep_value, pid} per task.  params and out (2*T words) must outlive
 * the job. */
static inline rc_job *h_sleep_job_params(rc_ctx *ctx, uint64_t T, const uint64_t *params, size_t np, uint64_t *out)
{
    rc_job *j = NULL;
    memset(out, 0xEE, 2 * T * sizeof *out);
    H_OK(ctx, rc_job_create(ctx, "sleep", T, &j));
    H_OK(ctx, rc_job_bcast(j, params, np, RC_UINT64));
    H_OK(ctx, rc_job_gather(j, out, 2, RC_UINT64));
    return j;
}
static inline rc_job *h_sleep_job(rc_ctx *ctx, uint64_t T, uint64_t ms, uint64_t salt, uint64_t params[2],
                                  uint64_t *out)
{
    params[0] = ms;
    params[1] = salt;
    return h_sleep_job_params(ctx, T, params, 2, out);
}

/* Every task's value exact, every delivering pid one of our workers. */
static inline void h_check_sleep_out(const uint64_t *out, uint64_t T, uint64_t salt)
{
    for (uint64_t r = 0; r < T; r++) {
        H_CHECK(out[2 * r] == hk_sleep_value(r, salt), "task %llu: value %llu, want %llu", (unsigned long long)r,
                (unsigned long long)out[2 * r], (unsigned long long)hk_sleep_value(r, salt));
        H_CHECK(h_find((pid_t)out[2 * r + 1]) != NULL, "task %llu: delivered by pid %llu, not one of our workers",
                (unsigned long long)r, (unsigned long long)out[2 * r + 1]);
    }
}

/* A job's statistics, printed under the label `what` unless it is NULL. */
static inline rc_job_stats h_stats(const rc_job *j, const char *what)
{
    rc_job_stats s;
    H_OK(NULL, rc_job_get_stats(j, &s));
    if (what)
        printf("%s: tasks %llu done %llu workers %llu duplicates %llu rejected %llu republished %llu "
               "redelivered %llu, %.2f s\n",
               what, (unsigned long long)s.tasks, (unsigned long long)s.done, (unsigned long long)s.workers_seen,
               (unsigned long long)s.duplicates, (unsigned long long)s.rejected, (unsigned long long)s.republished,
               (unsigned long long)s.redelivered, s.seconds);
    return s;
}

/* Poll rc_job_test until at least n tasks are done; the job must still be
 * running. */
static inline void h_wait_done(rc_ctx *ctx, rc_job *j, uint64_t n)
{
    long long dl = h_deadline(H_DEADLINE_MS);
    for (;;) {
        rc_status st = rc_job_test(j);
        H_CHECK(st == RC_EAGAIN, "rc_job_test returned %s before the test intervened; errmsg \"%s\"", h_stname(st),
                rc_ctx_errmsg(ctx));
        rc_job_stats s;
        H_OK(NULL, rc_job_get_stats(j, &s));
        if (s.done >= n)
            return;
        if (h_expired(dl))
            H_FAIL("only %llu of %llu tasks done after %d ms", (unsigned long long)s.done, (unsigned long long)n,
                   H_DEADLINE_MS);
        h_nap_ms(10);
    }
}


typedef struct h_test {
    const char *name;
    void (*fn)(void);
} h_test;

/* argv: program SUBTEST TESTWORKER.  Reads the fixture URL, makes a private
 * directory and the default key, then runs the subtest. */
static inline int h_main(int argc, char **argv, const h_test *tests)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s SUBTEST TESTWORKER\nsubtests:", argv[0]);
        for (const h_test *t = tests; t->name; t++)
            fprintf(stderr, " %s", t->name);
        fputc('\n', stderr);
        return 2;
    }
    const h_test *t = tests;
    while (t->name && strcmp(t->name, argv[1]) != 0)
        t++;
    if (!t->name) {
        fprintf(stderr, "%s: no subtest '%s'\n", argv[0], argv[1]);
        return 2;
    }
    H.test = t->name;
    H.worker_bin = argv[2];
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *fx = getenv("RC_TEST_REDIS_DIR");
    if (!fx || !*fx)
        H_FAIL("RC_TEST_REDIS_DIR is not set: run through ctest (the redis fixture sets it)");
    char path[600];
    snprintf(path, sizeof path, "%s/url", fx);
    char *url = h_read_file(path);
    if (!url)
        H_FAIL("cannot read %s: %s", path, strerror(errno));
    url[strcspn(url, "\r\n")] = '\0';
    snprintf(H.url, sizeof H.url, "%s", url);
    free(url);
    if (sscanf(H.url, "redis://%127[^:]:%d", H.host, &H.port) != 2)
        H_FAIL("cannot parse fixture url '%s'", H.url);
    snprintf(H.dir, sizeof H.dir, "%s/tmp.XXXXXX", fx);
    if (!mkdtemp(H.dir))
        H_FAIL("mkdtemp %s: %s", H.dir, strerror(errno));
    /* a queue of our own even if the server is reused (ctest --repeat runs
       the fixture's setup once, then the test several times) */
    snprintf(H.queue, sizeof H.queue, "t-%.40s-%ld", t->name, (long)getpid());
    atexit(h_cleanup);
    h_keyfile("key", H.keyfile, sizeof H.keyfile);
    if (access(H.worker_bin, X_OK) != 0)
        H_FAIL("worker binary %s: %s", H.worker_bin, strerror(errno));
    long long t0 = h_now_ms();
    printf("%s: redis %s, queue %s, dir %s\n", t->name, H.url, H.queue, H.dir);
    t->fn();
    printf("%s: PASS (%.2f s)\n", t->name, (double)(h_now_ms() - t0) / 1000.0);
    h_cleanup();
    return 0;
}

#endif /* HARNESS_KERNEL_SIDE */
#endif /* RC_TEST_HARNESS_H */
