/* port_kmeans.c - an iterative MPI code (k-means: MPI_Bcast of centroids, MPI_Reduce of partial sums) ported to redcoll.
 *
 * Why: iterative codes are where porting needs care, and
 * docs/porting-from-mpi.md shows the MPI original next to this.  In MPI every
 * rank keeps its block of points for the whole run and only the centroids
 * move: broadcast each iteration, per-rank partial sums (per cluster: the
 * coordinate sums and the point count, one flat array of doubles) reduced
 * with MPI_SUM.  Here the points are scattered once into Redis
 * (rc_data_scatterv, before the loop, as MPI scatters before its loop) and
 * each iteration is one job that broadcasts the centroids, maps the
 * assignment kernel over the stored blocks and reduces the sums with RC_SUM.
 * `--rescatter` instead scatters the points with every job (what a port
 * without stored data does: simpler, more traffic).
 *
 * Exactness: redcoll combines the per-task sums in rank order, so the serial
 * reference in `--check` computes the same per-block sums with the same
 * function, in block order, adds them in that order, and then must produce
 * bitwise identical centroids after every iteration.  (Plain serial k-means,
 * one running sum over all points, would round differently; so would MPI.)
 *
 * usage: port_kmeans [--n N] [--k K] [--tasks T] [--iters I] [--rescatter]
 *        port_kmeans --worker
 *        port_kmeans --check [--rescatter]   2 local workers vs the serial code */
#define _POSIX_C_SOURCE 200809L /* sigaction */
#include "redcoll.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE "port_kmeans"
#define DIM 2  /* points are DIM doubles; the kernel reads d from the broadcast */
#define PI 3.14159265358979323846

/* Index of the centroid nearest to x (the lowest index on a tie). */
static size_t nearest(const double *x, const double *cent, size_t k, size_t d)
{
    size_t best = 0;
    double bestd = INFINITY;
    for (size_t j = 0; j < k; j++) {
        double dist = 0.0;
        for (size_t e = 0; e < d; e++) {
            double diff = x[e] - cent[j * d + e];
            dist += diff * diff;
        }
        if (dist < bestd) {
            bestd = dist;
            best = j;
        }
    }
    return best;
}

/* One block's contribution, the struct MPI reduces: sums[j*d + e] is the sum
 * of coordinate e over the block's points nearest centroid j, sums[k*d + j]
 * their count.  Both the kernel and the serial reference call this. */
static void partial_sums(const double *pts, size_t npts, const double *cent, size_t k, size_t d, double *sums)
{
    for (size_t i = 0; i < k * (d + 1); i++)
        sums[i] = 0.0;
    for (size_t i = 0; i < npts; i++) {
        const double *x = pts + i * d;
        size_t j = nearest(x, cent, k, d);
        for (size_t e = 0; e < d; e++)
            sums[j * d + e] += x[e];
        sums[k * d + j] += 1.0;
    }
}

/* New centroids from the reduced sums (an empty cluster keeps its
 * centroid); returns how many moved.  Run by the master only. */
static size_t update_centroids(double *cent, const double *sums, size_t k, size_t d)
{
    size_t moved = 0;
    for (size_t j = 0; j < k; j++) {
        double count = sums[k * d + j];
        if (count == 0.0)
            continue;
        for (size_t e = 0; e < d; e++) {
            double c = sums[j * d + e] / count;
            moved += c != cent[j * d + e];
            cent[j * d + e] = c;
        }
    }
    return moved;
}

/* The kernel.  Broadcast: {k, d, centroids[k*d]} as doubles; input: this
 * task's block of points; output: its partial sums. */
static int kmeans_kernel(rc_task *t, void *user)
{
    (void)user;
    size_t bbytes, ibytes;
    const double *bc = rc_task_bcast(t, &bbytes);
    const double *pts = rc_task_input(t, &ibytes);
    if (bbytes < 2 * sizeof *bc)
        return rc_task_fail(t, "broadcast too short (%zu bytes)", bbytes);
    size_t k = (size_t)bc[0], d = (size_t)bc[1];
    if (k < 1 || d < 1 || bbytes != (2 + k * d) * sizeof *bc || ibytes % (d * sizeof *pts) != 0)
        return rc_task_fail(t, "broadcast (%zu bytes) or block (%zu bytes) does not fit k=%zu d=%zu", bbytes,
                            ibytes, k, d);
    double *sums;
    if (rc_task_output(t, k * (d + 1) * sizeof *sums, (void **)&sums) != RC_OK)
        return rc_task_fail(t, "out of memory");
    partial_sums(pts, ibytes / (d * sizeof *pts), bc + 2, k, d, sums);
    return 0;
}

typedef struct kmeans {
    size_t n, k, d, tasks;
    int iters;
    const double *pts;    /* n * d */
    size_t *counts, *displs; /* per task, in doubles (whole points) */
} kmeans;

/* The MPI code's block layout in whole points, for tasks rather than ranks. */
static void block_layout(kmeans *km)
{
    size_t off = 0;
    for (size_t r = 0; r < km->tasks; r++) {
        size_t np = km->n / km->tasks + (r < km->n % km->tasks);
        km->counts[r] = np * km->d;
        km->displs[r] = off;
        off += km->counts[r];
    }
}

/* k-means on the pool: cent (k*d) in, final centroids out; moved[it] is how
 * many coordinates iteration it changed. */
static rc_status kmeans_redcoll(rc_ctx *ctx, const kmeans *km, int rescatter, double *cent, size_t *moved)
{
    size_t nb = 2 + km->k * km->d, ns = km->k * (km->d + 1);
    double *bc = malloc(nb * sizeof *bc), *sums = malloc(ns * sizeof *sums);
    rc_data *data = NULL;
    rc_status st = bc && sums ? RC_OK : RC_ENOMEM;
    /* MPI_Scatterv before the loop: the blocks stay in Redis for every job */
    if (st == RC_OK && !rescatter)
        st = rc_data_scatterv(ctx, km->pts, km->counts, km->displs, RC_DOUBLE, km->tasks, &data);
    for (int it = 0; st == RC_OK && it < km->iters; it++) {
        rc_job *job = NULL;
        bc[0] = (double)km->k;
        bc[1] = (double)km->d;
        memcpy(bc + 2, cent, km->k * km->d * sizeof *cent);
        st = rc_job_create(ctx, "kmeans", km->tasks, &job);
        if (st == RC_OK) st = rc_job_bcast(job, bc, nb, RC_DOUBLE);                          /* MPI_Bcast */
        if (st == RC_OK)
            st = rescatter ? rc_job_scatterv(job, km->pts, km->counts, km->displs, RC_DOUBLE) /* every time */
                           : rc_job_use_data(job, data);                                     /* stored once */
        if (st == RC_OK) st = rc_job_reduce(job, sums, ns, RC_DOUBLE, rc_op_builtin(RC_SUM)); /* MPI_Reduce */
        if (st == RC_OK) st = rc_job_run(job);
        rc_job_destroy(job);
        if (st == RC_OK)
            moved[it] = update_centroids(cent, sums, km->k, km->d);
    }
    if (data) {
        rc_status rst = rc_data_release(data);
        if (st == RC_OK)
            st = rst;
    }
    free(bc);
    free(sums);
    return st;
}

/* The serial reference: the same blocks, the same partial sums, added in
 * block order exactly as redcoll's rank-order reduce adds them. */
static int kmeans_serial(const kmeans *km, double *cent, size_t *moved)
{
    size_t ns = km->k * (km->d + 1);
    double *acc = malloc(ns * sizeof *acc), *part = malloc(ns * sizeof *part);
    if (!acc || !part) {
        free(acc);
        free(part);
        return -1;
    }
    for (int it = 0; it < km->iters; it++) {
        for (size_t r = 0; r < km->tasks; r++) {
            partial_sums(km->pts + km->displs[r], km->counts[r] / km->d, cent, km->k, km->d, part);
            for (size_t i = 0; i < ns; i++)
                acc[i] = r == 0 ? part[i] : acc[i] + part[i];
        }
        moved[it] = update_centroids(cent, acc, km->k, km->d);
    }
    free(acc);
    free(part);
    return 0;
}

/* n points in d dimensions around k centres on a circle (Gaussian, sigma 3,
 * overlapping); reproducible from the seed. */
static void make_points(double *pts, size_t n, size_t k, size_t d, uint64_t seed)
{
    rc_rng rng;
    rc_rng_seed(&rng, seed, 0, 0);
    for (size_t i = 0; i < n; i++) {
        size_t c = (size_t)(rc_rng_u64(&rng) % k);
        for (size_t e = 0; e < d; e++) {
            double u1 = 1.0 - rc_rng_double(&rng), u2 = rc_rng_double(&rng);
            double g = sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2);
            double centre = 10.0 * (e % 2 == 0 ? cos(2.0 * PI * (double)c / (double)k)
                                               : sin(2.0 * PI * (double)c / (double)k));
            pts[i * d + e] = centre + 3.0 * g;
        }
    }
}

static rc_ctx *g_ctx;
static void on_stop(int sig)
{
    (void)sig;
    rc_ctx_interrupt(g_ctx);
}

static int worker(rc_ctx *ctx)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    g_ctx = ctx;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    rc_status st = rc_worker_run(ctx);
    if (st != RC_OK)
        fprintf(stderr, "port_kmeans worker: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
    return st == RC_OK ? 0 : 1;
}

static int parse_count(const char *opt, const char *s, size_t max, size_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*end || v < 1 || v > (double)max || v != floor(v)) {
        fprintf(stderr, "port_kmeans: %s needs a whole number from 1 to %zu, got '%s'\n", opt, max, s);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    kmeans km = {.n = 1000000, .k = 5, .d = DIM, .tasks = 32, .iters = 20};
    int check = 0, is_worker = 0, rescatter = 0;
    size_t iters = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--worker") == 0) {
            is_worker = 1;
        } else if (strcmp(argv[i], "--check") == 0) {
            check = 1;
            km.n = 200003;
            km.tasks = 8;
            km.iters = 12;
        } else if (strcmp(argv[i], "--rescatter") == 0) {
            rescatter = 1;
        } else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
            if (parse_count("--n", argv[++i], (size_t)1e9, &km.n)) return 2;
        } else if (strcmp(argv[i], "--k") == 0 && i + 1 < argc) {
            if (parse_count("--k", argv[++i], 1000, &km.k)) return 2;
        } else if (strcmp(argv[i], "--tasks") == 0 && i + 1 < argc) {
            if (parse_count("--tasks", argv[++i], 100000, &km.tasks)) return 2;
        } else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
            if (parse_count("--iters", argv[++i], 100000, &iters)) return 2;
            km.iters = (int)iters;
        } else {
            fprintf(stderr, "usage: port_kmeans [--worker | --check] [--rescatter] [--n N] [--k K] [--tasks T] "
                            "[--iters I]\n");
            return 2;
        }
    }
    rc_ctx *ctx = rc_ctx_create();
    if (!ctx || rc_ctx_set_str(ctx, RC_OPT_QUEUE, QUEUE) != RC_OK ||
        rc_register_kernel(ctx, "kmeans", kmeans_kernel, NULL) != RC_OK) {
        fprintf(stderr, "port_kmeans: cannot set up a redcoll context\n");
        rc_ctx_destroy(ctx);
        return 1;
    }
    if (is_worker) {
        int rc = worker(ctx);
        rc_ctx_destroy(ctx);
        return rc;
    }
    if (km.k > km.n || km.tasks > km.n) {
        fprintf(stderr, "port_kmeans: need k <= n and tasks <= n\n");
        rc_ctx_destroy(ctx);
        return 2;
    }

    double *pts = malloc(km.n * km.d * sizeof *pts);
    double *cent = malloc(km.k * km.d * sizeof *cent), *ref = malloc(km.k * km.d * sizeof *ref);
    size_t *moved = calloc((size_t)km.iters, sizeof *moved), *ref_moved = calloc((size_t)km.iters, sizeof *moved);
    km.counts = malloc(km.tasks * sizeof *km.counts);
    km.displs = malloc(km.tasks * sizeof *km.displs);
    rc_local *loc = NULL;
    const char *wargv[] = {"/proc/self/exe", "--worker", NULL};
    const char *url = getenv("REDCOLL_URL"), *url_file = getenv("REDCOLL_URL_FILE");
    int embedded = check || !((url && *url) || (url_file && *url_file));
    rc_status st = pts && cent && ref && moved && ref_moved && km.counts && km.displs ? RC_OK : RC_ENOMEM;
    if (st == RC_OK) {
        make_points(pts, km.n, km.k, km.d, 2024);
        km.pts = pts;
        block_layout(&km);
        memcpy(cent, pts, km.k * km.d * sizeof *cent); /* initial centroids: the first k points */
        memcpy(ref, cent, km.k * km.d * sizeof *cent);
    }
    if (st == RC_OK && embedded)
        st = rc_local_start(ctx, wargv, 2, &loc);
    if (st == RC_OK)
        st = kmeans_redcoll(ctx, &km, rescatter, cent, moved);
    int rc = 1;
    if (st != RC_OK) {
        fprintf(stderr, "port_kmeans: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
    } else if (!check) {
        printf("k-means, %zu points, k=%zu, %zu tasks, %d iterations (%s):\n", km.n, km.k, km.tasks, km.iters,
               rescatter ? "scattered every iteration" : "scattered once");
        for (size_t j = 0; j < km.k; j++)
            printf("  centroid %zu: (%.6f, %.6f)\n", j, cent[j * km.d], cent[j * km.d + 1]);
        rc = 0;
    } else if (kmeans_serial(&km, ref, ref_moved) != 0) {
        fprintf(stderr, "port_kmeans: out of memory\n");
    } else {
        int last_move = -1;
        for (int it = 0; it < km.iters; it++)
            if (ref_moved[it])
                last_move = it;
        int same = memcmp(cent, ref, km.k * km.d * sizeof *cent) == 0 &&
                   memcmp(moved, ref_moved, (size_t)km.iters * sizeof *moved) == 0;
        printf("port_kmeans --check (%s): %zu points, k=%zu, %zu tasks, %d iterations, centroids last moved in "
               "iteration %d: %s\n", rescatter ? "scattered every iteration" : "scattered once", km.n, km.k,
               km.tasks, km.iters, last_move + 1, same ? "bitwise equal to the serial code" : "DIFFERENT");
        for (size_t j = 0; j < km.k; j++)
            printf("  centroid %zu: redcoll (%.17g, %.17g) serial (%.17g, %.17g)\n", j, cent[j * km.d],
                   cent[j * km.d + 1], ref[j * km.d], ref[j * km.d + 1]);
        if (same && last_move < 2) {
            printf("port_kmeans --check: the centroids moved in fewer than 3 iterations: too easy a test\n");
            same = 0;
        }
        rc = same ? 0 : 1;
    }
    rc_local_stop(loc);
    rc_ctx_destroy(ctx);
    free(pts);
    free(cent);
    free(ref);
    free(moved);
    free(ref_moved);
    free(km.counts);
    free(km.displs);
    return rc;
}
