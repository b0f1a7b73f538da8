/* resilience.h - helpers shared by test_resilience.c and chaos.c: record files, Redis restarts, any-program spawns.
 *
 * Why: the resilience tests judge a run by what actually happened, not by
 * what the library says happened.  The testworker "record" kernel writes one
 * line per start ("S tag rank pid") and per end ("E tag rank pid") of every
 * execution, so a test counts how often each task really ran, by whom and
 * in what order.  The fixture's redis-server must be stopped and started
 * again on the same port and directory with its data kept (AOF), which the
 * fixture script cannot do mid-test.  And some tests drive the pi program,
 * not testworker, so spawning must take any argv while still registering
 * the process with the harness (so a failing test kills it and dumps its
 * log).  Include after harness.h; everything is static. */
#ifndef RC_TEST_RESILIENCE_H
#define RC_TEST_RESILIENCE_H

#include "harness.h"

#include <pthread.h>

/* Debug and sanitizer builds run everything 3-10x slower: resilience.cmake
 * sets RC_RES_SLOW=1 there and the tests shrink their work, never stretch
 * their deadlines. */
static inline int rs_slow(void)
{
    const char *s = getenv("RC_RES_SLOW");
    return s && strcmp(s, "1") == 0;
}

/* ------------------------------------------------------------------ */
/* The record kernel's contract (testworker.c, k_record)                 */

/* Output of a record task without input: {hits, spread}.  The same formula
 * as testworker.c's rec_value: kept in both places on purpose, so a change
 * on one side shows up as a wrong answer here. */
static inline void rs_rec_value(uint64_t seed, uint64_t rank, uint64_t samples, double out[2])
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

static char rs_record_path[600];

/* Point the record and flaky kernels of workers spawned from now on at
 * files in the test's private directory. */
static inline void rs_rec_setup(void)
{
    snprintf(rs_record_path, sizeof rs_record_path, "%s/record.txt", H.dir);
    setenv("RC_TEST_RECORD", rs_record_path, 1);
    setenv("RC_TEST_STATE_DIR", H.dir, 1);
}

typedef struct rs_rec {
    char kind;        /* 'S' start, 'E' end */
    uint64_t tag, rank;
    long pid;
} rs_rec;

/* All record lines so far, in file (= time) order; *n set.  malloc'd. */
static inline rs_rec *rs_rec_read(size_t *n)
{
    *n = 0;
    char *t = h_read_file(rs_record_path);
    if (!t)
        return calloc(1, sizeof(rs_rec));
    size_t cap = 64;
    rs_rec *v = malloc(cap * sizeof *v);
    char *save = NULL;
    for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        rs_rec r;
        unsigned long long tag, rank;
        if (sscanf(line, "%c %llu %llu %ld", &r.kind, &tag, &rank, &r.pid) != 4)
            H_FAIL("malformed record line '%s' in %s", line, rs_record_path);
        r.tag = tag;
        r.rank = rank;
        if (*n == cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof *v);
        }
        v[(*n)++] = r;
    }
    free(t);
    return v;
}

/* Lines of this kind, tag and rank (and pid, unless 0), from index `from`. */
static inline size_t rs_rec_count(const rs_rec *v, size_t n, size_t from, char kind, uint64_t tag, uint64_t rank,
                                  long pid)
{
    size_t c = 0;
    for (size_t i = from; i < n; i++)
        c += v[i].kind == kind && v[i].tag == tag && v[i].rank == rank && (!pid || v[i].pid == pid);
    return c;
}

/* Executions (S lines) of every task of a tag: hist[k] = tasks run k times
 * (k capped at 7); returns the total. */
static inline size_t rs_rec_hist(const rs_rec *v, size_t n, uint64_t tag, uint64_t ntasks, size_t hist[8])
{
    size_t total = 0;
    memset(hist, 0, 8 * sizeof *hist);
    for (uint64_t r = 0; r < ntasks; r++) {
        size_t c = rs_rec_count(v, n, 0, 'S', tag, r, 0);
        hist[c > 7 ? 7 : c]++;
        total += c;
    }
    return total;
}

static inline void rs_print_hist(const char *what, const size_t hist[8])
{
    printf("%s: executions per task:", what);
    for (int k = 0; k < 8; k++)
        if (hist[k])
            printf(" %zu task(s) x%d%s", hist[k], k, k == 7 ? "+" : "");
    printf("\n");
}

/* ------------------------------------------------------------------ */
/* Processes                                                             */

/* Start any program (argv[0] a path), stdout+stderr to DIR/<name>.log,
 * registered with the harness like a worker (reaped by h_reap, killed on
 * failure, log dumped).  Does not wait for anything. */
static inline pid_t rs_spawn(const char *const *argv, const char *name)
{
    if (H.nw >= H_MAXW)
        H_FAIL("too many processes");
    h_worker *w = &H.w[H.nw];
    snprintf(w->log, sizeof w->log, "%s/%s.log", H.dir, name);
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        H_FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
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
    return pid;
}

/* Wait until pid's log contains needle (fails if pid ends first). */
#define RS_WAIT_LOG(pid, needle) rs_wait_log_at(__FILE__, __LINE__, pid, needle)
static inline void rs_wait_log_at(const char *file, int line, pid_t pid, const char *needle)
{
    long long dl = h_deadline(H_DEADLINE_MS);
    while (!h_log_contains(pid, needle)) {
        int st;
        if (h_reap(pid, &st)) {
            if (h_log_contains(pid, needle))
                return;
            char d[64];
            h_describe_status(st, d, sizeof d);
            h_fail_at(file, line, "waiting for a log line", "process %ld ended (%s) before logging \"%s\"",
                      (long)pid, d, needle);
        }
        if (h_expired(dl))
            h_fail_at(file, line, "waiting for a log line", "process %ld did not log \"%s\" within %d ms",
                      (long)pid, needle, H_DEADLINE_MS);
        h_nap_ms(10);
    }
}

/* Has pid taken delivery of signal sig (nothing pending)?  Two quick
 * SIGTERMs can merge into one if the first is still pending; a test that
 * means "twice" waits for this between them. */
static inline int rs_sig_taken(pid_t pid, int sig)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    char *t = h_read_file(path);
    if (!t)
        return 1;
    unsigned long long bit = 1ULL << (sig - 1), pend = 0;
    const char *fields[] = {"SigPnd:", "ShdPnd:"};
    for (int i = 0; i < 2; i++) {
        const char *p = strstr(t, fields[i]);
        if (p)
            pend |= strtoull(p + strlen(fields[i]), NULL, 16);
    }
    free(t);
    return (pend & bit) == 0;
}

/* Mark a process that died on purpose (crash kernel), so H_STOP_ALL does
 * not expect exit status 0 from it. */
static inline void rs_mark_dead(pid_t pid)
{
    h_worker *w = h_find(pid);
    if (w)
        w->killed = 1;
}

/* ------------------------------------------------------------------ */
/* Redis: stop the fixture's server and start it again on the same port  */
/* and directory, data kept by the append-only file.                     */

static inline const char *rs_fixture_dir(void)
{
    const char *fx = getenv("RC_TEST_REDIS_DIR");
    if (!fx || !*fx)
        H_FAIL("RC_TEST_REDIS_DIR is not set");
    return fx;
}

/* A private connection (not H.redis: this may run in a helper thread).
 * NULL if the server does not answer. */
static inline redisContext *rs_redis_try(void)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(H.host, H.port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

/* INFO field as a string ("" if absent). */
static inline void rs_info_field(redisContext *c, const char *section, const char *field, char *out, size_t n)
{
    out[0] = '\0';
    redisReply *r = redisCommand(c, "INFO %s", section);
    if (!r)
        return;
    if (r->type == REDIS_REPLY_STRING) {
        char key[128];
        snprintf(key, sizeof key, "\n%s:", field);
        const char *p = strstr(r->str, key);
        if (p) {
            p += strlen(key);
            size_t k = strcspn(p, "\r\n");
            snprintf(out, n, "%.*s", (int)k, p);
        }
    }
    freeReplyObject(r);
}

static inline long rs_pidfile(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/redis.pid", rs_fixture_dir());
    char *t = h_read_file(path);
    long pid = t ? strtol(t, NULL, 10) : 0;
    free(t);
    return pid;
}

/* Turn the AOF on and wait until its first rewrite is complete, so every
 * key written so far survives a restart. */
static inline void rs_redis_aof_on(void)
{
    redisContext *c = rs_redis_try();
    if (!c)
        H_FAIL("redis on port %d does not answer", H.port);
    redisReply *r = redisCommand(c, "CONFIG SET appendonly yes");
    if (!r || r->type == REDIS_REPLY_ERROR)
        H_FAIL("CONFIG SET appendonly yes: %s", r ? r->str : c->errstr);
    freeReplyObject(r);
    long long dl = h_deadline(H_DEADLINE_MS);
    for (;;) {
        char en[32], prog[32], sched[32];
        rs_info_field(c, "persistence", "aof_enabled", en, sizeof en);
        rs_info_field(c, "persistence", "aof_rewrite_in_progress", prog, sizeof prog);
        rs_info_field(c, "persistence", "aof_rewrite_scheduled", sched, sizeof sched);
        if (strcmp(en, "1") == 0 && strcmp(prog, "0") == 0 && strcmp(sched, "0") == 0)
            break;
        if (h_expired(dl))
            H_FAIL("AOF rewrite not finished after %d ms (aof_enabled %s, in progress %s, scheduled %s)",
                   H_DEADLINE_MS, en, prog, sched);
        h_nap_ms(20);
    }
    redisFree(c);
}

/* Exited but not reaped yet (the daemon's parent is init, which may reap
 * late in a container). */
static inline int rs_zombie(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    char *t = h_read_file(path);
    const char *p = t ? strrchr(t, ')') : NULL;
    int z = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
    free(t);
    return z;
}

/* SHUTDOWN (the AOF is flushed and fsynced) and wait until the process is
 * gone and the port refuses connections. */
static inline void rs_redis_shutdown(void)
{
    long pid = rs_pidfile();
    redisContext *c = rs_redis_try();
    if (!c)
        H_FAIL("redis on port %d does not answer before SHUTDOWN", H.port);
    redisReply *r = redisCommand(c, "SHUTDOWN"); /* no reply: the server closes the connection */
    if (r && r->type == REDIS_REPLY_ERROR)
        H_FAIL("SHUTDOWN refused: %s", r->str);
    if (r)
        freeReplyObject(r);
    redisFree(c);
    long long dl = h_deadline(H_DEADLINE_MS);
    for (;;) {
        int gone = pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH) || rs_zombie(pid);
        redisContext *t = gone ? rs_redis_try() : NULL;
        if (gone && !t)
            break;
        if (t)
            redisFree(t);
        if (h_expired(dl))
            H_FAIL("redis (pid %ld) still up %d ms after SHUTDOWN", pid, H_DEADLINE_MS);
        h_nap_ms(10);
    }
}

/* Start redis-server again on the fixture's port and directory with the
 * AOF on (it loads what the AOF holds); wait until the new server answers
 * with its own pid.  The fixture's stop step finds it by the same pidfile. */
static inline void rs_redis_start(void)
{
    const char *fx = rs_fixture_dir();
    const char *server = getenv("REDCOLL_REDIS_SERVER");
    if (!server || !*server)
        server = "redis-server";
    char port[16], pidf[600], logf[600];
    snprintf(port, sizeof port, "%d", H.port);
    snprintf(pidf, sizeof pidf, "%s/redis.pid", fx);
    snprintf(logf, sizeof logf, "%s/redis.log", fx);
    long long dl = h_deadline(H_DEADLINE_MS);
    for (int attempt = 1;; attempt++) {
        unlink(pidf);
        pid_t p = fork();
        if (p < 0)
            H_FAIL("fork: %s", strerror(errno));
        if (p == 0) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
            execlp(server, server, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
                   "--daemonize", "yes", "--pidfile", pidf, "--logfile", logf, "--dir", fx, (char *)NULL);
            _exit(127);
        }
        int st;
        while (waitpid(p, &st, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            H_FAIL("%s did not start (attempt %d, wait status 0x%x)", server, attempt, (unsigned)st);
        /* the daemon answers once it has loaded the AOF */
        for (;;) {
            long want = rs_pidfile();
            redisContext *c = want > 0 ? rs_redis_try() : NULL;
            if (c) {
                char pid[32], loading[16];
                rs_info_field(c, "server", "process_id", pid, sizeof pid);
                rs_info_field(c, "persistence", "loading", loading, sizeof loading);
                redisFree(c);
                if (strtol(pid, NULL, 10) == want && strcmp(loading, "0") == 0)
                    return;
            }
            if (want > 0 && (kill((pid_t)want, 0) != 0 || rs_zombie(want)))
                break; /* it died (port still in TIME_WAIT use?): start again */
            if (h_expired(dl)) {
                char *log = h_read_file(logf);
                H_FAIL("restarted redis on port %d not answering after %d ms; log tail: %s", H.port,
                       H_DEADLINE_MS, log ? log + (strlen(log) > 2000 ? strlen(log) - 2000 : 0) : "(none)");
            }
            h_nap_ms(10);
        }
        if (h_expired(dl))
            H_FAIL("could not restart redis on port %d", H.port);
        h_nap_ms(100);
    }
}

/* Forget the harness's own connection (the server it talked to is gone). */
static inline void rs_redis_forget(void)
{
    if (H.redis)
        redisFree(H.redis);
    H.redis = NULL;
}

/* The whole restart: AOF on, SHUTDOWN, down_ms of darkness, start again.
 * Returns the time the server was unreachable, in ms. */
static inline long long rs_redis_restart_aof(long long down_ms)
{
    rs_redis_aof_on();
    long long t0 = h_now_ms();
    rs_redis_shutdown();
    if (down_ms > 0)
        h_nap_ms((long)down_ms);
    rs_redis_start();
    return h_now_ms() - t0;
}

#endif /* RC_TEST_RESILIENCE_H */
