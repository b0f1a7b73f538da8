/* task.c - what a kernel sees of its task.
 *
 * The output buffer belongs to the worker and is reused from task to task,
 * so a kernel that writes the same size every time costs no allocation. */
#include "internal.h"

#include <stdlib.h>

uint64_t rc_task_rank(const rc_task *t) { return t->rank; }
uint64_t rc_task_ntasks(const rc_task *t) { return t->ntasks; }
int rc_task_threads(const rc_task *t) { return t->threads; }
uint64_t rc_task_seed(const rc_task *t) { return t->seed; }

const void *rc_task_input(const rc_task *t, size_t *size)
{
    if (size) *size = t->input_len;
    return t->input;
}

const void *rc_task_bcast(const rc_task *t, size_t *size)
{
    if (size) *size = t->bcast_len;
    return t->bcast;
}

void rc_task_rng(const rc_task *t, uint64_t block, rc_rng *out)
{
    rc_rng_seed(out, t->seed, t->rank, block);
}

rc_status rc_task_output(rc_task *t, size_t size, void **buf)
{
    if (!t || !buf)
        return RC_EINVAL;
    if (size > RC_PAYLOAD_MAX)
        return RC_EINVAL;
    if (size > t->out_cap) {
        unsigned char *p = realloc(t->out, size);
        if (!p)
            return RC_ENOMEM;
        t->out = p;
        t->out_cap = size;
    }
    t->out_len = size;
    *buf = t->out;
    return RC_OK;
}

int rc_task_fail(rc_task *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err, sizeof t->err, fmt, ap);
    va_end(ap);
    t->failed = 1;
    return 1;
}
