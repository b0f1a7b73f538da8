/* port_pi.c - MPI's classic cpi (pi by the midpoint rule, MPI_Bcast + MPI_Reduce) ported to redcoll.
 *
 * Why: it is the first MPI program most people ran, so docs/porting-from-mpi.md
 * shows it next to this file line by line.  The MPI rank becomes the task
 * rank (and MPI's process count a task count chosen for the work, not for the
 * machine), the interval count travels as the broadcast, and the partial sums
 * are reduced with RC_SUM.  Unlike MPI_Reduce, whose summation order depends
 * on the implementation and the process count, redcoll adds the partial sums
 * in rank order, so the result is one fixed double: `--check` computes the
 * same partial sums serially in this process, adds them in rank order, and
 * requires the two to be bitwise equal.
 *
 * usage: port_pi [--intervals N] [--tasks T]   run (embedded default: private
 *                                              Redis + 2 local workers, or the
 *                                              pool at REDCOLL_URL / REDCOLL_URL_FILE)
 *        port_pi --worker                      serve the queue (REDCOLL_URL, REDCOLL_KEY_FILE)
 *        port_pi --check                       compare with the serial computation */
#define _POSIX_C_SOURCE 200809L /* sigaction */
#include "redcoll.h"

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE "port_pi"

static double f(double a) { return 4.0 / (1.0 + a * a); }

/* What MPI rank `rank` of `size` computes in cpi: every size-th rectangle. */
static double cpi_partial(uint64_t n, uint64_t size, uint64_t rank)
{
    double h = 1.0 / (double)n, sum = 0.0;
    for (uint64_t i = rank + 1; i <= n; i += size)
        sum += f(h * ((double)i - 0.5));
    return h * sum;
}

/* The kernel: one task = one former MPI rank. */
static int cpi_kernel(rc_task *t, void *user)
{
    (void)user;
    size_t bytes;
    const uint64_t *n = rc_task_bcast(t, &bytes); /* MPI_Bcast(&n, ...) */
    double *mypi;
    if (bytes != sizeof *n || *n == 0)
        return rc_task_fail(t, "broadcast must be the interval count (8 bytes), got %zu bytes", bytes);
    if (rc_task_output(t, sizeof *mypi, (void **)&mypi) != RC_OK)
        return rc_task_fail(t, "out of memory");
    *mypi = cpi_partial(*n, rc_task_ntasks(t), rc_task_rank(t));
    return 0;
}

/* The master: bcast + map + reduce, one job. */
static rc_status run_cpi(rc_ctx *ctx, uint64_t n, uint64_t tasks, double *pi)
{
    rc_job *job = NULL;
    rc_status st = rc_job_create(ctx, "cpi", tasks, &job);
    if (st == RC_OK) st = rc_job_bcast(job, &n, 1, RC_UINT64);                           /* MPI_Bcast */
    if (st == RC_OK) st = rc_job_reduce(job, pi, 1, RC_DOUBLE, rc_op_builtin(RC_SUM));   /* MPI_Reduce */
    if (st == RC_OK) st = rc_job_run(job);
    rc_job_destroy(job);
    return st;
}

static rc_ctx *g_ctx;
static void on_stop(int sig)
{
    (void)sig;
    rc_ctx_interrupt(g_ctx); /* async-signal-safe: 1st drains, 2nd hands the task back */
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
        fprintf(stderr, "port_pi worker: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
    return st == RC_OK ? 0 : 1;
}

static int parse_count(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    double d = strtod(s, &end);
    if (*end || d < 1 || d > 1e15 || d != floor(d)) {
        fprintf(stderr, "port_pi: %s needs a whole number >= 1, got '%s'\n", opt, s);
        return -1;
    }
    *out = (uint64_t)d;
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t n = 100000000, tasks = 64;
    int check = 0, is_worker = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--worker") == 0) {
            is_worker = 1;
        } else if (strcmp(argv[i], "--check") == 0) {
            check = 1;
            n = 20000000;
            tasks = 16;
        } else if (strcmp(argv[i], "--intervals") == 0 && i + 1 < argc) {
            if (parse_count("--intervals", argv[++i], &n)) return 2;
        } else if (strcmp(argv[i], "--tasks") == 0 && i + 1 < argc) {
            if (parse_count("--tasks", argv[++i], &tasks)) return 2;
        } else {
            fprintf(stderr, "usage: port_pi [--worker | --check] [--intervals N] [--tasks T]\n");
            return 2;
        }
    }
    rc_ctx *ctx = rc_ctx_create();
    if (!ctx || rc_ctx_set_str(ctx, RC_OPT_QUEUE, QUEUE) != RC_OK ||
        rc_register_kernel(ctx, "cpi", cpi_kernel, NULL) != RC_OK) {
        fprintf(stderr, "port_pi: cannot set up a redcoll context\n");
        rc_ctx_destroy(ctx);
        return 1;
    }
    if (is_worker) {
        int rc = worker(ctx);
        rc_ctx_destroy(ctx);
        return rc;
    }

    rc_local *loc = NULL;
    const char *wargv[] = {"/proc/self/exe", "--worker", NULL};
    const char *url = getenv("REDCOLL_URL"), *url_file = getenv("REDCOLL_URL_FILE");
    int embedded = check || !((url && *url) || (url_file && *url_file));
    rc_status st = embedded ? rc_local_start(ctx, wargv, 2, &loc) : RC_OK;
    double pi = 0.0;
    if (st == RC_OK)
        st = run_cpi(ctx, n, tasks, &pi);
    int rc = 1;
    if (st != RC_OK) {
        fprintf(stderr, "port_pi: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
    } else if (!check) {
        printf("pi is approximately %.16f, error is %.16f (%" PRIu64 " intervals, %" PRIu64 " tasks)\n", pi,
               fabs(pi - 3.141592653589793238462643), n, tasks);
        rc = 0;
    } else {
        /* Serial reference: the same partial sums, added in rank order. */
        double ref = 0.0;
        for (uint64_t r = 0; r < tasks; r++) {
            double part = cpi_partial(n, tasks, r);
            ref = r == 0 ? part : ref + part;
        }
        int same = memcmp(&pi, &ref, sizeof pi) == 0;
        printf("port_pi --check: redcoll %.17g, serial %.17g: %s\n", pi, ref,
               same ? "bitwise equal" : "DIFFERENT");
        if (same && fabs(pi - 3.141592653589793) > 1e-9) {
            printf("port_pi --check: %.17g is not pi\n", pi);
            same = 0;
        }
        rc = same ? 0 : 1;
    }
    rc_local_stop(loc);
    rc_ctx_destroy(ctx);
    return rc;
}
