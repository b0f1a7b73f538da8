/* port_scatter.c - an MPI scatter/compute/gather program (apply f to a big array) ported to redcoll.
 *
 * Why: "root scatters an array, every rank transforms its block, root
 * gathers the results" is the other half of everyday MPI code;
 * docs/porting-from-mpi.md shows the MPI_Scatterv/MPI_Gatherv original next
 * to this.  The block layout is computed exactly as the MPI code does it
 * (counts and displacements, the first n % T blocks one element longer), but
 * for T tasks rather than for the number of processes, and the kernel is the
 * loop body between the two collectives.  `--check` applies f serially in
 * this process and requires every output element to be bitwise equal: the
 * same code runs on the same bits wherever a worker runs it.
 *
 * usage: port_scatter [--n N] [--tasks T]   run (embedded default, or the pool
 *                                           at REDCOLL_URL / REDCOLL_URL_FILE)
 *        port_scatter --worker              serve the queue
 *        port_scatter --check               compare with the serial computation */
#define _POSIX_C_SOURCE 200809L /* sigaction */
#include "redcoll.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE "port_scatter"
#define TERMS 16
#define PI 3.14159265358979323846

/* The function applied to every element: the first TERMS terms of the
 * Fourier series of a square wave (costly enough to be worth distributing). */
static double f(double x)
{
    double s = 0.0;
    for (int k = 1; k <= 2 * TERMS; k += 2)
        s += sin(k * x) / k;
    return 4.0 / PI * s;
}

/* The kernel: y = f(x) over this task's block. */
static int apply_kernel(rc_task *t, void *user)
{
    (void)user;
    size_t bytes;
    const double *x = rc_task_input(t, &bytes); /* MPI_Scatterv's recvbuf */
    size_t n = bytes / sizeof *x;
    double *y;
    if (rc_task_output(t, n * sizeof *y, (void **)&y) != RC_OK) /* MPI_Gatherv's sendbuf */
        return rc_task_fail(t, "out of memory for %zu outputs", n);
    for (size_t i = 0; i < n; i++)
        y[i] = f(x[i]);
    return 0;
}

/* The MPI code's block layout, for `tasks` blocks instead of `size` ranks. */
static void block_layout(size_t n, size_t tasks, size_t *counts, size_t *displs)
{
    size_t off = 0;
    for (size_t r = 0; r < tasks; r++) {
        counts[r] = n / tasks + (r < n % tasks);
        displs[r] = off;
        off += counts[r];
    }
}

static rc_status run_apply(rc_ctx *ctx, const double *x, double *y, size_t n, size_t tasks)
{
    size_t *counts = malloc(tasks * sizeof *counts), *displs = malloc(tasks * sizeof *displs);
    rc_job *job = NULL;
    rc_status st = counts && displs ? RC_OK : RC_ENOMEM;
    if (st == RC_OK) {
        block_layout(n, tasks, counts, displs);
        st = rc_job_create(ctx, "apply", tasks, &job);
    }
    if (st == RC_OK) st = rc_job_scatterv(job, x, counts, displs, RC_DOUBLE); /* MPI_Scatterv */
    if (st == RC_OK) st = rc_job_gatherv(job, y, counts, displs, RC_DOUBLE);  /* MPI_Gatherv */
    if (st == RC_OK) st = rc_job_run(job);
    rc_job_destroy(job);
    free(counts);
    free(displs);
    return st;
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
        fprintf(stderr, "port_scatter worker: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
    return st == RC_OK ? 0 : 1;
}

static int parse_count(const char *opt, const char *s, size_t *out)
{
    char *end;
    double d = strtod(s, &end);
    if (*end || d < 1 || d > 1e10 || d != floor(d)) {
        fprintf(stderr, "port_scatter: %s needs a whole number >= 1, got '%s'\n", opt, s);
        return -1;
    }
    *out = (size_t)d;
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = 10000003, tasks = 100; /* deliberately not a multiple: uneven blocks */
    int check = 0, is_worker = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--worker") == 0) {
            is_worker = 1;
        } else if (strcmp(argv[i], "--check") == 0) {
            check = 1;
            n = 1000003;
            tasks = 24;
        } else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
            if (parse_count("--n", argv[++i], &n)) return 2;
        } else if (strcmp(argv[i], "--tasks") == 0 && i + 1 < argc) {
            if (parse_count("--tasks", argv[++i], &tasks)) return 2;
        } else {
            fprintf(stderr, "usage: port_scatter [--worker | --check] [--n N] [--tasks T]\n");
            return 2;
        }
    }
    rc_ctx *ctx = rc_ctx_create();
    if (!ctx || rc_ctx_set_str(ctx, RC_OPT_QUEUE, QUEUE) != RC_OK ||
        rc_register_kernel(ctx, "apply", apply_kernel, NULL) != RC_OK) {
        fprintf(stderr, "port_scatter: cannot set up a redcoll context\n");
        rc_ctx_destroy(ctx);
        return 1;
    }
    if (is_worker) {
        int rc = worker(ctx);
        rc_ctx_destroy(ctx);
        return rc;
    }

    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    rc_local *loc = NULL;
    const char *wargv[] = {"/proc/self/exe", "--worker", NULL};
    const char *url = getenv("REDCOLL_URL"), *url_file = getenv("REDCOLL_URL_FILE");
    int embedded = check || !((url && *url) || (url_file && *url_file));
    rc_status st = x && y ? RC_OK : RC_ENOMEM;
    for (size_t i = 0; st == RC_OK && i < n; i++)
        x[i] = -PI + 2.0 * PI * (double)i / (double)n; /* one period */
    if (st == RC_OK && embedded)
        st = rc_local_start(ctx, wargv, 2, &loc);
    if (st == RC_OK)
        st = run_apply(ctx, x, y, n, tasks);
    int rc = 1;
    if (st != RC_OK) {
        fprintf(stderr, "port_scatter: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
    } else if (!check) {
        double sum = 0.0;
        for (size_t i = 0; i < n; i++)
            sum += fabs(y[i]);
        printf("f applied to %zu elements in %zu tasks: mean |f(x)| = %.15g (square wave: about 1)\n", n, tasks,
               sum / (double)n);
        rc = 0;
    } else {
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < n; i++) {
            double ref = f(x[i]);
            if (memcmp(&ref, &y[i], sizeof ref) != 0 && bad++ == 0)
                first = i;
        }
        if (bad)
            printf("port_scatter --check: %zu of %zu elements differ, first at %zu: %.17g vs serial %.17g\n", bad, n,
                   first, y[first], f(x[first]));
        else
            printf("port_scatter --check: %zu elements in %zu uneven tasks, all bitwise equal to the serial loop\n",
                   n, tasks);
        rc = bad ? 1 : 0;
    }
    rc_local_stop(loc);
    rc_ctx_destroy(ctx);
    free(x);
    free(y);
    return rc;
}
