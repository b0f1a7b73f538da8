/* plugin_example.c - an example kernel plugin for `redcoll worker --plugin`: kernels "square" and "sum".
 *
 * Why: it is the smallest complete plugin (see include/redcoll_plugin.h for
 * the contract), the template to copy, and what the CLI tests load to prove
 * a generic worker runs kernels it was not compiled with.  Built as a CMake
 * MODULE library (libplugin_example.so); serve it with
 *     redcoll worker --plugin build/apps/libplugin_example.so --queue Q
 * and scatter doubles to it from any master:
 *   "square"  output[i] = input[i]^2, same length as the input chunk
 *             (pair it with rc_job_gather)
 *   "sum"     one double: the sum of the chunk, left to right
 *             (pair it with rc_job_reduce(..., 1, RC_DOUBLE, RC_SUM))
 * Both check their input is whole doubles and fail the task (with a message
 * the master sees) otherwise. */
#include "redcoll_plugin.h"

#include <stddef.h>

REDCOLL_PLUGIN_DEFINE_ABI();

static const double *doubles_in(rc_task *t, size_t *n)
{
    size_t bytes;
    const double *x = rc_task_input(t, &bytes);
    *n = bytes / sizeof *x;
    return bytes % sizeof *x ? NULL : x;
}

static int square(rc_task *t, void *user)
{
    (void)user;
    size_t n;
    const double *x = doubles_in(t, &n);
    double *out;
    if (!x)
        return rc_task_fail(t, "square: input is not a whole number of doubles");
    if (rc_task_output(t, n * sizeof *out, (void **)&out) != RC_OK)
        return rc_task_fail(t, "square: out of memory for %zu doubles", n);
    for (size_t i = 0; i < n; i++)
        out[i] = x[i] * x[i];
    return 0;
}

static int sum(rc_task *t, void *user)
{
    (void)user;
    size_t n;
    const double *x = doubles_in(t, &n);
    double s = 0.0, *out;
    if (!x)
        return rc_task_fail(t, "sum: input is not a whole number of doubles");
    for (size_t i = 0; i < n; i++)
        s += x[i];
    if (rc_task_output(t, sizeof *out, (void **)&out) != RC_OK)
        return rc_task_fail(t, "sum: out of memory");
    *out = s;
    return 0;
}

REDCOLL_PLUGIN_EXPORT int redcoll_plugin_register(rc_ctx *ctx)
{
    if (rc_register_kernel(ctx, "square", square, NULL) != RC_OK ||
        rc_register_kernel(ctx, "sum", sum, NULL) != RC_OK)
        return -1;
    return 0;
}
