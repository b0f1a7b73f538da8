/* test_collectives.c - the collectives end to end on real Redis and real worker processes.
 *
 * Why: what a redcoll user depends on is the numbers - every byte scattered
 * comes back where gatherv says, every task saw the broadcast, reductions are
 * combined in rank order so a double sum is the same bits as a serial loop
 * whatever the pool size, and failures (unknown kernel, a kernel error, a
 * misuse of the API) come back as the documented status with a message that
 * names the culprit, without hanging.  Each subtest runs as its own CTest test
 * with its own redis-server (argv[1] names it) and its own testworker pool.
 * Expected values are computed here independently of lib/, mostly serially
 * in rank order. */
#include "harness.h"

static const char *const no_args[] = {NULL};

/* splitmix64: test data, independent of rc_rng */
static uint64_t sm64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void set_bits(double *d, uint64_t u) { memcpy(d, &u, sizeof *d); }

/* rc_job_create, failing the test on error. */
static rc_job *new_job(rc_ctx *ctx, const char *kernel, uint64_t ntasks)
{
    rc_job *j = NULL;
    H_OK(ctx, rc_job_create(ctx, kernel, ntasks, &j));
    return j;
}

static void check_stats(const rc_job *j, uint64_t ntasks)
{
    rc_job_stats s;
    H_OK(NULL, rc_job_get_stats(j, &s));
    H_EQ_U64(s.tasks, ntasks);
    H_EQ_U64(s.done, ntasks);
    H_EQ_U64(s.rejected, 0);
    H_CHECK(s.workers_seen >= 1, "workers_seen %llu", (unsigned long long)s.workers_seen);
}

/* ------------------------------------------------------------------ */

/* Scatter once, map many: data stored with rc_data_scatterv serves three
 * jobs (different broadcasts) without being uploaded again; workers fetch
 * each chunk at most once each; after rc_data_release a job on it fails
 * naming the missing chunk. */
static void t_data_reuse(void)
{
    enum { T = 12, N = 6000 };
    size_t counts[T], displs[T], off = 0;
    double *in = malloc(N * sizeof *in), *out = malloc(N * sizeof *out);
    H_CHECK(in && out, "out of memory");
    for (size_t i = 0; i < N; i++)
        in[i] = (double)i * 0.25 - 7.0;
    for (int r = 0; r < T; r++) { /* uneven, with an empty chunk */
        counts[r] = r == 5 ? 0 : (size_t)(r + 1) * 60;
        displs[r] = off;
        off += counts[r];
    }
    H_CHECK(off <= N, "layout");
    h_spawn_workers(2, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    rc_data *d = NULL;
    H_OK(ctx, rc_data_scatterv(ctx, in, counts, displs, RC_DOUBLE, T, &d));
    memset(in, 0, N * sizeof *in); /* the data lives in Redis now */
    for (size_t i = 0; i < N; i++)
        in[i] = (double)i * 0.25 - 7.0;
    h_reset_stats();
    for (int it = 0; it < 3; it++) {
        rc_job *j = new_job(ctx, "identity", T);
        double param = it;
        H_OK(ctx, rc_job_bcast(j, &param, 1, RC_DOUBLE));
        H_OK(ctx, rc_job_use_data(j, d));
        memset(out, 0xA5, N * sizeof *out);
        H_OK(ctx, rc_job_gatherv(j, out, counts, displs, RC_DOUBLE));
        H_OK(ctx, rc_job_run(j));
        H_MEMEQ(out, in, off * sizeof *in);
        rc_job_destroy(j);
    }
    long long fetched = h_calls("hget");
    printf("3 jobs x %d tasks on stored data: %lld chunk fetches\n", T, fetched);
    H_CHECK(fetched <= 2 * T, "workers fetched chunks %lld times (at most once per worker per chunk: %d)", fetched,
            2 * T);
    rc_job *bad = new_job(ctx, "identity", T + 1);
    H_ST(ctx, rc_job_use_data(bad, d), RC_EINVAL); /* chunk count must match */
    rc_job_destroy(bad);
    H_OK(ctx, rc_data_release(d));
    H_EQ_U64(h_count_keys("data:*"), 0);
    free(in);
    free(out);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

static void t_scatter_gather_1m(void)
{
    enum { N = 1000000, T = 100, CH = N / T };
    h_spawn_workers(2, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    double *in = malloc(N * sizeof *in), *out = malloc(N * sizeof *out);
    H_CHECK(in && out, "out of memory");
    uint64_t s = 42;
    for (size_t i = 0; i < N; i++) {
        uint64_t u = sm64(&s);
        switch (i % 8) {
        case 0: set_bits(&in[i], u); break;                              /* any bit pattern, NaNs included */
        case 1: in[i] = (double)(int64_t)u / 3.0; break;
        case 2: set_bits(&in[i], u & 0x800FFFFFFFFFFFFFull); break;      /* subnormals and +-0 */
        case 3: set_bits(&in[i], 0x7FF0000000000000ull | (u & 0x800FFFFFFFFFFFFFull) | 1); break; /* NaN payloads */
        default: in[i] = -(double)i * 1e-300; break;
        }
    }
    /* explicit specials, at chunk edges too */
    set_bits(&in[0], 0x8000000000000000ull);       /* -0.0 */
    set_bits(&in[1], 0x0000000000000001ull);       /* smallest subnormal */
    set_bits(&in[CH - 1], 0x000FFFFFFFFFFFFFull);  /* largest subnormal */
    set_bits(&in[CH], 0x8000000000000001ull);      /* negative subnormal */
    set_bits(&in[CH + 1], 0x7FF0000000000001ull);  /* signalling NaN, payload 1 */
    set_bits(&in[CH + 2], 0xFFF8DEADBEEF0123ull);  /* negative quiet NaN with payload */
    set_bits(&in[N / 2], 0x7FF0000000000000ull);   /* +inf */
    set_bits(&in[N - 1], 0x8000000000000000ull);   /* -0.0 at the very end */
    memset(out, 0xA5, N * sizeof *out);

    rc_job *j = new_job(ctx, "identity", T);
    H_OK(ctx, rc_job_scatter(j, in, CH, RC_DOUBLE));
    H_OK(ctx, rc_job_gather(j, out, CH, RC_DOUBLE));
    H_OK(ctx, rc_job_run(j));
    H_MEMEQ(out, in, N * sizeof *in);
    check_stats(j, T);
    rc_job_destroy(j);
    free(in);
    free(out);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

static void t_scatterv_gatherv(void)
{
    enum { T = 12, SEND = 120, RECV = 200 };
    /* zero counts at the first, a middle and the last rank */
    static const size_t counts[T] = {0, 3, 7, 1, 9, 0, 10, 2, 5, 4, 6, 0};
    /* send displacements: out of order, with gaps, one overlap (ranks 9 and
       10 share elements), zero-count ranks at odd places incl. the end */
    static const size_t sdispl[T] = {SEND, 100, 80, 70, 55, 3, 20, 96, 40, 30, 32, 0};
    /* receive displacements: a different layout, gaps between slots */
    static const size_t rdispl[T] = {0, 190, 3, 150, 11, 150, 100, 40, 60, 70, 80, RECV};
    int64_t send[SEND], recv[RECV], want[RECV];
    for (size_t i = 0; i < SEND; i++)
        send[i] = (int64_t)(i * 1000003u) - 50000000 + (int64_t)i;
    const int64_t sentinel = INT64_MIN + 0x5A5A;
    for (size_t i = 0; i < RECV; i++)
        recv[i] = want[i] = sentinel;
    for (size_t r = 0; r < T; r++) {
        H_CHECK(sdispl[r] + counts[r] <= SEND && rdispl[r] + counts[r] <= RECV, "bad test layout at rank %zu", r);
        for (size_t k = 0; k < counts[r]; k++)
            want[rdispl[r] + k] = send[sdispl[r] + k];
    }
    h_spawn_workers(2, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    rc_job *j = new_job(ctx, "identity", T);
    H_OK(ctx, rc_job_scatterv(j, send, counts, sdispl, RC_INT64));
    H_OK(ctx, rc_job_gatherv(j, recv, counts, rdispl, RC_INT64));
    H_OK(ctx, rc_job_run(j));
    for (size_t i = 0; i < RECV; i++)
        H_CHECK(recv[i] == want[i], "recv[%zu] = %lld, want %lld%s", i, (long long)recv[i], (long long)want[i],
                want[i] == sentinel ? " (a gap: must stay untouched)" : "");
    check_stats(j, T);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

static void t_bcast(void)
{
    enum { T = 32, NB = 100000 };
    uint64_t *blob = malloc(NB * sizeof *blob);
    H_CHECK(blob, "out of memory");
    uint64_t s = 7;
    for (size_t i = 0; i < NB; i++)
        blob[i] = sm64(&s);
    uint64_t want_hash = hk_fnv1a(blob, NB * sizeof *blob);
    h_spawn_workers(2, no_args, NULL);
    rc_ctx *ctx = h_ctx();

    uint64_t out[T][3];
    memset(out, 0xEE, sizeof out);
    rc_job *j = new_job(ctx, "bcast_sum", T);
    H_OK(ctx, rc_job_bcast(j, blob, NB, RC_UINT64));
    H_OK(ctx, rc_job_gather(j, out, 3, RC_UINT64));
    H_OK(ctx, rc_job_run(j));
    for (uint64_t r = 0; r < T; r++) {
        H_CHECK(out[r][0] == r, "rank %llu reported rank %llu", (unsigned long long)r,
                (unsigned long long)out[r][0]);
        H_CHECK(out[r][2] == NB * sizeof *blob, "rank %llu saw a %llu-byte broadcast, want %zu",
                (unsigned long long)r, (unsigned long long)out[r][2], NB * sizeof *blob);
        H_CHECK(out[r][1] == want_hash, "rank %llu saw broadcast hash %016llx, want %016llx",
                (unsigned long long)r, (unsigned long long)out[r][1], (unsigned long long)want_hash);
    }
    check_stats(j, T);
    rc_job_destroy(j);

    /* a job without a broadcast: every task sees an empty one */
    memset(out, 0xEE, sizeof out);
    j = new_job(ctx, "bcast_sum", 5);
    H_OK(ctx, rc_job_gather(j, out, 3, RC_UINT64));
    H_OK(ctx, rc_job_run(j));
    for (uint64_t r = 0; r < 5; r++) {
        H_EQ_U64(out[r][0], r);
        H_EQ_U64(out[r][2], 0);
        H_EQ_U64(out[r][1], hk_fnv1a("", 0));
    }
    rc_job_destroy(j);
    free(blob);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* ------------------------------------------------------------------ */
/* reduce_ops: per-rank contributions scattered to the identity kernel,
 * reduced, compared with a serial rank-order reference. */

enum { RT = 20 };

static void run_reduce(rc_ctx *ctx, const void *contrib, size_t count, rc_datatype dt, rc_op op, void *result)
{
    rc_job *j = new_job(ctx, "identity", RT);
    H_OK(ctx, rc_job_scatter(j, contrib, count, dt));
    H_OK(ctx, rc_job_reduce(j, result, count, dt, op));
    H_OK(ctx, rc_job_run(j));
    check_stats(j, RT);
    rc_job_destroy(j);
}

/* 2x2 matrices over uint64 (mod 2^64), row major: inout = in x inout. */
static void mat_mul_op(const void *in, void *inout, size_t count, rc_datatype dt, void *user)
{
    (void)dt;
    int *calls = user;
    (*calls)++;
    const uint64_t *a = in;
    uint64_t *b = inout;
    for (size_t m = 0; m + 4 <= count; m += 4) {
        uint64_t r0 = a[m] * b[m] + a[m + 1] * b[m + 2];
        uint64_t r1 = a[m] * b[m + 1] + a[m + 1] * b[m + 3];
        uint64_t r2 = a[m + 2] * b[m] + a[m + 3] * b[m + 2];
        uint64_t r3 = a[m + 2] * b[m + 1] + a[m + 3] * b[m + 3];
        b[m] = r0;
        b[m + 1] = r1;
        b[m + 2] = r2;
        b[m + 3] = r3;
    }
}

static void t_reduce_ops(void)
{
    h_spawn_workers(2, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    uint64_t s = 99;

    /* double SUM: magnitudes 2^-60..2^60 and mixed signs, so the order of
       additions shows in the bits */
    {
        enum { C = 64 };
        static double x[RT][C], got[C], want[C], rev[C];
        for (int r = 0; r < RT; r++)
            for (int i = 0; i < C; i++)
                x[r][i] = ldexp(1.0 + (double)(sm64(&s) >> 11) * 0x1p-53, (r * 13 + i * 7) % 121 - 60) *
                          ((r + i) % 3 ? 1.0 : -1.0);
        int differs = 0;
        for (int i = 0; i < C; i++) {
            want[i] = x[0][i];
            for (int r = 1; r < RT; r++)
                want[i] = want[i] + x[r][i];
            rev[i] = x[RT - 1][i];
            for (int r = RT - 2; r >= 0; r--)
                rev[i] = rev[i] + x[r][i];
            differs += memcmp(&rev[i], &want[i], sizeof want[i]) != 0;
        }
        H_CHECK(differs > 0, "test data do not distinguish summation orders");
        memset(got, 0, sizeof got);
        run_reduce(ctx, x, C, RC_DOUBLE, rc_op_builtin(RC_SUM), got);
        for (int i = 0; i < C; i++)
            H_CHECK(memcmp(&got[i], &want[i], sizeof got[i]) == 0,
                    "double SUM element %d: got %a, serial rank-order sum is %a (reverse order: %a)", i, got[i],
                    want[i], rev[i]);
    }
    /* int64 SUM and MAX */
    {
        enum { C = 33 };
        static int64_t x[RT][C], got[C], wsum[C], wmax[C];
        for (int r = 0; r < RT; r++)
            for (int i = 0; i < C; i++)
                x[r][i] = (int64_t)(sm64(&s) % (1ull << 41)) - ((int64_t)1 << 40);
        x[3][0] = INT64_MAX / 2; /* a large maximum */
        for (int i = 0; i < C; i++) {
            wsum[i] = 0;
            wmax[i] = INT64_MIN;
            for (int r = 0; r < RT; r++) {
                wsum[i] += x[r][i];
                wmax[i] = x[r][i] > wmax[i] ? x[r][i] : wmax[i];
            }
        }
        run_reduce(ctx, x, C, RC_INT64, rc_op_builtin(RC_SUM), got);
        for (int i = 0; i < C; i++)
            H_CHECK(got[i] == wsum[i], "int64 SUM element %d: got %lld, want %lld", i, (long long)got[i],
                    (long long)wsum[i]);
        run_reduce(ctx, x, C, RC_INT64, rc_op_builtin(RC_MAX), got);
        for (int i = 0; i < C; i++)
            H_CHECK(got[i] == wmax[i], "int64 MAX element %d: got %lld, want %lld", i, (long long)got[i],
                    (long long)wmax[i]);
    }
    /* uint64 BAND and BOR */
    {
        enum { C = 17 };
        static uint64_t x[RT][C], got[C], wand[C], wor[C];
        for (int r = 0; r < RT; r++)
            for (int i = 0; i < C; i++)
                x[r][i] = sm64(&s) | sm64(&s) | sm64(&s) | ((uint64_t)1 << (i % 64)); /* dense bits: BAND keeps some */
        for (int i = 0; i < C; i++) {
            wand[i] = ~(uint64_t)0;
            wor[i] = 0;
            for (int r = 0; r < RT; r++) {
                wand[i] &= x[r][i];
                wor[i] |= x[r][i] & 0x0F0F0F0F0F0F0F0Full;
            }
        }
        run_reduce(ctx, x, C, RC_UINT64, rc_op_builtin(RC_BAND), got);
        for (int i = 0; i < C; i++)
            H_CHECK(got[i] == wand[i], "uint64 BAND element %d: got %016llx, want %016llx", i,
                    (unsigned long long)got[i], (unsigned long long)wand[i]);
        for (int r = 0; r < RT; r++)
            for (int i = 0; i < C; i++)
                x[r][i] &= 0x0F0F0F0F0F0F0F0Full;
        run_reduce(ctx, x, C, RC_UINT64, rc_op_builtin(RC_BOR), got);
        for (int i = 0; i < C; i++)
            H_CHECK(got[i] == wor[i], "uint64 BOR element %d: got %016llx, want %016llx", i,
                    (unsigned long long)got[i], (unsigned long long)wor[i]);
    }
    /* MINLOC / MAXLOC with ties across ranks: lower loc wins */
    {
        enum { C = 10 };
        uint64_t params[2];
        int ties = 0;
        for (int type = 0; type < 2; type++) {
            for (int which = 0; which < 2; which++) {
                rc_op_kind op = which ? RC_MAXLOC : RC_MINLOC;
                rc_double_loc dgot[C];
                rc_int32_loc igot[C];
                memset(dgot, 0xCC, sizeof dgot);
                memset(igot, 0xCC, sizeof igot);
                params[0] = (uint64_t)type;
                params[1] = C;
                rc_job *j = new_job(ctx, "locs", RT);
                H_OK(ctx, rc_job_bcast(j, params, 2, RC_UINT64));
                if (type == 0)
                    H_OK(ctx, rc_job_reduce(j, dgot, C, RC_DOUBLE_LOC, rc_op_builtin(op)));
                else
                    H_OK(ctx, rc_job_reduce(j, igot, C, RC_INT32_LOC, rc_op_builtin(op)));
                H_OK(ctx, rc_job_run(j));
                check_stats(j, RT);
                rc_job_destroy(j);
                for (uint64_t i = 0; i < C; i++) {
                    int32_t best = hk_loc_val(0, i);
                    int64_t loc = hk_loc_loc(0, RT);
                    int nbest = 1;
                    for (uint64_t r = 1; r < RT; r++) {
                        int32_t v = hk_loc_val(r, i);
                        int64_t l = hk_loc_loc(r, RT);
                        int better = which ? v > best : v < best;
                        if (better) {
                            best = v;
                            loc = l;
                            nbest = 1;
                        } else if (v == best) {
                            nbest++;
                            if (l < loc)
                                loc = l;
                        }
                    }
                    ties += nbest > 1;
                    const char *name = which ? "MAXLOC" : "MINLOC";
                    if (type == 0) {
                        H_CHECK(dgot[i].val == (double)best && dgot[i].loc == loc,
                                "DOUBLE_LOC %s element %llu: got (%g, %lld), want (%d, %lld)", name,
                                (unsigned long long)i, dgot[i].val, (long long)dgot[i].loc, best, (long long)loc);
                    } else {
                        H_CHECK(igot[i].val == best && igot[i].loc == loc,
                                "INT32_LOC %s element %llu: got (%d, %lld), want (%d, %lld)", name,
                                (unsigned long long)i, igot[i].val, (long long)igot[i].loc, best, (long long)loc);
                    }
                }
            }
        }
        H_CHECK(ties > 0, "test data have no ties");
    }
    /* a non-commutative user op: the product M_0 x M_1 x ... in rank order */
    {
        enum { C = 8 };
        static uint64_t x[RT][C], got[C], want[C], rev[C];
        for (int r = 0; r < RT; r++)
            for (int i = 0; i < C; i++)
                x[r][i] = sm64(&s) % 1000 + 1;
        memcpy(want, x[0], sizeof want);
        memcpy(rev, x[RT - 1], sizeof rev);
        int dummy = 0;
        for (int r = 1; r < RT; r++) {
            uint64_t tmp[C];
            memcpy(tmp, x[r], sizeof tmp);
            mat_mul_op(want, tmp, C, RC_UINT64, &dummy); /* want = want x M_r */
            memcpy(want, tmp, sizeof want);
            memcpy(tmp, x[RT - 1 - r], sizeof tmp);
            mat_mul_op(rev, tmp, C, RC_UINT64, &dummy);  /* rev = rev x M_(n-1-r) */
            memcpy(rev, tmp, sizeof rev);
        }
        H_CHECK(memcmp(want, rev, sizeof want) != 0, "test matrices commute");
        int calls = 0;
        run_reduce(ctx, x, C, RC_UINT64, rc_op_user(mat_mul_op, &calls, 0), got);
        for (int i = 0; i < C; i++)
            H_CHECK(got[i] == want[i], "matrix product element %d: got %llu, want %llu (rank order)%s", i,
                    (unsigned long long)got[i], (unsigned long long)want[i],
                    got[i] == rev[i] ? "; matches the reversed order" : "");
        H_CHECK(calls > 0, "the user op was never called");
    }
    /* an op not defined for the type: refused by rc_job_reduce, nothing sent */
    {
        double d[4];
        rc_job *j = new_job(ctx, "identity", RT);
        H_ST(ctx, rc_job_reduce(j, d, 4, RC_DOUBLE, rc_op_builtin(RC_BAND)), RC_ETYPE);
        H_CHECK(rc_ctx_errmsg(ctx)[0] != '\0', "RC_ETYPE without a message");
        H_ST(ctx, rc_job_reduce(j, d, 4, RC_DOUBLE, rc_op_builtin(RC_MINLOC)), RC_ETYPE);
        H_ST(ctx, rc_job_reduce(j, d, 4, RC_INT64_LOC, rc_op_builtin(RC_BOR)), RC_ETYPE);
        H_EQ_U64(h_count_keys("job:*"), 0);
        /* the job is still usable: describe it properly and run it */
        static double x[RT][4];
        double want[4] = {0, 0, 0, 0};
        for (int r = 0; r < RT; r++)
            for (int i = 0; i < 4; i++) {
                x[r][i] = r * 0.5 + i;
                want[i] += x[r][i];
            }
        H_OK(ctx, rc_job_scatter(j, x, 4, RC_DOUBLE));
        H_OK(ctx, rc_job_reduce(j, d, 4, RC_DOUBLE, rc_op_builtin(RC_SUM)));
        H_OK(ctx, rc_job_run(j));
        H_MEMEQ(d, want, sizeof d);
        rc_job_destroy(j);
    }
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* MIN/MAX on doubles where the order of the operands shows: -0.0 vs +0.0
 * ties and NaNs with different payloads (ops.c: "min(-0, +0) depends on
 * operand order (deterministic, since redcoll always combines in rank
 * order)", NaN: "in's when both are").  redcoll.h defines the combination
 * as out_0 op out_1 op ... with rc_reduce_local's convention "inout = in op
 * inout, `in` holds the lower ranks" - the same one rc_job_reduce uses for
 * user ops.  So a built-in op must give exactly what (a) a serial fold with
 * rc_reduce_local in that order and (b) a user op wrapping the same built-in
 * give. */
typedef struct wrap_op { rc_op_kind kind; int calls; } wrap_op;
static void wrap_builtin(const void *in, void *inout, size_t count, rc_datatype dt, void *user)
{
    wrap_op *w = user;
    w->calls++;
    if (rc_reduce_local(in, inout, count, dt, rc_op_builtin(w->kind)) != RC_OK)
        abort();
}

static void t_reduce_float_order(void)
{
    enum { C = 3 };
    static double x[RT][C];
    const uint64_t nan_a = 0x7FF800000000AAAAull, nan_b = 0x7FF800000000BBBBull;
    for (int r = 0; r < RT; r++) {
        set_bits(&x[r][0], r % 2 ? 0x0ull : 0x8000000000000000ull); /* -0, +0, -0, ... */
        x[r][1] = 1.0 + r;
        x[r][2] = 100.0 - r;
    }
    set_bits(&x[3][1], nan_a);  /* two NaNs, lower rank first */
    set_bits(&x[11][1], nan_b);
    h_spawn_workers(2, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    char report[2048] = "";
    int bad = 0;
    for (int k = 0; k < 2; k++) {
        rc_op_kind kind = k ? RC_MAX : RC_MIN;
        const char *name = k ? "MAX" : "MIN";
        /* (a) serial fold in rank order: acc = acc op x_r */
        double want[C], tmp[C];
        memcpy(want, x[0], sizeof want);
        for (int r = 1; r < RT; r++) {
            memcpy(tmp, x[r], sizeof tmp);
            H_OK(NULL, rc_reduce_local(want, tmp, C, RC_DOUBLE, rc_op_builtin(kind)));
            memcpy(want, tmp, sizeof want);
        }
        /* (b) the same built-in wrapped as a user op */
        double viauser[C], builtin[C];
        wrap_op w = {kind, 0};
        run_reduce(ctx, x, C, RC_DOUBLE, rc_op_user(wrap_builtin, &w, 1), viauser);
        run_reduce(ctx, x, C, RC_DOUBLE, rc_op_builtin(kind), builtin);
        for (int i = 0; i < C; i++) {
            uint64_t bw, bu, bb;
            memcpy(&bw, &want[i], 8);
            memcpy(&bu, &viauser[i], 8);
            memcpy(&bb, &builtin[i], 8);
            H_CHECK(bu == bw, "%s element %d via a user op: %016llx, serial rank order gives %016llx", name, i,
                    (unsigned long long)bu, (unsigned long long)bw);
            if (bb != bw) {
                snprintf(report + strlen(report), sizeof report - strlen(report),
                         "\n  %s element %d: rc_op_builtin gives %016llx, the serial rank-order fold and the "
                         "same op as a user op give %016llx", name, i, (unsigned long long)bb,
                         (unsigned long long)bw);
                bad++;
            }
        }
    }
    H_CHECK(bad == 0, "%d element(s) combined in the wrong operand order:%s", bad, report);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* Large results that arrive out of rank order wait for their turn in the
 * very reply strings they came in (job.c: held_tag).  All results are in
 * Redis before the master reads any, then the test rewrites the result
 * stream in reverse rank order (same authentic bytes, new entries): every
 * result but rank 0's waits.  The SUM of doubles, where order shows in the
 * bits, must equal a serial rank-order fold; a MAX over the same held
 * results is checked too.  Under ASan (CI) a buffer released twice or too
 * early fails here. */
static void t_reduce_held_large(void)
{
    enum { T = 12, C = 8192 + 3 }; /* 64 KiB results, above the reader's in-place size */
    static double x[T][C];
    uint64_t seed = 77;
    for (int r = 0; r < T; r++)
        for (int i = 0; i < C; i++)
            x[r][i] = (double)(sm64(&seed) >> 11) * 0x1p-40 - 4096.0 * (double)(i % 3);
    h_spawn_workers(2, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    for (int k = 0; k < 2; k++) {
        rc_op_kind kind = k ? RC_MAX : RC_SUM;
        static double want[C], tmp[C], got[C];
        memcpy(want, x[0], sizeof want);
        for (int r = 1; r < T; r++) {
            memcpy(tmp, x[r], sizeof tmp);
            H_OK(NULL, rc_reduce_local(want, tmp, C, RC_DOUBLE, rc_op_builtin(kind)));
            memcpy(want, tmp, sizeof want);
        }
        rc_job *j = new_job(ctx, "identity", T);
        H_OK(ctx, rc_job_scatter(j, x, C, RC_DOUBLE));
        H_OK(ctx, rc_job_reduce(j, got, C, RC_DOUBLE, rc_op_builtin(kind)));
        H_OK(ctx, rc_job_submit(j));
        char res[320];
        h_res_key(j, res, sizeof res);
        H_WAIT(h_cmd_int("XLEN %s", res) == T, H_DEADLINE_MS, "not all %d results delivered", T);
        redisReply *all = h_cmd("XRANGE %s - +", res);
        H_CHECK(all->type == REDIS_REPLY_ARRAY && all->elements == T, "XRANGE of the results");
        const redisReply *byrank[T] = {0};
        for (size_t e = 0; e < all->elements; e++) {
            const redisReply *f = all->element[e]->element[1];
            h_env env;
            H_CHECK(f->elements == 2 && h_env_parse((const unsigned char *)f->element[1]->str, f->element[1]->len,
                                                    &env) == 0 && env.rank < T,
                    "result entry %zu does not parse", e);
            byrank[env.rank] = f->element[1];
        }
        redisContext *rc = h_redis();
        for (int r = 0; r < T; r++)
            H_CHECK(byrank[r] != NULL, "no result for rank %d", r);
        for (size_t e = 0; e < all->elements; e++) {
            redisReply *d = redisCommand(rc, "XDEL %s %s", res, all->element[e]->element[0]->str);
            freeReplyObject(d);
        }
        for (int r = T - 1; r >= 0; r--) {
            redisReply *a = redisCommand(rc, "XADD %s * e %b", res, byrank[r]->str, byrank[r]->len);
            H_CHECK(a && a->type == REDIS_REPLY_STRING, "re-adding rank %d's result", r);
            freeReplyObject(a);
        }
        freeReplyObject(all);
        H_OK(ctx, rc_job_wait(j));
        check_stats(j, T);
        H_MEMEQ(got, want, sizeof got);
        rc_job_destroy(j);
    }
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* Thousands of tiny tasks: publishing, popping and merging cross their
 * batch sizes many times. */
static void t_many_tasks(void)
{
    enum { T = 2500, C = 3 };
    static int32_t in[T * C], out[T * C];
    static int64_t contrib[T];
    int64_t want = 0, got = 0;
    for (size_t i = 0; i < T * C; i++)
        in[i] = (int32_t)(i * 2654435761u);
    for (size_t r = 0; r < T; r++) {
        contrib[r] = (int64_t)(r * r) - 7;
        want += contrib[r];
    }
    memset(out, 0, sizeof out);
    h_spawn_workers(2, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    rc_job *j = new_job(ctx, "identity", T);
    H_OK(ctx, rc_job_scatter(j, in, C, RC_INT32));
    H_OK(ctx, rc_job_gather(j, out, C, RC_INT32));
    H_OK(ctx, rc_job_run(j));
    H_MEMEQ(out, in, sizeof in);
    check_stats(j, T);
    rc_job_destroy(j);
    j = new_job(ctx, "identity", T);
    H_OK(ctx, rc_job_scatter(j, contrib, 1, RC_INT64));
    H_OK(ctx, rc_job_reduce(j, &got, 1, RC_INT64, rc_op_builtin(RC_SUM)));
    H_OK(ctx, rc_job_run(j));
    H_EQ_I64(got, want);
    check_stats(j, T);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* A kernel whose output does not fit the gather: the job fails with
 * RC_EPROTO naming the kernel, rank and sizes - no garbage in recvbuf. */
static void t_output_size_mismatch(void)
{
    enum { T = 9 };
    unsigned char out[T * 16];
    h_spawn_workers(2, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    rc_job *j = new_job(ctx, "varsize", T);
    H_OK(ctx, rc_job_gather(j, out, 16, RC_BYTE));
    H_ST(ctx, rc_job_run(j), RC_EPROTO);
    const char *msg = rc_ctx_errmsg(ctx);
    printf("error seen: %s\n", msg);
    H_CONTAINS(msg, "varsize");
    H_CONTAINS(msg, "16");
    rc_job_destroy(j);
    H_WAIT(h_count_keys("job:*") == 0 && h_xlen() == 0, H_DEADLINE_MS, "%zu job keys, %lld stream entries left",
           h_count_keys("job:*"), h_xlen());
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

static void check_varsize_outputs(rc_ctx *ctx, const rc_job *j, uint64_t T)
{
    for (uint64_t r = 0; r < T; r++) {
        const void *data = NULL;
        size_t size = 12345;
        H_OK(ctx, rc_job_output(j, r, &data, &size));
        size_t want = hk_varsize_len(r);
        H_CHECK(size == want, "rank %llu output is %zu bytes, want %zu", (unsigned long long)r, size, want);
        H_CHECK(size == 0 || data, "rank %llu: NULL data for %zu bytes", (unsigned long long)r, size);
        const unsigned char *b = data;
        for (size_t i = 0; i < size; i++)
            H_CHECK(b[i] == hk_varsize_byte(r, i), "rank %llu byte %zu: got %u, want %u", (unsigned long long)r,
                    i, b[i], hk_varsize_byte(r, i));
    }
}

static void t_keep_outputs(void)
{
    enum { T = 41 };
    h_spawn_workers(2, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    rc_job *j = new_job(ctx, "varsize", T);
    const void *data;
    size_t size;
    H_ST(ctx, rc_job_output(j, 0, &data, &size), RC_ESTATE); /* not run yet */
    H_OK(ctx, rc_job_run(j));
    check_varsize_outputs(ctx, j, T);
    H_ST(ctx, rc_job_output(j, T, &data, &size), RC_EINVAL);
    check_stats(j, T);
    rc_job_destroy(j);

    /* a gather job has no kept outputs */
    uint64_t g[3][3];
    j = new_job(ctx, "bcast_sum", 3);
    H_OK(ctx, rc_job_gather(j, g, 3, RC_UINT64));
    H_OK(ctx, rc_job_run(j));
    H_ST(ctx, rc_job_output(j, 0, &data, &size), RC_ESTATE);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

static void t_nonblocking(void)
{
    rc_ctx *ctx = h_ctx();
    /* A: square over a scatter, gathered */
    enum { AT = 20, AC = 500, BT = 41, CT = 10, DT = 8 };
    static double ain[AT * AC], aout[AT * AC];
    for (size_t i = 0; i < AT * AC; i++)
        ain[i] = (double)i * 0.25 - 1000.0;
    rc_job *a = new_job(ctx, "square", AT);
    H_OK(ctx, rc_job_scatter(a, ain, AC, RC_DOUBLE));
    H_OK(ctx, rc_job_gather(a, aout, AC, RC_DOUBLE));
    /* B: varsize, outputs kept */
    rc_job *b = new_job(ctx, "varsize", BT);
    /* C: bcast_sum reduced with a SUM over its {rank, hash, len} words */
    uint64_t cblob[3] = {1, 2, 3}, csum[3] = {0, 0, 0};
    rc_job *c = new_job(ctx, "bcast_sum", CT);
    H_OK(ctx, rc_job_bcast(c, cblob, 3, RC_UINT64));
    H_OK(ctx, rc_job_reduce(c, csum, 3, RC_UINT64, rc_op_builtin(RC_SUM)));
    /* D: fails at rank 3 */
    uint64_t dparam = 3, dout[DT];
    rc_job *d = new_job(ctx, "fail", DT);
    H_OK(ctx, rc_job_bcast(d, &dparam, 1, RC_UINT64));
    H_OK(ctx, rc_job_gather(d, dout, 1, RC_UINT64));

    rc_job *jobs[4] = {a, b, c, d};
    for (int i = 0; i < 4; i++)
        H_OK(ctx, rc_job_submit(jobs[i]));
    /* no worker exists yet: nothing can be finished */
    for (int i = 0; i < 4; i++)
        H_ST(ctx, rc_job_test(jobs[i]), RC_EAGAIN);
    h_spawn_workers(2, no_args, NULL);
    rc_status st[4] = {RC_EAGAIN, RC_EAGAIN, RC_EAGAIN, RC_EAGAIN};
    long long dl = h_deadline(H_DEADLINE_MS);
    for (;;) {
        int pending = 0;
        for (int i = 0; i < 4; i++) {
            if (st[i] == RC_EAGAIN)
                st[i] = rc_job_test(jobs[i]);
            pending += st[i] == RC_EAGAIN;
        }
        if (!pending)
            break;
        if (h_expired(dl))
            H_FAIL("jobs still running after %d ms: A %s, B %s, C %s, D %s", H_DEADLINE_MS, h_stname(st[0]),
                   h_stname(st[1]), h_stname(st[2]), h_stname(st[3]));
        h_nap_ms(10);
    }
    H_CHECK(st[0] == RC_OK && st[1] == RC_OK && st[2] == RC_OK,
            "A %s, B %s, C %s (expected RC_OK); errmsg \"%s\"", h_stname(st[0]), h_stname(st[1]),
            h_stname(st[2]), rc_ctx_errmsg(ctx));
    H_CHECK(st[3] == RC_EKERNEL, "D returned %s, expected RC_EKERNEL", h_stname(st[3]));
    for (size_t i = 0; i < AT * AC; i++)
        H_CHECK(memcmp(&aout[i], &(double){ain[i] * ain[i]}, sizeof(double)) == 0, "A[%zu] = %a, want %a", i,
                aout[i], ain[i] * ain[i]);
    check_varsize_outputs(ctx, b, BT);
    uint64_t want_c[3] = {CT * (CT - 1) / 2, CT * hk_fnv1a(cblob, sizeof cblob), CT * sizeof cblob};
    H_EQ_U64(csum[0], want_c[0]);
    H_EQ_U64(csum[1], want_c[1]);
    H_EQ_U64(csum[2], want_c[2]);
    /* finished jobs keep their status */
    H_OK(ctx, rc_job_wait(a));
    H_OK(ctx, rc_job_wait(b));
    H_OK(ctx, rc_job_test(c));
    H_ST(ctx, rc_job_wait(d), RC_EKERNEL);
    H_CONTAINS(rc_ctx_errmsg(ctx), HK_FAIL_TEXT " 3");
    H_ST(ctx, rc_job_test(d), RC_EKERNEL);
    H_ST(ctx, rc_job_submit(a), RC_ESTATE);
    for (int i = 0; i < 4; i++)
        rc_job_destroy(jobs[i]);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

static void t_deterministic_pool(void)
{
    enum { T = 64, C = 16 };
    const uint64_t seed = 0xC0FFEE1234ull;
    double want[C], got[3][C];
    /* the serial reference: task r's block b is rc_rng_seed(seed, r, b)
       (the stream rc_task_rng documents: one stream per task and block) */
    double part[T][C];
    for (uint64_t r = 0; r < T; r++)
        for (uint64_t b = 0; b < C; b++) {
            rc_rng rng;
            rc_rng_seed(&rng, seed, r, b);
            part[r][b] = hk_rng_value(&rng);
        }
    for (int b = 0; b < C; b++) {
        want[b] = part[0][b];
        for (int r = 1; r < T; r++)
            want[b] = want[b] + part[r][b];
    }
    static const int pools[3] = {1, 2, 4};
    rc_ctx *ctx = h_ctx();
    for (int p = 0; p < 3; p++) {
        int first = H.nw;
        h_spawn_workers(pools[p], no_args, NULL);
        uint64_t cnt = C;
        rc_job *j = new_job(ctx, "rngsum", T);
        H_OK(ctx, rc_job_set_seed(j, seed));
        H_OK(ctx, rc_job_bcast(j, &cnt, 1, RC_UINT64));
        memset(got[p], 0, sizeof got[p]);
        H_OK(ctx, rc_job_reduce(j, got[p], C, RC_DOUBLE, rc_op_builtin(RC_SUM)));
        H_OK(ctx, rc_job_run(j));
        rc_job_stats s;
        H_OK(NULL, rc_job_get_stats(j, &s));
        H_EQ_U64(s.done, T);
        H_CHECK(s.workers_seen >= 1 && s.workers_seen <= (uint64_t)pools[p], "workers_seen %llu with %d workers",
                (unsigned long long)s.workers_seen, pools[p]);
        printf("pool of %d: %llu worker(s) delivered\n", pools[p], (unsigned long long)s.workers_seen);
        rc_job_destroy(j);
        for (int i = first; i < H.nw; i++)
            h_signal(H.w[i].pid, SIGTERM);
        for (int i = first; i < H.nw; i++)
            H_EXPECT_EXIT0(H.w[i].pid, H_DEADLINE_MS);
    }
    for (int b = 0; b < C; b++) {
        H_CHECK(memcmp(&got[0][b], &got[1][b], sizeof(double)) == 0 &&
                    memcmp(&got[0][b], &got[2][b], sizeof(double)) == 0,
                "element %d differs by pool size: 1 worker %a, 2 workers %a, 4 workers %a", b, got[0][b], got[1][b],
                got[2][b]);
        H_CHECK(memcmp(&got[0][b], &want[b], sizeof(double)) == 0,
                "element %d: %a, the serial rank-order sum of rc_rng_seed(seed, rank, block) streams is %a", b,
                got[0][b], want[b]);
    }
    rc_ctx_destroy(ctx);
}

static void t_unknown_kernel(void)
{
    h_spawn_workers(2, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    rc_job *j = new_job(ctx, "no_such_kernel", 5);
    H_ST(ctx, rc_job_run(j), RC_ENOKERNEL);
    H_CONTAINS(rc_ctx_errmsg(ctx), "no_such_kernel");
    printf("error seen: %s\n", rc_ctx_errmsg(ctx));
    rc_job_destroy(j);
    /* the pool survives and serves the next job */
    uint64_t out[4][3];
    j = new_job(ctx, "bcast_sum", 4);
    H_OK(ctx, rc_job_gather(j, out, 3, RC_UINT64));
    H_OK(ctx, rc_job_run(j));
    for (uint64_t r = 0; r < 4; r++)
        H_EQ_U64(out[r][0], r);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

static void t_kernel_error(void)
{
    enum { T = 20 };
    h_spawn_workers(2, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    uint64_t fail_rank = 7, out[T];
    rc_job *j = new_job(ctx, "fail", T);
    H_OK(ctx, rc_job_bcast(j, &fail_rank, 1, RC_UINT64));
    H_OK(ctx, rc_job_gather(j, out, 1, RC_UINT64));
    H_ST(ctx, rc_job_run(j), RC_EKERNEL);
    const char *msg = rc_ctx_errmsg(ctx);
    printf("error seen: %s\n", msg);
    H_CONTAINS(msg, HK_FAIL_TEXT " 7");
    H_CONTAINS(msg, "task 7");
    rc_job_destroy(j);
    /* nothing of the failed job stays behind in Redis */
    H_WAIT(h_count_keys("job:*") == 0 && h_xlen() == 0, H_DEADLINE_MS, "%zu job keys, %lld stream entries left",
           h_count_keys("job:*"), h_xlen());
    /* and the pool carries on */
    j = new_job(ctx, "fail", T);
    fail_rank = UINT64_MAX;
    H_OK(ctx, rc_job_bcast(j, &fail_rank, 1, RC_UINT64));
    H_OK(ctx, rc_job_gather(j, out, 1, RC_UINT64));
    H_OK(ctx, rc_job_run(j));
    for (uint64_t r = 0; r < T; r++)
        H_EQ_U64(out[r], r);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

static void t_no_key_bad_args(void)
{
    int32_t buf[16] = {0};
    size_t counts[4] = {1, 1, 1, 1}, displs[4] = {0, 1, 2, 3};

    /* no key: refused before anything reaches Redis (and none to fall back
       on in the environment) */
    unsetenv("REDCOLL_KEY_FILE");
    rc_ctx *nk = h_ctx_key(NULL);
    rc_job *j = NULL;
    H_OK(nk, rc_job_create(nk, "identity", 4, &j));
    H_OK(nk, rc_job_scatter(j, buf, 1, RC_INT32));
    H_ST(nk, rc_job_submit(j), RC_EKEY);
    H_CONTAINS(rc_ctx_errmsg(nk), "key");
    H_ST(nk, rc_job_run(j), RC_EKEY);
    H_ST(nk, rc_connect(nk), RC_EKEY);
    H_ST(nk, rc_job_test(j), RC_ESTATE); /* never submitted */
    rc_job_destroy(j);
    rc_ctx_destroy(nk);
    H_EQ_U64(h_count_keys("*"), 0);

    rc_ctx *ctx = h_ctx();
    /* creation */
    static char not_a_job;
    j = (rc_job *)(void *)&not_a_job; /* must be reset to NULL on failure */
    H_ST(ctx, rc_job_create(ctx, "identity", 0, &j), RC_EINVAL);
    H_CHECK(j == NULL, "*out not cleared on failure");
    H_CHECK(rc_ctx_errmsg(ctx)[0], "RC_EINVAL without a message");
    H_ST(ctx, rc_job_create(ctx, "", 4, &j), RC_EINVAL);
    char longname[80];
    memset(longname, 'k', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    H_ST(ctx, rc_job_create(ctx, longname, 4, &j), RC_EINVAL);

    /* scatterv without counts or displacements */
    H_OK(ctx, rc_job_create(ctx, "identity", 4, &j));
    H_ST(ctx, rc_job_scatterv(j, buf, NULL, displs, RC_INT32), RC_EINVAL);
    H_CHECK(rc_ctx_errmsg(ctx)[0], "RC_EINVAL without a message");
    printf("scatterv(NULL counts): %s\n", rc_ctx_errmsg(ctx));
    H_ST(ctx, rc_job_scatterv(j, buf, counts, NULL, RC_INT32), RC_EINVAL);
    H_CHECK(rc_ctx_errmsg(ctx)[0], "RC_EINVAL without a message");
    H_ST(ctx, rc_job_gatherv(j, buf, NULL, displs, RC_INT32), RC_EINVAL);
    H_ST(ctx, rc_job_scatter(j, buf, 1, (rc_datatype)99), RC_EINVAL);
    H_ST(ctx, rc_job_scatter(j, NULL, 1, RC_INT32), RC_EINVAL);
    H_ST(ctx, rc_job_gather(j, buf, SIZE_MAX / 2, RC_INT32), RC_EINVAL);

    /* one input and one output description per job */
    H_OK(ctx, rc_job_scatterv(j, buf, counts, displs, RC_INT32));
    H_ST(ctx, rc_job_scatter(j, buf, 1, RC_INT32), RC_ESTATE);
    int32_t red[1];
    H_OK(ctx, rc_job_reduce(j, red, 1, RC_INT32, rc_op_builtin(RC_SUM)));
    H_ST(ctx, rc_job_gather(j, buf, 1, RC_INT32), RC_ESTATE);
    H_CHECK(rc_ctx_errmsg(ctx)[0], "RC_ESTATE without a message");
    printf("gather after reduce: %s\n", rc_ctx_errmsg(ctx));
    H_ST(ctx, rc_job_gatherv(j, buf, counts, displs, RC_INT32), RC_ESTATE);
    H_ST(ctx, rc_job_reduce(j, red, 1, RC_INT32, rc_op_builtin(RC_MAX)), RC_ESTATE);

    /* not submitted yet */
    H_ST(ctx, rc_job_wait(j), RC_ESTATE);
    H_ST(ctx, rc_job_test(j), RC_ESTATE);

    /* submitted (no workers): the description is frozen */
    H_OK(ctx, rc_job_submit(j));
    H_EQ_U64(h_count_keys("job:*"), 2); /* the descriptor and the (empty) result stream */
    H_EQ_U64(h_xlen(), 4);
    H_ST(ctx, rc_job_submit(j), RC_ESTATE);
    H_ST(ctx, rc_job_bcast(j, buf, 1, RC_INT32), RC_ESTATE);
    H_ST(ctx, rc_job_set_seed(j, 5), RC_ESTATE);
    H_ST(ctx, rc_job_test(j), RC_EAGAIN);
    /* cancelled: its tasks and keys are gone, and waiting says so */
    H_OK(ctx, rc_job_cancel(j));
    H_ST(ctx, rc_job_wait(j), RC_ECANCELED);
    H_EQ_U64(h_count_keys("job:*"), 0);
    H_EQ_U64(h_xlen(), 0);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
}

/* Key files users get wrong: each error names the file and what is wrong
 * with it, wherever the key is loaded (rc_ctx_load_key, or implicitly from
 * REDCOLL_KEY_FILE by rc_job_submit / rc_connect), and a worker given a bad
 * key exits non-zero saying so instead of serving. */
static void t_key_file_errors(void)
{
    char loose[600], shortk[600], missing[600], msg[512];
    h_keyfile("loose", loose, sizeof loose);
    H_CHECK(chmod(loose, 0644) == 0, "chmod: %s", strerror(errno));
    snprintf(shortk, sizeof shortk, "%s/short", H.dir);
    FILE *f = fopen(shortk, "w");
    H_CHECK(f != NULL, "fopen %s: %s", shortk, strerror(errno));
    fputs("0123456789abcdef\n", f);
    fclose(f);
    H_CHECK(chmod(shortk, 0600) == 0, "chmod: %s", strerror(errno));
    snprintf(missing, sizeof missing, "%s/no-such-key", H.dir);

    rc_ctx *ctx = h_ctx_key(NULL);
    H_ST(ctx, rc_ctx_load_key(ctx, loose), RC_EKEY);
    H_CONTAINS(rc_ctx_errmsg(ctx), loose);
    H_CONTAINS(rc_ctx_errmsg(ctx), "chmod 600");
    H_ST(ctx, rc_ctx_load_key(ctx, shortk), RC_EKEY);
    H_CONTAINS(rc_ctx_errmsg(ctx), shortk);
    H_ST(ctx, rc_ctx_load_key(ctx, missing), RC_EKEY);
    H_CONTAINS(rc_ctx_errmsg(ctx), missing);
    /* keygen never overwrites a key */
    H_ST(NULL, rc_keygen_file(H.keyfile, msg, sizeof msg), RC_EIO);
    H_CONTAINS(msg, H.keyfile);

    /* a worker with a world-readable key refuses to start */
    pid_t w = h_spawn_worker_key(loose, no_args);
    int st = 0;
    long long dl = h_deadline(H_DEADLINE_MS);
    while (!h_reap(w, &st)) {
        H_CHECK(!h_expired(dl), "the worker with a bad key is still running");
        h_nap_ms(10);
    }
    H_CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 0, "the worker with a bad key exited with wait status 0x%x",
            (unsigned)st);
    H_CHECK(h_log_contains(w, loose), "the worker's log does not name the key file %s", loose);

    /* the key named by REDCOLL_KEY_FILE is unusable: the user is told why */
    H_CHECK(setenv("REDCOLL_KEY_FILE", loose, 1) == 0, "setenv");
    rc_job *j = NULL;
    int32_t buf[2] = {1, 2};
    H_OK(ctx, rc_job_create(ctx, "identity", 2, &j));
    H_OK(ctx, rc_job_scatter(j, buf, 1, RC_INT32));
    H_ST(ctx, rc_job_submit(j), RC_EKEY);
    printf("rc_job_submit: %s\n", rc_ctx_errmsg(ctx));
    H_CONTAINS(rc_ctx_errmsg(ctx), loose);
    H_ST(ctx, rc_connect(ctx), RC_EKEY);
    printf("rc_connect: %s\n", rc_ctx_errmsg(ctx));
    H_CONTAINS(rc_ctx_errmsg(ctx), loose);
    rc_job_destroy(j);
    unsetenv("REDCOLL_KEY_FILE");
    rc_ctx_destroy(ctx);
    H_EQ_U64(h_count_keys("*"), 0);
}

int main(int argc, char **argv)
{
    static const h_test tests[] = {
        {"scatter_gather_1m", t_scatter_gather_1m},
        {"data_reuse", t_data_reuse},
        {"scatterv_gatherv", t_scatterv_gatherv},
        {"bcast", t_bcast},
        {"reduce_ops", t_reduce_ops},
        {"reduce_float_order", t_reduce_float_order},
        {"reduce_held_large", t_reduce_held_large},
        {"many_tasks", t_many_tasks},
        {"output_size_mismatch", t_output_size_mismatch},
        {"keep_outputs", t_keep_outputs},
        {"nonblocking", t_nonblocking},
        {"deterministic_pool", t_deterministic_pool},
        {"unknown_kernel", t_unknown_kernel},
        {"kernel_error", t_kernel_error},
        {"no_key_bad_args", t_no_key_bad_args},
        {"key_file_errors", t_key_file_errors},
        {NULL, NULL},
    };
    return h_main(argc, argv, tests);
}
