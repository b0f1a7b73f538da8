/* example_sumsq.c - the README's example: a sum of squares, MPI style.
 *
 * The master scatters a vector over tasks, each task squares and sums its
 * chunk, and the partial sums are reduced in rank order, so the answer is the
 * same bits however many workers run.  With no Redis address it starts the
 * embedded default (private redis-server + 2 local workers running this same
 * binary with --worker).  Usage: example_sumsq [--worker] */
#include "redcoll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sumsq(rc_task *t, void *user)
{
    (void)user;
    size_t bytes;
    const double *x = rc_task_input(t, &bytes);
    double s = 0.0, *out;
    for (size_t i = 0; i < bytes / sizeof *x; i++)
        s += x[i] * x[i];
    if (rc_task_output(t, sizeof *out, (void **)&out) != RC_OK)
        return rc_task_fail(t, "out of memory");
    *out = s;
    return 0;
}

int main(int argc, char **argv)
{
    rc_ctx *ctx = rc_ctx_create();
    if (!ctx || rc_register_kernel(ctx, "sumsq", sumsq, NULL) != RC_OK)
        return 1;
    if (argc > 1 && strcmp(argv[1], "--worker") == 0) { /* REDCOLL_URL, REDCOLL_KEY_FILE */
        rc_status st = rc_worker_run(ctx);
        if (st != RC_OK)
            fprintf(stderr, "worker: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
        rc_ctx_destroy(ctx);
        return st == RC_OK ? 0 : 1;
    }
    enum { N = 1000000, TASKS = 100 };
    double *x = malloc(N * sizeof *x), sum = 0.0;
    rc_local *loc = NULL;
    rc_job *job = NULL;
    const char *worker[] = {"/proc/self/exe", "--worker", NULL};
    rc_status st = x ? RC_OK : RC_ENOMEM;
    for (int i = 0; x && i < N; i++)
        x[i] = 1.0 / (i + 1);
    if (st == RC_OK && !getenv("REDCOLL_URL"))
        st = rc_local_start(ctx, worker, 2, &loc);                  /* embedded default */
    if (st == RC_OK) st = rc_job_create(ctx, "sumsq", TASKS, &job);
    if (st == RC_OK) st = rc_job_scatter(job, x, N / TASKS, RC_DOUBLE);            /* MPI_Scatter */
    if (st == RC_OK) st = rc_job_reduce(job, &sum, 1, RC_DOUBLE, rc_op_builtin(RC_SUM)); /* MPI_Reduce */
    if (st == RC_OK) st = rc_job_run(job);
    if (st == RC_OK)
        printf("sum of 1/i^2 for i=1..%d = %.17g\n", N, sum);
    else
        fprintf(stderr, "example_sumsq: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
    rc_job_destroy(job);
    rc_local_stop(loc);
    rc_ctx_destroy(ctx);
    free(x);
    return st == RC_OK ? 0 : 1;
}
