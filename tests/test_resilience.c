/* test_resilience.c - the Resilience promises, one CTest test each: kill -9, stalls, drains, Redis restarts, poison tasks, re-attach, retention, queues, registry.
 *
 * Why: redcoll promises that a job gives the exact answer, every task
 * counted once, whatever happens to its workers (kill -9, SIGSTOP past the
 * lease, SIGTERM once or twice, drain timeouts), to its master (killed and
 * re-attached by id) and to Redis (restarted with its AOF, or gone for
 * longer than the master's deadline); that a poison task fails its job after
 * a bounded number of attempts with a message naming it, instead of killing
 * the pool one worker at a time; that abandoned jobs expire; that a worker
 * serving several queues honours their priority and survives the removal of
 * one; and that the worker registry says who is doing what.  Each subtest
 * (argv[1]) gets its own redis-server from the CTest fixture and checks what
 * really happened - the record kernel logs every execution of every task -
 * not only what the library reports.  Events are detected by polling Redis,
 * the record file and process state against deadlines; durations (recovery
 * time, exit latency) are printed for the lead to quote, never asserted. */
#include "harness.h"
#include "resilience.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

static const char *g_pi;  /* the pi binary (argv[3]), for the tests that drive it */
static const char *g_cli; /* the redcoll command (argv[4]) */

/* ------------------------------------------------------------------ */
/* Jobs of the record kernel                                             */

typedef struct rjob {
    rc_job *job;
    uint64_t T, seed, samples, params[3];
    double *out; /* 2 doubles per task, gathered; 0xFF bytes until accepted */
} rjob;

/* A record job without input, gathering {hits, spread} of every task. */
static void rjob_make(rjob *r, rc_ctx *ctx, uint64_t T, uint64_t ms, uint64_t tag, uint64_t samples,
                      uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->T = T;
    r->seed = seed;
    r->samples = samples;
    r->params[0] = ms;
    r->params[1] = tag;
    r->params[2] = samples;
    r->out = malloc(2 * T * sizeof *r->out);
    H_CHECK(r->out != NULL, "out of memory");
    memset(r->out, 0xFF, 2 * T * sizeof *r->out);
    H_OK(ctx, rc_job_create(ctx, "record", T, &r->job));
    H_OK(ctx, rc_job_set_seed(r->job, seed));
    H_OK(ctx, rc_job_bcast(r->job, r->params, 3, RC_UINT64));
    H_OK(ctx, rc_job_gather(r->job, r->out, 2, RC_DOUBLE));
}

static int rjob_accepted(const rjob *r, uint64_t rank)
{
    static const unsigned char ff[16] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                         0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    return memcmp(&r->out[2 * rank], ff, sizeof ff) != 0;
}

/* Every task's output bit-identical to the formula. */
static void rjob_check(const rjob *r)
{
    for (uint64_t k = 0; k < r->T; k++) {
        double want[2];
        rs_rec_value(r->seed, k, r->samples, want);
        H_CHECK(memcmp(&r->out[2 * k], want, sizeof want) == 0, "task %llu: got {%.17g, %.17g}, want {%.17g, %.17g}",
                (unsigned long long)k, r->out[2 * k], r->out[2 * k + 1], want[0], want[1]);
    }
}

static void rjob_free(rjob *r)
{
    rc_job_destroy(r->job);
    free(r->out);
    r->job = NULL;
    r->out = NULL;
}

/* ------------------------------------------------------------------ */
/* Who holds what                                                        */

static long pending_owner(const char *id)
{
    h_pend p[256];
    size_t n = h_pending(p, 256);
    for (size_t i = 0; i < n; i++)
        if (strcmp(p[i].id, id) == 0)
            return p[i].pid;
    return 0;
}

/* Wait until one of the live workers in cands holds an entry. */
static pid_t wait_holder(const pid_t *cands, int n, h_pend *held)
{
    long long dl = h_deadline(H_DEADLINE_MS);
    for (;;) {
        h_pend p[256];
        size_t np = h_pending(p, 256);
        for (size_t i = 0; i < np; i++)
            for (int k = 0; k < n; k++)
                if (cands[k] && p[i].pid == cands[k] && h_alive(cands[k])) {
                    *held = p[i];
                    return cands[k];
                }
        if (h_expired(dl))
            H_FAIL("no worker took a task within %d ms", H_DEADLINE_MS);
        h_nap_ms(5);
    }
}

/* The rank of stream entry id; UINT64_MAX if it is gone (delivered). */
static uint64_t entry_rank(const char *id)
{
    size_t len = 0;
    unsigned char *b = h_entry_bytes(id, &len);
    if (!b)
        return UINT64_MAX;
    h_env e;
    H_CHECK(h_env_parse(b, len, &e) == 0 && e.kind == H_KIND_TASK, "entry %s is not a task envelope", id);
    free(b);
    return e.rank;
}

/* Send SIGTERM and wait until the process has taken it (so a second one is
 * a second delivery, not merged with the first). */
static void sigterm_taken(pid_t pid)
{
    h_signal(pid, SIGTERM);
    H_WAIT(rs_sig_taken(pid, SIGTERM) || !h_alive(pid), H_DEADLINE_MS, "worker %ld never took its SIGTERM",
           (long)pid);
}

/* ------------------------------------------------------------------ */

/* Drive the job until the master accepted task rank of the killed worker. */
static void wait_accepted(rc_ctx *ctx, rjob *r, uint64_t rank)
{
    long long dl = h_deadline(H_DEADLINE_MS);
    while (!rjob_accepted(r, rank)) {
        rc_status st = rc_job_test(r->job);
        H_CHECK(st == RC_EAGAIN || st == RC_OK, "rc_job_test: %s: %s", h_stname(st), rc_ctx_errmsg(ctx));
        if (h_expired(dl))
            H_FAIL("task %llu of the killed worker not accepted within %d ms", (unsigned long long)rank,
                   H_DEADLINE_MS);
        h_nap_ms(5);
    }
}

/* kill -9 a worker holding a task, lease 2 s: the task runs again on
 * another worker and is counted once.  Prints the recovery time. */
static void t_kill9_recovery_time(void)
{
    enum { T = 24 };
    static const char *const lease2[] = {"--lease", "2", NULL};
    rs_rec_setup();
    rc_ctx *ctx = h_ctx();
    pid_t w[3];
    h_spawn_workers(3, lease2, w);
    rjob r;
    rjob_make(&r, ctx, T, 250, 1, 20000, 101);
    H_OK(ctx, rc_job_submit(r.job));
    h_wait_done(ctx, r.job, 2); /* under way */
    pid_t victim = 0;
    uint64_t rank = 0;
    long long t_kill = 0;
    for (int attempt = 0; attempt < 5 && !victim; attempt++) {
        h_pend held;
        pid_t p = wait_holder(w, 3, &held);
        uint64_t k = entry_rank(held.id);
        t_kill = h_now_ms();
        h_kill9(p);
        if (k != UINT64_MAX && pending_owner(held.id) == p) {
            victim = p;
            rank = k;
            printf("killed worker %ld while it held entry %s (task %llu, lease age %lld ms)\n", (long)p, held.id,
                   (unsigned long long)k, held.idle);
        } else {
            printf("worker %ld delivered entry %s just before the kill; trying another\n", (long)p, held.id);
        }
        for (int i = 0; i < 3; i++)
            if (w[i] == p)
                w[i] = h_spawn_worker(lease2); /* the pool stays at three */
    }
    H_CHECK(victim != 0, "could not kill a worker while it held a task in 5 attempts");
    wait_accepted(ctx, &r, rank);
    long long recovery = h_now_ms() - t_kill;
    H_OK(ctx, rc_job_wait(r.job));
    rjob_check(&r);
    rc_job_stats s = h_stats(r.job, "kill9");
    H_EQ_U64(s.done, T);
    H_CHECK(s.redelivered >= 1, "the killed worker's task was accepted from a first attempt (redelivered %llu)",
            (unsigned long long)s.redelivered);
    size_t n;
    rs_rec *v = rs_rec_read(&n);
    size_t runs = rs_rec_count(v, n, 0, 'S', 1, rank, 0), by_victim = rs_rec_count(v, n, 0, 'S', 1, rank, victim);
    size_t ends_by_victim = rs_rec_count(v, n, 0, 'E', 1, rank, victim);
    /* (its kernel may have ended just before the kill, its result not sent) */
    H_CHECK(by_victim == 1, "task %llu: %zu starts by the killed worker", (unsigned long long)rank, by_victim);
    printf("task %llu: %zu run(s) in all; the killed worker %s its run\n", (unsigned long long)rank, runs,
           ends_by_victim ? "had just ended" : "was killed during");
    H_CHECK(runs >= 2, "task %llu ran %zu time(s): it was never re-run after the kill", (unsigned long long)rank,
            runs);
    size_t hist[8];
    rs_rec_hist(v, n, 1, T, hist);
    rs_print_hist("kill9", hist);
    H_CHECK(hist[0] == 0, "%zu task(s) never ran", hist[0]);
    free(v);
    printf("RECOVERY TIME: kill -9 -> task %llu's result accepted by the master: %.2f s (lease 2 s, task 0.25 s)\n",
           (unsigned long long)rank, (double)recovery / 1000.0);
    rjob_free(&r);
    H_WAIT(h_xlen() == 0, H_DEADLINE_MS, "%lld stream entries left", h_xlen());
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* kill -9 the one busy worker while the other waits for work: nothing new
 * comes to end its wait (a slice of 30 s by default), so it is its lease
 * thread, scanning for lapsed leases at its beats, that must wake it to take
 * the task over once the lease (2 s) lapses. */
static void t_kill9_idle_takeover(void)
{
    static const char *const lease2[] = {"--lease", "2", NULL};
    rs_rec_setup();
    rc_ctx *ctx = h_ctx();
    pid_t w[2];
    h_spawn_workers(2, lease2, w);
    rjob r;
    rjob_make(&r, ctx, 1, 1500, 1, 20000, 202);
    H_OK(ctx, rc_job_submit(r.job));
    h_pend held;
    pid_t victim = wait_holder(w, 2, &held);
    long long t_kill = h_now_ms();
    h_kill9(victim);
    H_CHECK(pending_owner(held.id) == victim, "worker %ld delivered its 1.5 s task before the kill", (long)victim);
    wait_accepted(ctx, &r, 0);
    long long recovery = h_now_ms() - t_kill;
    printf("RECOVERY TIME with the other worker idle: %.2f s (lease 2 s, task 1.5 s)\n", (double)recovery / 1000.0);
    /* lease + a beat (0.5 s) + the task, and room for a slow build: far
       below the 30 s an idle worker waits when nothing wakes it */
    H_CHECK(recovery < 12000, "the task was re-run %lld ms after the kill: the idle worker was not woken", recovery);
    H_OK(ctx, rc_job_wait(r.job));
    rjob_check(&r);
    rc_job_stats s = h_stats(r.job, "kill9 idle");
    H_EQ_U64(s.done, 1);
    H_CHECK(s.redelivered >= 1, "the task was accepted from a first attempt (redelivered %llu)",
            (unsigned long long)s.redelivered);
    rjob_free(&r);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* SIGSTOP a worker holding a task until another worker has finished that
 * task, then SIGCONT: its late result is a counted duplicate, the answer
 * exact, and the stalled worker carries on serving. */
static void t_stall_sigstop(void)
{
    enum { T = 24 };
    static const char *const lease1[] = {"--lease", "1", NULL};
    rs_rec_setup();
    rc_ctx *ctx = h_ctx();
    pid_t w[2];
    h_spawn_workers(2, lease1, w);
    rjob r;
    rjob_make(&r, ctx, T, 300, 1, 20000, 202);
    H_OK(ctx, rc_job_submit(r.job));
    pid_t victim = 0;
    h_pend held;
    for (int attempt = 0; attempt < 5 && !victim; attempt++) {
        pid_t p = wait_holder(w, 2, &held);
        h_signal(p, SIGSTOP);
        if (pending_owner(held.id) == p)
            victim = p;
        else
            h_signal(p, SIGCONT); /* it delivered just before the stop */
    }
    H_CHECK(victim != 0, "could not stop a worker while it held a task in 5 attempts");
    uint64_t rank = entry_rank(held.id);
    H_CHECK(rank != UINT64_MAX, "entry %s vanished while its worker was stopped", held.id);
    pid_t other = w[0] == victim ? w[1] : w[0];
    long long t_stop = h_now_ms();
    printf("stopped worker %ld holding entry %s (task %llu)\n", (long)victim, held.id, (unsigned long long)rank);
    /* past the lease the other worker takes the task over and finishes it */
    long long dl = h_deadline(H_DEADLINE_MS);
    for (;;) {
        size_t n;
        rs_rec *v = rs_rec_read(&n);
        size_t ends = rs_rec_count(v, n, 0, 'E', 1, rank, other);
        free(v);
        if (ends)
            break;
        rc_status st = rc_job_test(r.job);
        H_CHECK(st == RC_EAGAIN, "rc_job_test: %s: %s", h_stname(st), rc_ctx_errmsg(ctx));
        if (h_expired(dl))
            H_FAIL("task %llu was not re-run by worker %ld while worker %ld was stopped", (unsigned long long)rank,
                   (long)other, (long)victim);
        h_nap_ms(10);
    }
    H_CHECK(rc_job_test(r.job) == RC_EAGAIN, "the job finished before the stalled worker resumed: %s",
            rc_ctx_errmsg(ctx));
    rc_job_stats s0;
    H_OK(NULL, rc_job_get_stats(r.job, &s0));
    size_t n0;
    free(rs_rec_read(&n0));
    h_signal(victim, SIGCONT);
    printf("resumed worker %ld after %.2f s stopped (lease 1 s), %llu of %d tasks done\n", (long)victim,
           (double)(h_now_ms() - t_stop) / 1000.0, (unsigned long long)s0.done, T);
    H_OK(ctx, rc_job_wait(r.job));
    rjob_check(&r);
    rc_job_stats s = h_stats(r.job, "stall");
    H_EQ_U64(s.done, T);
    size_t n;
    rs_rec *v = rs_rec_read(&n);
    /* the stalled execution did finish (its kernel ran on after SIGCONT) */
    H_WAIT((free(v), v = rs_rec_read(&n), rs_rec_count(v, n, 0, 'E', 1, rank, victim) == 1), H_DEADLINE_MS,
           "the stalled worker never finished task %llu", (unsigned long long)rank);
    if (s0.done + 3 <= T)
        H_CHECK(s.duplicates >= 1, "the stalled worker's late result for task %llu was not seen as a duplicate "
                "(duplicates %llu) although the job ran on", (unsigned long long)rank,
                (unsigned long long)s.duplicates);
    else
        printf("the job was nearly done at the resume: the late result may have met a finished job\n");
    size_t later = 0;
    for (size_t i = n0; i < n; i++)
        later += v[i].kind == 'S' && v[i].pid == victim;
    size_t hist[8];
    rs_rec_hist(v, n, 1, T, hist);
    rs_print_hist("stall", hist);
    free(v);
    rjob_free(&r);
    printf("the stalled worker started %zu later task(s) of the same job\n", later);
    H_CHECK(h_alive(victim), "the stalled worker died");
    if (!later) {
        /* the job ended too soon: alone, it must run the next one */
        h_signal(other, SIGTERM);
        H_EXPECT_EXIT0(other, H_DEADLINE_MS);
        rjob_make(&r, ctx, 3, 10, 2, 100, 203);
        H_OK(ctx, rc_job_run(r.job));
        rjob_check(&r);
        rjob_free(&r);
        v = rs_rec_read(&n);
        for (uint64_t k = 0; k < 3; k++)
            H_CHECK(rs_rec_count(v, n, 0, 'S', 2, k, victim) == 1, "task %llu of the next job not run by the "
                    "stalled worker", (unsigned long long)k);
        free(v);
    }
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* A worker is told to stop (SIGTERM) while running a task that needs
 * `task_ms`: with `opts` it hands the task back and exits 0 before its
 * kernel finishes; another worker completes the task, counted once.
 * twice: send a second SIGTERM (after the first was taken). */
static void drain_case(const char *const *opts, int twice, const char *what)
{
    const uint64_t task_ms = 5000;
    static const char *const lease2[] = {"--lease", "2", NULL};
    rs_rec_setup();
    rc_ctx *ctx = h_ctx();
    pid_t a = h_spawn_worker(opts);
    rjob r;
    rjob_make(&r, ctx, 1, task_ms, 1, 1000, 301);
    H_OK(ctx, rc_job_submit(r.job));
    h_pend held;
    H_CHECK(wait_holder(&a, 1, &held) == a, "the only worker is not the holder");
    pid_t b = h_spawn_worker(lease2);
    long long t0 = h_now_ms();
    sigterm_taken(a);
    if (twice) {
        H_CHECK(h_alive(a) && pending_owner(held.id) == a,
                "after one SIGTERM the worker should still be finishing its task (alive %d, holder %ld)",
                h_alive(a), pending_owner(held.id));
        h_signal(a, SIGTERM);
    }
    H_EXPECT_EXIT0(a, H_DEADLINE_MS);
    long long exit_ms = h_now_ms() - t0;
    H_OK(ctx, rc_job_wait(r.job));
    rjob_check(&r);
    rc_job_stats s = h_stats(r.job, what);
    H_EQ_U64(s.done, 1);
    size_t n;
    rs_rec *v = rs_rec_read(&n);
    /* the abandoned run never ended: the worker left before its kernel did */
    H_CHECK(rs_rec_count(v, n, 0, 'S', 1, 0, a) == 1 && rs_rec_count(v, n, 0, 'E', 1, 0, a) == 0,
            "worker %ld: %zu starts, %zu ends of the task (want 1, 0: exit before the task would have ended)",
            (long)a, rs_rec_count(v, n, 0, 'S', 1, 0, a), rs_rec_count(v, n, 0, 'E', 1, 0, a));
    H_CHECK(rs_rec_count(v, n, 0, 'E', 1, 0, b) == 1, "the other worker %ld did not complete the task", (long)b);
    free(v);
    char *log = h_worker_log(a);
    H_CONTAINS(log, "back to the queue"); /* handed back, not left to lapse */
    const char *line = strstr(log, "back to the queue");
    while (line > log && line[-1] != '\n')
        line--;
    printf("%s: worker said: %.*s\n", what, (int)strcspn(line, "\n"), line);
    free(log);
    printf("%s: worker exited 0 %.2f s after the first SIGTERM (its task needs %.1f s)\n", what,
           (double)exit_ms / 1000.0, (double)task_ms / 1000.0);
    rjob_free(&r);
    H_EQ_U64(h_xlen(), 0);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* A lease of 20 s puts the worker's beats 5 s apart, as long as the task:
 * the drain timeout must be acted on from the first stop request on, by the
 * lease thread woken by the request itself (a task alone in its batch runs
 * without the lease thread's ticks until then), not at a beat. */
static void t_sigterm_drain_timeout(void)
{
    static const char *const opts[] = {"--lease", "20", "--drain-timeout", "0.5", "--exit-on-abandon", NULL};
    drain_case(opts, 0, "drain-timeout");
}

/* pi --worker gets SIGTERM twice while computing a long task: it exits 0
 * at once (its abandon handler) and the task is claimable again. */
static void pi_sigterm_twice(void)
{
    rc_ctx *ctx = h_ctx();
    char q[100];
    snprintf(q, sizeof q, "%s-pi", H.queue);
    H_OK(ctx, rc_ctx_set_str(ctx, RC_OPT_QUEUE, q));
    uint64_t samples = 400000000000ULL, hits = 0; /* 2e11 per task: minutes, whatever the build */
    rc_job *j = NULL;
    H_OK(ctx, rc_job_create(ctx, "pi", 2, &j));
    H_OK(ctx, rc_job_bcast(j, &samples, 1, RC_UINT64));
    H_OK(ctx, rc_job_reduce(j, &hits, 1, RC_UINT64, rc_op_builtin(RC_SUM)));
    H_OK(ctx, rc_job_submit(j));
    const char *argv[] = {g_pi, "--worker", "--redis", H.url, "--key-file", H.keyfile, "--queue", q, "-v", NULL};
    pid_t p = rs_spawn(argv, "pi-worker");
    RS_WAIT_LOG(p, "serving queue");
    char tasks[300];
    snprintf(tasks, sizeof tasks, "rc:{%s}:tasks", q);
    char id[64] = "";
    long long dl = h_deadline(H_DEADLINE_MS);
    while (!id[0]) {
        redisReply *r = h_cmd("XPENDING %s w - + 10", tasks);
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            char pidtag[32];
            snprintf(pidtag, sizeof pidtag, ":%ld:", (long)p);
            if (strstr(r->element[i]->element[1]->str, pidtag))
                snprintf(id, sizeof id, "%s", r->element[i]->element[0]->str);
        }
        freeReplyObject(r);
        if (h_expired(dl))
            H_FAIL("pi worker took no task");
        h_nap_ms(10);
    }
    long long t0 = h_now_ms();
    sigterm_taken(p);
    H_CHECK(h_alive(p), "pi worker exited after one SIGTERM while its task has minutes to go");
    h_signal(p, SIGTERM);
    H_EXPECT_EXIT0(p, H_DEADLINE_MS);
    printf("pi --worker exited 0 %.2f s after the first of two SIGTERMs\n", (double)(h_now_ms() - t0) / 1000.0);
    redisReply *r = h_cmd("XPENDING %s w %s %s 1", tasks, id, id);
    long long idle = r->type == REDIS_REPLY_ARRAY && r->elements == 1 ? r->element[0]->element[2]->integer : -1;
    freeReplyObject(r);
    H_CHECK(idle >= 100000000LL, "entry %s was not handed back (idle %lld ms; a handed-back entry is claimable "
            "at once)", id, idle);
    rc_job_destroy(j); /* cancels */
    rc_ctx_destroy(ctx);
}

static void t_sigterm_twice(void)
{
    static const char *const opts[] = {"--lease", "2", "--exit-on-abandon", NULL};
    drain_case(opts, 1, "sigterm-twice");
    if (g_pi)
        pi_sigterm_twice();
}

/* A task handed back by workers told to stop has not failed: the hand-back
 * is documented not to count as an attempt (queue.c, HANDBACK: "JUSTID so
 * it does not count as an attempt"; worker.c handback(): "not counted as an
 * attempt").  Two workers in a row are stopped twice while holding the same
 * task, with --max-attempts 2: a third worker must run it, not fail it as a
 * poison task. */
static void t_handback_not_counted(void)
{
    static const char *const stoppable[] = {"--lease", "2", "--max-attempts", "2", "--exit-on-abandon", NULL};
    rs_rec_setup();
    rc_ctx *ctx = h_ctx();
    pid_t a = h_spawn_worker(stoppable);
    rjob r;
    rjob_make(&r, ctx, 1, 3000, 1, 100, 351);
    H_OK(ctx, rc_job_submit(r.job));
    h_pend held;
    H_CHECK(wait_holder(&a, 1, &held) == a, "the only worker is not the holder");
    pid_t b = h_spawn_worker(stoppable);
    sigterm_taken(a);
    h_signal(a, SIGTERM);
    H_EXPECT_EXIT0(a, H_DEADLINE_MS);
    H_WAIT(pending_owner(held.id) == b, H_DEADLINE_MS, "the second worker did not take the handed-back task");
    pid_t c = h_spawn_worker(stoppable);
    sigterm_taken(b);
    h_signal(b, SIGTERM);
    H_EXPECT_EXIT0(b, H_DEADLINE_MS);
    h_pend p[4];
    size_t np = h_pending(p, 4);
    printf("after two hand-backs: entry %s delivery count %lld\n", held.id, np ? p[0].deliveries : -1LL);
    rc_status st = rc_job_wait(r.job);
    H_CHECK(st == RC_OK, "rc_job_wait returned %s: \"%s\": a task that never failed, handed back by two workers "
            "told to stop, was failed as poison - each hand-back still counts as an attempt, because the next "
            "worker's take-over (XCLAIM) increments the entry's delivery count (HANDBACK's XCLAIM ... JUSTID only avoids "
            "incrementing it itself)", h_stname(st), rc_ctx_errmsg(ctx));
    rjob_check(&r);
    size_t n;
    rs_rec *v = rs_rec_read(&n);
    H_CHECK(rs_rec_count(v, n, 0, 'E', 1, 0, c) == 1, "the third worker did not complete the task");
    free(v);
    rjob_free(&r);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* A result stream deleted under a running job without an authenticated
 * cancel (eviction, FLUSHALL, tampering).  A worker whose delivery finds it
 * gone must keep its tasks - hand them back for a lease - not ack them into
 * nothing; the master, collecting, recreates the stream and gets every
 * result without sending a task again.  Acked into nothing, the tasks would
 * come back only through the master's lost-task scan, as republished ones.
 * The master does not collect until the worker has met the missing stream,
 * so it cannot recreate it first; the tasks last 300 ms, so nothing was
 * delivered before the deletion. */
static void t_result_stream_gone_keeps_tasks(void)
{
    static const char *const opts[] = {"--lease", "2", NULL};
    rs_rec_setup();
    rc_ctx *ctx = h_ctx();
    pid_t w = h_spawn_worker(opts);
    rjob r;
    rjob_make(&r, ctx, 4, 300, 1, 100, 353);
    H_OK(ctx, rc_job_submit(r.job));
    char res[320];
    h_res_key(r.job, res, sizeof res);
    H_EQ_I64(h_cmd_int("DEL %s", res), 1);
    RS_WAIT_LOG(w, "for a lease for its master to restore");
    H_OK(ctx, rc_job_wait(r.job));
    rjob_check(&r);
    rc_job_stats s = h_stats(r.job, "after its result stream was deleted");
    H_EQ_U64(s.done, 4);
    H_CHECK(s.republished == 0, "%llu task(s) sent again: a worker acked a result whose stream was gone, so the "
            "task was lost until the master's lost-task scan", (unsigned long long)s.republished);
    h_signal(w, SIGTERM);
    H_EXPECT_EXIT0(w, H_DEADLINE_MS);
    rjob_free(&r);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* CPU seconds (user + system) process pid has used so far. */
static double proc_cpu_s(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    char *t = h_read_file(path);
    const char *p = t ? strrchr(t, ')') : NULL;
    unsigned long long ut = 0, st = 0;
    int got = p ? sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) : 0;
    free(t);
    H_CHECK(got == 2, "cannot read the CPU time of process %ld", (long)pid);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* A worker told to stop while Redis is down, with a result in hand, keeps
 * trying to deliver it - the result is worth Redis coming back for - but
 * with its backoff, asleep: it used to retry the connect in a tight loop, a
 * core per draining worker.  When Redis is back it delivers and exits 0,
 * and the job has its answer. */
static void t_stop_while_redis_down(void)
{
    static const char *const lease[] = {"--lease", "30", NULL};
    rs_rec_setup();
    rs_redis_aof_on(); /* the job must survive the restart */
    pid_t w = h_spawn_worker(lease);
    rc_ctx *ctx = h_ctx();
    rjob r;
    rjob_make(&r, ctx, 1, 800, 1, 100, 404);
    H_OK(ctx, rc_job_submit(r.job));
    h_pend held;
    H_CHECK(wait_holder(&w, 1, &held) == w, "the worker did not take the task");
    rs_redis_shutdown();
    rs_redis_forget();
    h_signal(w, SIGTERM);
    H_WAIT(h_log_contains(w, "retrying"), H_DEADLINE_MS, "the worker does not say it is retrying its delivery");
    double c0 = proc_cpu_s(w);
    h_nap_ms(2000);
    double used = proc_cpu_s(w) - c0;
    printf("a draining worker waiting for Redis used %.2f s of CPU in 2 s\n", used);
    H_CHECK(used < 0.5, "a draining worker waiting for Redis used %.2f s of CPU in 2 s: it retries in a busy loop",
            used);
    H_CHECK(h_alive(w), "the worker gave up its result while Redis was down");
    rs_redis_start();
    H_EXPECT_EXIT0(w, H_DEADLINE_MS);
    H_OK(ctx, rc_job_wait(r.job));
    rjob_check(&r);
    rjob_free(&r);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* A master context idle while Redis restarts must be able to submit the
 * next job: Redis is up again, nothing is wrong but a stale socket. */
static void t_submit_after_restart(void)
{
    rs_rec_setup();
    h_spawn_workers(1, NULL, NULL);
    rc_ctx *ctx = h_ctx();
    rjob r;
    rjob_make(&r, ctx, 2, 10, 1, 100, 361);
    H_OK(ctx, rc_job_run(r.job));
    rjob_free(&r);
    long long down = rs_redis_restart_aof(200);
    rs_redis_forget();
    printf("redis restarted (AOF), unreachable %.2f s; it answers again\n", (double)down / 1000.0);
    freeReplyObject(h_cmd("PING"));
    rjob_make(&r, ctx, 2, 10, 2, 100, 362);
    rc_status st = rc_job_run(r.job);
    H_CHECK(st == RC_OK, "the first job submitted after Redis restarted got %s: \"%s\" (the master's idle "
            "connection was closed by the old server; rc_conn_ensure only checks hiredis' err flag, so the first "
            "command goes to the dead socket and rc_job_submit fails instead of reconnecting)", h_stname(st),
            rc_ctx_errmsg(ctx));
    rjob_check(&r);
    rjob_free(&r);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* ------------------------------------------------------------------ */
/* A relay to the fixture's Redis that can go silent, or cut             */

/* A connection that dies without a FIN or a reset - a Redis host powered
 * off, a network path lost, a NAT that forgot the flow - cannot be made on
 * loopback by closing anything.  The relay makes one: it forwards bytes
 * between its clients and Redis, and on rl_freeze stops forwarding on every
 * connection it has so far while keeping their sockets open, so each side
 * waits for bytes that never come.  Connections made after the freeze are
 * relayed as before: the network is back, the old flows are lost.  Started
 * with a cut, it instead closes a connection once its client has sent that
 * many bytes: Redis going away in the middle of a large write. */
enum { RL_MAX = 64 };

typedef struct relay {
    int lfd, port, stop_fd[2];
    int cli[RL_MAX], srv[RL_MAX], n, frozen; /* pairs [0, frozen) are silent */
    long long cut, sent[RL_MAX]; /* cut > 0: close a pair once its client sent more than cut bytes */
    pthread_mutex_t mu;
    pthread_t th;
} relay;

static void rl_close(relay *r, int i)
{
    close(r->cli[i]);
    close(r->srv[i]);
    r->cli[i] = r->srv[i] = -1;
}

static void *rl_thread(void *p)
{
    relay *r = p;
    for (;;) {
        struct pollfd pf[2 + 2 * RL_MAX];
        int who[2 + 2 * RL_MAX], np = 0;
        pf[np] = (struct pollfd){.fd = r->stop_fd[0], .events = POLLIN};
        who[np++] = -1;
        pf[np] = (struct pollfd){.fd = r->lfd, .events = POLLIN};
        who[np++] = -2;
        pthread_mutex_lock(&r->mu);
        for (int i = r->frozen; i < r->n; i++)
            if (r->cli[i] >= 0) {
                pf[np] = (struct pollfd){.fd = r->cli[i], .events = POLLIN};
                who[np++] = 2 * i;
                pf[np] = (struct pollfd){.fd = r->srv[i], .events = POLLIN};
                who[np++] = 2 * i + 1;
            }
        pthread_mutex_unlock(&r->mu);
        if (poll(pf, (nfds_t)np, 100) < 0 && errno != EINTR)
            return NULL;
        if (pf[0].revents)
            return NULL;
        if (pf[1].revents & POLLIN) {
            int c = accept(r->lfd, NULL, NULL);
            int s = c < 0 ? -1 : socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)H.port)};
            inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
            pthread_mutex_lock(&r->mu);
            if (s >= 0 && r->n < RL_MAX && connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
                r->sent[r->n] = 0;
                r->cli[r->n] = c;
                r->srv[r->n++] = s;
            } else {
                if (c >= 0)
                    close(c);
                if (s >= 0)
                    close(s);
            }
            pthread_mutex_unlock(&r->mu);
        }
        for (int k = 2; k < np; k++) {
            if (!pf[k].revents)
                continue;
            int i = who[k] / 2, from = who[k] % 2 ? r->srv[i] : r->cli[i], to = who[k] % 2 ? r->cli[i] : r->srv[i];
            pthread_mutex_lock(&r->mu);
            int live = i >= r->frozen && from >= 0;
            pthread_mutex_unlock(&r->mu);
            if (!live)
                continue; /* frozen since the poll: its bytes stay unread */
            char buf[65536];
            ssize_t got = read(from, buf, sizeof buf);
            ssize_t put = 0;
            while (got > 0 && put < got) {
                ssize_t w = write(to, buf + put, (size_t)(got - put));
                if (w <= 0)
                    break;
                put += w;
            }
            if (got > 0 && who[k] % 2 == 0)
                r->sent[i] += got;
            if (got <= 0 || put < got || (r->cut > 0 && r->sent[i] > r->cut)) {
                pthread_mutex_lock(&r->mu);
                rl_close(r, i);
                pthread_mutex_unlock(&r->mu);
            }
        }
    }
}

/* Listen on a free loopback port (unix_path NULL) or on a unix socket at
 * unix_path, and relay to the fixture's Redis (by TCP either way); cut > 0:
 * close each connection once its client has sent more than cut bytes. */
static void rl_start(relay *r, const char *unix_path, long long cut)
{
    memset(r, 0, sizeof *r);
    r->cut = cut; /* before the thread reads it */
    pthread_mutex_init(&r->mu, NULL);
    int ok;
    if (unix_path) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%s", unix_path);
        r->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        ok = r->lfd >= 0 && bind(r->lfd, (struct sockaddr *)&a, sizeof a) == 0;
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        socklen_t len = sizeof a;
        r->lfd = socket(AF_INET, SOCK_STREAM, 0);
        ok = r->lfd >= 0 && bind(r->lfd, (struct sockaddr *)&a, sizeof a) == 0 &&
             getsockname(r->lfd, (struct sockaddr *)&a, &len) == 0;
        r->port = ntohs(a.sin_port);
    }
    H_CHECK(ok && listen(r->lfd, 16) == 0 && pipe(r->stop_fd) == 0, "relay: cannot listen: %s", strerror(errno));
    H_CHECK(pthread_create(&r->th, NULL, rl_thread, r) == 0, "relay: cannot start its thread");
}

/* Every connection relayed so far goes silent, both ways, sockets open. */
static int rl_freeze(relay *r)
{
    pthread_mutex_lock(&r->mu);
    r->frozen = r->n;
    pthread_mutex_unlock(&r->mu);
    return r->frozen;
}

static void rl_stop(relay *r)
{
    (void)!write(r->stop_fd[1], "x", 1);
    pthread_join(r->th, NULL);
    for (int i = 0; i < r->n; i++)
        if (r->cli[i] >= 0)
            rl_close(r, i);
    close(r->lfd);
    close(r->stop_fd[0]);
    close(r->stop_fd[1]);
}

/* A testworker with extra args whose connections go through the relay. */
static pid_t rl_spawn_worker(const relay *r, const char *const *args)
{
    char direct[sizeof H.url];
    memcpy(direct, H.url, sizeof direct);
    snprintf(H.url, sizeof H.url, "redis://127.0.0.1:%d", r->port);
    pid_t w = h_spawn_worker(args);
    memcpy(H.url, direct, sizeof direct);
    return w;
}

/* An idle worker whose connections to Redis die silently (the relay goes
 * quiet on them; nothing closes): Redis still counts its XREADGROUP as
 * waiting and hands the next task to it, into a socket nobody reads.  The
 * task must not be lost: its lease lapses, and the worker's own lease
 * thread - its beat timed out and reconnected - finds it lapsed and wakes
 * the main thread, whose dead wait is dropped and whose new connection
 * takes the task over.  Without that wake-up the main thread would sit out
 * its 30 s slice plus the command timeout.  The same worker then serves
 * the next job. */
static void t_idle_dead_connection(void)
{
    static const char *const args[] = {"--lease", "2", "--command-timeout", "2", NULL};
    rs_rec_setup();
    relay rl;
    rl_start(&rl, NULL, 0);
    pid_t w = rl_spawn_worker(&rl, args);
    rc_ctx *ctx = h_ctx();
    rjob r;
    rjob_make(&r, ctx, 2, 10, 1, 100, 505);
    H_OK(ctx, rc_job_run(r.job)); /* the worker is connected and serving */
    rjob_free(&r);
    h_nap_ms(300); /* and waiting for work again */
    int lost = rl_freeze(&rl);
    long long t0 = h_now_ms();
    printf("relay: %d connection(s) of the worker now silent\n", lost);
    rjob_make(&r, ctx, 1, 10, 2, 100, 506);
    H_OK(ctx, rc_job_submit(r.job));
    long long dl = h_deadline(H_DEADLINE_MS);
    while (!rjob_accepted(&r, 0)) {
        rc_status st = rc_job_test(r.job);
        H_CHECK(st == RC_EAGAIN || st == RC_OK, "rc_job_test: %s: %s", h_stname(st), rc_ctx_errmsg(ctx));
        H_CHECK(!h_expired(dl), "the task was not done within %d ms of the connections going silent",
                H_DEADLINE_MS);
        h_nap_ms(5);
    }
    long long took = h_now_ms() - t0;
    printf("TASK DONE %.2f s after the worker's connections went silent (command timeout 2 s, lease 2 s)\n",
           (double)took / 1000.0);
    /* the lease or the beat's timeout (2 s), a beat (0.5 s), with room for
       a slow build: far below the slice's 30 s + 2 s */
    H_CHECK(took < 15000, "the task was done %lld ms after the connections went silent: the idle worker did not "
            "notice its dead connection", took);
    H_OK(ctx, rc_job_wait(r.job));
    rjob_check(&r);
    rc_job_stats s = h_stats(r.job, "dead connection");
    H_EQ_U64(s.done, 1);
    H_CHECK(s.redelivered >= 1, "the task was accepted from its first delivery (redelivered %llu), which went "
            "into the silent socket", (unsigned long long)s.redelivered);
    rjob_free(&r);
    size_t n;
    rs_rec *v = rs_rec_read(&n);
    size_t runs = rs_rec_count(v, n, 0, 'S', 2, 0, 0), ours = rs_rec_count(v, n, 0, 'S', 2, 0, w);
    free(v);
    H_CHECK(runs == 1 && ours == 1, "the task delivered into the silent socket ran %zu time(s), %zu by the worker",
            runs, ours);
    rjob_make(&r, ctx, 4, 10, 3, 100, 507);
    H_OK(ctx, rc_job_run(r.job)); /* it serves on, on its new connections */
    rjob_check(&r);
    rjob_free(&r);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
    rl_stop(&rl);
}

/* A busy worker's connections die silently while it runs a task: the
 * delivery it sends afterwards goes into a socket nobody reads.  After the
 * command timeout it must reconnect and deliver again (a copy that did
 * reach Redis is a duplicate the master ignores), then serve the rest:
 * every task counted once, the answer exact. */
static void t_busy_dead_connection(void)
{
    enum { T = 3 };
    static const char *const args[] = {"--lease", "3", "--command-timeout", "2", "--max-batch", "1", NULL};
    rs_rec_setup();
    relay rl;
    rl_start(&rl, NULL, 0);
    pid_t w = rl_spawn_worker(&rl, args);
    rc_ctx *ctx = h_ctx();
    rjob r;
    rjob_make(&r, ctx, T, 1000, 1, 100, 509);
    H_OK(ctx, rc_job_submit(r.job));
    h_pend held;
    H_CHECK(wait_holder(&w, 1, &held) == w, "the worker did not take a task");
    uint64_t rank = entry_rank(held.id);
    int lost = rl_freeze(&rl);
    long long t0 = h_now_ms();
    /* the kernel ends before its delivery is sent: not ended yet, so the
       delivery is still to come and must go into the silent socket.  (If
       it had ended, the delivery may have gone through, and what the
       freeze caught is the next take, whose task Redis handed to the
       silent socket: that one lapses and is taken over instead.) */
    size_t nrec;
    rs_rec *v = rs_rec_read(&nrec);
    int mid_task = rank != UINT64_MAX && rs_rec_count(v, nrec, 0, 'E', 1, rank, w) == 0;
    free(v);
    printf("relay: %d connection(s) of the worker now silent while it runs entry %s (task %s)\n", lost, held.id,
           mid_task ? "still running" : "already ended");
    H_OK(ctx, rc_job_wait(r.job));
    long long took = h_now_ms() - t0;
    printf("JOB DONE %.2f s after the worker's connections went silent (%d tasks of 1 s, command timeout 2 s)\n",
           (double)took / 1000.0, T);
    rjob_check(&r);
    rc_job_stats s = h_stats(r.job, "busy dead connection");
    H_EQ_U64(s.done, T);
    H_CHECK(took < 20000, "the job ended %lld ms after the worker's connections went silent", took);
    if (mid_task)
        H_CHECK(h_log_contains(w, "retrying"), "the worker never said it retried the delivery it sent into the "
                "silent socket");
    else
        H_CHECK(h_log_contains(w, "retrying") || h_log_contains(w, "took over"), "the worker neither retried a "
                "delivery nor took over the task handed to its silent socket");
    H_CHECK(h_alive(w), "the worker exited");
    rjob_free(&r);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
    rl_stop(&rl);
}

/* The master of t_master_write_epipe, in a child with SIGPIPE at its
 * default action (the harness ignores it): a large job submission
 * (data 0: the tasks go by rc_pipe) or a large rc_data_scatter (data 1:
 * hiredis' buffer) through the relay at path.  Exits 0 on an error from
 * the library, 3 if the call succeeded, 2 if it could not start. */
static void epipe_child(const char *path, int data)
{
    enum { T = 8, C = 2 << 20 };
    signal(SIGPIPE, SIG_DFL);
    unsigned char *in = calloc(T, C);
    char url[700];
    snprintf(url, sizeof url, "unix://%s", path);
    rc_ctx *ctx = rc_ctx_create();
    rc_job *j = NULL;
    rc_data *d = NULL;
    if (!in || !ctx || rc_ctx_set_str(ctx, RC_OPT_URL, url) != RC_OK ||
        rc_ctx_set_str(ctx, RC_OPT_QUEUE, H.queue) != RC_OK || rc_ctx_load_key(ctx, H.keyfile) != RC_OK ||
        rc_ctx_set_int(ctx, RC_OPT_REDIS_DEADLINE_MS, 1000) != RC_OK ||
        (!data && (rc_job_create(ctx, "identity", T, &j) != RC_OK || rc_job_scatter(j, in, C, RC_BYTE) != RC_OK))) {
        fprintf(stderr, "child: setup failed: %s\n", ctx ? rc_ctx_errmsg(ctx) : "no context");
        _exit(2);
    }
    rc_status st = data ? rc_data_scatter(ctx, in, C, RC_BYTE, T, &d) : rc_job_submit(j);
    printf("child: %s: %s: %s\n", data ? "rc_data_scatter" : "rc_job_submit", rc_strerror(st), rc_ctx_errmsg(ctx));
    fflush(stdout);
    _exit(st == RC_OK ? 3 : 0);
}

/* The connection is closed under a master while it writes 16 MiB (here by
 * the relay, on a unix socket, after 256 KiB; in life Redis dying, or a
 * client buffer limit): the write fails with EPIPE.  In a program that
 * never asked for SIGPIPE to be ignored - a library must not need it - the
 * call returns an error naming the failure; a SIGPIPE would kill the
 * program instead.  Both ways a master writes: a job's tasks and stored
 * data. */
static void t_master_write_epipe(void)
{
    relay rl;
    char path[600];
    snprintf(path, sizeof path, "%s/relay.sock", H.dir);
    rl_start(&rl, path, 256 << 10);
    for (int data = 0; data < 2; data++) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        H_CHECK(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0)
            epipe_child(path, data);
        int status = 0;
        long long dl = h_deadline(H_DEADLINE_MS);
        while (waitpid(pid, &status, WNOHANG) == 0) {
            if (h_expired(dl)) {
                kill(pid, SIGKILL);
                H_FAIL("the master did not return after its connection was closed");
            }
            h_nap_ms(10);
        }
        const char *what = data ? "rc_data_scatter" : "rc_job_submit";
        H_CHECK(!WIFSIGNALED(status), "the master was killed by signal %d (%s) in %s when its connection was "
                "closed under a write", WTERMSIG(status), strsignal(WTERMSIG(status)), what);
        H_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "%s: the master exited %d (2: setup failed, 3: it succeeded through a closed connection)", what,
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    rl_stop(&rl);
}

/* The master's connection dies silently while it waits for results (the
 * workers' are direct): its wait times out after the command timeout, it
 * reconnects and reads the results from its stream position on, so none
 * delivered meanwhile is lost and the answer is exact. */
static void t_master_dead_connection(void)
{
    enum { T = 40 };
    rs_rec_setup();
    h_spawn_workers(2, NULL, NULL);
    relay rl;
    rl_start(&rl, NULL, 0);
    char via[sizeof H.url];
    snprintf(via, sizeof via, "redis://127.0.0.1:%d", rl.port);
    rc_ctx *ctx = h_ctx();
    H_OK(ctx, rc_ctx_set_str(ctx, RC_OPT_URL, via));
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_COMMAND_TIMEOUT_MS, 2000));
    rjob r;
    rjob_make(&r, ctx, T, 100, 1, 100, 508);
    H_OK(ctx, rc_job_submit(r.job));
    h_wait_done(ctx, r.job, 4); /* results are coming in */
    int lost = rl_freeze(&rl);
    long long t0 = h_now_ms();
    printf("relay: %d connection(s) of the master now silent\n", lost);
    H_OK(ctx, rc_job_wait(r.job));
    long long took = h_now_ms() - t0;
    printf("JOB DONE %.2f s after the master's connection went silent (command timeout 2 s; the job's tasks "
           "take 2 s on 2 workers)\n", (double)took / 1000.0);
    rjob_check(&r);
    rc_job_stats s = h_stats(r.job, "master dead connection");
    H_EQ_U64(s.done, T);
    H_CHECK(took < 15000, "the job ended %lld ms after the master's connection went silent", took);
    rjob_free(&r);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
    rl_stop(&rl);
}

/* ------------------------------------------------------------------ */

typedef struct restart_arg {
    long long after_done_ms, down_ms, took_ms;
} restart_arg;

static void *restart_thread(void *p)
{
    restart_arg *a = p;
    a->took_ms = rs_redis_restart_aof(a->down_ms);
    return NULL;
}

/* Redis restarted (AOF) under a running job: everyone reconnects, the
 * answer is exact.  Then Redis down past the master's --redis-deadline:
 * RC_EREDIS with a clear message, workers retry and still exit 0. */
static void t_redis_restart_aof(void)
{
    enum { T = 40 };
    static const char *const lease2[] = {"--lease", "2", NULL};
    rs_rec_setup();
    pid_t w[3];
    h_spawn_workers(3, lease2, w);
    rc_ctx *ctx = h_ctx();
    rjob r;
    rjob_make(&r, ctx, T, 150, 1, 20000, 401);
    H_OK(ctx, rc_job_submit(r.job));
    h_wait_done(ctx, r.job, 8);
    restart_arg ra = {0, 500, 0};
    pthread_t th;
    H_CHECK(pthread_create(&th, NULL, restart_thread, &ra) == 0, "pthread_create");
    H_OK(ctx, rc_job_wait(r.job)); /* the restart happens while the master waits */
    pthread_join(th, NULL);
    rs_redis_forget();
    printf("redis restarted (AOF), unreachable for %.2f s\n", (double)ra.took_ms / 1000.0);
    rjob_check(&r);
    rc_job_stats s = h_stats(r.job, "restart");
    H_EQ_U64(s.done, T);
    size_t n, hist[8];
    rs_rec *v = rs_rec_read(&n);
    rs_rec_hist(v, n, 1, T, hist);
    rs_print_hist("restart", hist);
    free(v);
    H_CHECK(hist[0] == 0, "%zu task(s) never ran", hist[0]);
    rjob_free(&r);
    H_WAIT(h_xlen() == 0 && h_count_keys("job:*") == 0, H_DEADLINE_MS, "%lld entries, %zu job keys left", h_xlen(),
           h_count_keys("job:*"));

    /* down for longer than the master's deadline */
    rc_ctx *m2 = h_ctx();
    char q2[100];
    snprintf(q2, sizeof q2, "%s-nobody", H.queue); /* no worker: the job waits */
    H_OK(m2, rc_ctx_set_str(m2, RC_OPT_QUEUE, q2));
    H_OK(m2, rc_ctx_set_int(m2, RC_OPT_REDIS_DEADLINE_MS, 2000));
    rjob r2;
    rjob_make(&r2, m2, 2, 10, 2, 10, 402);
    H_OK(m2, rc_job_submit(r2.job));
    rs_redis_shutdown();
    rs_redis_forget();
    long long t0 = h_now_ms();
    H_ST(m2, rc_job_wait(r2.job), RC_EREDIS);
    printf("master gave up after %.2f s (--redis-deadline 2 s): %s\n", (double)(h_now_ms() - t0) / 1000.0,
           rc_ctx_errmsg(m2));
    H_CONTAINS(rc_ctx_errmsg(m2), "unreachable");
    H_CONTAINS(rc_ctx_errmsg(m2), "redis-deadline");
    H_CONTAINS(rc_ctx_errmsg(m2), rc_job_id(r2.job));
    for (int i = 0; i < 3; i++)
        H_CHECK(h_alive(w[i]), "worker %ld gave up while Redis was down", (long)w[i]);
    H_WAIT(h_log_contains(w[0], "retrying"), H_DEADLINE_MS, "worker %ld does not say it is retrying", (long)w[0]);
    /* a worker told to stop while Redis is down still exits 0 */
    h_signal(w[0], SIGTERM);
    H_EXPECT_EXIT0(w[0], H_DEADLINE_MS);
    rs_redis_start();
    /* the others kept retrying: they serve the next job (from a fresh
       master context: an idle one's first command after the restart fails,
       see submit_after_restart) */
    rc_ctx *m3 = h_ctx();
    rjob r3;
    rjob_make(&r3, m3, 6, 20, 3, 1000, 403);
    H_OK(m3, rc_job_run(r3.job));
    rjob_check(&r3);
    v = rs_rec_read(&n);
    for (uint64_t k = 0; k < 6; k++)
        H_CHECK(rs_rec_count(v, n, 0, 'S', 3, k, w[0]) == 0, "the stopped worker ran task %llu",
                (unsigned long long)k);
    free(v);
    rjob_free(&r3);
    rjob_free(&r2);
    rc_ctx_destroy(m3);
    rc_ctx_destroy(m2);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* ------------------------------------------------------------------ */

/* A kernel that crashes its worker on rank k, every attempt: after
 * --max-attempts 3 crashes the job fails naming the task, the attempts and
 * the reason; the pool (replaced as it dies) still serves another job. */
static void t_poison_crash(void)
{
    enum { T = 6, K = 3 };
    static const char *const opts[] = {"--lease", "1", "--max-attempts", "3", NULL};
    rs_rec_setup();
    rc_ctx *ctx = h_ctx();
    pid_t w[2];
    h_spawn_workers(2, opts, w);
    uint64_t p1[1] = {K}, out1[T];
    rc_job *j1 = NULL;
    H_OK(ctx, rc_job_create(ctx, "crash", T, &j1));
    H_OK(ctx, rc_job_bcast(j1, p1, 1, RC_UINT64));
    H_OK(ctx, rc_job_gather(j1, out1, 1, RC_UINT64));
    H_OK(ctx, rc_job_submit(j1));
    rjob r2;
    rjob_make(&r2, ctx, T, 100, 2, 1000, 502);
    H_OK(ctx, rc_job_submit(r2.job));
    int crashes = 0;
    rc_status st1 = RC_EAGAIN, st2 = RC_EAGAIN;
    long long dl = h_deadline(H_DEADLINE_MS);
    while (st1 == RC_EAGAIN || st2 == RC_EAGAIN) {
        if (st1 == RC_EAGAIN)
            st1 = rc_job_test(j1);
        if (st1 != RC_EAGAIN && st1 != RC_EKERNEL)
            H_FAIL("crash job: %s: %s", h_stname(st1), rc_ctx_errmsg(ctx));
        if (st2 == RC_EAGAIN)
            st2 = rc_job_test(r2.job);
        if (st2 != RC_EAGAIN && st2 != RC_OK)
            H_FAIL("second job: %s: %s", h_stname(st2), rc_ctx_errmsg(ctx));
        for (int i = 0; i < 2; i++) {
            int ws;
            if (h_reap(w[i], &ws)) {
                char d[64];
                h_describe_status(ws, d, sizeof d);
                crashes++;
                printf("worker %ld died (%s): crash %d\n", (long)w[i], d, crashes);
                H_CHECK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGSEGV, "worker %ld ended with %s, not SIGSEGV",
                        (long)w[i], d);
                H_CHECK(crashes <= 3, "%d crashes: the poison task was started more than --max-attempts times",
                        crashes);
                rs_mark_dead(w[i]);
                w[i] = h_spawn_worker(opts); /* the operator's autoscaler */
            }
        }
        if (h_expired(dl))
            H_FAIL("jobs not finished after %d ms (%d crashes)", H_DEADLINE_MS, crashes);
        h_nap_ms(10);
    }
    /* the error text is from the job's first failure: keep it */
    rc_status again = rc_job_test(j1);
    char msg[600];
    snprintf(msg, sizeof msg, "%s", rc_ctx_errmsg(ctx));
    H_CHECK(again == RC_EKERNEL, "crash job: %s", h_stname(again));
    printf("poison job failed: %s\n", msg);
    char want[64];
    snprintf(want, sizeof want, "task %d", K);
    H_CONTAINS(msg, want);
    H_CONTAINS(msg, rc_job_id(j1));
    H_CONTAINS(msg, "3 attempt(s)");
    H_CONTAINS(msg, "died");
    H_CHECK(crashes == 3, "%d crashes, want 3 (--max-attempts 3)", crashes);
    rjob_check(&r2);
    rc_job_stats s = h_stats(r2.job, "second job");
    H_EQ_U64(s.done, T);
    rc_job_destroy(j1);
    rjob_free(&r2);
    H_WAIT(h_xlen() == 0 && h_count_keys("job:*") == 0, H_DEADLINE_MS, "%lld entries, %zu job keys left", h_xlen(),
           h_count_keys("job:*"));
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* A kernel that fails every attempt of rank k: the job fails naming the
 * task, the attempts and the kernel's own message. */
static void t_poison_fail_always(void)
{
    enum { T = 8, K = 5 };
    static const char *const opts[] = {"--max-attempts", "3", NULL};
    rc_ctx *ctx = h_ctx();
    h_spawn_workers(2, opts, NULL);
    uint64_t p[1] = {K}, out[T];
    rc_job *j = NULL;
    H_OK(ctx, rc_job_create(ctx, "fail", T, &j));
    H_OK(ctx, rc_job_bcast(j, p, 1, RC_UINT64));
    H_OK(ctx, rc_job_gather(j, out, 1, RC_UINT64));
    H_ST(ctx, rc_job_run(j), RC_EKERNEL);
    char msg[600];
    snprintf(msg, sizeof msg, "%s", rc_ctx_errmsg(ctx));
    printf("job failed: %s\n", msg);
    char want[80];
    snprintf(want, sizeof want, "task %d", K);
    H_CONTAINS(msg, want);
    H_CONTAINS(msg, "attempt 3 of 3");
    snprintf(want, sizeof want, HK_FAIL_TEXT " %d", K);
    H_CONTAINS(msg, want);
    rc_job_destroy(j);
    /* the same queue serves the next job */
    p[0] = UINT64_MAX;
    H_OK(ctx, rc_job_create(ctx, "fail", T, &j));
    H_OK(ctx, rc_job_bcast(j, p, 1, RC_UINT64));
    H_OK(ctx, rc_job_gather(j, out, 1, RC_UINT64));
    H_OK(ctx, rc_job_run(j));
    for (uint64_t r = 0; r < T; r++)
        H_EQ_U64(out[r], r);
    rc_job_destroy(j);
    H_WAIT(h_xlen() == 0 && h_count_keys("job:*") == 0, H_DEADLINE_MS, "%lld entries, %zu job keys left", h_xlen(),
           h_count_keys("job:*"));
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* `redcoll tasks` shows a failed task's own message even when its failure
 * shares a result entry with other results (a small delivery is one entry,
 * a field per result): the text is found by rank inside the entry.  The
 * master only submits, so the results wait in Redis to be looked at. */
static int run_capture(const char *const *argv, const char *name, char **out);

static void t_failed_task_text(void)
{
    enum { T = 16, K = 5 };
    static const char *const opts[] = {"--max-attempts", "1", NULL};
    H_CHECK(g_cli != NULL, "no redcoll command given (argv[4])");
    rc_ctx *ctx = h_ctx();
    h_spawn_workers(1, opts, NULL);
    uint64_t p[1] = {K}, out[T];
    rc_job *j = NULL;
    H_OK(ctx, rc_job_create(ctx, "fail", T, &j));
    H_OK(ctx, rc_job_bcast(j, p, 1, RC_UINT64));
    H_OK(ctx, rc_job_gather(j, out, 1, RC_UINT64));
    H_OK(ctx, rc_job_submit(j));
    char res[320];
    h_res_key(j, res, sizeof res);
    H_WAIT(h_results(res) == T, H_DEADLINE_MS, "%lld of %d results delivered", h_results(res), T);
    long long entries = h_cmd_int("XLEN %s", res);
    printf("%d results in %lld result entries\n", T, entries);
    H_CHECK(entries < T, "no two results share an entry: the test proves nothing");
    const char *argv[] = {g_cli,      "tasks",   rc_job_id(j), "--redis", H.url, "--key-file",
                          H.keyfile, "--queue", H.queue,      NULL};
    char *txt = NULL;
    int st = run_capture(argv, "tasks", &txt);
    H_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "redcoll tasks: status 0x%x", (unsigned)st);
    printf("redcoll tasks:\n%s", txt ? txt : "");
    char want[80];
    snprintf(want, sizeof want, "%8d  failed", K);
    const char *line = txt ? strstr(txt, want) : NULL;
    H_CHECK(line != NULL, "no line \"%s\" for the failed task", want);
    size_t len = strcspn(line, "\n");
    snprintf(want, sizeof want, HK_FAIL_TEXT " %d", K);
    char row[600];
    snprintf(row, sizeof row, "%.*s", (int)(len < sizeof row - 1 ? len : sizeof row - 1), line);
    H_CONTAINS(row, want);
    int done = 0;
    for (const char *q = txt; (q = strstr(q, "  done ")) != NULL; q++)
        done++;
    H_EQ_I64(done, T - 1);
    free(txt);
    H_ST(ctx, rc_job_wait(j), RC_EKERNEL);
    H_CONTAINS(rc_ctx_errmsg(ctx), want);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* A kernel that fails only the first attempt of every task: the job
 * succeeds exactly, each task needing a second attempt. */
static void t_flaky_once(void)
{
    enum { T = 8 };
    rs_rec_setup();
    rc_ctx *ctx = h_ctx();
    h_spawn_workers(2, NULL, NULL);
    uint64_t p[1] = {UINT64_MAX}, out[T];
    rc_job *j = NULL;
    H_OK(ctx, rc_job_create(ctx, "flaky", T, &j));
    H_OK(ctx, rc_job_set_seed(j, 0xF1A));
    H_OK(ctx, rc_job_bcast(j, p, 1, RC_UINT64));
    H_OK(ctx, rc_job_gather(j, out, 1, RC_UINT64));
    H_OK(ctx, rc_job_run(j));
    for (uint64_t r = 0; r < T; r++)
        H_EQ_U64(out[r], r * 3 + 1);
    rc_job_stats s = h_stats(j, "flaky");
    H_EQ_U64(s.done, T);
    H_CHECK(s.redelivered >= 1, "no task needed a second attempt (redelivered %llu)",
            (unsigned long long)s.redelivered);
    H_EQ_U64(s.redelivered, T); /* every task failed exactly once */
    H_EQ_U64(s.duplicates, 0);
    for (uint64_t r = 0; r < T; r++) {
        char path[700];
        snprintf(path, sizeof path, "%s/flaky-%016llx-%llu", H.dir, 0xF1AULL, (unsigned long long)r);
        H_CHECK(access(path, F_OK) == 0, "task %llu never failed its first attempt (no %s)", (unsigned long long)r,
                path);
    }
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* ------------------------------------------------------------------ */

/* Run argv to completion (deadline), stdout to out (malloc'd, may be
 * NULL); returns the wait status. */
static int run_capture(const char *const *argv, const char *name, char **out)
{
    char opath[600], epath[600];
    snprintf(opath, sizeof opath, "%s/%s.out", H.dir, name);
    snprintf(epath, sizeof epath, "%s/%s.err", H.dir, name);
    fflush(stdout);
    pid_t p = fork();
    if (p < 0)
        H_FAIL("fork: %s", strerror(errno));
    if (p == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fo = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0600), fe = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fo >= 0) dup2(fo, 1);
        if (fe >= 0) dup2(fe, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    long long dl = h_deadline(H_DEADLINE_MS);
    int st = 0;
    while (waitpid(p, &st, WNOHANG) != p) {
        if (h_expired(dl)) {
            kill(p, SIGKILL);
            waitpid(p, &st, 0);
            H_FAIL("%s did not finish within %d ms", argv[0], H_DEADLINE_MS);
        }
        h_nap_ms(10);
    }
    if (out)
        *out = h_read_file(opath);
    char *err = h_read_file(epath);
    if (err && *err)
        printf("[%s stderr] %s", name, err);
    free(err);
    return st;
}

static void json_str_field(const char *json, const char *name, char *out, size_t n)
{
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *p = json ? strstr(json, key) : NULL;
    H_CHECK(p != NULL, "no %s in %s", name, json ? json : "(null)");
    p += strlen(key);
    snprintf(out, n, "%.*s", (int)strcspn(p, ",}"), p);
}

/* The C-master half: a master process submits, collects some results and is
 * killed -9; a new master attaches by id and gets the exact answer, nothing
 * re-run. */
static void reattach_c(void)
{
    enum { T = 16 };
    rs_rec_setup();
    static const char *const lease2[] = {"--lease", "2", NULL};
    pid_t w[2];
    h_spawn_workers(2, lease2, w);
    char idfile[600];
    snprintf(idfile, sizeof idfile, "%s/jobid", H.dir);
    fflush(stdout);
    fflush(stderr);
    pid_t m = fork();
    H_CHECK(m >= 0, "fork: %s", strerror(errno));
    if (m == 0) {
        /* the first master: none of the parent's processes or connections */
        H.nw = 0;
        H.redis = NULL;
        H.in_cleanup = 1;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        rc_ctx *ctx = h_ctx();
        rjob r;
        rjob_make(&r, ctx, T, 300, 1, 20000, 601);
        if (rc_job_submit(r.job) != RC_OK)
            _exit(3);
        char tmp[620];
        snprintf(tmp, sizeof tmp, "%s.tmp", idfile);
        FILE *f = fopen(tmp, "w");
        if (!f)
            _exit(4);
        fprintf(f, "%s\n", rc_job_id(r.job));
        fclose(f);
        rename(tmp, idfile);
        rc_status ignored = rc_job_wait(r.job); /* collecting, until killed */
        (void)ignored;
        _exit(5);
    }
    char *id = NULL;
    H_WAIT((free(id), id = h_read_file(idfile)) != NULL, H_DEADLINE_MS, "the first master wrote no job id");
    id[strcspn(id, "\n")] = '\0';
    char res[320];
    snprintf(res, sizeof res, "rc:{%s}:job:%s:res", H.queue, id);
    H_WAIT(h_results(res) >= 5, H_DEADLINE_MS, "fewer than 5 results delivered");
    kill(m, SIGKILL);
    int ms;
    waitpid(m, &ms, 0);
    H_CHECK(WIFSIGNALED(ms) && WTERMSIG(ms) == SIGKILL, "the first master ended before it was killed (0x%x)",
            (unsigned)ms);
    size_t n;
    rs_rec *v = rs_rec_read(&n);
    int finished[T] = {0}, nfinished = 0;
    for (uint64_t k = 0; k < T; k++) {
        finished[k] = rs_rec_count(v, n, 0, 'E', 1, k, 0) > 0;
        nfinished += finished[k];
    }
    free(v);
    printf("killed the first master of job %s with %d of %d tasks finished\n", id, nfinished, T);
    H_CHECK(nfinished < T, "the job was complete before its master was killed");

    rc_ctx *ctx = h_ctx();
    rc_job *j = NULL;
    H_OK(ctx, rc_job_attach(ctx, id, &j));
    H_CHECK(strcmp(rc_job_kernel(j), "record") == 0, "attached kernel '%s'", rc_job_kernel(j));
    H_EQ_U64(rc_job_ntasks(j), T);
    H_EQ_U64(rc_job_seed(j), 601);
    rjob r = {.job = j, .T = T, .seed = 601, .samples = 20000};
    r.out = malloc(2 * T * sizeof *r.out);
    memset(r.out, 0xFF, 2 * T * sizeof *r.out);
    H_OK(ctx, rc_job_gather(j, r.out, 2, RC_DOUBLE));
    H_OK(ctx, rc_job_wait(j));
    rjob_check(&r);
    rc_job_stats s = h_stats(j, "re-attached");
    H_EQ_U64(s.done, T);
    v = rs_rec_read(&n);
    for (uint64_t k = 0; k < T; k++)
        H_CHECK(rs_rec_count(v, n, 0, 'S', 1, k, 0) == 1, "task %llu (%s before the kill) ran %zu times",
                (unsigned long long)k, finished[k] ? "finished" : "not finished",
                rs_rec_count(v, n, 0, 'S', 1, k, 0));
    free(v);
    rjob_free(&r);
    /* collected: gone; and an id nobody used */
    rc_job *none = NULL;
    H_ST(ctx, rc_job_attach(ctx, id, &none), RC_ENOTFOUND);
    H_ST(ctx, rc_job_attach(ctx, "0123456789abcdef", &none), RC_ENOTFOUND);
    printf("attach to an unknown id: %s\n", rc_ctx_errmsg(ctx));
    H_CONTAINS(rc_ctx_errmsg(ctx), "0123456789abcdef");
    H_CHECK(none == NULL, "rc_job_attach set *out on failure");
    free(id);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* The pi half: pi's master killed -9, `pi --attach ID` prints the same bits
 * as `pi --local`. */
static void reattach_pi(void)
{
    const char *samples = rs_slow() ? "8e6" : "8e9", *tasks = "16", *seed = "5";
    char q[100];
    snprintf(q, sizeof q, "%s-pi", H.queue);
    const char *local[] = {g_pi, "--local", "--samples", samples, "--tasks", tasks, "--seed", seed, "--json", NULL};
    char *ref = NULL;
    int st = run_capture(local, "pi-local", &ref);
    H_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "pi --local failed (0x%x)", (unsigned)st);
    char refhits[64], refpi[64];
    json_str_field(ref, "hits", refhits, sizeof refhits);
    json_str_field(ref, "pi", refpi, sizeof refpi);
    const char *wargv[] = {g_pi, "--worker", "--redis", H.url, "--key-file", H.keyfile, "--queue", q, "-v", NULL};
    pid_t w1 = rs_spawn(wargv, "pi-w1"), w2 = rs_spawn(wargv, "pi-w2");
    RS_WAIT_LOG(w1, "serving queue");
    RS_WAIT_LOG(w2, "serving queue");
    const char *margv[] = {g_pi,   "--redis", H.url, "--key-file", H.keyfile, "--queue", q,    "--samples",
                           samples, "--tasks", tasks, "--seed",     seed,      "--json",  NULL};
    pid_t m = rs_spawn(margv, "pi-master");
    RS_WAIT_LOG(m, "collect it later with --attach ");
    char *log = h_worker_log(m);
    const char *p = strstr(log, "--attach ");
    char id[17];
    snprintf(id, sizeof id, "%.16s", p + 9);
    free(log);
    char res[320];
    snprintf(res, sizeof res, "rc:{%s}:job:%s:res", q, id);
    H_WAIT(h_results(res) >= 3, H_DEADLINE_MS, "fewer than 3 pi results delivered");
    long long got = h_results(res);
    h_kill9(m);
    printf("killed pi's master of job %s after %lld of %s results\n", id, got, tasks);
    H_CHECK(got < 16, "the pi job was complete before its master was killed");
    const char *aargv[] = {g_pi, "--redis", H.url, "--key-file", H.keyfile, "--queue", q, "--attach", id, "--json",
                           NULL};
    char *out = NULL;
    st = run_capture(aargv, "pi-attach", &out);
    H_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "pi --attach %s failed (0x%x): %s", id, (unsigned)st,
            out ? out : "");
    char hits[64], pi[64], dup[32];
    json_str_field(out, "hits", hits, sizeof hits);
    json_str_field(out, "pi", pi, sizeof pi);
    json_str_field(out, "duplicates", dup, sizeof dup);
    printf("pi --attach: pi %s hits %s; pi --local: pi %s hits %s\n", pi, hits, refpi, refhits);
    H_CHECK(strcmp(hits, refhits) == 0 && strcmp(pi, refpi) == 0, "re-attached pi %s (hits %s) differs from --local's "
            "%s (hits %s)", pi, hits, refpi, refhits);
    H_CHECK(strcmp(dup, "0") == 0, "duplicates %s after a clean re-attach", dup);
    const char *bad[] = {g_pi, "--redis", H.url, "--key-file", H.keyfile, "--queue", q, "--attach", "0123456789abcdef",
                         NULL};
    st = run_capture(bad, "pi-attach-unknown", NULL);
    H_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "pi --attach of an unknown id: status 0x%x, want exit 1",
            (unsigned)st);
    char epath[600];
    snprintf(epath, sizeof epath, "%s/pi-attach-unknown.err", H.dir);
    char *err = h_read_file(epath);
    H_CONTAINS(err, "not found");
    free(err);
    free(out);
    free(ref);
    h_signal(w1, SIGTERM);
    h_signal(w2, SIGTERM);
    H_EXPECT_EXIT0(w1, H_DEADLINE_MS);
    H_EXPECT_EXIT0(w2, H_DEADLINE_MS);
}

static void t_reattach(void)
{
    reattach_c();
    if (g_pi)
        reattach_pi();
}

/* ------------------------------------------------------------------ */

/* A master process that submits a record job with --retention 2 s and is
 * then killed -9 (abandoning it); returns the job id (malloc'd). */
static char *abandoned_job(uint64_t T, uint64_t seed)
{
    char idfile[600];
    snprintf(idfile, sizeof idfile, "%s/jobid-%llu", H.dir, (unsigned long long)seed);
    fflush(stdout);
    fflush(stderr);
    pid_t m = fork();
    H_CHECK(m >= 0, "fork: %s", strerror(errno));
    if (m == 0) {
        H.nw = 0;
        H.redis = NULL;
        H.in_cleanup = 1;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        rc_ctx *ctx = h_ctx();
        if (rc_ctx_set_int(ctx, RC_OPT_RETENTION_MS, 2000) != RC_OK)
            _exit(2);
        rjob r;
        rjob_make(&r, ctx, T, 10, 1, 100, seed);
        if (rc_job_submit(r.job) != RC_OK)
            _exit(3);
        char tmp[620];
        snprintf(tmp, sizeof tmp, "%s.tmp", idfile);
        FILE *f = fopen(tmp, "w");
        if (!f)
            _exit(4);
        fprintf(f, "%s\n", rc_job_id(r.job));
        fclose(f);
        rename(tmp, idfile);
        for (;;)
            pause();
    }
    char *id = NULL;
    H_WAIT((free(id), id = h_read_file(idfile)) != NULL, H_DEADLINE_MS, "the master wrote no job id");
    id[strcspn(id, "\n")] = '\0';
    char meta[300];
    snprintf(meta, sizeof meta, "rc:{%s}:job:%s", H.queue, id);
    long long ttl = h_cmd_int("PTTL %s", meta);
    printf("job %s: descriptor TTL %lld ms, %lld tasks queued\n", id, ttl, h_xlen());
    H_CHECK(ttl > 0 && ttl <= 2000, "descriptor TTL %lld ms, want (0, 2000] for --retention 2", ttl);
    kill(m, SIGKILL);
    waitpid(m, NULL, 0);
    long long t0 = h_now_ms();
    H_WAIT(h_count_keys("job:*") == 0, H_DEADLINE_MS, "%zu job keys left after the master died",
           h_count_keys("job:*"));
    printf("the abandoned job's keys expired %.2f s after its master died (--retention 2)\n",
           (double)(h_now_ms() - t0) / 1000.0);
    return id;
}

/* A master dies for good with --retention 2 s: its job's keys expire; a
 * worker run with the same --retention then drops the leftover tasks
 * without running them. */
static void t_retention(void)
{
    enum { T = 6 };
    rs_rec_setup();
    char *id = abandoned_job(T, 701);
    H_EQ_I64(h_xlen(), T);
    static const char *const opts[] = {"--retention", "2", "-v", NULL};
    pid_t w = h_spawn_worker(opts);
    H_WAIT(h_xlen() == 0, H_DEADLINE_MS, "%lld leftover tasks not dropped", h_xlen());
    (void)w;
    size_t n;
    rs_rec *v = rs_rec_read(&n);
    H_CHECK(n == 0, "%zu record line(s): a task of the expired job was run", n);
    free(v);
    H_EQ_U64(h_count_keys("job:*"), 0); /* dropping leaves nothing behind */
    h_pend p[8];
    H_EQ_U64(h_pending(p, 8), 0);
    free(id);
    H_STOP_ALL();
}

/* The leftovers of a job abandoned with --retention 2 must not keep a
 * worker with the default retention from serving live jobs on the queue. */
static void t_retention_leftovers(void)
{
    enum { T = 24 };
    rs_rec_setup();
    char *id = abandoned_job(T, 711);
    static const char *const verbose[] = {"-v", NULL};
    pid_t w = h_spawn_worker(verbose);
    rc_ctx *ctx = h_ctx();
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_JOB_TIMEOUT_MS, 10000));
    rjob r;
    rjob_make(&r, ctx, 3, 10, 2, 100, 712);
    long long t0 = h_now_ms();
    rc_status st = rc_job_run(r.job);
    char *log = h_worker_log(w);
    size_t handbacks = 0;
    for (const char *p = log; p && (p = strstr(p, "handing task")) != NULL; p++)
        handbacks++;
    printf("live job: %s after %.2f s; the worker handed leftover tasks back %zu times\n", h_stname(st),
           (double)(h_now_ms() - t0) / 1000.0, handbacks);
    H_CHECK(st == RC_OK, "a live job on the queue got %s (%s): the worker spends its time taking the abandoned "
            "job's %d leftover tasks, finding no descriptor and no end marker, handing them back (immediately "
            "claimable again) and napping 500 ms - it never reads the new job's tasks.  Worker log tail:\n%s",
            h_stname(st), rc_ctx_errmsg(ctx), T, log ? log + (strlen(log) > 1500 ? strlen(log) - 1500 : 0) : "");
    free(log);
    rjob_check(&r);
    rjob_free(&r);
    free(id);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* ------------------------------------------------------------------ */

/* Workers reading queues (CLIENT LIST: last command a take). */
static size_t serving(void)
{
    redisReply *r = h_cmd("CLIENT LIST");
    size_t n = 0;
    for (const char *p = r->type == REDIS_REPLY_STRING ? r->str : ""; (p = strstr(p, " cmd=")) != NULL; p++)
        n += strncmp(p, " cmd=xreadgroup ", 16) == 0 || strncmp(p, " cmd=xautoclaim ", 16) == 0 ||
             strncmp(p, " cmd=evalsha ", 13) == 0;
    freeReplyObject(r);
    return n;
}

static rc_ctx *ctx_on(const char *queue)
{
    rc_ctx *c = h_ctx();
    H_OK(c, rc_ctx_set_str(c, RC_OPT_QUEUE, queue));
    return c;
}

static void remove_queue(const char *queue)
{
    rc_ctx *c = h_ctx(); /* an authenticated removal: workers ignore any other */
    H_OK(c, rc_ctx_set_str(c, RC_OPT_QUEUE, queue));
    H_OK(c, rc_queue_remove(c));
    rc_ctx_destroy(c);
}

/* After `gone` is removed, worker w (serving "keep,gone" or "gone,keep")
 * must still serve `keep`. */
static void still_serves(pid_t w, const char *keep, const char *gone, uint64_t tag, uint64_t seed)
{
    H_WAIT(serving() >= 1, H_DEADLINE_MS, "the worker is not polling");
    h_nap_ms(300); /* let it block in its poll on both queues (not an assertion) */
    remove_queue(gone);
    char said[300];
    snprintf(said, sizeof said, "queue '%s' was removed", gone);
    H_WAIT(h_log_contains(w, said) || !h_alive(w), H_DEADLINE_MS, "the worker did not notice '%s' was removed",
           gone);
    char wrong[300];
    snprintf(wrong, sizeof wrong, "queue '%s' was removed", keep);
    if (h_log_contains(w, wrong) || !h_alive(w)) {
        char *log = h_worker_log(w);
        H_FAIL("removing queue '%s' (served second of \"%s,%s\" or first of the reverse) made the worker also "
               "drop '%s' (alive: %d).  Its log:\n%s(take() reports the failed blocking XREADGROUP over all "
               "live queues with *qi = the first live queue, so the loop marks the wrong queue removed)",
               gone, keep, gone, keep, h_alive(w), log ? log : "");
    }
    rc_ctx *c = ctx_on(keep);
    H_OK(c, rc_ctx_set_int(c, RC_OPT_JOB_TIMEOUT_MS, 15000));
    rjob r;
    rjob_make(&r, c, 3, 10, tag, 100, seed);
    rc_status st = rc_job_run(r.job);
    char *log = h_worker_log(w);
    H_CHECK(st == RC_OK, "after queue '%s' was removed, a job on '%s' got %s (%s); worker alive: %d; worker log:\n%s",
            gone, keep, h_stname(st), rc_ctx_errmsg(c), h_alive(w), log ? log : "");
    free(log);
    rjob_check(&r);
    rjob_free(&r);
    H_CHECK(!h_log_contains(w, wrong), "the worker believes '%s' was removed", keep);
    char alarm[300];
    snprintf(alarm, sizeof alarm, "queue '%s' vanished", keep);
    h_nap_ms(2000); /* an idle spell on the remaining queue (not an assertion) */
    log = h_worker_log(w);
    size_t alarms = 0;
    for (const char *p = log; p && (p = strstr(p, alarm)) != NULL; p++)
        alarms++;
    printf("after removing '%s': %zu false alarm(s) about '%s' in the worker's log\n", gone, alarms, keep);
    H_CHECK(!strstr(log ? log : "", alarm), "removing '%s' made the worker report that the stream of '%s' - which "
            "nobody touched - \"vanished without an authenticated removal (flush, restart without persistence, or "
            "tampering)\" (%zu times in 2 s idle): take() reports a failed blocking XREADGROUP with *qi = the first "
            "live queue, not the one that failed, and its blocking read still includes removed queues after the "
            "first live one.  Worker log:\n%s", gone, keep, alarms, log ? log : "");
    free(log);
    H_CHECK(h_alive(w), "the worker exited");
    rc_ctx_destroy(c);
}

/* One worker serving "hi,lo": every queued hi task runs before any lo task;
 * removing either queue leaves it serving the other. */
static void t_multiqueue_priority(void)
{
    enum { T = 6 };
    rs_rec_setup();
    char hi[100], lo[100], both[220];
    snprintf(hi, sizeof hi, "%s-hi", H.queue);
    snprintf(lo, sizeof lo, "%s-lo", H.queue);
    snprintf(both, sizeof both, "%s,%s", hi, lo);
    rc_ctx *chi = ctx_on(hi), *clo = ctx_on(lo);
    rjob rl, rh;
    rjob_make(&rl, clo, T, 30, 2, 100, 801); /* queued first */
    H_OK(clo, rc_job_submit(rl.job));
    rjob_make(&rh, chi, T, 30, 1, 100, 802);
    H_OK(chi, rc_job_submit(rh.job));
    const char *opts[] = {"--queue", both, NULL};
    pid_t w = h_spawn_worker(opts);
    H_OK(chi, rc_job_wait(rh.job));
    H_OK(clo, rc_job_wait(rl.job));
    rjob_check(&rh);
    rjob_check(&rl);
    size_t n;
    rs_rec *v = rs_rec_read(&n);
    long last_hi = -1, first_lo = -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i].kind != 'S')
            continue;
        if (v[i].tag == 1)
            last_hi = (long)i;
        if (v[i].tag == 2 && first_lo < 0)
            first_lo = (long)i;
    }
    printf("order of starts:");
    for (size_t i = 0; i < n; i++)
        if (v[i].kind == 'S')
            printf(" %s%llu", v[i].tag == 1 ? "hi" : "lo", (unsigned long long)v[i].rank);
    printf("\n");
    free(v);
    H_CHECK(last_hi >= 0 && first_lo >= 0 && last_hi < first_lo,
            "a lo task started (line %ld) before the last hi task (line %ld)", first_lo, last_hi);
    rjob_free(&rh);
    rjob_free(&rl);
    /* the first queue removed: the second is still served (a second
       worker, on queues of its own) */
    char a[100], b[100], ab[220];
    snprintf(a, sizeof a, "%s-a", H.queue);
    snprintf(b, sizeof b, "%s-b", H.queue);
    snprintf(ab, sizeof ab, "%s,%s", a, b);
    const char *opts2[] = {"--queue", ab, NULL};
    pid_t w2 = h_spawn_worker(opts2);
    still_serves(w2, b, a, 4, 804);
    /* the second queue removed: the first is still served */
    still_serves(w, hi, lo, 3, 803);
    rc_ctx_destroy(chi);
    rc_ctx_destroy(clo);
    H_STOP_ALL();
}

/* ------------------------------------------------------------------ */

static char *get_str(const char *key)
{
    redisReply *r = h_cmd("GET %s", key);
    char *s = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return s;
}

/* While a worker runs a task the registry says which; once it exits
 * cleanly, it is gone from the registry. */
static void t_registry(void)
{
    static const char *const opts[] = {"--lease", "2", NULL};
    rs_rec_setup();
    rc_ctx *ctx = h_ctx();
    pid_t w = h_spawn_worker(opts);
    rjob r;
    rjob_make(&r, ctx, 1, 3000, 1, 100, 901);
    H_OK(ctx, rc_job_submit(r.job));
    char consumer[200];
    H_WAIT((h_consumer_of(w, consumer, sizeof consumer), consumer[0]), H_DEADLINE_MS,
           "worker %ld is not in rc:{%s}:workers", (long)w, H.queue);
    char info[400], want_task[64], want_pid[32], host[256], want_host[300];
    snprintf(info, sizeof info, "rc:{%s}:worker:%s", H.queue, consumer);
    snprintf(want_task, sizeof want_task, "task=%s/0", rc_job_id(r.job));
    snprintf(want_pid, sizeof want_pid, "pid=%ld ", (long)w);
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    snprintf(want_host, sizeof want_host, "host=%s ", host);
    char *s = NULL;
    H_WAIT((free(s), s = get_str(info)) && strstr(s, want_task), H_DEADLINE_MS,
           "registry entry %s never showed the task in hand (%s): \"%s\"", info, want_task, s ? s : "(none)");
    printf("while running: %s = %s\n", info, s);
    H_CONTAINS(s, want_host);
    H_CONTAINS(s, want_pid);
    H_CONTAINS(s, "done=0");
    char reg[300];
    snprintf(reg, sizeof reg, "rc:{%s}:workers", H.queue);
    redisReply *z = h_cmd("ZSCORE %s %s", reg, consumer);
    H_CHECK(z->type == REDIS_REPLY_STRING, "%s has no score for %s", reg, consumer);
    freeReplyObject(z);
    H_OK(ctx, rc_job_wait(r.job));
    rjob_check(&r);
    H_WAIT((free(s), s = get_str(info)) && strstr(s, "done=1") && strstr(s, "task=-"), H_DEADLINE_MS,
           "registry entry never showed the delivered task: \"%s\"", s ? s : "(none)");
    printf("after the task: %s\n", s);
    free(s);
    h_signal(w, SIGTERM);
    H_EXPECT_EXIT0(w, H_DEADLINE_MS);
    H_EQ_I64(h_cmd_int("EXISTS %s", info), 0);
    z = h_cmd("ZSCORE %s %s", reg, consumer);
    H_CHECK(z->type == REDIS_REPLY_NIL, "%s still lists %s after it exited", reg, consumer);
    freeReplyObject(z);
    rjob_free(&r);
    rc_ctx_destroy(ctx);
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    static const h_test tests[] = {
        {"kill9_recovery_time", t_kill9_recovery_time},
        {"kill9_idle_takeover", t_kill9_idle_takeover},
        {"stall_sigstop", t_stall_sigstop},
        {"sigterm_drain_timeout", t_sigterm_drain_timeout},
        {"sigterm_twice", t_sigterm_twice},
        {"handback_not_counted", t_handback_not_counted},
        {"result_stream_gone_keeps_tasks", t_result_stream_gone_keeps_tasks},
        {"stop_while_redis_down", t_stop_while_redis_down},
        {"submit_after_restart", t_submit_after_restart},
        {"idle_dead_connection", t_idle_dead_connection},
        {"master_dead_connection", t_master_dead_connection},
        {"busy_dead_connection", t_busy_dead_connection},
        {"master_write_epipe", t_master_write_epipe},
        {"redis_restart_aof", t_redis_restart_aof},
        {"poison_crash", t_poison_crash},
        {"poison_fail_always", t_poison_fail_always},
        {"failed_task_text", t_failed_task_text},
        {"flaky_once", t_flaky_once},
        {"reattach", t_reattach},
        {"retention", t_retention},
        {"retention_leftovers", t_retention_leftovers},
        {"multiqueue_priority", t_multiqueue_priority},
        {"registry", t_registry},
        {NULL, NULL},
    };
    if (argc > 3 && argv[3][0])
        g_pi = argv[3];
    if (argc > 4 && argv[4][0])
        g_cli = argv[4];
    return h_main(argc, argv, tests);
}
