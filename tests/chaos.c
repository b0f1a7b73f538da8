/* chaos.c - a seeded storm of kill -9, SIGSTOP past the lease, SIGTERM and a Redis restart over a running pool: answers must not change by a bit.
 *
 * Why: each fault has its own test in test_resilience.c, but faults in real
 * fleets overlap - a worker is killed while another is stalled, Redis
 * restarts while a task is being handed back, a replacement joins while the
 * master is reconnecting.  This driver runs a pi-like reduce (the record
 * kernel's {hits, spread}, summed as doubles in rank order, so any double
 * counting or reordering changes the bits) and a scatter/gather job with a
 * known exact answer (squares of a scattered vector) on a pool of 4 local
 * testworkers (lease 1 s), first undisturbed, then round after round while a
 * schedule drawn from a fixed seed kills workers with SIGKILL, stops them
 * past their lease and resumes them, SIGTERMs some (they must drain and exit
 * 0), starts replacements, and restarts the redis-server once with its AOF.
 * Every round must give answers bit-identical to the undisturbed run, with
 * every task accepted exactly once (done == ntasks, the exact reduce).  The
 * summary - kills, stalls, SIGTERMs, restarts, executions per task from the
 * record file, redeliveries, extra wall time - is printed for the lead to
 * quote; none of those figures is asserted.  Bounded: the storm lasts 60 s
 * (30 s in slow builds), the whole test well under 150 s. */
#include "harness.h"
#include "resilience.h"

enum { TA = 40, TB = 40, CHUNK = 512, POOL = 4, MAX_ROUNDS = 40, MAX_EVENTS = 40 };
#define LEASE_MS 1000
#define SEED_A 0xC4A05ULL
#define SEED_B 0xC4A06ULL
#define STORM_SEED 20240601ULL

/* The storm may strike one task more often than the default 3 attempts
   allow (a loaded ASan run: a task's worker killed, then each of the two
   that took it over stopped past the lease), and the workers would give it
   up, failing the job.  That is right for them (resilience.poison_* test
   it); what this test checks is the answer through overlapping faults. */
static const char *const g_wopts[] = {"--lease", "1", "--max-attempts", "20", NULL};

/* ------------------------------------------------------------------ */
/* The storm's dice: splitmix64 from a fixed seed.  One stream draws the
 * schedule (when, what, how long), another picks victims, so the sequence
 * of events is the same on every run; their effect depends on timing. */
static uint64_t g_sched = STORM_SEED, g_picks = STORM_SEED ^ 0x5EEDULL;
static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static uint64_t dice(void) { return splitmix(&g_sched); }
static long long dice_between(long long lo, long long hi) { return lo + (long long)(dice() % (uint64_t)(hi - lo + 1)); }

/* ------------------------------------------------------------------ */
/* The pool                                                              */

typedef struct member {
    pid_t pid;
    int stopped;
    long long cont_at;
} member;

static member g_pool[POOL];
static pid_t g_draining[H_MAXW]; /* SIGTERMed, must exit 0 */
static int g_ndraining;

static struct {
    int kills, stalls, sigterms, restarts, events;
} g_count;

static int pool_running(void)
{
    int n = 0;
    for (int i = 0; i < POOL; i++)
        n += !g_pool[i].stopped;
    return n;
}

/* A running member, preferring one that holds a task right now. */
static int pick_running(void)
{
    h_pend p[64];
    size_t np = h_pending(p, 64);
    int cands[POOL], nc = 0;
    for (int i = 0; i < POOL; i++) {
        if (g_pool[i].stopped)
            continue;
        for (size_t k = 0; k < np; k++)
            if (p[k].pid == g_pool[i].pid) {
                cands[nc++] = i;
                break;
            }
    }
    if (!nc)
        for (int i = 0; i < POOL; i++)
            if (!g_pool[i].stopped)
                cands[nc++] = i;
    return nc ? cands[splitmix(&g_picks) % (uint64_t)nc] : -1;
}

static void replace(int i)
{
    g_pool[i].pid = h_spawn_worker(g_wopts);
    g_pool[i].stopped = 0;
}

/* Every pool member alive (a worker that dies on its own is a failure),
 * every draining worker that ended exited 0. */
static void check_processes(void)
{
    for (int i = 0; i < POOL; i++) {
        int st;
        if (h_reap(g_pool[i].pid, &st)) {
            char d[64];
            h_describe_status(st, d, sizeof d);
            H_FAIL("pool worker %ld ended on its own (%s)", (long)g_pool[i].pid, d);
        }
    }
    for (int i = 0; i < g_ndraining; i++) {
        int st;
        if (g_draining[i] && h_reap(g_draining[i], &st)) {
            char d[64];
            h_describe_status(st, d, sizeof d);
            H_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker %ld ended with %s after SIGTERM, want exit 0",
                    (long)g_draining[i], d);
            g_draining[i] = 0;
        }
    }
}

static void resume_due(long long now, int all)
{
    for (int i = 0; i < POOL; i++)
        if (g_pool[i].stopped && (all || now >= g_pool[i].cont_at)) {
            h_signal(g_pool[i].pid, SIGCONT);
            g_pool[i].stopped = 0;
        }
}

/* One event of the storm. */
static void storm_event(long long t_rel, int restart_now)
{
    g_count.events++;
    if (restart_now) {
        long long down = rs_redis_restart_aof(dice_between(200, 1000));
        rs_redis_forget();
        g_count.restarts++;
        printf("[%6.2f s] redis-server restarted with its AOF (unreachable %.2f s)\n", (double)t_rel / 1000.0,
               (double)down / 1000.0);
        return;
    }
    enum { KILL, STALL, TERM } kind;
    uint64_t roll = dice() % 100;
    kind = roll < 35 ? KILL : roll < 70 ? STALL : TERM;
    long long hold = LEASE_MS + dice_between(300, 1500);
    int can_spawn = H.nw < H_MAXW - 2;
    if (kind != STALL && !can_spawn)
        kind = STALL;
    if (kind == STALL && pool_running() <= 2) { /* keep two workers running */
        if (!can_spawn) {
            printf("[%6.2f s] (skip: two workers stopped, no spawns left)\n", (double)t_rel / 1000.0);
            return;
        }
        kind = KILL;
    }
    int i = pick_running();
    if (i < 0)
        return;
    pid_t p = g_pool[i].pid;
    if (kind == KILL) {
        h_kill9(p);
        g_count.kills++;
        replace(i);
        printf("[%6.2f s] kill -9 worker %ld; replacement %ld\n", (double)t_rel / 1000.0, (long)p,
               (long)g_pool[i].pid);
    } else if (kind == STALL) {
        h_signal(p, SIGSTOP);
        g_pool[i].stopped = 1;
        g_pool[i].cont_at = h_now_ms() + hold;
        g_count.stalls++;
        printf("[%6.2f s] SIGSTOP worker %ld for %.2f s (lease %.1f s)\n", (double)t_rel / 1000.0, (long)p,
               (double)hold / 1000.0, LEASE_MS / 1000.0);
    } else {
        h_signal(p, SIGTERM);
        g_draining[g_ndraining++] = p;
        g_count.sigterms++;
        replace(i);
        printf("[%6.2f s] SIGTERM worker %ld (drains, exits 0); replacement %ld\n", (double)t_rel / 1000.0, (long)p,
               (long)g_pool[i].pid);
    }
}

/* ------------------------------------------------------------------ */
/* The jobs                                                              */

static double g_in[TB * CHUNK], g_squares[TB * CHUNK];
static uint64_t g_samples;
static uint64_t g_task_ms;

typedef struct round {
    rc_job *a, *b;
    uint64_t pa[3], pb[3];
    double sum[2];
    double gather[TB * CHUNK];
    rc_status sa, sb;
    rc_job_stats st_a, st_b;
    double seconds;
} round_t;

static void round_submit(round_t *r, rc_ctx *ctx, int k)
{
    memset(r->gather, 0xFF, sizeof r->gather);
    memset(r->sum, 0xFF, sizeof r->sum);
    r->pa[0] = g_task_ms;
    r->pa[1] = 2 * (uint64_t)k + 1;
    r->pa[2] = g_samples;
    r->pb[0] = g_task_ms;
    r->pb[1] = 2 * (uint64_t)k + 2;
    r->pb[2] = 0;
    H_OK(ctx, rc_job_create(ctx, "record", TA, &r->a));
    H_OK(ctx, rc_job_set_seed(r->a, SEED_A));
    H_OK(ctx, rc_job_bcast(r->a, r->pa, 3, RC_UINT64));
    H_OK(ctx, rc_job_reduce(r->a, r->sum, 2, RC_DOUBLE, rc_op_builtin(RC_SUM)));
    H_OK(ctx, rc_job_create(ctx, "record", TB, &r->b));
    H_OK(ctx, rc_job_set_seed(r->b, SEED_B));
    H_OK(ctx, rc_job_bcast(r->b, r->pb, 3, RC_UINT64));
    H_OK(ctx, rc_job_scatter(r->b, g_in, CHUNK, RC_DOUBLE));
    H_OK(ctx, rc_job_gather(r->b, r->gather, CHUNK, RC_DOUBLE));
    H_OK(ctx, rc_job_submit(r->a));
    H_OK(ctx, rc_job_submit(r->b));
    r->sa = r->sb = RC_EAGAIN;
}

/* Drive round r to its end, running the storm while storm_end is ahead. */
static void round_run(round_t *r, rc_ctx *ctx, int k, long long t_start, long long storm_end, long long *next_event,
                      long long restart_at)
{
    long long t0 = h_now_ms(), dl = h_deadline(H_DEADLINE_MS * 2);
    round_submit(r, ctx, k);
    while (r->sa == RC_EAGAIN || r->sb == RC_EAGAIN) {
        if (r->sa == RC_EAGAIN && (r->sa = rc_job_test(r->a)) != RC_EAGAIN && r->sa != RC_OK)
            H_FAIL("round %d, reduce job: %s: %s", k, h_stname(r->sa), rc_ctx_errmsg(ctx));
        if (r->sb == RC_EAGAIN && (r->sb = rc_job_test(r->b)) != RC_EAGAIN && r->sb != RC_OK)
            H_FAIL("round %d, gather job: %s: %s", k, h_stname(r->sb), rc_ctx_errmsg(ctx));
        long long now = h_now_ms();
        resume_due(now, now >= storm_end);
        check_processes();
        if (now < storm_end && now >= *next_event && g_count.events < MAX_EVENTS) {
            int restart_now = g_count.restarts == 0 && now >= restart_at;
            storm_event(now - t_start, restart_now);
            *next_event = h_now_ms() + dice_between(1000, 2500);
        }
        if (h_expired(dl)) {
            rc_job_stats a, b;
            rc_job_get_stats(r->a, &a);
            rc_job_get_stats(r->b, &b);
            H_FAIL("round %d not finished after %d ms (reduce %llu/%d, gather %llu/%d done)", k, H_DEADLINE_MS * 2,
                   (unsigned long long)a.done, TA, (unsigned long long)b.done, TB);
        }
        h_nap_ms(10);
    }
    r->seconds = (double)(h_now_ms() - t0) / 1000.0;
    H_OK(NULL, rc_job_get_stats(r->a, &r->st_a));
    H_OK(NULL, rc_job_get_stats(r->b, &r->st_b));
    rc_job_destroy(r->a);
    rc_job_destroy(r->b);
    r->a = r->b = NULL;
}

/* The exact answers, computed here from the kernels' contract. */
static void local_answers(double sum[2])
{
    for (uint64_t k = 0; k < TA; k++) {
        double v[2];
        rs_rec_value(SEED_A, k, g_samples, v);
        if (k == 0) {
            sum[0] = v[0];
            sum[1] = v[1];
        } else { /* the master's rank order: (ranks below) + this rank */
            sum[0] = sum[0] + v[0];
            sum[1] = sum[1] + v[1];
        }
    }
}

static void t_chaos(void)
{
    int slow = rs_slow();
    long long storm_ms = slow ? 30000 : 60000;
    g_samples = slow ? 3000 : 20000;
    g_task_ms = 200;
    for (size_t i = 0; i < (size_t)TB * CHUNK; i++) {
        double x = ldexp(1.0 + (double)((i * 2654435761u) % 100003u) / 100003.0, (int)(i % 61) - 30);
        g_in[i] = i & 1 ? -x : x;
        g_squares[i] = g_in[i] * g_in[i];
    }
    double want[2];
    local_answers(want);
    rs_rec_setup();
    for (int i = 0; i < POOL; i++)
        g_pool[i].pid = h_spawn_worker(g_wopts);
    rc_ctx *ctx = h_ctx();
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_JOB_TIMEOUT_MS, 0)); /* the round's own deadline applies */
    static round_t ref, r;
    long long never = 1LL << 62;

    /* undisturbed */
    long long t_start = h_now_ms();
    long long next = never;
    round_run(&ref, ctx, 0, t_start, 0, &next, never);
    H_CHECK(memcmp(ref.sum, want, sizeof want) == 0, "undisturbed reduce {%.17g, %.17g}, want {%.17g, %.17g}",
            ref.sum[0], ref.sum[1], want[0], want[1]);
    H_CHECK(memcmp(ref.gather, g_squares, sizeof g_squares) == 0, "undisturbed gather differs from the squares");
    H_EQ_U64(ref.st_a.done, TA);
    H_EQ_U64(ref.st_b.done, TB);
    printf("undisturbed round: %.2f s, pi-like reduce {%.17g, %.17g} (pi ~ %.6f)\n", ref.seconds, ref.sum[0],
           ref.sum[1], 4.0 * ref.sum[0] / ((double)g_samples * TA));

    /* the storm */
    long long storm_start = h_now_ms(), storm_end = storm_start + storm_ms;
    long long restart_at = storm_start + storm_ms * 45 / 100;
    next = storm_start + dice_between(500, 1500);
    int rounds = 0;
    double chaos_secs = 0;
    uint64_t redelivered = 0, duplicates = 0, rejected = 0;
    while (h_now_ms() < storm_end && rounds < MAX_ROUNDS) {
        int k = ++rounds;
        round_run(&r, ctx, k, storm_start, storm_end, &next, restart_at);
        H_CHECK(memcmp(r.sum, ref.sum, sizeof r.sum) == 0,
                "round %d: reduce {%.17g, %.17g} is not bit-identical to the undisturbed {%.17g, %.17g}", k,
                r.sum[0], r.sum[1], ref.sum[0], ref.sum[1]);
        H_MEMEQ(r.gather, ref.gather, sizeof r.gather);
        H_EQ_U64(r.st_a.done, TA);
        H_EQ_U64(r.st_b.done, TB);
        H_EQ_U64(r.st_a.rejected + r.st_b.rejected, 0);
        chaos_secs += r.seconds;
        redelivered += r.st_a.redelivered + r.st_b.redelivered;
        duplicates += r.st_a.duplicates + r.st_b.duplicates;
        rejected += r.st_a.rejected + r.st_b.rejected;
        printf("round %d: %.2f s, exact; redelivered %llu, duplicates %llu\n", k, r.seconds,
               (unsigned long long)(r.st_a.redelivered + r.st_b.redelivered),
               (unsigned long long)(r.st_a.duplicates + r.st_b.duplicates));
    }
    resume_due(h_now_ms(), 1);
    long long total_ms = h_now_ms() - t_start;

    /* what really ran */
    size_t n, hist[8], all[8] = {0}, ref_hist[8], execs = 0;
    rs_rec *v = rs_rec_read(&n);
    rs_rec_hist(v, n, 1, TA, ref_hist);
    size_t h2[8];
    rs_rec_hist(v, n, 2, TB, h2);
    for (int k = 0; k < 8; k++)
        ref_hist[k] += h2[k];
    for (int k = 1; k <= rounds; k++) {
        execs += rs_rec_hist(v, n, 2 * (uint64_t)k + 1, TA, hist);
        for (int i = 0; i < 8; i++)
            all[i] += hist[i];
        execs += rs_rec_hist(v, n, 2 * (uint64_t)k + 2, TB, hist);
        for (int i = 0; i < 8; i++)
            all[i] += hist[i];
    }
    free(v);
    H_CHECK(all[0] == 0, "%zu task(s) of the storm rounds never started, yet their jobs finished", all[0]);
    H_CHECK(g_count.restarts == 1 || rounds == MAX_ROUNDS, "the storm ended without its Redis restart");

    H_STOP_ALL(); /* SIGTERMed and remaining workers: exit 0 */
    printf("\nCHAOS SUMMARY (storm seed %llu, lease %.1f s, pool %d, %s build)\n", (unsigned long long)STORM_SEED,
           LEASE_MS / 1000.0, POOL, slow ? "slow" : "normal");
    printf("  storm: %.1f s, %d round(s) of 2 jobs (%d + %d tasks), %d events: %d kill -9, %d SIGSTOP/SIGCONT, "
           "%d SIGTERM, %d redis restart(s); %d worker processes in all\n",
           (double)storm_ms / 1000.0, rounds, TA, TB, g_count.events, g_count.kills, g_count.stalls,
           g_count.sigterms, g_count.restarts, H.nw);
    printf("  answers: every round bit-identical to the undisturbed run; done == ntasks in every job\n");
    rs_print_hist("  undisturbed", ref_hist);
    rs_print_hist("  storm rounds", all);
    printf("  storm executions: %zu for %d tasks (%.3f per task)\n", execs, rounds * (TA + TB),
           rounds ? (double)execs / (rounds * (TA + TB)) : 0.0);
    printf("  redeliveries (stats.redelivered): %llu, duplicates ignored: %llu, rejected: %llu\n",
           (unsigned long long)redelivered, (unsigned long long)duplicates, (unsigned long long)rejected);
    double avg = rounds ? chaos_secs / rounds : 0.0;
    printf("  wall: undisturbed round %.2f s, storm rounds %.2f s on average (%+.2f s, %+.0f%%); test total %.1f s\n",
           ref.seconds, avg, avg - ref.seconds, ref.seconds > 0 ? 100.0 * (avg - ref.seconds) / ref.seconds : 0.0,
           (double)total_ms / 1000.0);
    rc_ctx_destroy(ctx);
}

int main(int argc, char **argv)
{
    static const h_test tests[] = {{"chaos", t_chaos}, {NULL, NULL}};
    return h_main(argc, argv, tests);
}
