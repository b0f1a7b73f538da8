/* reduce - bytes through redcoll: element-wise SUM reduce of 1 KiB..64 MiB vectors, and scatter/gather.
 *
 * Why: a reduce moves every byte of every task's output through the worker's
 * socket, Redis, the master's socket, the master's MAC check and its
 * rank-order merge.  Which of these bounds the throughput decides what to
 * optimise, so the figures only mean something next to yardsticks measured
 * in the same run on the same machine: memcpy and a plain loop sum in this
 * process (the master's own floor), the library's rc_reduce_local (what the
 * merge calls), and raw hiredis SET and GET of the same sizes on the same
 * private redis-server (the socket and server ceiling, one copy each way).
 * Each size runs jobs of up to 64 MiB of output (at least two tasks) until
 * --total bytes (default 256 MiB) have been reduced or --budget seconds have
 * passed, so a slow machine still finishes in about a minute and says how
 * much it moved.  A scatter/gather of a --scatter-byte buffer of
 * doubles through an identity kernel gives the round trip master -> Redis ->
 * worker -> Redis -> master.  Workers are this binary with --worker, started
 * by rc_local_start (the embedded default) with RC_OPT_MAX_PAYLOAD raised to
 * 256 MiB on both sides.
 *
 *   reduce [--quick] [--json] [--workers 2] [--sizes 1K,64K,1M,16M,64M] [--total BYTES]
 *          [--budget SECONDS] [--max-tasks N] [--scatter BYTES] [--scatter-tasks 64]
 *   reduce --worker */
#include "bench_common.h"
#include "redcoll.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QUEUE "redcoll"
#define MAX_PAYLOAD (256LL << 20)
#define MAXSIZES 16
#define MIB (1024.0 * 1024.0)


/* ------------------------------------------------------------------ */
/* worker role */

/* bcast {n}: n doubles, element i = rank + (i & 7): cheap, and the sum over
   T ranks is exact: T(T-1)/2 + T*(i & 7) */
static int vec_kernel(rc_task *t, void *user)
{
    (void)user;
    size_t bl;
    const uint64_t *n = rc_task_bcast(t, &bl);
    if (bl != sizeof *n)
        return rc_task_fail(t, "vec: broadcast is %zu bytes, expected 8", bl);
    double *out;
    if (rc_task_output(t, (size_t)*n * sizeof *out, (void **)&out) != RC_OK)
        return rc_task_fail(t, "vec: out of memory for %" PRIu64 " doubles", *n);
    double r = (double)rc_task_rank(t);
    for (uint64_t i = 0; i < *n; i++)
        out[i] = r + (double)(i & 7);
    return 0;
}

static int ident_kernel(rc_task *t, void *user)
{
    (void)user;
    size_t n;
    const void *in = rc_task_input(t, &n);
    void *out;
    if (rc_task_output(t, n, &out) != RC_OK)
        return rc_task_fail(t, "ident: out of memory for %zu bytes", n);
    if (n)
        memcpy(out, in, n);
    return 0;
}

static int worker_main(void)
{
    rc_ctx *ctx = rc_ctx_create();
    if (!ctx || rc_register_kernel(ctx, "vec", vec_kernel, NULL) != RC_OK ||
        rc_register_kernel(ctx, "ident", ident_kernel, NULL) != RC_OK ||
        rc_ctx_set_int(ctx, RC_OPT_MAX_PAYLOAD, MAX_PAYLOAD) != RC_OK)
        return 1;
    bc_ctx = ctx;
    rc_status st = rc_worker_run(ctx);
    if (st != RC_OK)
        fprintf(stderr, "reduce worker: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
    bc_ctx = NULL;
    rc_ctx_destroy(ctx);
    return st == RC_OK ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* in-process yardsticks over a pool of `pool` bytes, vectors of `size` */

typedef struct yard {
    double memcpy_mbs, loopsum_mbs, reduce_local_mbs, merge_mbs;
} yard;

static double g_sink;

/* keep the compiler from dropping copies whose destination is overwritten */
#define CLOBBER(p) __asm__ volatile("" : : "r"(p) : "memory")

/* best MB/s of passes over the ntasks vectors: at least 3 passes and 0.05 s */
#define PASSES(expr_pass)                                                                                         \
    do {                                                                                                         \
        double best_ = 0, start_ = bc_now();                                                                     \
        for (int pass_ = 0; pass_ < 3 || (bc_now() - start_ < 0.05 && pass_ < 1000); pass_++) {                  \
            double t0_ = bc_now();                                                                               \
            expr_pass;                                                                                           \
            double r_ = bytes / MIB / (bc_now() - t0_);                                                          \
            if (r_ > best_)                                                                                      \
                best_ = r_;                                                                                      \
        }                                                                                                        \
        result_ = best_;                                                                                         \
    } while (0)

static void yardsticks(const unsigned char *pool, size_t poolbytes, size_t size, size_t ntasks, yard *y)
{
    size_t n = size / sizeof(double);
    double *acc = malloc(size), *tmp = malloc(size), result_ = 0;
    if (!acc || !tmp) {
        free(acc);
        free(tmp);
        return;
    }
    size_t per = poolbytes / size; /* distinct vectors in the pool */
    if (per == 0)
        per = 1;
    memset(acc, 0, size);
    memset(tmp, 0, size);
    /* a pass covers up to 64 MiB of vectors, whatever the task count */
    size_t nt = ntasks * size > ((size_t)64 << 20) ? ((size_t)64 << 20) / size : ntasks;
    if (nt < 1)
        nt = 1;
    double bytes = (double)nt * (double)size;
    /* memcpy: every vector into one destination, as the master copies a result */
    PASSES(for (size_t t = 0; t < nt; t++) {
        memcpy(acc, pool + (t % per) * size, size);
        CLOBBER(acc);
    });
    y->memcpy_mbs = result_;
    /* plain loop sum: acc[i] += v[i] */
    PASSES(for (size_t t = 0; t < nt; t++) {
        const double *v = (const double *)(pool + (t % per) * size);
        for (size_t i = 0; i < n; i++)
            acc[i] += v[i];
        CLOBBER(acc);
    });
    y->loopsum_mbs = result_;
    /* the library's reduce op */
    PASSES(for (size_t t = 0; t < nt; t++) {
        if (rc_reduce_local(pool + (t % per) * size, acc, n, RC_DOUBLE, rc_op_builtin(RC_SUM)) != RC_OK)
            break;
    });
    y->reduce_local_mbs = result_;
    /* what the master's merge does per result: copy in, reduce, copy back */
    PASSES(for (size_t t = 0; t < nt; t++) {
        memcpy(tmp, pool + (t % per) * size, size);
        if (rc_reduce_local(acc, tmp, n, RC_DOUBLE, rc_op_builtin(RC_SUM)) != RC_OK)
            break;
        memcpy(acc, tmp, size);
        CLOBBER(acc);
    });
    y->merge_mbs = result_;
    g_sink += acc[n / 2];
    free(acc);
    free(tmp);
}

/* ------------------------------------------------------------------ */
/* raw ceiling: SET then GET of `size` bytes, one round trip each */

typedef struct ceiling {
    double set_mbs, get_mbs, setget_mbs;          /* from the fastest SET and the fastest GET */
    double set_med_mbs, get_med_mbs, setget_med_mbs; /* from the median ones */
    long long reps;
    double redis_cpu_per_mib_ms;
} ceiling;

#define MAXREPS 4096

static int raw_ceiling(redisContext *c, const unsigned char *blob, size_t size, double want_bytes, double max_s,
                       ceiling *o)
{
    memset(o, 0, sizeof *o);
    static double ts[MAXREPS], tg[MAXREPS];
    long long reps = 0;
    bc_phase ph;
    bc_phase_begin(c, &ph);
    double start = bc_now();
    while ((((double)reps * (double)size < want_bytes && bc_now() - start < max_s) || reps < 3) && reps < MAXREPS) {
        double t0 = bc_now();
        redisReply *r = redisCommand(c, "SET bench:blob %b", blob, size);
        double t1 = bc_now();
        if (!r || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "reduce: raw SET of %zu bytes failed: %s\n", size, r ? r->str : c->errstr);
            if (r)
                freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
        r = redisCommand(c, "GET bench:blob");
        double t2 = bc_now();
        if (!r || r->type != REDIS_REPLY_STRING || r->len != size) {
            fprintf(stderr, "reduce: raw GET of %zu bytes failed\n", size);
            if (r)
                freeReplyObject(r);
            return -1;
        }
        g_sink += (double)(unsigned char)r->str[size / 2];
        freeReplyObject(r);
        ts[reps] = t1 - t0;
        tg[reps] = t2 - t1;
        reps++;
        if (bc_stop)
            break;
    }
    bc_phase_end(c, &ph);
    redisReply *r = redisCommand(c, "DEL bench:blob");
    if (r)
        freeReplyObject(r);
    double mib = (double)size / MIB;
    double smed = bc_percentile(ts, (size_t)reps, 50), gmed = bc_percentile(tg, (size_t)reps, 50);
    o->reps = reps;
    o->set_mbs = mib / ts[0]; /* sorted by bc_percentile */
    o->get_mbs = mib / tg[0];
    o->setget_mbs = mib / (ts[0] + tg[0]);
    o->set_med_mbs = mib / smed;
    o->get_med_mbs = mib / gmed;
    o->setget_med_mbs = mib / (smed + gmed);
    o->redis_cpu_per_mib_ms = ph.redis_cpu * 1e3 / (mib * (double)reps);
    return 0;
}

/* ------------------------------------------------------------------ */

typedef struct size_result {
    size_t size;
    uint64_t tasks, jobs, job_tasks; /* over all jobs of this size; tasks per job */
    double seconds, mbs, tasks_per_s, best_job_mbs;
    int ok;
    bc_phase ph;                     /* summed over the jobs */
    /* drain jobs: every result already in Redis when rc_job_wait starts */
    uint64_t dtasks, djobs;
    double dmbs, best_drain_mbs;
    bc_phase dph;
    yard y;
    ceiling ceil;
} size_result;

/* dst += src: wall, CPU and command counts (by name) */
static void phase_add(bc_phase *dst, const bc_phase *src)
{
    dst->wall += src->wall;
    dst->redis_cpu += src->redis_cpu;
    dst->redis_wait = dst->redis_wait >= 0 && src->redis_wait >= 0 ? dst->redis_wait + src->redis_wait : -1;
    dst->self_cpu += src->self_cpu;
    dst->kids_cpu += src->kids_cpu;
    dst->calls += src->calls;
    dst->usec += src->usec;
    for (int i = 0; i < src->ncmd; i++) {
        int k = 0;
        while (k < dst->ncmd && strcmp(dst->cmd[k].name, src->cmd[i].name) != 0)
            k++;
        if (k == dst->ncmd) {
            if (dst->ncmd == BC_MAXCMD)
                continue;
            dst->cmd[dst->ncmd++] = src->cmd[i];
            continue;
        }
        dst->cmd[k].calls += src->cmd[i].calls;
        dst->cmd[k].usec += src->cmd[i].usec;
    }
}

typedef struct sg_result {
    size_t bytes;
    uint64_t tasks;
    double seconds, mbs;
    int ok;
    bc_phase ph;
} sg_result;

static int cmp_cmd_calls(const void *a, const void *b)
{
    const bc_cmdstat *x = a, *y = b;
    return x->calls < y->calls ? 1 : x->calls > y->calls ? -1 : 0;
}

/* One reduce job of ntasks vectors of `size` bytes; its phase in *ph.
   drain: submit, let the workers deliver everything, then time only
   rc_job_wait (the master's share, as when the workers run elsewhere). */
static int reduce_job(rc_ctx *ctx, redisContext *mc, size_t size, uint64_t ntasks, int drain, bc_phase *ph)
{
    uint64_t n = size / sizeof(double);
    double *recv = calloc(n ? n : 1, sizeof *recv);
    rc_job *job = NULL;
    if (!recv)
        return -1;
    rc_status st = rc_job_create(ctx, "vec", ntasks, &job);
    if (st == RC_OK) st = rc_job_bcast(job, &n, 1, RC_UINT64);
    if (st == RC_OK) st = rc_job_reduce(job, recv, n, RC_DOUBLE, rc_op_builtin(RC_SUM));
    if (drain) {
        if (st == RC_OK) st = rc_job_submit(job);
        if (st == RC_OK && bc_wait_delivered(mc, QUEUE, 120) != 0) {
            fprintf(stderr, "reduce: results of job %s not all delivered within 120 s\n", rc_job_id(job));
            rc_job_destroy(job);
            free(recv);
            return -1;
        }
        bc_phase_begin(mc, ph);
        if (st == RC_OK) st = rc_job_wait(job);
        bc_phase_end(mc, ph);
    } else {
        bc_phase_begin(mc, ph);
        if (st == RC_OK) st = rc_job_run(job);
        bc_phase_end(mc, ph);
    }
    rc_job_destroy(job);
    int good = st == RC_OK;
    double base = (double)ntasks * (double)(ntasks - 1) / 2;
    for (uint64_t i = 0; good && i < n; i++)
        if (recv[i] != base + (double)ntasks * (double)(i & 7)) {
            fprintf(stderr, "reduce: element %" PRIu64 " is %.17g, expected %.17g\n", i, recv[i],
                    base + (double)ntasks * (double)(i & 7));
            good = 0;
        }
    if (st != RC_OK)
        fprintf(stderr, "reduce: %zu-byte job: %s: %s\n", size, rc_strerror(st), rc_ctx_errmsg(ctx));
    free(recv);
    return good ? 0 : -1;
}

/* Jobs of `job_tasks` vectors until `total` bytes moved or `budget` seconds
   spent (at least one job). */
static int run_size(rc_ctx *ctx, redisContext *mc, size_t size, uint64_t job_tasks, double total, double budget,
                    size_result *o)
{
    memset(o, 0, sizeof *o);
    o->size = size;
    o->job_tasks = job_tasks;
    o->ok = 1;
    double start = bc_now();
    /* whole jobs and drain jobs alternate, so both see the same machine */
    for (int k = 0; o->jobs == 0 || o->djobs == 0 ||
                    ((double)(o->tasks + o->dtasks) * (double)size < total && bc_now() - start < budget && !bc_stop);
         k++) {
        bc_phase ph;
        int drain = k & 1;
        int good = reduce_job(ctx, mc, size, job_tasks, drain, &ph) == 0;
        o->ok &= good;
        if (!good)
            break;
        double r = (double)job_tasks * (double)size / MIB / ph.wall;
        if (drain) {
            phase_add(&o->dph, &ph);
            if (r > o->best_drain_mbs)
                o->best_drain_mbs = r;
            o->djobs++;
            o->dtasks += job_tasks;
            continue;
        }
        phase_add(&o->ph, &ph);
        if (r > o->best_job_mbs)
            o->best_job_mbs = r;
        o->jobs++;
        o->tasks += job_tasks;
    }
    o->dmbs = o->dph.wall > 0 ? (double)o->dtasks * (double)size / MIB / o->dph.wall : 0;
    o->seconds = o->ph.wall;
    o->mbs = o->seconds > 0 ? (double)o->tasks * (double)size / MIB / o->seconds : 0;
    o->tasks_per_s = o->seconds > 0 ? (double)o->tasks / o->seconds : 0;
    return o->ok ? 0 : -1;
}

static int run_scatter_gather(rc_ctx *ctx, redisContext *mc, const double *src, size_t bytes, uint64_t ntasks,
                              sg_result *o)
{
    o->bytes = bytes;
    o->tasks = ntasks;
    size_t per = bytes / sizeof(double) / ntasks;
    double *dst = malloc(bytes);
    rc_job *job = NULL;
    if (!dst)
        return -1;
    memset(dst, 0xff, bytes);
    rc_status st = rc_job_create(ctx, "ident", ntasks, &job);
    if (st == RC_OK) st = rc_job_scatter(job, src, per, RC_DOUBLE);
    if (st == RC_OK) st = rc_job_gather(job, dst, per, RC_DOUBLE);
    bc_phase_begin(mc, &o->ph);
    if (st == RC_OK) st = rc_job_run(job);
    bc_phase_end(mc, &o->ph);
    rc_job_destroy(job);
    o->seconds = o->ph.wall;
    size_t moved = per * ntasks * sizeof(double);
    o->bytes = moved;
    o->mbs = (double)moved / MIB / o->seconds;
    o->ok = st == RC_OK && memcmp(src, dst, moved) == 0;
    if (st != RC_OK)
        fprintf(stderr, "reduce: scatter/gather: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
    else if (!o->ok)
        fprintf(stderr, "reduce: scatter/gather: gathered data differs from the scattered buffer\n");
    free(dst);
    return o->ok ? 0 : -1;
}

/* "64K" "1M" "1024" -> bytes */
static size_t parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (*end == 'k' || *end == 'K')
        v *= 1024, end++;
    else if (*end == 'm' || *end == 'M')
        v *= 1024 * 1024, end++;
    else if (*end == 'g' || *end == 'G')
        v *= 1024.0 * 1024 * 1024, end++;
    if (*end == 'i' || *end == 'B')
        end++;
    if (*end == 'B')
        end++;
    if (*end || v < 8)
        return 0;
    return (size_t)v;
}

static void human(size_t b, char *out, size_t n)
{
    if (b >= (1u << 20) && b % (1u << 20) == 0)
        snprintf(out, n, "%zu MiB", b >> 20);
    else if (b >= 1024 && b % 1024 == 0)
        snprintf(out, n, "%zu KiB", b >> 10);
    else
        snprintf(out, n, "%zu B", b);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: reduce [--quick] [--json] [--workers W] [--sizes 1K,64K,1M,16M,64M] [--total BYTES]\n"
               "              [--budget SECONDS] [--max-tasks N] [--scatter BYTES] [--scatter-tasks 64]\n"
               "Element-wise SUM reduce of double vectors through redcoll's embedded default, next to\n"
               "memcpy, a loop sum and raw hiredis SET/GET of the same sizes; then scatter/gather.\n"
               "  --quick            smaller totals (about 10 s)\n"
               "  --workers W        worker processes (default 2)\n"
               "  --sizes LIST       vector bytes per task (default 1K,64K,1M,16M,64M)\n"
               "  --total BYTES      task output moved per size (default 256M; --quick 32M)\n"
               "  --budget SECONDS   per size: jobs of up to 64 MiB are repeated until --total is\n"
               "                     moved or this long has passed (default 5; --quick 1.5)\n"
               "  --max-tasks N      cap on tasks per job (default 65536)\n"
               "  --scatter BYTES    scatter/gather buffer (default 256M; --quick 32M; 0: skip)\n"
               "  --scatter-tasks L  task counts for scatter/gather (default 64: 4 MiB tasks)\n"
               "  --json             one JSON object on stdout (progress on stderr)\n");
}

static int parse_list(char *s, size_t *out, int max, int sizes)
{
    int n = 0;
    for (char *t = strtok(s, ","); t && n < max; t = strtok(NULL, ",")) {
        out[n] = sizes ? parse_size(t) : (size_t)strtoull(t, NULL, 10);
        if (!out[n] || (sizes && out[n] % 8))
            return -1;
        n++;
    }
    return n;
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
    int json = 0, quick = 0, workers = 2, nsizes = 0, nsg = 0;
    size_t sizes[MAXSIZES], sgtasks[MAXSIZES];
    double total = 0, scatter = -1, budget = 0;
    uint64_t max_tasks = 65536;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
            workers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
            if ((nsizes = parse_list(argv[++i], sizes, MAXSIZES, 1)) < 1) {
                fprintf(stderr, "reduce: --sizes takes sizes like 1K,64K,1M (multiples of 8 bytes)\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--scatter-tasks") && i + 1 < argc) {
            if ((nsg = parse_list(argv[++i], sgtasks, MAXSIZES, 0)) < 1) {
                fprintf(stderr, "reduce: --scatter-tasks takes counts like 16,64\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--total") && i + 1 < argc)
            total = (double)parse_size(argv[++i]);
        else if (!strcmp(argv[i], "--scatter") && i + 1 < argc)
            scatter = !strcmp(argv[i + 1], "0") ? (i++, 0.0) : (double)parse_size(argv[++i]);
        else if (!strcmp(argv[i], "--budget") && i + 1 < argc)
            budget = atof(argv[++i]);
        else if (!strcmp(argv[i], "--max-tasks") && i + 1 < argc)
            max_tasks = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!nsizes) {
        const size_t def[] = {1 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20};
        memcpy(sizes, def, sizeof def);
        nsizes = 5;
    }
    if (!nsg) {
        sgtasks[0] = 64;
        nsg = 1;
    }
    if (total <= 0)
        total = quick ? 32.0 * MIB : 256.0 * MIB;
    if (scatter < 0)
        scatter = quick ? 32.0 * MIB : 256.0 * MIB;
    if (budget <= 0)
        budget = quick ? 1.5 : 5.0;
    if (workers < 1 || workers > 64 || max_tasks < 1 || total > 4096.0 * MIB || scatter > 1024.0 * MIB) {
        fprintf(stderr, "reduce: need 1 <= --workers <= 64, --max-tasks >= 1, --total <= 4G, --scatter <= 1G\n");
        return 2;
    }
    for (int i = 0; i < nsizes; i++)
        if (sizes[i] > (size_t)MAX_PAYLOAD) {
            fprintf(stderr, "reduce: sizes up to 256 MiB\n");
            return 2;
        }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = bc_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* the yardsticks' source pool: as large as one size's total */
    size_t poolbytes = (size_t)total;
    for (int i = 0; i < nsizes; i++)
        if (sizes[i] > poolbytes)
            poolbytes = sizes[i];
    unsigned char *pool = malloc(poolbytes);
    size_result *res = calloc((size_t)nsizes, sizeof *res);
    sg_result *sg = calloc((size_t)nsg, sizeof *sg);
    double *src = NULL;
    if (!pool || !res || !sg)
        return 1;
    for (size_t i = 0; i < poolbytes / sizeof(double); i++)
        ((double *)pool)[i] = (double)(i & 1023);

    char self[4096];
    bc_self_exe(self, sizeof self);
    const char *wargv[] = {self, "--worker", NULL};
    rc_ctx *ctx = rc_ctx_create();
    rc_local *loc = NULL;
    redisContext *mc = NULL;
    bc_machine m;
    memset(&m, 0, sizeof m);
    int ok = 0;
    double t_all = bc_now(), load0 = bc_loadavg1();
    if (!ctx)
        return 1;
    bc_ctx = ctx;
    rc_status st = rc_ctx_set_int(ctx, RC_OPT_MAX_PAYLOAD, MAX_PAYLOAD);
    if (st == RC_OK)
        st = rc_local_start(ctx, wargv, workers, &loc);
    if (st != RC_OK) {
        fprintf(stderr, "reduce: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
        goto out;
    }
    if (!(mc = bc_connect(rc_local_url(loc))))
        goto out;
    bc_machine_get(&m, mc);
    m.load1 = load0;
    if (bc_wait_workers(mc, QUEUE, workers, 30) < workers) {
        fprintf(stderr, "reduce: workers did not register within 30 s\n");
        goto out;
    }
    ok = 1;
    {
        bc_phase warm;
        ok &= reduce_job(ctx, mc, 1024, (uint64_t)(4 * workers), 0, &warm) == 0;
    }
    if (!json)
        printf("reduce: redcoll %s; machine %s, %s, %ld cores, %s, Redis %s, load %.2f at start; %d workers\n",
               REDCOLL_VERSION_STRING, m.host, m.cpu, m.cores, m.kernel, m.redis_version, load0, workers);
    for (int i = 0; i < nsizes && ok && !bc_stop; i++) {
        size_t s = sizes[i];
        /* a job moves up to 64 MiB (at least 2 tasks, at most --max-tasks) */
        double jb = total < 64.0 * MIB ? total : 64.0 * MIB;
        uint64_t t = (uint64_t)((jb + (double)s - 1) / (double)s);
        if (t < 2)
            t = 2;
        if (t > max_tasks)
            t = max_tasks;
        char h[32];
        human(s, h, sizeof h);
        fprintf(stderr, "reduce: %s: jobs of %" PRIu64 " tasks until %.0f MiB or %.0f s\n", h, t, total / MIB, budget);
        ok &= run_size(ctx, mc, s, t, total, budget, &res[i]) == 0;
        yardsticks(pool, poolbytes, s, (size_t)t, &res[i].y);
        bc_signal_self_children(SIGSTOP); /* idle workers off the server */
        ok &= raw_ceiling(mc, pool, s, (double)t * (double)s, quick ? 0.7 : 1.5, &res[i].ceil) == 0;
        bc_signal_self_children(SIGCONT);
    }
    if (scatter > 0 && ok && !bc_stop) {
        size_t bytes = (size_t)scatter / 8 * 8;
        src = malloc(bytes);
        if (!src) {
            ok = 0;
            goto out;
        }
        for (size_t i = 0; i < bytes / sizeof(double); i++)
            src[i] = (double)i * 0.5;
        for (int i = 0; i < nsg && ok && !bc_stop; i++) {
            fprintf(stderr, "reduce: scatter/gather %.0f MiB in %zu tasks\n", (double)bytes / MIB, sgtasks[i]);
            ok &= run_scatter_gather(ctx, mc, src, bytes, sgtasks[i], &sg[i]) == 0;
        }
    }
out:
    if (json) {
        bc_json j = {0};
        bj_begin_obj(&j, NULL);
        bj_str(&j, "benchmark", "reduce");
        bj_str(&j, "redcoll_version", REDCOLL_VERSION_STRING);
        bj_machine(&j, &m);
        bj_int(&j, "workers", workers);
        bj_begin_arr(&j, "reduce");
        for (int i = 0; i < nsizes; i++) {
            const size_result *r = &res[i];
            if (!r->tasks)
                continue;
            bj_begin_obj(&j, NULL);
            bj_int(&j, "bytes_per_task", (long long)r->size);
            bj_int(&j, "tasks", (long long)r->tasks);
            bj_int(&j, "jobs", (long long)r->jobs);
            bj_int(&j, "tasks_per_job", (long long)r->job_tasks);
            bj_num(&j, "best_job_mb_per_s", r->best_job_mbs);
            bj_num(&j, "mib_moved", (double)r->tasks * (double)r->size / MIB);
            bj_num(&j, "seconds", r->seconds);
            bj_num(&j, "mb_per_s", r->mbs);
            bj_num(&j, "tasks_per_s", r->tasks_per_s);
            bj_bool(&j, "ok", r->ok);
            bj_num(&j, "memcpy_mb_per_s", r->y.memcpy_mbs);
            bj_num(&j, "loop_sum_mb_per_s", r->y.loopsum_mbs);
            bj_num(&j, "rc_reduce_local_mb_per_s", r->y.reduce_local_mbs);
            bj_num(&j, "merge_copy_reduce_copy_mb_per_s", r->y.merge_mbs);
            bj_num(&j, "raw_set_mb_per_s", r->ceil.set_mbs);
            bj_num(&j, "raw_get_mb_per_s", r->ceil.get_mbs);
            bj_num(&j, "raw_set_then_get_mb_per_s", r->ceil.setget_mbs);
            bj_num(&j, "raw_set_mb_per_s_median", r->ceil.set_med_mbs);
            bj_num(&j, "raw_get_mb_per_s_median", r->ceil.get_med_mbs);
            bj_num(&j, "raw_set_then_get_mb_per_s_median", r->ceil.setget_med_mbs);
            bj_int(&j, "raw_reps", r->ceil.reps);
            bj_num(&j, "redcoll_over_raw_set_then_get", r->ceil.setget_mbs > 0 ? r->mbs / r->ceil.setget_mbs : 0);
            bj_num(&j, "redcoll_over_raw_set_then_get_median",
                   r->ceil.setget_med_mbs > 0 ? r->mbs / r->ceil.setget_med_mbs : 0);
            bj_num(&j, "redcoll_over_loop_sum", r->y.loopsum_mbs > 0 ? r->mbs / r->y.loopsum_mbs : 0);
            bj_num(&j, "redis_cpu_ms_per_mib", r->ph.redis_cpu * 1e3 / ((double)r->tasks * (double)r->size / MIB));
            bj_num(&j, "master_cpu_ms_per_mib", r->ph.self_cpu * 1e3 / ((double)r->tasks * (double)r->size / MIB));
            bj_num(&j, "workers_cpu_ms_per_mib", r->ph.kids_cpu * 1e3 / ((double)r->tasks * (double)r->size / MIB));
            bj_num(&j, "raw_redis_cpu_ms_per_mib", r->ceil.redis_cpu_per_mib_ms);
            bj_phase(&j, "phase", &r->ph, (double)r->tasks);
            double dmib = (double)r->dtasks * (double)r->size / MIB;
            bj_int(&j, "drain_jobs", (long long)r->djobs);
            bj_num(&j, "drain_mb_per_s", r->dmbs);
            bj_num(&j, "best_drain_job_mb_per_s", r->best_drain_mbs);
            bj_num(&j, "drain_over_raw_get", r->ceil.get_mbs > 0 ? r->dmbs / r->ceil.get_mbs : 0);
            bj_num(&j, "drain_over_raw_get_median", r->ceil.get_med_mbs > 0 ? r->dmbs / r->ceil.get_med_mbs : 0);
            bj_num(&j, "drain_master_cpu_ms_per_mib", dmib > 0 ? r->dph.self_cpu * 1e3 / dmib : 0);
            bj_num(&j, "drain_redis_cpu_ms_per_mib", dmib > 0 ? r->dph.redis_cpu * 1e3 / dmib : 0);
            bj_end_obj(&j);
        }
        bj_end_arr(&j);
        bj_begin_arr(&j, "scatter_gather");
        for (int i = 0; i < nsg; i++) {
            if (!sg[i].tasks)
                continue;
            bj_begin_obj(&j, NULL);
            bj_num(&j, "mib", (double)sg[i].bytes / MIB);
            bj_int(&j, "tasks", (long long)sg[i].tasks);
            bj_num(&j, "seconds", sg[i].seconds);
            bj_num(&j, "mb_per_s", sg[i].mbs);
            bj_bool(&j, "ok", sg[i].ok);
            bj_phase(&j, "phase", &sg[i].ph, (double)sg[i].tasks);
            bj_end_obj(&j);
        }
        bj_end_arr(&j);
        bj_num(&j, "load1_at_end", bc_loadavg1());
        bj_num(&j, "total_seconds", bc_now() - t_all);
        bj_bool(&j, "ok", ok && !bc_stop);
        bj_end_obj(&j);
        printf("%s\n", j.buf ? j.buf : "{}");
        bj_free(&j);
    } else if (m.cores) {
        printf("\nSUM reduce of double vectors, %d workers.  MB = MiB.  redcoll MB/s: task output reduced on the "
               "master per second of job time, all jobs of the size (best job in brackets).  memcpy, loop-sum, "
               "rc_reduce_local and merge (copy in, reduce, copy back: what the master does per result): this "
               "process, best pass.  raw SET / GET: one hiredis round trip each on the same redis-server, best "
               "(median); SET+GET = one write then one read of the same bytes.  CPU columns: ms per MiB reduced.\n",
               workers);
        printf("  %-7s %6s %5s %6s %8s %9s %8s | %7s %7s %7s %7s | %15s %15s %15s | %6s %6s %6s\n", "size", "tasks",
               "jobs", "MiB", "redcoll", "(best)", "tasks/s", "memcpy", "loopsum", "reduce", "merge", "raw SET", "raw GET",
               "SET+GET", "redis", "master", "worker");
        for (int i = 0; i < nsizes; i++) {
            const size_result *r = &res[i];
            if (!r->tasks)
                continue;
            char h[32], c1[32], c2[32], c3[32];
            human(r->size, h, sizeof h);
            double mib = (double)r->tasks * (double)r->size / MIB;
            snprintf(c1, sizeof c1, "%.0f (%.0f)", r->ceil.set_mbs, r->ceil.set_med_mbs);
            snprintf(c2, sizeof c2, "%.0f (%.0f)", r->ceil.get_mbs, r->ceil.get_med_mbs);
            snprintf(c3, sizeof c3, "%.0f (%.0f)", r->ceil.setget_mbs, r->ceil.setget_med_mbs);
            printf("  %-7s %6" PRIu64 " %5" PRIu64 " %6.0f %8.1f %9.1f %8.0f | %7.0f %7.0f %7.0f %7.0f | %15s %15s %15s | "
                   "%6.2f %6.2f %6.2f%s\n",
                   h, r->tasks, r->jobs, mib, r->mbs, r->best_job_mbs, r->tasks_per_s, r->y.memcpy_mbs, r->y.loopsum_mbs,
                   r->y.reduce_local_mbs, r->y.merge_mbs, c1, c2, c3, r->ph.redis_cpu * 1e3 / mib,
                   r->ph.self_cpu * 1e3 / mib, r->ph.kids_cpu * 1e3 / mib, r->ok ? "" : "  FAILED");
        }
        printf("  drain: the same jobs with every result already in Redis when rc_job_wait starts (workers done; "
               "what the master reduces when the workers run on other machines).  MB/s over drain jobs (best job), "
               "master and redis CPU ms per MiB, drain / raw GET best (median):\n");
        for (int i = 0; i < nsizes; i++) {
            const size_result *r = &res[i];
            if (!r->dtasks)
                continue;
            char h[32];
            human(r->size, h, sizeof h);
            double dmib = (double)r->dtasks * (double)r->size / MIB;
            printf("  %-7s %5" PRIu64 " jobs %8.1f MB/s (%7.1f)  master %5.2f  redis %5.2f  / raw GET %.2f (%.2f)\n", h,
                   r->djobs, r->dmbs, r->best_drain_mbs, r->dph.self_cpu * 1e3 / dmib, r->dph.redis_cpu * 1e3 / dmib,
                   r->ceil.get_mbs > 0 ? r->dmbs / r->ceil.get_mbs : 0,
                   r->ceil.get_med_mbs > 0 ? r->dmbs / r->ceil.get_med_mbs : 0);
        }
        printf("  redcoll / raw SET+GET (best; median):");
        for (int i = 0; i < nsizes; i++)
            if (res[i].tasks) {
                char h[32];
                human(res[i].size, h, sizeof h);
                printf(" %s %.2f; %.2f |", h, res[i].ceil.setget_mbs > 0 ? res[i].mbs / res[i].ceil.setget_mbs : 0,
                       res[i].ceil.setget_med_mbs > 0 ? res[i].mbs / res[i].ceil.setget_med_mbs : 0);
            }
        printf("\n  redcoll / loop-sum:");
        for (int i = 0; i < nsizes; i++)
            if (res[i].tasks) {
                char h[32];
                human(res[i].size, h, sizeof h);
                printf(" %s %.4f;", h, res[i].y.loopsum_mbs > 0 ? res[i].mbs / res[i].y.loopsum_mbs : 0);
            }
        printf("\n  commands per task (all jobs):\n");
        for (int i = 0; i < nsizes; i++)
            if (res[i].tasks) {
                char h[32], br[400];
                human(res[i].size, h, sizeof h);
                qsort(res[i].ph.cmd, (size_t)res[i].ph.ncmd, sizeof res[i].ph.cmd[0], cmp_cmd_calls);
                bc_phase_breakdown(&res[i].ph, (double)res[i].tasks, 8, br, sizeof br);
                printf("    %-7s %5.2f: %s\n", h, (double)res[i].ph.calls / (double)res[i].tasks, br);
            }
        if (nsg && sg[0].tasks) {
            printf("\nscatter + gather through an identity kernel (each byte: master->Redis->worker->Redis->master)\n");
            for (int i = 0; i < nsg; i++)
                if (sg[i].tasks)
                    printf("  %6.0f MiB in %4" PRIu64 " tasks of %6.2f MiB: %7.3f s, %8.1f MB/s  (redis %.2f, master "
                           "%.2f, workers %.2f ms CPU per MiB)%s\n",
                           (double)sg[i].bytes / MIB, sg[i].tasks, (double)sg[i].bytes / MIB / (double)sg[i].tasks,
                           sg[i].seconds, sg[i].mbs, sg[i].ph.redis_cpu * 1e3 / ((double)sg[i].bytes / MIB),
                           sg[i].ph.self_cpu * 1e3 / ((double)sg[i].bytes / MIB),
                           sg[i].ph.kids_cpu * 1e3 / ((double)sg[i].bytes / MIB), sg[i].ok ? "" : "  FAILED");
        }
        printf("\ntotal %.1f s, load %.2f at end%s\n", bc_now() - t_all, bc_loadavg1(), ok ? "" : "; FAILED");
    }
    if (mc)
        redisFree(mc);
    rc_local_stop(loc);
    bc_ctx = NULL;
    rc_ctx_destroy(ctx);
    free(pool);
    free(res);
    free(sg);
    free(src);
    return bc_stop ? 130 : ok ? 0 : 1;
}
