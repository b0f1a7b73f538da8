/* plugin_master.c - tiny test master: runs the example plugin's "square" or "sum" job and checks it exactly.
 *
 * Why: `redcoll worker --plugin libplugin_example.so` must run kernels it was
 * not compiled with and give the same answer a compiled-in worker would.
 * The inputs are chosen so the right answer is exact in floating point (small
 * integers and halves), so the check is equality, not a tolerance: one wrong,
 * missing or duplicated chunk changes the result.
 *
 * usage: plugin_master QUEUE square|sum N TASKS [TIMEOUT_S]
 *   Redis from REDCOLL_URL, key from REDCOLL_KEY_FILE.  Scatters N doubles
 *   (N divisible by TASKS) to TASKS tasks.  square: x[i] = i - N/2 + 0.5,
 *   gathers x[i]^2 and compares every element; sum: x[i] = i + 1, reduces the
 *   per-task sums and compares with N(N+1)/2.  Prints one JSON line: job,
 *   kernel, n, tasks, result, expected, exact, workers_seen, error.
 *   Exit 0 exact, 1 wrong answer or job error, 2 usage. */
#include "redcoll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6 || (strcmp(argv[2], "square") && strcmp(argv[2], "sum"))) {
        fprintf(stderr, "usage: plugin_master QUEUE square|sum N TASKS [TIMEOUT_S]\n");
        return 2;
    }
    const char *queue = argv[1], *kernel = argv[2];
    long n = atol(argv[3]), tasks = atol(argv[4]), timeout = argc == 6 ? atol(argv[5]) : 60;
    if (n <= 0 || tasks <= 0 || n % tasks || n > (1L << 24) || timeout <= 0) {
        fprintf(stderr, "plugin_master: need 0 < N <= 2^24, TASKS dividing N, TIMEOUT_S > 0\n");
        return 2;
    }
    int square = strcmp(kernel, "square") == 0;
    double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y), sum = 0.0;
    if (!x || !y) {
        fprintf(stderr, "plugin_master: out of memory\n");
        return 1;
    }
    for (long i = 0; i < n; i++)
        x[i] = square ? (double)(i - n / 2) + 0.5 : (double)(i + 1);
    rc_ctx *ctx = rc_ctx_create();
    rc_job *job = NULL;
    rc_status st = ctx ? RC_OK : RC_ENOMEM;
    if (st == RC_OK) st = rc_ctx_set_str(ctx, RC_OPT_QUEUE, queue);
    if (st == RC_OK) st = rc_ctx_set_int(ctx, RC_OPT_JOB_TIMEOUT_MS, timeout * 1000);
    if (st == RC_OK) st = rc_job_create(ctx, kernel, (uint64_t)tasks, &job);
    if (st == RC_OK) st = rc_job_scatter(job, x, (size_t)(n / tasks), RC_DOUBLE);
    if (st == RC_OK)
        st = square ? rc_job_gather(job, y, (size_t)(n / tasks), RC_DOUBLE)
                    : rc_job_reduce(job, &sum, 1, RC_DOUBLE, rc_op_builtin(RC_SUM));
    if (st == RC_OK) {
        st = rc_job_submit(job);
        if (st == RC_OK) {
            fprintf(stderr, "plugin_master: job %s submitted\n", rc_job_id(job));
            st = rc_job_wait(job);
        }
    }
    int exact = 0;
    double result = 0.0, expected = 0.0;
    rc_job_stats js = {0};
    if (st == RC_OK) {
        rc_job_get_stats(job, &js);
        if (square) {
            exact = 1;
            for (long i = 0; i < n; i++) {
                result += y[i];
                expected += x[i] * x[i];
                exact &= memcmp(&y[i], &(double){x[i] * x[i]}, sizeof(double)) == 0;
            }
        } else {
            result = sum;
            expected = (double)n * (double)(n + 1) / 2.0;
            exact = result == expected;
        }
    }
    printf("{\"job\":\"%s\",\"kernel\":\"%s\",\"n\":%ld,\"tasks\":%ld,\"result\":%.17g,\"expected\":%.17g"
           ",\"exact\":%s,\"workers_seen\":%llu,\"error\":\"%s\"}\n",
           job ? rc_job_id(job) : "", kernel, n, tasks, result, expected, exact ? "true" : "false",
           (unsigned long long)js.workers_seen, st == RC_OK ? "" : rc_strerror(st));
    if (st != RC_OK)
        fprintf(stderr, "plugin_master: %s: %s\n", rc_strerror(st), ctx ? rc_ctx_errmsg(ctx) : "");
    rc_job_destroy(job);
    rc_ctx_destroy(ctx);
    free(x);
    free(y);
    return st == RC_OK && exact ? 0 : 1;
}
