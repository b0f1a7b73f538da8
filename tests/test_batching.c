/* test_batching.c - how workers take tasks: batches, one at a time, job
 * switches, the shared lapsed-lease scan, and the keys that make it work.
 *
 * Why: batching is what makes short tasks cheap, and it must never cost
 * load balance or correctness.  A worker whose batch size was learned on one
 * job must not sit on another job's long tasks while other workers idle;
 * RC_OPT_MAX_BATCH 1 must really mean one task per take (and, with the
 * delivery riding on the next take, one round trip per task); a worker
 * taking its next task ahead (RC_OPT_PREFETCH) must not do it at a job's
 * end, nor keep it when stopped; a worker on a crowded CPU must not take
 * tasks that sleep for short ones; the pool must look for lapsed leases
 * once a period, not once per worker; and the two
 * keys this relies on - rc:{Q}:nolapsed and the job's result stream - may be
 * forged or deleted by anyone with Redis access without costing the answer.
 * Commands are counted from Redis' own INFO commandstats, the work from the
 * job's outputs (each sleep task reports the pid that ran it). */
#include "harness.h"
#include "internal.h" /* the queue scripts, for trim_span */

#include <sched.h>

static const char *const no_args[] = {NULL};

/* How many of tasks [0, T) each worker ran; returns the most any one ran
 * and the number of distinct workers. */
static uint64_t spread(const uint64_t *out, uint64_t T, int *distinct)
{
    long pids[64];
    uint64_t n[64] = {0}, most = 0;
    int k = 0;
    for (uint64_t r = 0; r < T; r++) {
        int i = 0;
        while (i < k && pids[i] != (long)out[2 * r + 1])
            i++;
        if (i == k && k < 64)
            pids[k++] = (long)out[2 * r + 1];
        if (i < 64 && ++n[i] > most)
            most = n[i];
    }
    *distinct = k;
    return most;
}

/* NW workers that have just run a job of 3000 tiny tasks of the sleep
 * kernel, so they take its tasks RC_BATCH_MAX at a time; that job's stats in *st. */
static rc_ctx *tiny_sized_pool(int nw, uint64_t salt, rc_job_stats *st)
{
    enum { TA = 3000 };
    static uint64_t out[2 * TA];
    uint64_t p[2];
    h_spawn_workers(nw, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    rc_job *a = h_sleep_job(ctx, TA, 0, salt, p, out);
    H_OK(ctx, rc_job_run(a));
    h_check_sleep_out(out, TA, salt);
    *st = h_stats(a, "tiny tasks");
    rc_job_destroy(a);
    h_reset_stats();
    return ctx;
}

/* A pool that has just run many tiny tasks (so it takes them many at a time)
 * meets a job of long ones: every worker gets its share at once, and each
 * task is added to the stream about twice (the master's, and one
 * hand-back by the worker that took it in a tiny-task batch): a hand-back
 * must reach the workers waiting, not the next one still sized for tiny
 * tasks, which would give all but one back again. */
static void t_job_switch(void)
{
    enum { NW = 4, TB = 8 };
    static uint64_t outb[2 * TB];
    uint64_t pb[2];
    rc_job_stats sa;
    rc_ctx *ctx = tiny_sized_pool(NW, 5, &sa);
    rc_job *b = h_sleep_job(ctx, TB, 400, 6, pb, outb);
    H_OK(ctx, rc_job_run(b)); /* at once: the workers are still in their tiny-task batches */
    h_check_sleep_out(outb, TB, 6);
    rc_job_stats sb = h_stats(b, "400 ms tasks");
    int distinct = 0;
    uint64_t most = spread(outb, TB, &distinct);
    printf("tiny job: %llu tasks in %.2f s, %lld XREADGROUP for the long job; long job: %d workers ran "
           "tasks, at most %llu each\n",
           (unsigned long long)sa.done, sa.seconds, h_calls("xreadgroup"), distinct, (unsigned long long)most);
    long long xadds = h_calls("xadd");
    printf("%lld XADDs (submit, hand-backs, results)\n", xadds);
    /* ideally 3 TB: TB tasks, TB - 1 hand-backs, the result stream's
       creation, TB results; a worker caught between two polls may give
       back a few more.  Handed back in one MULTI they made 36-37. */
    H_CHECK(xadds <= 3 * TB + 4, "%lld XADDs for a job of %d tasks: hand-backs went round the waiting workers",
            xadds, TB);
    H_CHECK(distinct >= NW - 1 && most <= 3,
            "the long job's %d tasks went to %d of %d workers, one ran %llu (%.2f s): a worker kept a batch "
            "sized for tiny tasks", TB, distinct, NW, (unsigned long long)most, sb.seconds);
    rc_job_destroy(b);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* A pool sized for a kernel's tiny tasks meets a job of the same kernel
 * whose tasks are long.  The worker that takes them all in one batch keeps
 * it (a new job of the same kernel is taken as the last one was: the
 * rounds of an iterative code), and gives the unstarted rest back while
 * its first task is still running.  So the job runs in two waves of its
 * tasks; given back only after that first task, it took three. */
static void t_long_batch(void)
{
    enum { NW = 4, TB = 8, MS = 1000 };
    static uint64_t outb[2 * TB];
    uint64_t pb[2];
    rc_job_stats sa;
    rc_ctx *ctx = tiny_sized_pool(NW, 15, &sa);
    rc_job *b = h_sleep_job(ctx, TB, MS, 16, pb, outb);
    H_OK(ctx, rc_job_run(b));
    h_check_sleep_out(outb, TB, 16);
    rc_job_stats sb = h_stats(b, "1 s tasks");
    int distinct = 0;
    uint64_t most = spread(outb, TB, &distinct);
    long long xadds = h_calls("xadd");
    printf("long job: %.2f s, %d workers ran tasks, at most %llu each; %lld XADDs\n", sb.seconds, distinct,
           (unsigned long long)most, xadds);
    H_CHECK(sb.seconds < 2.6 * MS / 1000.0,
            "%d tasks of %d ms on %d workers took %.2f s: a batch of them waited for its first task", TB, MS, NW,
            sb.seconds);
    H_CHECK(distinct == NW && most <= 2, "the tasks went to %d of %d workers, one ran %llu", distinct, NW,
            (unsigned long long)most);
    rc_job_destroy(b);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* RC_OPT_MAX_BATCH 1: a take per task, and one delivery per task riding
 * with the next take; the default batches the same job. */
static void t_one_at_a_time(void)
{
    enum { T = 400 };
    static uint64_t out[2 * T];
    uint64_t p[2];
    static const char *const one[] = {"--max-batch", "1", NULL};
    rc_ctx *ctx = h_ctx();
    pid_t w[2];
    h_spawn_workers(2, one, w);
    rc_job *j = h_sleep_job(ctx, T, 0, 7, p, out);
    h_reset_stats();
    H_OK(ctx, rc_job_run(j));
    h_check_sleep_out(out, T, 7);
    long long xr1 = h_calls("xreadgroup"), ex1 = h_calls("exec"), ev1 = h_calls("evalsha");
    rc_job_destroy(j);
    for (int i = 0; i < 2; i++)
        h_signal(w[i], SIGTERM);
    for (int i = 0; i < 2; i++)
        H_EXPECT_EXIT0(w[i], H_DEADLINE_MS);
    h_spawn_workers(2, no_args, NULL);
    j = h_sleep_job(ctx, T, 0, 8, p, out);
    H_OK(ctx, rc_job_run(j)); /* the workers learn the task length */
    rc_job_destroy(j);
    j = h_sleep_job(ctx, T, 0, 9, p, out);
    h_reset_stats();
    H_OK(ctx, rc_job_run(j));
    h_check_sleep_out(out, T, 9);
    long long xr2 = h_calls("xreadgroup");
    printf("--max-batch 1: %lld XREADGROUP, %lld EXEC, %lld EVALSHA for %d tasks; batched: %lld XREADGROUP\n", xr1,
           ex1, ev1, T, xr2);
    /* each task taken alone; a few more reads are idle polls at the end */
    H_CHECK(xr1 >= T && xr1 <= T + 40, "--max-batch 1 took %d tasks in %lld reads", T, xr1);
    /* one delivery per task (a DELIVER script call, or a MULTI for large
       results), besides the master's blocks of 256 and a few lapsed-lease
       asks */
    long long deliveries = ev1 + ex1 - (T + 255) / 256;
    H_CHECK(deliveries >= T && deliveries <= T + 12, "--max-batch 1 delivered %d tasks in %lld deliveries", T,
            deliveries);
    H_CHECK(xr2 <= T / 8, "batched workers took %d tiny tasks in %lld reads", T, xr2);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* An idle pool of 16 looks for lapsed leases: every worker's lease thread
 * asks at its beats (a PTTL riding with the registry beat), Redis walks the
 * pending list about once per period in all, and the main threads, waiting
 * for work, send nothing: no TAKEOVER, no new XREADGROUP each slice. */
static void t_scan_once(void)
{
    enum { NW = 16 };
    h_spawn_workers(NW, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    uint64_t p[2], out[2 * 2];
    rc_job *j = h_sleep_job(ctx, 2, 0, 3, p, out); /* every worker has its group and scripts */
    H_OK(ctx, rc_job_run(j));
    rc_job_destroy(j);
    h_nap_ms(1500);
    h_reset_stats();
    long long t0 = h_now_ms();
    h_nap_ms(4000);
    long long ms = h_now_ms() - t0, asks = h_calls("pttl"),
              scans = h_calls("xpending") + h_calls("xautoclaim"), /* either walks the pending list */
        waits = h_calls("xreadgroup") + h_calls("evalsha");
    printf("%d idle workers, %lld ms: %lld lapsed-lease asks (PTTL), %lld pending-list scans, %lld takes and "
           "TAKEOVERs\n",
           NW, ms, asks, scans, waits);
    H_CHECK(asks >= NW * 2, "only %lld lapsed-lease asks from %d idle workers in %lld ms", asks, NW, ms);
    H_CHECK(scans <= ms / 1000 + 3, "%lld pending-list scans in %lld ms: the pool should scan about once a second",
            scans, ms);
    H_CHECK(waits < NW, "%lld takes and TAKEOVERs from %d workers waiting for work in %lld ms: they should wait "
            "undisturbed", waits, NW, ms);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* A worker dies holding a task while someone has written rc:{Q}:nolapsed
 * to stop the pool from looking: no TTL, then one far too long.  Neither
 * stands: the task is taken over and the answer is exact. */
static void t_nolapsed_forged(void)
{
    static const char *const lease1[] = {"--lease", "1", NULL};
    char key[300];
    snprintf(key, sizeof key, "rc:{%s}:nolapsed", H.queue);
    rc_ctx *ctx = h_ctx();
    for (int round = 0; round < 2; round++) {
        enum { T = 6 };
        uint64_t p[2], out[2 * T];
        pid_t victim = h_spawn_worker(lease1);
        rc_job *j = h_sleep_job(ctx, T, 300, 40 + (uint64_t)round, p, out);
        H_OK(ctx, rc_job_submit(j));
        h_pend pe[4];
        H_WAIT(h_pending(pe, 4) >= 1, H_DEADLINE_MS, "the worker took nothing");
        if (round == 0)
            freeReplyObject(h_cmd("SET %s forged", key));
        else
            freeReplyObject(h_cmd("SET %s forged PX 100000000", key));
        h_kill9(victim);
        h_spawn_workers(2, lease1, NULL);
        H_OK(ctx, rc_job_wait(j));
        h_check_sleep_out(out, T, 40 + (uint64_t)round);
        rc_job_stats s = h_stats(j, round ? "nolapsed forged with a long TTL" : "nolapsed forged without a TTL");
        H_EQ_U64(s.done, T);
        H_CHECK(s.redelivered >= 1, "no task was taken over from the killed worker");
        rc_job_destroy(j);
        H_STOP_ALL();
    }
    rc_ctx_destroy(ctx);
}

/* The job's result stream deleted mid-job, then replaced by a string,
 * without an authenticated cancel: the master recreates it, tasks whose
 * results went with it are sent again, and the answer is exact. */
static void t_result_stream_deleted(void)
{
    static const char *const lease1[] = {"--lease", "1", NULL};
    rc_ctx *ctx = h_ctx();
    h_spawn_workers(2, lease1, NULL);
    for (int round = 0; round < 2; round++) {
        enum { T = 30 };
        uint64_t p[2], out[2 * T];
        rc_job *j = h_sleep_job(ctx, T, 40, 50 + (uint64_t)round, p, out);
        H_OK(ctx, rc_job_submit(j));
        h_wait_done(ctx, j, 4);
        char res[320];
        h_res_key(j, res, sizeof res);
        if (round == 0)
            freeReplyObject(h_cmd("DEL %s", res));
        else
            freeReplyObject(h_cmd("SET %s junk", res));
        H_OK(ctx, rc_job_wait(j));
        h_check_sleep_out(out, T, 50 + (uint64_t)round);
        rc_job_stats s = h_stats(j, round ? "result stream replaced by a string" : "result stream deleted");
        H_EQ_U64(s.done, T);
        rc_job_destroy(j);
        H_WAIT(h_xlen() == 0 && h_count_keys("job:*") == 0, H_DEADLINE_MS, "%lld entries, %zu job keys left",
               h_xlen(), h_count_keys("job:*"));
    }
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* One delivery carrying the results of two jobs: each job's results go
 * to its own result stream, none to the other's (where its master would
 * reject them as not its own and send the tasks again).  Both jobs are
 * queued before the only worker starts, so a batch taken across the end of
 * the first job holds tasks of both; its debug log says so.  Batches are
 * sized from the tasks' measured length, so now and then they end exactly
 * where the first job does: then another round, with a new worker. */
static void t_mixed_delivery(void)
{
    enum { TA = 150, TB = 150, ROUNDS = 4 };
    static const char *const dbg[] = {"-v", "-v", NULL};
    static uint64_t outa[2 * TA], outb[2 * TB];
    uint64_t pa[2], pb[2];
    rc_ctx *ctx = h_ctx();
    int mixed = 0, round;
    for (round = 0; round < ROUNDS && !mixed; round++) {
        uint64_t sa = 80 + 2 * (uint64_t)round, sb = sa + 1;
        rc_job *ja = h_sleep_job(ctx, TA, 0, sa, pa, outa), *jb = h_sleep_job(ctx, TB, 0, sb, pb, outb);
        H_OK(ctx, rc_job_submit(ja));
        H_OK(ctx, rc_job_submit(jb));
        pid_t w = h_spawn_worker(dbg);
        H_OK(ctx, rc_job_wait(ja));
        H_OK(ctx, rc_job_wait(jb));
        h_check_sleep_out(outa, TA, sa);
        h_check_sleep_out(outb, TB, sb);
        char *log = h_worker_log(w);
        mixed = log && strstr(log, "one delivery carries the results of 2 jobs");
        free(log);
        const rc_job *jobs[2] = {ja, jb};
        for (int i = 0; i < 2; i++) {
            rc_job_stats s = h_stats(jobs[i], i ? "second job" : "first job");
            H_EQ_U64(s.done, i ? TB : TA);
            H_CHECK(s.rejected == 0 && s.republished == 0,
                    "job %d: %llu results rejected, %llu tasks sent again: results went to the other job's stream", i,
                    (unsigned long long)s.rejected, (unsigned long long)s.republished);
        }
        H_WAIT(h_xlen() == 0, H_DEADLINE_MS, "%lld acked entries left in the task stream", h_xlen());
        rc_job_destroy(ja);
        rc_job_destroy(jb);
        H_STOP_ALL();
    }
    printf("a delivery held results of both jobs in round %d of %d\n", round, ROUNDS);
    H_CHECK(mixed, "in %d rounds no delivery held results of both jobs: the test proves nothing", ROUNDS);
    rc_ctx_destroy(ctx);
}

/* Deliveries delete the entries they ack by trimming the stream up to its
 * oldest pending entry, and delete one by one only what lies more than the
 * trim span (250 ms of submission) above it.  One worker is frozen holding
 * an old task; another runs a whole job of tasks submitted well past the
 * span: every entry it acked is gone from the stream, the frozen worker's
 * is still there and still its own, and once it wakes its job finishes and
 * the stream is empty. */
static void t_trim_keeps_pending(void)
{
    enum { T = 300 };
    static const char *const a_args[] = {"--max-batch", "1", "--lease", "60", NULL};
    static const char *const b_args[] = {"--lease", "60", NULL};
    static uint64_t outa[2], outb[2 * T];
    uint64_t pa[2], pb[2];
    rc_ctx *ctx = h_ctx();
    pid_t a = h_spawn_worker(a_args);
    rc_job *ja = h_sleep_job(ctx, 1, 400, 70, pa, outa);
    H_OK(ctx, rc_job_submit(ja));
    h_pend pe[4];
    H_WAIT(h_pending(pe, 4) == 1, H_DEADLINE_MS, "the first worker took nothing");
    h_signal(a, SIGSTOP);
    char held[48];
    snprintf(held, sizeof held, "%s", pe[0].id);
    h_nap_ms(400); /* past the span: entries are not left for a later trim */
    pid_t b = h_spawn_worker(b_args);
    rc_job *jb = h_sleep_job(ctx, T, 0, 71, pb, outb);
    H_OK(ctx, rc_job_run(jb));
    h_check_sleep_out(outb, T, 71);
    size_t np = h_pending(pe, 4);
    size_t len = 0;
    unsigned char *bytes = h_entry_bytes(held, &len);
    printf("job of %d tasks done past a held entry: %lld entries left in the stream, %zu pending (%s, pid %ld)\n",
           T, h_xlen(), np, np ? pe[0].id : "-", np ? pe[0].pid : 0L);
    H_CHECK(bytes != NULL, "the held, unfinished entry %s was deleted", held);
    free(bytes);
    H_CHECK(np == 1 && strcmp(pe[0].id, held) == 0 && pe[0].pid == (long)a,
            "the held entry is no longer pending under its worker");
    H_CHECK(h_xlen() == 1, "%lld entries in the stream: the %d acked ones should be gone", h_xlen(), T);
    rc_job_destroy(jb);
    h_signal(a, SIGCONT);
    H_OK(ctx, rc_job_wait(ja));
    h_check_sleep_out(outa, 1, 70);
    rc_job_destroy(ja);
    H_WAIT(h_xlen() == 0, H_DEADLINE_MS, "%lld entries left after both jobs", h_xlen());
    (void)b;
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* The trim policy itself, on entries with chosen ids (their milliseconds
 * are what the span is measured in), through the delivery and end-of-job
 * scripts the library runs.  An entry held by a stalled consumer is the
 * floor; a batch acked 100 ms above it stays in the stream, acked, for a
 * later trim; one 400 ms above it is deleted at once; an undelivered entry
 * is never touched; and once nothing is pending the end-of-job trim takes
 * every delivered entry and nothing else. */
/* A connection of the library's own to the test Redis (caller frees). */
static rc_conn *test_conn(void)
{
    rc_url u;
    char why[200];
    if (rc_url_parse(H.url, &u, why, sizeof why) != RC_OK)
        H_FAIL("url: %s", why);
    rc_conn *c = rc_conn_new(&u, 5000, 10000);
    H_CHECK(c != NULL, "out of memory");
    return c;
}

static void t_trim_span(void)
{
    char tk[300];
    h_tasks_key(tk, sizeof tk);
    rc_conn *c = test_conn();
    freeReplyObject(h_cmd("XGROUP CREATE %s " RC_GROUP " 0 MKSTREAM", tk));
    freeReplyObject(h_cmd("XADD %s 1000-0 e held", tk));
    for (int i = 0; i < 8; i++)
        freeReplyObject(h_cmd("XADD %s 1100-%d e near", tk, i));
    for (int i = 0; i < 8; i++)
        freeReplyObject(h_cmd("XADD %s 1400-%d e far", tk, i));
    freeReplyObject(h_cmd("XREADGROUP GROUP " RC_GROUP " stalled COUNT 1 STREAMS %s >", tk));
    freeReplyObject(h_cmd("XREADGROUP GROUP " RC_GROUP " w1 COUNT 16 STREAMS %s >", tk));
    freeReplyObject(h_cmd("XADD %s 2000-0 e queued", tk));
    H_EQ_U64(h_xlen(), 18);
    /* a DELIVER of plain acks: KEYS the stream then one per entry (the
       stream again), ARGV group then (id, 'a') per entry */
    const char *av[1 + 8 + 1 + 16];
    char ids[8][32];
    for (int round = 0; round < 2; round++) {
        int k = 0;
        av[k++] = tk;
        for (int i = 0; i < 8; i++)
            av[k++] = tk;
        av[k++] = RC_GROUP;
        for (int i = 0; i < 8; i++) {
            snprintf(ids[i], sizeof ids[i], "%d-%d", round ? 1400 : 1100, i);
            av[k++] = ids[i];
            av[k++] = "a";
        }
        redisReply *r = NULL;
        rc_status st = rc_script(c, RC_SCRIPT_DELIVER, &r, 9, 17, av, NULL);
        H_CHECK(st == RC_OK && r && r->type == REDIS_REPLY_ARRAY && r->elements == 8, "delivery %d: %s", round,
                st == RC_OK ? "bad reply" : c->err);
        if (r) freeReplyObject(r);
        long long pend = 0;
        redisReply *p = h_cmd("XPENDING %s " RC_GROUP, tk);
        if (p->type == REDIS_REPLY_ARRAY && p->elements >= 1 && p->element[0]->type == REDIS_REPLY_INTEGER)
            pend = p->element[0]->integer;
        freeReplyObject(p);
        printf("after the %s batch: %lld entries, %lld pending\n", round ? "far" : "near", h_xlen(), pend);
        H_EQ_U64(pend, round ? 1 : 9);
        /* near: all 18 stay (8 acked, left to the trim); far: its 8 go */
        H_EQ_U64(h_xlen(), round ? 10 : 18);
    }
    freeReplyObject(h_cmd("XACK %s " RC_GROUP " 1000-0", tk));
    const char *tav[] = {tk, RC_GROUP};
    redisReply *r = NULL;
    H_CHECK(rc_script(c, RC_SCRIPT_TRIM, &r, 1, 1, tav, NULL) == RC_OK, "end-of-job trim: %s", c->err);
    if (r) freeReplyObject(r);
    redisReply *left = h_cmd("XRANGE %s - +", tk);
    H_CHECK(left->type == REDIS_REPLY_ARRAY && left->elements == 1 && left->element[0]->element[0]->len == 6 &&
                memcmp(left->element[0]->element[0]->str, "2000-0", 6) == 0,
            "after the end-of-job trim %zu entries are left; only the undelivered 2000-0 should be", left->elements);
    freeReplyObject(left);
    rc_conn_free(c);
    H_STOP_ALL();
}

/* Replies of fire-and-forget commands still on their way (a job's
 * clean-up, sent unanswered) do not hold the next command back: it goes
 * out at once, and a command's reply is still its own.  So a reply sent
 * ahead (a prefetch, like the master's first XREAD) is not dropped by a
 * later command's connection check while it has not arrived; before, that
 * check waited for it and threw it away. */
static void t_deferred_in_flight(void)
{
    char tk[300], key[320];
    h_tasks_key(tk, sizeof tk);
    snprintf(key, sizeof key, "%s:inflight", tk);
    rc_conn *c = test_conn();
    unsigned long ticket = 0;
    const char *bl[] = {"BLPOP", key, "5"};
    H_CHECK(rc_conn_prefetch(c, 3, bl, NULL, &ticket) == RC_OK, "prefetch: %s", c->err);
    /* Redis holds the BLPOP until the list gets an element: the check
       between commands must not wait for it */
    H_CHECK(rc_conn_ensure(c) == RC_OK, "ensure: %s", c->err);
    freeReplyObject(h_cmd("RPUSH %s first", key));
    redisReply *r = NULL;
    H_CHECK(rc_conn_take(c, ticket, &r) == RC_OK, "the prefetched BLPOP was dropped by a connection check (%s)",
            c->err);
    H_CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING &&
                !strcmp(r->element[1]->str, "first"),
            "the prefetch's reply is not its BLPOP's");
    freeReplyObject(r);
    /* deferred replies still coming, then commands of our own: each gets
       its own reply, in order */
    for (int i = 0; i < 3; i++) {
        const char *inc[] = {"INCR", key};
        freeReplyObject(h_cmd("DEL %s", key));
        H_CHECK(rc_conn_append(c, 2, inc, NULL) == RC_OK && rc_conn_append(c, 2, inc, NULL) == RC_OK &&
                    rc_conn_defer(c, 2) == RC_OK,
                "defer: %s", c->err);
        const char *get[] = {"GET", key};
        r = NULL;
        H_CHECK(rc_conn_cmd(c, &r, 2, get, NULL) == RC_OK && r->type == REDIS_REPLY_STRING && !strcmp(r->str, "2"),
                "round %d: GET after two deferred INCRs answered %s", i, r && r->str ? r->str : "no string");
        freeReplyObject(r);
        H_EQ_U64(c->deferred, 0);
    }
    rc_conn_free(c);
    freeReplyObject(h_cmd("DEL %s", key));
    H_STOP_ALL();
}

/* A worker's pool size comes with its registry beats, from the second on
 * (prefetch_worth): these beat every 100 ms. */
static const char *const beat_fast[] = {"--heartbeat", "0.1", NULL};

/* Entries worker pid holds (pending under its name). */
static size_t held_by(pid_t pid)
{
    h_pend p[64];
    size_t n = h_pending(p, 64), mine = 0;
    for (size_t i = 0; i < n; i++)
        mine += p[i].pid == (long)pid;
    return mine;
}

/* The most entries pid held at once while job j ran, sampled every
 * millisecond until its T results are in Redis (the master reads none
 * meanwhile: it was only submitted); *tail: the most it held once T - 2
 * results were in, i.e. with its last two tasks to run. */
static size_t held_while_running(const rc_job *j, uint64_t T, pid_t pid, size_t *tail)
{
    char res[300];
    h_res_key(j, res, sizeof res);
    size_t most = 0;
    *tail = 0;
    long long dl = h_deadline(H_DEADLINE_MS);
    for (long long done; (done = h_results(res)) < (long long)T; h_nap_ms(1)) {
        if (h_expired(dl))
            H_FAIL("job %s: %lld of %llu results after %d ms", rc_job_id(j), done, (unsigned long long)T,
                   H_DEADLINE_MS);
        size_t mine = held_by(pid);
        if (mine > most)
            most = mine;
        if (done >= (long long)T - 2 && mine > *tail)
            *tail = mine;
    }
    return most;
}

/* RC_OPT_PREFETCH: while a task runs, its worker has taken the next
 * (two entries pending under its name, three while the last delivery is
 * on its way), so no round trip to Redis
 * separates them - but not near the job's end, where the one taken ahead
 * could wait while another worker idles: with a pool of one, the last two
 * tasks are taken one at a time.  --no-prefetch holds one at a time. */
static void t_prefetch(void)
{
    enum { T = 16, MS = 40 };
    static uint64_t out[2 * T];
    uint64_t p[2];
    static const char *const off[] = {"--heartbeat", "0.1", "--no-prefetch", NULL};
    rc_ctx *ctx = h_ctx();
    for (int pass = 0; pass < 2; pass++) {
        pid_t w = h_spawn_worker(pass ? off : beat_fast);
        h_nap_ms(300); /* its second beat: it knows the pool */
        rc_job *j = h_sleep_job(ctx, T, MS, 20 + (uint64_t)pass, p, out);
        H_OK(ctx, rc_job_submit(j));
        size_t tail, most = held_while_running(j, T, w, &tail);
        H_OK(ctx, rc_job_wait(j));
        h_check_sleep_out(out, T, 20 + (uint64_t)pass);
        rc_job_stats st = h_stats(j, pass ? "--no-prefetch" : "prefetch");
        printf("%s: held at most %zu entries, %zu with the last two tasks to run; %.2f s for %d x %d ms\n",
               pass ? "--no-prefetch" : "prefetch", most, tail, st.seconds, T, MS);
        if (!pass) {
            /* 3 for a moment: the last delivery on its way, not yet acked */
            H_CHECK(most >= 2 && most <= 3, "the worker held at most %zu entries: it did not take its next task ahead",
                    most);
            H_CHECK(tail <= 1, "the worker held %zu entries with its last two tasks to run: it took one ahead at the "
                               "job's end", tail);
        } else {
            H_CHECK(most == 1, "--no-prefetch: the worker held %zu entries at once", most);
        }
        H_CHECK(st.redelivered == 0, "%llu task(s) needed a second attempt", (unsigned long long)st.redelivered);
        rc_job_destroy(j);
        h_signal(w, SIGTERM);
        H_EXPECT_EXIT0(w, H_DEADLINE_MS);
    }
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* A stop request while a task runs and the next was taken ahead: the task
 * in hand is finished and delivered, the one taken ahead goes back
 * untouched - no attempt counted, and as a new entry, which wakes a
 * waiting worker at once, not one left pending under the stopped worker's
 * name for a lapsed-lease scan to find - and another worker runs it. */
static void t_prefetch_stop(void)
{
    enum { T = 12, MS = 150 };
    static uint64_t out[2 * T];
    uint64_t p[2];
    rc_ctx *ctx = h_ctx();
    pid_t w = h_spawn_worker(beat_fast);
    h_nap_ms(300); /* its second beat: it knows the pool */
    rc_job *j = h_sleep_job(ctx, T, MS, 31, p, out);
    H_OK(ctx, rc_job_submit(j));
    H_WAIT(held_by(w) == 2, H_DEADLINE_MS, "worker %ld never held a task taken ahead", (long)w);
    h_signal(w, SIGTERM);
    H_EXPECT_EXIT0(w, H_DEADLINE_MS);
    h_pend pe[16];
    size_t left = h_pending(pe, 16);
    H_CHECK(left == 0, "%zu entr%s still pending after the worker stopped (first %s, %lld deliveries)", left,
            left == 1 ? "y" : "ies", left ? pe[0].id : "-", left ? pe[0].deliveries : 0LL);
    h_spawn_worker(no_args);
    H_OK(ctx, rc_job_wait(j));
    h_check_sleep_out(out, T, 31);
    rc_job_stats st = h_stats(j, "stopped with a task taken ahead");
    printf("stopped with a task taken ahead: %llu workers delivered, %llu redelivered\n",
           (unsigned long long)st.workers_seen, (unsigned long long)st.redelivered);
    H_CHECK(st.redelivered == 0, "the task taken ahead and handed back counted as an attempt (%llu redelivered)",
            (unsigned long long)st.redelivered);
    H_CHECK(st.workers_seen == 2, "%llu workers delivered, want 2", (unsigned long long)st.workers_seen);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* Results too large for DELIVER_SMALL (96 KiB a task: a MULTI) also go
 * without waiting for their verdicts while the next task runs; a verdict
 * lost with the connection, or refused by a server that lost its scripts,
 * makes the worker deliver again.  Every output exact, none missing. */
static void t_prefetch_large(void)
{
    enum { T = 24, MS = 30, CHUNK = 12288 };
    static double in[T * CHUNK], out[T * CHUNK];
    for (size_t i = 0; i < (size_t)T * CHUNK; i++)
        in[i] = (double)(i % 1000) * 0.5 + 1.0;
    memset(out, 0, sizeof out);
    rc_ctx *ctx = h_ctx();
    pid_t w = h_spawn_worker(beat_fast);
    h_nap_ms(300); /* its second beat: it knows the pool */
    uint64_t pa[3] = {MS, 0, 0};
    rc_job *j = NULL;
    H_OK(ctx, rc_job_create(ctx, "record", T, &j));
    H_OK(ctx, rc_job_bcast(j, pa, 3, RC_UINT64));
    H_OK(ctx, rc_job_scatter(j, in, CHUNK, RC_DOUBLE));
    H_OK(ctx, rc_job_gather(j, out, CHUNK, RC_DOUBLE));
    H_OK(ctx, rc_job_submit(j));
    char res[300];
    h_res_key(j, res, sizeof res);
    size_t most = 0;
    int flushed = 0, killed = 0;
    long long dl = h_deadline(H_DEADLINE_MS);
    for (long long done; (done = h_results(res)) < T; h_nap_ms(1)) {
        if (h_expired(dl))
            H_FAIL("%lld of %d results after %d ms", done, T, H_DEADLINE_MS);
        size_t mine = held_by(w);
        if (mine > most)
            most = mine;
        if (!flushed && done >= 6) {
            freeReplyObject(h_cmd("SCRIPT FLUSH"));
            flushed = 1;
        } else if (!killed && done >= 14) {
            redisReply *r = h_cmd("CLIENT KILL TYPE normal SKIPME yes");
            killed = (int)r->integer;
            freeReplyObject(r);
        }
    }
    H_OK(ctx, rc_job_wait(j));
    size_t bad = 0;
    for (size_t i = 0; i < (size_t)T * CHUNK; i++)
        bad += out[i] != in[i] * in[i];
    rc_job_stats st = h_stats(j, "96 KiB results");
    printf("96 KiB results: held at most %zu entries; scripts flushed %d, %d connections killed; %zu wrong\n", most,
           flushed, killed, bad);
    H_CHECK(bad == 0, "%zu of %d outputs wrong", bad, T * CHUNK);
    H_CHECK(most >= 2 && most <= 3, "the worker held at most %zu entries (3: a delivery on its way, the task "
            "running, the next)", most);
    H_EQ_U64(st.done, T);
    rc_job_destroy(j);
    h_signal(w, SIGTERM);
    H_EXPECT_EXIT0(w, H_DEADLINE_MS);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* A worker sharing its CPU with busy processes, running tasks that are
 * preempted (here they yield, which the scheduler counts alike) more often
 * than they sleep, 25 ms each: the worker must see that they hold their
 * tasks 25 ms - the time waited for the CPU is not theirs, the sleep is -
 * and take them one at a time, not a batch sized for short tasks whose
 * unstarted rest it then hands back.  The worker and three spinning
 * children are pinned to one CPU. */
static void t_crowded_sleeper(void)
{
    enum { T = 16, MS = 25, YIELDS = 6, HOGS = 3 };
    static const char *const dbg[] = {"--heartbeat", "0.1", "-v", "-v", NULL};
    static uint64_t out[2 * T];
    cpu_set_t all, one;
    H_CHECK(sched_getaffinity(0, sizeof all, &all) == 0, "sched_getaffinity: %s", strerror(errno));
    int cpu = 0;
    while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &all))
        cpu++;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    H_CHECK(sched_setaffinity(0, sizeof one, &one) == 0, "sched_setaffinity: %s", strerror(errno));
    pid_t hog[HOGS];
    for (int i = 0; i < HOGS; i++) {
        if ((hog[i] = fork()) < 0)
            H_FAIL("fork: %s", strerror(errno));
        if (hog[i] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            for (volatile unsigned long spin = 0;; spin++)
                ;
        }
    }
    pid_t w = h_spawn_worker(dbg); /* pinned too: it inherits the mask */
    H_CHECK(sched_setaffinity(0, sizeof all, &all) == 0, "sched_setaffinity: %s", strerror(errno));
    h_nap_ms(300); /* its second beat: it knows the pool */
    rc_ctx *ctx = h_ctx();
    static const uint64_t pa[3] = {MS, 61, YIELDS};
    rc_job *j = h_sleep_job_params(ctx, T, pa, 3, out);
    H_OK(ctx, rc_job_submit(j));
    size_t tail, most = held_while_running(j, T, w, &tail);
    H_OK(ctx, rc_job_wait(j));
    for (int i = 0; i < HOGS; i++) {
        kill(hog[i], SIGKILL);
        (void)waitpid(hog[i], NULL, 0);
    }
    h_check_sleep_out(out, T, 61);
    char *log = h_worker_log(w);
    const char *cut = log ? strstr(log, "run long") : NULL;
    printf("sleeping tasks on a crowded CPU: held at most %zu entries\n", most);
    H_CHECK(log && !cut, "the worker took 25 ms sleeps for short tasks: ...%.100s", cut ? cut : "(no log)");
    free(log);
    H_CHECK(most <= 3, "the worker held %zu entries at once (3 at most: a delivery on its way, the task running, "
            "the next)", most);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

int main(int argc, char **argv)
{
    static const h_test tests[] = {
        {"job_switch", t_job_switch},
        {"long_batch", t_long_batch},
        {"one_at_a_time", t_one_at_a_time},
        {"scan_once", t_scan_once},
        {"nolapsed_forged", t_nolapsed_forged},
        {"result_stream_deleted", t_result_stream_deleted},
        {"mixed_delivery", t_mixed_delivery},
        {"trim_keeps_pending", t_trim_keeps_pending},
        {"trim_span", t_trim_span},
        {"deferred_in_flight", t_deferred_in_flight},
        {"prefetch", t_prefetch},
        {"prefetch_stop", t_prefetch_stop},
        {"prefetch_large", t_prefetch_large},
        {"crowded_sleeper", t_crowded_sleeper},
        {NULL, NULL},
    };
    return h_main(argc, argv, tests);
}
