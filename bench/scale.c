/* scale - many worker processes on one Redis: tasks/s, Redis CPU and commands per task for 2, 64 and 256 workers.
 *
 * Why: a fleet is sized by what one Redis can feed.  Each worker costs the
 * server something even when idle (a registry beat that also claims the
 * pool's lapsed-lease scan, a blocking XREADGROUP per poll slice when one is
 * set) and every task costs a few commands; whether 256 workers still get
 * tasks as fast as 2 do, and how much of one Redis core that takes, is what
 * this program measures.  On a 2-core machine 64 and 256 workers are heavily
 * oversubscribed, which is the point: the kernel time is fixed (a busy-wait
 * of --busy-us of thread CPU time, so a descheduled worker does not finish
 * early), so tasks/s shows how
 * much of the machine goes to coordination rather than to kernels.  For each
 * pool size (rc_local_start, this binary with --worker): the start-up time
 * until every worker is registered, 3 s idle (three poll slices with
 * --poll-ms; the pool's standing cost), a job of no-op tasks
 * and a job of busy tasks, each a reduce with a
 * known exact answer (SUM of ranks) that is checked, with tasks/s, Redis CPU
 * (used_cpu_user+used_cpu_sys delta / wall) and commands per task from INFO
 * commandstats reset before the phase; then the ratios to the 2-worker
 * reference.
 *
 * The no-op job runs --repeat times per pool (default 5): it lasts well under a
 * second, so one round measures the neighbours as much as redcoll; the
 * medians over the rounds of Redis, worker and master CPU per task, and of
 * the workers' wake-ups per task (how often their threads were put on a
 * CPU, from schedstat), say where the time went in the typical round, not
 * just the luckiest.  On these VMs a wake-up costs a process tens of
 * microseconds, so at 256 workers wake-ups are most of what a task costs.
 *
 *   scale [--quick] [--json] [--workers 2,64,256] [--noop-tasks N] [--busy-tasks N] [--busy-us US]
 *         [--repeat R]
 *   scale --worker */
#include "bench_common.h"
#include "redcoll.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define QUEUE "redcoll"
#define MAXPOOLS 8
#define MAXREP 32


/* ------------------------------------------------------------------ */
/* worker role */

static int out_rank(rc_task *t)
{
    double *out;
    if (rc_task_output(t, sizeof *out, (void **)&out) != RC_OK)
        return rc_task_fail(t, "out of memory");
    *out = (double)rc_task_rank(t);
    return 0;
}

static int noop_kernel(rc_task *t, void *user)
{
    (void)user;
    return out_rank(t);
}

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* bcast {us}: spin until this thread has used `us` microseconds of CPU */
static int busy_kernel(rc_task *t, void *user)
{
    (void)user;
    size_t n;
    const uint64_t *us = rc_task_bcast(t, &n);
    if (n != sizeof *us)
        return rc_task_fail(t, "busy: broadcast is %zu bytes, expected 8", n);
    double end = thread_cpu() + (double)*us / 1e6;
    volatile uint64_t x = 0;
    while (thread_cpu() < end)
        for (int i = 0; i < 100; i++)
            x = x + (uint64_t)i;
    return out_rank(t);
}

/* Workers append their log lines to $SCALE_WORKER_LOG (one write each, so
   lines of different workers do not interleave); the master counts them per
   phase instead of 256 processes flooding the terminal. */
static int g_logfd = -1;

static void file_logger(int level, const char *line, void *user)
{
    (void)user;
    char buf[1200];
    int n = snprintf(buf, sizeof buf, "%d %ld %s\n", level, (long)getpid(), line);
    if (n > 0 && g_logfd >= 0)
        (void)!write(g_logfd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static int worker_main(void)
{
    /* --sched idle: this process, and the threads it starts after, at
       SCHED_IDLE (allowed unprivileged) */
    const char *sp = getenv("SCALE_WORKER_SCHED");
    if (sp && strcmp(sp, "idle") == 0) {
        struct sched_param prm;
        memset(&prm, 0, sizeof prm);
        if (sched_setscheduler(0, SCHED_IDLE, &prm) != 0) {
            perror("scale worker: sched_setscheduler(SCHED_IDLE)");
            return 1;
        }
    }
    rc_ctx *ctx = rc_ctx_create();
    if (!ctx || rc_register_kernel(ctx, "noop", noop_kernel, NULL) != RC_OK ||
        rc_register_kernel(ctx, "busy", busy_kernel, NULL) != RC_OK)
        return 1;
    const char *pm = getenv("SCALE_WORKER_POLL_MS"); /* --poll-ms */
    if (pm && *pm && rc_ctx_set_int(ctx, RC_OPT_POLL_MS, atoll(pm)) != RC_OK) {
        fprintf(stderr, "scale worker: %s\n", rc_ctx_errmsg(ctx));
        return 1;
    }
    const char *lf = getenv("SCALE_WORKER_LOG");
    if (lf && *lf && (g_logfd = open(lf, O_WRONLY | O_APPEND | O_CLOEXEC)) >= 0) {
        (void)rc_ctx_set_logger(ctx, file_logger, NULL);
        (void)rc_ctx_set_int(ctx, RC_OPT_LOG_LEVEL, 2); /* info: takeovers are logged there */
    }
    bc_ctx = ctx;
    rc_status st = rc_worker_run(ctx);
    if (st != RC_OK)
        fprintf(stderr, "scale worker %ld: %s: %s\n", (long)getpid(), rc_strerror(st), rc_ctx_errmsg(ctx));
    bc_ctx = NULL;
    rc_ctx_destroy(ctx);
    return st == RC_OK ? 0 : 1;
}

/* ------------------------------------------------------------------ */

/* What the workers logged during a phase. */
typedef struct wlog {
    long long lines, warnings, lease_lost, took_over;
} wlog;

static char g_logpath[64];

static off_t log_size(void)
{
    struct stat st;
    return g_logpath[0] && stat(g_logpath, &st) == 0 ? st.st_size : 0;
}

static void log_count(off_t from, wlog *o)
{
    memset(o, 0, sizeof *o);
    FILE *f = g_logpath[0] ? fopen(g_logpath, "r") : NULL;
    if (!f)
        return;
    fseeko(f, from, SEEK_SET);
    char line[1400];
    while (fgets(line, sizeof line, f)) {
        o->lines++;
        if (line[0] <= '1')
            o->warnings++;
        if (strstr(line, "no longer ours"))
            o->lease_lost++;
        if (strstr(line, "took over"))
            o->took_over++;
    }
    fclose(f);
}

typedef struct job_result {
    const char *kernel;
    uint64_t n;
    double rate, seconds;
    uint64_t workers_seen, duplicates, redelivered;
    wlog log;
    int ok;
    bc_phase ph;
} job_result;

typedef struct pool_result {
    int w;
    int ok;
    double start_s, stop_s;
    long long registered, clients;
    bc_phase idle;
    job_result noop, busy;     /* noop: the best of the rounds */
    double noop_rates[MAXREP]; /* every round's tasks/s, sorted after the pool ran */
    int rounds;
    double noop_median;
    /* per round, per task: Redis, worker and master CPU (us) and worker
       wake-ups; their medians say more than the best round's alone */
    double r_redis[MAXREP], r_kids[MAXREP], r_self[MAXREP], r_runs[MAXREP];
    double med_redis, med_kids, med_self, med_runs;
} pool_result;

static int run_job(rc_ctx *ctx, redisContext *mc, const char *kernel, uint64_t n, uint64_t busy_us, job_result *o)
{
    memset(o, 0, sizeof *o);
    o->kernel = kernel;
    o->n = n;
    rc_job *job = NULL;
    double sum = 0;
    rc_status st = rc_job_create(ctx, kernel, n, &job);
    if (st == RC_OK && !strcmp(kernel, "busy"))
        st = rc_job_bcast(job, &busy_us, 1, RC_UINT64);
    if (st == RC_OK)
        st = rc_job_reduce(job, &sum, 1, RC_DOUBLE, rc_op_builtin(RC_SUM));
    off_t log0 = log_size();
    bc_phase_begin(mc, &o->ph);
    if (st == RC_OK)
        st = rc_job_run(job);
    bc_phase_end(mc, &o->ph);
    if (st == RC_OK) {
        rc_job_stats js;
        rc_job_get_stats(job, &js);
        o->workers_seen = js.workers_seen;
        o->duplicates = js.duplicates;
        o->redelivered = js.redelivered;
    }
    usleep(100000); /* let the last log lines land */
    log_count(log0, &o->log);
    rc_job_destroy(job);
    double want = (double)n * (double)(n - 1) / 2;
    o->seconds = o->ph.wall;
    o->rate = (double)n / o->seconds;
    o->ok = st == RC_OK && sum == want;
    if (st != RC_OK)
        fprintf(stderr, "scale: %s job: %s: %s\n", kernel, rc_strerror(st), rc_ctx_errmsg(ctx));
    else if (!o->ok)
        fprintf(stderr, "scale: %s job: sum of ranks %.17g, expected %.17g\n", kernel, sum, want);
    return o->ok ? 0 : -1;
}

static int run_pool(int w, uint64_t nnoop, uint64_t nbusy, uint64_t busy_us, double idle_s, int rounds, bc_machine *m,
                    int *have_machine, pool_result *o)
{
    memset(o, 0, sizeof *o);
    o->w = w;
    char self[4096];
    bc_self_exe(self, sizeof self);
    const char *argv[] = {self, "--worker", NULL};
    rc_ctx *ctx = rc_ctx_create();
    rc_local *loc = NULL;
    redisContext *mc = NULL;
    int ok = 0;
    if (!ctx)
        return -1;
    bc_ctx = ctx;
    double t0 = bc_now();
    rc_status st = rc_local_start(ctx, argv, w, &loc);
    if (st != RC_OK) {
        fprintf(stderr, "scale: rc_local_start(%d): %s: %s\n", w, rc_strerror(st), rc_ctx_errmsg(ctx));
        goto out;
    }
    if (!(mc = bc_connect(rc_local_url(loc))))
        goto out;
    if (!*have_machine) {
        bc_machine_get(m, mc);
        *have_machine = 1;
    }
    o->registered = bc_wait_workers(mc, QUEUE, w, 120);
    o->start_s = bc_now() - t0;
    if (o->registered < w) {
        fprintf(stderr, "scale: only %lld of %d workers registered within 120 s\n", o->registered, w);
        goto out;
    }
    fprintf(stderr, "scale: %d workers registered in %.2f s\n", w, o->start_s);
    o->clients = (long long)bc_info_num(mc, "clients", "connected_clients");
    {
        /* warm every worker up, not one: a worker's first full batch (256
           tiny tasks) grows its heap and reply pools - some 100 page faults,
           each a hypervisor trip on these VMs - and with one warm-up task
           per worker, a 256-worker pool was still paying that in its
           tenth measured round (a third of the pool takes each round) */
        job_result warm;
        if (run_job(ctx, mc, "noop", (uint64_t)w * 256, 0, &warm) != 0)
            goto out;
    }
    /* the pool's standing cost: nothing queued */
    bc_phase_begin(mc, &o->idle);
    while (bc_now() - o->idle.t0 < idle_s && !bc_stop)
        usleep(20000);
    bc_phase_end(mc, &o->idle);
    ok = 1;
    fprintf(stderr, "scale: %d workers: %d x %" PRIu64 " no-op tasks\n", w, rounds, nnoop);
    /* no-op jobs are short and their rate swings with whatever else the
       host runs: several rounds, best and median */
    for (int k = 0; k < rounds && ok && !bc_stop; k++) {
        job_result one;
        ok &= run_job(ctx, mc, "noop", nnoop, 0, &one) == 0;
        double per = one.n ? 1e6 / (double)one.n : 0;
        o->r_redis[o->rounds] = one.ph.redis_cpu * per;
        o->r_kids[o->rounds] = one.ph.kids_cpu * per;
        o->r_self[o->rounds] = one.ph.self_cpu * per;
        o->r_runs[o->rounds] = one.ph.kids_runs * per / 1e6;
        o->noop_rates[o->rounds++] = one.rate;
        if (one.rate > o->noop.rate)
            o->noop = one;
    }
    o->noop_median = o->rounds ? bc_percentile(o->noop_rates, (size_t)o->rounds, 50) : 0;
    if (o->rounds) {
        o->med_redis = bc_percentile(o->r_redis, (size_t)o->rounds, 50);
        o->med_kids = bc_percentile(o->r_kids, (size_t)o->rounds, 50);
        o->med_self = bc_percentile(o->r_self, (size_t)o->rounds, 50);
        o->med_runs = bc_percentile(o->r_runs, (size_t)o->rounds, 50);
    }
    if (!bc_stop) {
        fprintf(stderr, "scale: %d workers: %" PRIu64 " tasks of %" PRIu64 " us CPU\n", w, nbusy, busy_us);
        ok &= run_job(ctx, mc, "busy", nbusy, busy_us, &o->busy) == 0;
    }
out:
    o->ok = ok && !bc_stop;
    if (mc)
        redisFree(mc);
    double ts = bc_now();
    rc_local_stop(loc);
    o->stop_s = bc_now() - ts;
    bc_ctx = NULL;
    rc_ctx_destroy(ctx);
    return o->ok ? 0 : -1;
}

static void print_job(const char *label, const job_result *j, double busy_s, long cores)
{
    char br[400];
    bc_phase_breakdown(&j->ph, (double)j->n, 9, br, sizeof br);
    printf("  %-6s %7" PRIu64 " tasks %7.3f s %9.0f tasks/s  seen %4" PRIu64 "  redis %3.0f%% of a core, %5.1f us/task, "
           "%5.2f cmds/task  workers %6.1f us/task, %.3f wake-ups/task  master %5.1f us/task",
           label, j->n, j->seconds, j->rate, j->workers_seen, j->ph.wall > 0 ? 100 * j->ph.redis_cpu / j->ph.wall : 0,
           j->n ? j->ph.redis_cpu * 1e6 / (double)j->n : 0, j->n ? (double)j->ph.calls / (double)j->n : 0,
           j->n ? j->ph.kids_cpu * 1e6 / (double)j->n : 0, j->n ? j->ph.kids_runs / (double)j->n : 0,
           j->n ? j->ph.self_cpu * 1e6 / (double)j->n : 0);
    if (busy_s > 0)
        printf("  kernel share %.0f%%", 100 * j->rate * busy_s / (double)cores);
    if (j->ph.redis_wait >= 0 && j->ph.wall > 0)
        printf("  redis waited for a CPU %.0f%% of the time", 100 * j->ph.redis_wait / j->ph.wall);
    printf("%s\n", j->ok ? "" : "  FAILED");
    printf("  %-6s   per task: %s\n", "", br);
    printf("  %-6s   redelivered %" PRIu64 ", duplicates ignored %" PRIu64 "; workers logged %lld warnings: %lld 'no "
           "longer ours' lease notices, %lld takeovers of lapsed leases\n",
           "", j->redelivered, j->duplicates, j->log.warnings, j->log.lease_lost, j->log.took_over);
}

static void json_job(bc_json *j, const char *key, const job_result *r, double busy_s, long cores)
{
    bj_begin_obj(j, key);
    bj_str(j, "kernel", r->kernel ? r->kernel : "");
    bj_int(j, "tasks", (long long)r->n);
    bj_num(j, "seconds", r->seconds);
    bj_num(j, "tasks_per_s", r->rate);
    bj_int(j, "workers_seen", (long long)r->workers_seen);
    bj_int(j, "redelivered", (long long)r->redelivered);
    bj_int(j, "duplicates", (long long)r->duplicates);
    bj_int(j, "worker_warnings", r->log.warnings);
    bj_int(j, "worker_lease_lost_notices", r->log.lease_lost);
    bj_int(j, "worker_takeovers", r->log.took_over);
    bj_bool(j, "ok", r->ok);
    if (busy_s > 0)
        bj_num(j, "kernel_share_of_machine", r->rate * busy_s / (double)cores);
    bj_phase(j, "phase", &r->ph, (double)r->n);
    bj_end_obj(j);
}

static void print_pool(const pool_result *r, long cores, double busy_s)
{
    printf("\n== %d workers: registered %.2f s after rc_local_start, %lld Redis connections, stopped in %.2f s ==\n", r->w,
           r->start_s, r->clients, r->stop_s);
    double idle_cmds = r->idle.wall > 0 ? (double)r->idle.calls / r->idle.wall : 0;
    printf("  idle   %.0f commands/s (%.1f per worker per s), redis %.1f%% of a core (%.3f%% per worker)\n", idle_cmds,
           idle_cmds / r->w, r->idle.wall > 0 ? 100 * r->idle.redis_cpu / r->idle.wall : 0,
           r->idle.wall > 0 ? 100 * r->idle.redis_cpu / r->idle.wall / r->w : 0);
    print_job("no-op", &r->noop, 0, cores);
    if (r->rounds > 1)
        printf("           no-op rounds: best %.0f, median %.0f, range %.0f-%.0f tasks/s over %d rounds (the line above "
               "is the best)\n",
               r->noop.rate, r->noop_median, r->noop_rates[0], r->noop_rates[r->rounds - 1], r->rounds);
    if (r->rounds > 1)
        printf("           no-op rounds, medians per task: redis %.1f us, workers %.1f us and %.3f wake-ups, master %.1f us\n",
               r->med_redis, r->med_kids, r->med_runs, r->med_self);
    print_job("busy", &r->busy, busy_s, cores);
    fflush(stdout);
}

static void json_pool(bc_json *j, const pool_result *r, const pool_result *ref, const char *sched, long cores,
                      double busy_s)
{
    bj_begin_obj(j, NULL);
    bj_int(j, "workers", r->w);
    bj_str(j, "worker_sched", sched);
    bj_num(j, "start_s", r->start_s);
    bj_num(j, "stop_s", r->stop_s);
    bj_int(j, "redis_connections", r->clients);
    bj_begin_obj(j, "idle");
    bj_num(j, "commands_per_s", r->idle.wall > 0 ? (double)r->idle.calls / r->idle.wall : 0);
    bj_num(j, "redis_cpu_frac", r->idle.wall > 0 ? r->idle.redis_cpu / r->idle.wall : 0);
    bj_phase(j, "phase", &r->idle, 0);
    bj_end_obj(j);
    json_job(j, "noop", &r->noop, 0, cores);
    json_job(j, "busy", &r->busy, busy_s, cores);
    bj_num(j, "noop_ratio_to_reference", ref->noop.rate > 0 ? r->noop.rate / ref->noop.rate : 0);
    bj_int(j, "noop_rounds", r->rounds);
    bj_num(j, "noop_median_tasks_per_s", r->noop_median);
    bj_num(j, "noop_median_redis_us_per_task", r->med_redis);
    bj_num(j, "noop_median_workers_us_per_task", r->med_kids);
    bj_num(j, "noop_median_workers_runs_per_task", r->med_runs);
    bj_num(j, "noop_median_master_us_per_task", r->med_self);
    bj_num(j, "noop_ratio_to_reference_median", ref->noop_median > 0 ? r->noop_median / ref->noop_median : 0);
    bj_num(j, "busy_ratio_to_reference", ref->busy.rate > 0 ? r->busy.rate / ref->busy.rate : 0);
    bj_bool(j, "ok", r->ok);
    bj_end_obj(j);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: scale [--quick] [--json] [--workers 2,64,256] [--noop-tasks N] [--busy-tasks N] [--busy-us US]\n"
               "             [--repeat R] [--sched idle|normal|both] [--poll-ms MS]\n"
               "Pools of many worker processes on one private Redis: tasks/s, Redis CPU and commands\n"
               "per task, idle cost per worker, ratios to the 2-worker reference.\n"
               "  --quick          small jobs, pools 2 and 64 (about 15 s)\n"
               "  --workers LIST   pool sizes (default 2,64,256; the first is the reference)\n"
               "  --noop-tasks N   tasks of the no-op job (default 20000; --quick 3000)\n"
               "  --busy-tasks N   tasks of the busy job (default 4000; --quick 1000)\n"
               "  --busy-us US     thread CPU time each busy task spins (default 1000)\n"
               "  --repeat R       no-op jobs per pool, best and median reported (default 5; --quick 1)\n"
               "  --sched MODE     idle: workers at SCHED_IDLE, so Redis and the master never wait behind\n"
               "                   them for a CPU, as on a fleet whose workers are other hosts; normal:\n"
               "                   every process at the default policy, one crowded host; both (default;\n"
               "                   --quick: idle), each with its own ratios\n"
               "  --poll-ms MS     the workers' blocking poll slice, RC_OPT_POLL_MS (default: the\n"
               "                   library's, 30000 for a worker): what an idle worker costs Redis\n"
               "  --json           one JSON object on stdout (progress on stderr)\n");
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--worker") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = bc_on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        return worker_main();
    }
    int json = 0, quick = 0, nw = 0, ws[MAXPOOLS];
    uint64_t nnoop = 0, nbusy = 0, busy_us = 1000;
    int rounds = 0, sched_from = 0, sched_to = -1; /* scheds[from..to) */
    long long poll_ms = 0;
    static const char *const scheds[] = {"idle", "normal"};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--noop-tasks") && i + 1 < argc)
            nnoop = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--busy-tasks") && i + 1 < argc)
            nbusy = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--busy-us") && i + 1 < argc)
            busy_us = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
            if ((rounds = atoi(argv[++i])) < 1 || rounds > MAXREP) {
                fprintf(stderr, "scale: --repeat takes 1..%d\n", MAXREP);
                return 2;
            }
        }
        else if (!strcmp(argv[i], "--poll-ms") && i + 1 < argc) {
            char *end;
            poll_ms = strtoll(argv[++i], &end, 10);
            if (*end || poll_ms < 1 || poll_ms > 5000) {
                fprintf(stderr, "scale: --poll-ms takes 1..5000 (RC_OPT_POLL_MS), not '%s'\n", argv[i]);
                return 2;
            }
        }
        else if (!strcmp(argv[i], "--sched") && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(v, "idle") || !strcmp(v, "normal") || !strcmp(v, "both")) {
                sched_from = !strcmp(v, "normal");
                sched_to = !strcmp(v, "idle") ? 1 : 2;
            } else {
                fprintf(stderr, "scale: --sched takes idle, normal or both, not '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            nw = 0;
            for (char *t = strtok(argv[++i], ","); t; t = strtok(NULL, ",")) {
                if (nw == MAXPOOLS || (ws[nw] = atoi(t)) < 1 || ws[nw] > 4096) {
                    fprintf(stderr, "scale: --workers takes up to %d counts of 1..4096\n", MAXPOOLS);
                    return 2;
                }
                nw++;
            }
        } else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!nw) {
        ws[0] = 2, ws[1] = 64, ws[2] = 256;
        nw = quick ? 2 : 3;
    }
    if (!nnoop)
        nnoop = quick ? 3000 : 20000;
    if (!nbusy)
        nbusy = quick ? 1000 : 4000;
    if (!rounds)
        rounds = quick ? 1 : 5;
    if (sched_to < 0)
        sched_to = quick ? 1 : 2;
    if (nnoop < 2 || nbusy < 2 || nnoop > 100000000 || nbusy > 100000000 || busy_us > 10000000) {
        fprintf(stderr, "scale: task counts 2..1e8, --busy-us at most 1e7\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = bc_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    bc_machine m;
    memset(&m, 0, sizeof m);
    int have_machine = 0, ok = 1;
    static pool_result res[2][MAXPOOLS];
    double t_all = bc_now(), load0 = bc_loadavg1(), busy_s = (double)busy_us / 1e6;
    /* an idle window of 3 s, or three poll slices when set: two beats of
       every worker's lease thread at the default lease */
    double idle_s = quick ? 0.5 : 3.0 * (double)(poll_ms ? poll_ms : 1000) / 1000;
    snprintf(g_logpath, sizeof g_logpath, "/tmp/redcoll-scale-log.XXXXXX");
    int lfd = mkstemp(g_logpath);
    if (lfd >= 0) {
        close(lfd);
        setenv("SCALE_WORKER_LOG", g_logpath, 1); /* rc_local_start passes the environment on */
    } else {
        g_logpath[0] = '\0';
    }
    if (poll_ms) {
        char v[32];
        snprintf(v, sizeof v, "%lld", poll_ms);
        setenv("SCALE_WORKER_POLL_MS", v, 1);
    }
    int printed_machine = 0;
    for (int s = sched_from; s < sched_to && !bc_stop; s++) {
        setenv("SCALE_WORKER_SCHED", scheds[s], 1);
        for (int i = 0; i < nw && !bc_stop; i++) {
            ok &= run_pool(ws[i], nnoop, nbusy, busy_us, idle_s, rounds, &m, &have_machine, &res[s][i]) == 0;
            if (json)
                continue;
            if (!printed_machine++)
                printf("scale: redcoll %s; machine %s, %s, %ld cores, %s, Redis %s, load %.2f at start\n",
                       REDCOLL_VERSION_STRING, m.host, m.cpu, m.cores, m.kernel, m.redis_version, load0);
            if (i == 0)
                printf("\n#### workers at %s%s\n", s == 0 ? "SCHED_IDLE" : "the default policy",
                       s == 0 ? ": Redis and the master first, as when the workers are other hosts"
                              : ": every process competes for the cores");
            print_pool(&res[s][i], m.cores, busy_s);
        }
    }
    m.load1 = load0;
    double total = bc_now() - t_all;
    if (json) {
        bc_json j = {0};
        bj_begin_obj(&j, NULL);
        bj_str(&j, "benchmark", "scale");
        bj_str(&j, "redcoll_version", REDCOLL_VERSION_STRING);
        bj_machine(&j, &m);
        bj_begin_obj(&j, "config");
        bj_int(&j, "noop_tasks", (long long)nnoop);
        bj_int(&j, "busy_tasks", (long long)nbusy);
        bj_int(&j, "busy_us", (long long)busy_us);
        bj_bool(&j, "quick", quick);
        bj_int(&j, "worker_poll_ms", poll_ms); /* 0: the library's default */
        bj_end_obj(&j);
        bj_begin_arr(&j, "pools"); /* ratios are to the first pool of the same scheduling policy */
        for (int s = sched_from; s < sched_to; s++)
            for (int i = 0; i < nw; i++)
                json_pool(&j, &res[s][i], &res[s][0], scheds[s], m.cores, busy_s);
        bj_end_arr(&j);
        bj_num(&j, "load1_at_end", bc_loadavg1());
        bj_num(&j, "total_seconds", total);
        bj_bool(&j, "ok", ok && !bc_stop);
        bj_end_obj(&j);
        printf("%s\n", j.buf ? j.buf : "{}");
        bj_free(&j);
    } else {
        for (int s = sched_from; s < sched_to; s++) {
            const pool_result *ref = &res[s][0];
            printf("\nratios to %d workers, workers at %s (tasks/s; no-op best/best, median/median):", ref->w,
                   s == 0 ? "SCHED_IDLE" : "the default policy");
            for (int i = 1; i < nw; i++)
                printf("  %d: no-op %.3f (median %.3f), busy %.3f;", res[s][i].w,
                       ref->noop.rate > 0 ? res[s][i].noop.rate / ref->noop.rate : 0,
                       ref->noop_median > 0 ? res[s][i].noop_median / ref->noop_median : 0,
                       ref->busy.rate > 0 ? res[s][i].busy.rate / ref->busy.rate : 0);
        }
        printf("\ntotal %.1f s, load %.2f at end%s\n", total, bc_loadavg1(), ok ? "" : "; SOME PHASES FAILED");
    }
    if (g_logpath[0]) {
        /* what the workers said beyond the counted notices, for a person to read */
        FILE *f = fopen(g_logpath, "r");
        char line[1400];
        int shown = 0;
        while (f && fgets(line, sizeof line, f))
            if (line[0] <= '1' && !strstr(line, "no longer ours") && shown++ < 5)
                fprintf(stderr, "scale: a worker said: %s", line);
        if (f)
            fclose(f);
        unlink(g_logpath);
    }
    return bc_stop ? 130 : ok ? 0 : 1;
}
