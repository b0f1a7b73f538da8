/* job.c - the master side: describe a job with MPI's collective vocabulary,
 * publish it, collect and combine results exactly once.
 *
 * Publishing: the job descriptor (kernel, task count, seed, broadcast blob)
 * is one authenticated string key; each task is one stream entry, added in
 * MULTI/EXEC blocks (queue.c says why); a small job's descriptor, result
 * stream and tasks go in one write, one round trip (with rc_job_run, its
 * first blocking XREAD goes in that write too).  Task payloads are
 * written from the encoding buffer with writev, not copied by hiredis.  The
 * master remembers every entry id so it can remove what is left if the job
 * fails or is cancelled.  When a job succeeds its clean-up (end marker,
 * keys) is sent without waiting for the replies: the answer is complete,
 * and the next job's submission goes out before they come back.
 *
 * Collecting: results arrive on the job's result stream in whatever order
 * workers finish, possibly twice (a worker that stalled past its lease delivers late)
 * and possibly forged.  Each is verified, then accepted only if its task is
 * not done yet - a per-task flag, never a message count - so a duplicate can
 * neither be counted twice nor overwrite the accepted copy.  Reduction runs
 * in rank order: a result that arrives ahead of its turn waits in `held`
 * until every lower rank is merged, so floating-point sums are the same bits
 * whatever the arrival order, pool size or failure history.  rc_job_run
 * starts collecting while a long job is still being added (between its
 * blocks), so a fast pool's results are checked as they come and a failed
 * task stops the submission.
 *
 * Authentic copies: the master never trusts Redis to keep a task intact.
 * When a worker reports a task it could not verify, or a result fails
 * verification, the master publishes a fresh copy from the caller's buffers,
 * at most max_republish times per task; past that the job fails with
 * RC_EAUTH naming the task.  Never a wrong number, never a silent hang.
 *
 * Restarts: the master reads the result stream from a position it keeps,
 * never destructively, so a reply lost with a dropped connection is read
 * again, and a new master can re-attach by job id and read everything from
 * the start.  While it waits, the master refreshes the retention TTL of the
 * job's keys; if it dies for good, they expire. */
#include "internal.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { IN_NONE, IN_SCATTER, IN_SCATTERV, IN_DATA };

/* Stored data (scatter once, map many): a hash rc:{Q}:data:<id> of
   authenticated DATA envelopes, one field per chunk. */
struct rc_data {
    rc_ctx *ctx;
    uint64_t id, ntasks;
    char key[320];
};
enum { OUT_KEEP, OUT_GATHER, OUT_GATHERV, OUT_REDUCE };
enum { ST_NEW, ST_RUNNING, ST_DONE };

#define SUBMIT_BATCH 256                 /* tasks per transaction, at most */
#define SUBMIT_DEPTH 4                   /* transactions sent ahead of their replies */
#define SUBMIT_BYTES ((size_t)4 << 20)   /* task input per transaction, at most (one larger goes alone) */
#define INLINE_DESC_TASKS 8              /* tasks whose entry carries the descriptor too */
#define INLINE_DESC_BYTES 1024           /* when it is at most this big */
#define INLINE_DESC_SHARE 4              /* and every k-th task's, costing a queued task this many bytes */
#define POP_BATCH 256
#define AHEAD_BLOCK_MS 10                /* the block of the XREAD sent with a small job (submit) */
#define COALESCE 16                      /* results a blocking read waits to find, when they trickle in */
#define COALESCE_MAX_US 1000             /* the longest such wait */

typedef struct stream_id { uint64_t ms, seq; } stream_id;

struct rc_job {
    rc_ctx *ctx;
    char kernel[RC_KERNEL_MAX + 1];
    size_t kernel_len;
    uint64_t ntasks, seed, id;
    char idhex[17];
    char meta_key[300], res_key[320], why_key[320];
    char last_id[48];                 /* result stream position read so far */
    int attached;                     /* re-attached: we did not publish it */
    int sealed;                       /* payloads encrypted (RC_OPT_ENCRYPT at creation) */
    const rc_data *data;              /* IN_DATA: where tasks find their input */
    unsigned char *bcast_own;         /* attached: copy of the descriptor's blob */
    rc_keynames kn;

    const unsigned char *bcast;       /* caller's */
    size_t bcast_len;
    int in_mode;
    const unsigned char *sendbuf;     /* caller's */
    size_t in_esize, sendcount;
    size_t *sendcounts, *sdispls;     /* copies */

    int out_mode;
    unsigned char *recvbuf;           /* caller's */
    size_t out_esize, recvcount;
    uint64_t res_entries, res_bytes;  /* result entries read, and their bytes (collect_count) */
    size_t *recvcounts, *rdispls;     /* copies */
    rc_datatype out_dt;
    rc_op op;

    int state;
    rc_status result;
    char errmsg[512];

    unsigned char *done;              /* per task: accepted */
    unsigned char *republished;       /* per task: fresh copies sent */
    uint64_t ndone, next_merge;
    long long first_us;               /* when the first results were taken (coalesce_us), 0: none yet */
    uint64_t first_done;              /* ndone then */
    unsigned char **held;             /* per task: output waiting (reduce) or kept (keep) */
    size_t *held_len;

    stream_id *ids;                   /* first copy of each task */
    stream_id *extra;                 /* republished copies */
    size_t nextra, capextra;

    uint64_t *workers;                /* open-addressing set of worker ids (0 = empty) */
    size_t wcap;
    rc_job_stats stats;
    long long t_submit, t_end, last_meta_check, last_refresh;
    long long down_since, backoff;    /* Redis outage bookkeeping */
    long long submitted_wall;         /* wall-clock ms of submit (control markers older are replays) */
    long long last_progress, last_lost_check;
    rc_progress_fn progress;          /* called from rc_job_wait/test as results arrive */
    void *progress_user;
    uint64_t progress_done;           /* ndone at the last call */
    int progress_final;               /* the end was reported */
    long long progress_at;

    unsigned char *enc;               /* the descriptor, encoded */
    size_t enccap, enclen;
    unsigned char *blk;               /* one transaction's tasks, encoded */
    size_t blkcap;
    rc_pipe pipe;
    int ahead;                        /* count of the first XREAD, sent with the submission (0: none) */
    unsigned long ahead_ticket;       /* its rc_conn_take ticket */
    int submitting;                   /* results are read between blocks in flight: republish waits */
    struct repub { uint64_t r; const char *why; } *rq; /* the republishes that wait (why: a literal) */
    size_t nrq, caprq;
    unsigned char *rq_wait;           /* per task: in rq (allocated at the first) */
};

static rc_status job_err(rc_job *j, rc_status st, const char *fmt, ...) RC_PRINTF(3, 4);
static rc_status job_err(rc_job *j, rc_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->errmsg, sizeof j->errmsg, fmt, ap);
    va_end(ap);
    snprintf(j->ctx->errmsg, sizeof j->ctx->errmsg, "%s", j->errmsg);
    return st;
}

rc_status rc_job_create(rc_ctx *ctx, const char *kernel, uint64_t ntasks, rc_job **out)
{
    if (!out)
        return RC_EINVAL;
    *out = NULL;
    if (!ctx)
        return RC_EINVAL;
    rc_clearerr(ctx);
    size_t klen = kernel ? strlen(kernel) : 0;
    if (klen == 0 || klen > RC_KERNEL_MAX)
        return rc_seterr(ctx, RC_EINVAL, "kernel name must be 1 to %u characters", RC_KERNEL_MAX);
    if (strchr(ctx->queue, ','))
        return rc_seterr(ctx, RC_EINVAL, "a job goes to one queue; '%s' names several (a worker option)", ctx->queue);
    if (ntasks == 0 || ntasks > (uint64_t)1 << 40)
        return rc_seterr(ctx, RC_EINVAL, "task count %llu out of range [1, 2^40]", (unsigned long long)ntasks);
    rc_job *j = calloc(1, sizeof *j);
    if (!j)
        return rc_seterr(ctx, RC_ENOMEM, "out of memory");
    j->ctx = ctx;
    memcpy(j->kernel, kernel, klen);
    j->kernel_len = klen;
    j->ntasks = ntasks;
    j->seed = 0;
    j->result = RC_OK;
    j->done = calloc(ntasks, 1);
    j->republished = calloc(ntasks, 1);
    j->ids = calloc(ntasks, sizeof *j->ids);
    if (!j->done || !j->republished || !j->ids) {
        rc_job_destroy(j);
        return rc_seterr(ctx, RC_ENOMEM, "out of memory for %llu tasks", (unsigned long long)ntasks);
    }
    rc_random_u64(&j->id);
    rc_hex64(j->id, j->idhex);
    rc_job_keys(ctx->queue, j->id, j->meta_key, sizeof j->meta_key, j->res_key, sizeof j->res_key);
    snprintf(j->why_key, sizeof j->why_key, "%s:why", j->meta_key);
    strcpy(j->last_id, "0-0");
    rc_keys_for_queue(ctx->queue, &j->kn);
    j->stats.tasks = ntasks;
    j->sealed = ctx->encrypt;
    *out = j;
    return RC_OK;
}

/* A reduce result that arrives ahead of its turn waits in the buffer it came
 * in - a large reply string, taken out of its reply so it is neither copied
 * nor mapped afresh - or, when small, in a copy.  held[r] points at the
 * output either way, and the tag just before it (where the envelope's
 * header was: checked, no longer needed) says what to release. */
typedef struct held_tag {
    void *base;
    size_t cap; /* > 0: a reply string, back to the reader's pool; 0: a copy */
} held_tag;

static held_tag held_tag_of(const unsigned char *out)
{
    held_tag t;
    memcpy(&t, out - sizeof t, sizeof t);
    return t;
}

static void release_held(rc_job *j, uint64_t r, int to_pool)
{
    held_tag t = held_tag_of(j->held[r]);
    if (t.cap && to_pool)
        rc_conn_give(j->ctx->conn, t.base, t.cap);
    else
        free(t.base);
    j->held[r] = NULL;
}

static void free_held(rc_job *j)
{
    if (j->held)
        for (uint64_t r = 0; r < j->ntasks; r++) {
            if (j->out_mode == OUT_REDUCE && j->held[r])
                release_held(j, r, 0);
            else
                free(j->held[r]);
        }
    free(j->held);
    free(j->held_len);
    j->held = NULL;
    j->held_len = NULL;
}

void rc_job_destroy(rc_job *j)
{
    if (!j)
        return;
    if (j->state == ST_RUNNING)
        (void)rc_job_cancel(j);
    free(j->done);
    free(j->republished);
    free(j->rq);
    free(j->rq_wait);
    free(j->ids);
    free(j->extra);
    free(j->sendcounts);
    free(j->sdispls);
    free(j->recvcounts);
    free(j->rdispls);
    free_held(j);
    free(j->workers);
    free(j->enc);
    free(j->blk);
    rc_pipe_free(&j->pipe);
    free(j->bcast_own);
    free(j);
}

const char *rc_job_id(const rc_job *j) { return j ? j->idhex : ""; }

static rc_status not_new(rc_job *j)
{
    if (j->state != ST_NEW)
        return rc_seterr(j->ctx, RC_ESTATE, "job %s was already submitted; describe it before rc_job_submit", j->idhex);
    return RC_OK;
}

rc_status rc_job_set_seed(rc_job *j, uint64_t seed)
{
    if (!j) return RC_EINVAL;
    rc_status st = not_new(j);
    if (st == RC_OK) j->seed = seed;
    return st;
}

static rc_status elem_size(rc_job *j, rc_datatype dt, size_t *es)
{
    *es = rc_datatype_size(dt);
    if (*es == 0)
        return rc_seterr(j->ctx, RC_EINVAL, "unknown datatype %d", (int)dt);
    return RC_OK;
}

static int mul_overflows(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a) return 1;
    *out = a * b;
    return 0;
}

rc_status rc_job_bcast(rc_job *j, const void *buf, size_t count, rc_datatype dt)
{
    if (!j) return RC_EINVAL;
    rc_status st = not_new(j);
    size_t es, n;
    if (st != RC_OK || (st = elem_size(j, dt, &es)) != RC_OK) return st;
    if (j->attached)
        return rc_seterr(j->ctx, RC_ESTATE, "job %s is re-attached: its broadcast is already in Redis", j->idhex);
    if (mul_overflows(count, es, &n) || n > RC_PAYLOAD_MAX)
        return rc_seterr(j->ctx, RC_EINVAL, "broadcast of %zu elements is larger than the %llu-byte limit",
                         count, (unsigned long long)RC_PAYLOAD_MAX);
    if (n && !buf)
        return rc_seterr(j->ctx, RC_EINVAL, "broadcast buffer is NULL");
    j->bcast = buf;
    j->bcast_len = n;
    return RC_OK;
}

static rc_status input_once(rc_job *j)
{
    if (j->in_mode != IN_NONE)
        return rc_seterr(j->ctx, RC_ESTATE, "job %s already has a scatter", j->idhex);
    return RC_OK;
}

rc_status rc_job_scatter(rc_job *j, const void *sendbuf, size_t sendcount, rc_datatype dt)
{
    if (!j) return RC_EINVAL;
    rc_status st = not_new(j);
    size_t es, chunk;
    if (st != RC_OK || (st = input_once(j)) != RC_OK || (st = elem_size(j, dt, &es)) != RC_OK) return st;
    if (mul_overflows(sendcount, es, &chunk) || chunk > RC_PAYLOAD_MAX)
        return rc_seterr(j->ctx, RC_EINVAL, "scatter chunk of %zu elements exceeds the task size limit", sendcount);
    if (chunk && !sendbuf)
        return rc_seterr(j->ctx, RC_EINVAL, "scatter buffer is NULL");
    j->in_mode = IN_SCATTER;
    j->sendbuf = sendbuf;
    j->in_esize = es;
    j->sendcount = sendcount;
    return RC_OK;
}

static size_t *copy_counts(const size_t *a, uint64_t n)
{
    size_t *c = malloc(n * sizeof *c);
    if (c) memcpy(c, a, n * sizeof *c);
    return c;
}

rc_status rc_job_scatterv(rc_job *j, const void *sendbuf, const size_t *sendcounts,
                          const size_t *displs, rc_datatype dt)
{
    if (!j) return RC_EINVAL;
    rc_status st = not_new(j);
    size_t es;
    if (st != RC_OK || (st = input_once(j)) != RC_OK || (st = elem_size(j, dt, &es)) != RC_OK) return st;
    if (!sendcounts || !displs)
        return rc_seterr(j->ctx, RC_EINVAL, "scatterv needs counts and displacements");
    for (uint64_t r = 0; r < j->ntasks; r++) {
        size_t chunk, end;
        if (mul_overflows(sendcounts[r], es, &chunk) || chunk > RC_PAYLOAD_MAX ||
            sendcounts[r] > SIZE_MAX - displs[r] || mul_overflows(displs[r] + sendcounts[r], es, &end))
            return rc_seterr(j->ctx, RC_EINVAL, "scatterv: task %llu's chunk (count %zu at %zu) is too large",
                             (unsigned long long)r, sendcounts[r], displs[r]);
        if (chunk && !sendbuf)
            return rc_seterr(j->ctx, RC_EINVAL, "scatterv buffer is NULL");
    }
    j->sendcounts = copy_counts(sendcounts, j->ntasks);
    j->sdispls = copy_counts(displs, j->ntasks);
    if (!j->sendcounts || !j->sdispls)
        return rc_seterr(j->ctx, RC_ENOMEM, "out of memory");
    j->in_mode = IN_SCATTERV;
    j->sendbuf = sendbuf;
    j->in_esize = es;
    return RC_OK;
}

static rc_status output_once(rc_job *j)
{
    if (j->out_mode != OUT_KEEP)
        return rc_seterr(j->ctx, RC_ESTATE, "job %s already has a gather or reduce", j->idhex);
    return RC_OK;
}

rc_status rc_job_gather(rc_job *j, void *recvbuf, size_t recvcount, rc_datatype dt)
{
    if (!j) return RC_EINVAL;
    rc_status st = not_new(j);
    size_t es, chunk, total;
    if (st != RC_OK || (st = output_once(j)) != RC_OK || (st = elem_size(j, dt, &es)) != RC_OK) return st;
    if (mul_overflows(recvcount, es, &chunk) || chunk > RC_PAYLOAD_MAX || mul_overflows(chunk, j->ntasks, &total))
        return rc_seterr(j->ctx, RC_EINVAL, "gather of %zu elements per task is too large", recvcount);
    if (total && !recvbuf)
        return rc_seterr(j->ctx, RC_EINVAL, "gather buffer is NULL");
    j->out_mode = OUT_GATHER;
    j->recvbuf = recvbuf;
    j->out_esize = es;
    j->recvcount = recvcount;
    j->out_dt = dt;
    return RC_OK;
}

rc_status rc_job_gatherv(rc_job *j, void *recvbuf, const size_t *recvcounts,
                         const size_t *displs, rc_datatype dt)
{
    if (!j) return RC_EINVAL;
    rc_status st = not_new(j);
    size_t es;
    if (st != RC_OK || (st = output_once(j)) != RC_OK || (st = elem_size(j, dt, &es)) != RC_OK) return st;
    if (!recvcounts || !displs)
        return rc_seterr(j->ctx, RC_EINVAL, "gatherv needs counts and displacements");
    for (uint64_t r = 0; r < j->ntasks; r++) {
        size_t chunk, end;
        if (mul_overflows(recvcounts[r], es, &chunk) || chunk > RC_PAYLOAD_MAX ||
            recvcounts[r] > SIZE_MAX - displs[r] || mul_overflows(displs[r] + recvcounts[r], es, &end))
            return rc_seterr(j->ctx, RC_EINVAL, "gatherv: task %llu's slot (count %zu at %zu) is too large",
                             (unsigned long long)r, recvcounts[r], displs[r]);
        if (chunk && !recvbuf)
            return rc_seterr(j->ctx, RC_EINVAL, "gatherv buffer is NULL");
    }
    j->recvcounts = copy_counts(recvcounts, j->ntasks);
    j->rdispls = copy_counts(displs, j->ntasks);
    if (!j->recvcounts || !j->rdispls)
        return rc_seterr(j->ctx, RC_ENOMEM, "out of memory");
    j->out_mode = OUT_GATHERV;
    j->recvbuf = recvbuf;
    j->out_esize = es;
    j->out_dt = dt;
    return RC_OK;
}

rc_status rc_job_reduce(rc_job *j, void *recvbuf, size_t count, rc_datatype dt, rc_op op)
{
    if (!j) return RC_EINVAL;
    rc_status st = not_new(j);
    size_t es, n;
    if (st != RC_OK || (st = output_once(j)) != RC_OK || (st = elem_size(j, dt, &es)) != RC_OK) return st;
    if (mul_overflows(count, es, &n) || n > RC_PAYLOAD_MAX)
        return rc_seterr(j->ctx, RC_EINVAL, "reduce of %zu elements is too large", count);
    if (n && !recvbuf)
        return rc_seterr(j->ctx, RC_EINVAL, "reduce buffer is NULL");
    if (!op.fn) {
        /* check the op/type pair now, not after the whole job ran */
        unsigned char a[32] = {0}, b[32] = {0};
        st = rc_reduce_local(a, b, 1, dt, op);
        if (st != RC_OK)
            return rc_seterr(j->ctx, st, "reduce op %d is not defined for datatype %d (like MPI: bitwise and "
                                         "logical ops take integers, MINLOC/MAXLOC take *_LOC pairs)",
                             (int)op.kind, (int)dt);
    }
    j->out_mode = OUT_REDUCE;
    j->recvbuf = recvbuf;
    j->out_esize = es;
    j->recvcount = count;
    j->out_dt = dt;
    j->op = op;
    return RC_OK;
}

/* ------------------------------------------------------------------ */

static rc_status ensure_enc(rc_job *j, size_t n)
{
    if (n <= j->enccap)
        return RC_OK;
    unsigned char *p = realloc(j->enc, n);
    if (!p)
        return job_err(j, RC_ENOMEM, "out of memory encoding a task of %zu bytes", n);
    j->enc = p;
    j->enccap = n;
    return RC_OK;
}

static void task_input(const rc_job *j, uint64_t r, const void **p, size_t *n)
{
    switch (j->in_mode) {
    case IN_SCATTER:
        *p = j->sendbuf + r * j->sendcount * j->in_esize;
        *n = j->sendcount * j->in_esize;
        return;
    case IN_SCATTERV:
        *p = j->sendbuf + j->sdispls[r] * j->in_esize;
        *n = j->sendcounts[r] * j->in_esize;
        return;
    default: /* IN_NONE, IN_DATA: the task carries no input itself */
        *p = NULL;
        *n = 0;
    }
}

/* Encode the descriptor into j->enc and append its SET to j->pipe (j->enc
 * is referenced: keep it until the pipe is sent). */
static rc_status pipe_meta(rc_job *j, char *px, size_t pxlen)
{
    rc_env e = {.kind = RC_KIND_JOB, .job = j->id, .ntasks = j->ntasks, .aux = j->seed, .sealed = j->sealed,
                .rank = j->data ? j->data->id : 0,
                .kernel = j->kernel, .kernel_len = j->kernel_len, .payload = j->bcast,
                .payload_len = j->bcast_len};
    if (j->bcast_len > j->ctx->max_payload)
        return job_err(j, RC_EINVAL, "broadcast of %zu bytes is over the %llu-byte limit (RC_OPT_MAX_PAYLOAD)",
                       j->bcast_len, j->ctx->max_payload);
    size_t len = rc_wire_size_env(&e);
    rc_status st = ensure_enc(j, len);
    if (st != RC_OK || (st = rc_wire_encode(&e, &j->ctx->keys, j->ctx->queue, j->enc, len)) != RC_OK)
        return st;
    j->enclen = len;
    snprintf(px, pxlen, "%lld", j->ctx->retention_ms);
    const char *av[] = {"SET", j->meta_key, (const char *)j->enc, "PX", px};
    size_t al[] = {3, strlen(j->meta_key), len, 2, strlen(px)};
    if (rc_pipe_cmd(&j->pipe, 5, av, al) != RC_OK)
        return job_err(j, RC_ENOMEM, "out of memory");
    return RC_OK;
}

/* Read n replies; the first error is the job's (`what` names the step). */
static rc_status read_replies(rc_job *j, int n, const char *what)
{
    rc_conn *c = j->ctx->conn;
    rc_status st = rc_conn_discard(c, n);
    return st == RC_OK ? RC_OK : job_err(j, st, "cannot %s job %s: %s", what, j->idhex, c->err);
}

static rc_status publish_meta(rc_job *j)
{
    char px[32];
    rc_status st = pipe_meta(j, px, sizeof px);
    if (st == RC_OK && (st = rc_conn_send(j->ctx->conn, &j->pipe)) != RC_OK)
        return job_err(j, st, "cannot store job %s: %s", j->idhex, j->ctx->conn->err);
    return st == RC_OK ? read_replies(j, 1, "store") : st;
}

/* The job's result stream, created empty (an entry added and trimmed at
 * once) with the retention TTL.  Workers add results with NOMKSTREAM, so a
 * result that arrives after the job ended creates nothing. */
static rc_status pipe_result_stream(rc_job *j, const char *px)
{
    rc_status st = rc_pipe_cmd(&j->pipe, 7, (const char *[]){"XADD", j->res_key, "MAXLEN", "0", "*", "x", ""}, NULL);
    if (st == RC_OK)
        st = rc_pipe_cmd(&j->pipe, 3, (const char *[]){"PEXPIRE", j->res_key, px}, NULL);
    return st == RC_OK ? RC_OK : job_err(j, RC_ENOMEM, "out of memory");
}

static int parse_id(const redisReply *r, stream_id *id)
{
    if (!r || r->type != REDIS_REPLY_STRING)
        return -1;
    return rc_stream_id_parse(r->str, r->len, &id->ms, &id->seq);
}

/* How many of the tasks from ranks[0] on go in one transaction. */
static size_t block_len(rc_job *j, const uint64_t *ranks, size_t n)
{
    size_t bytes = 0, k = 0;
    for (; k < n && k < SUBMIT_BATCH; k++) {
        const void *p;
        size_t len;
        task_input(j, ranks[k], &p, &len);
        bytes += len;
        if (k > 0 && bytes > SUBMIT_BYTES)
            break;
    }
    return k;
}

/* Encode tasks ranks[0..n) into j->blk and append MULTI, their XADDs and
 * EXEC to j->pipe.  One transaction, so that workers blocked on the stream
 * are woken once with the whole block there to take in batches, not once
 * per XADD with one entry each. */
static rc_status pipe_tasks(rc_job *j, const uint64_t *ranks, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const void *p;
        size_t len;
        task_input(j, ranks[i], &p, &len);
        if (len > j->ctx->max_payload)
            return job_err(j, RC_EINVAL, "task %llu's input is %zu bytes, over the %llu-byte limit (RC_OPT_MAX_PAYLOAD)",
                           (unsigned long long)ranks[i], len, j->ctx->max_payload);
        rc_env e = {.kind = RC_KIND_TASK, .sealed = j->sealed, .kernel_len = j->kernel_len, .payload_len = len};
        total += rc_wire_size_env(&e);
    }
    if (total > j->blkcap) {
        unsigned char *b = realloc(j->blk, total);
        if (!b)
            return job_err(j, RC_ENOMEM, "out of memory encoding %zu tasks (%zu bytes)", n, total);
        j->blk = b;
        j->blkcap = total;
    }
    uint64_t every = 128; /* see inline_desc below */
    while (every * INLINE_DESC_SHARE < j->enclen + 4)
        every <<= 1;
    rc_status st = rc_pipe_cmd(&j->pipe, 1, (const char *[]){"MULTI"}, NULL);
    size_t off = 0;
    for (size_t i = 0; i < n && st == RC_OK; i++) {
        const void *p;
        size_t len;
        task_input(j, ranks[i], &p, &len);
        rc_env e = {.kind = RC_KIND_TASK, .job = j->id, .rank = ranks[i], .ntasks = j->ntasks, .sealed = j->sealed,
                    .kernel = j->kernel, .kernel_len = j->kernel_len, .payload = p, .payload_len = len};
        size_t el = rc_wire_size_env(&e);
        if ((st = rc_wire_encode(&e, &j->ctx->keys, j->ctx->queue, j->blk + off, el)) != RC_OK)
            return job_err(j, st, "cannot encode task %llu", (unsigned long long)ranks[i]);
        const char *av[] = {"XADD", j->kn.tasks, "*", "e", (const char *)j->blk + off, "d", (const char *)j->enc};
        size_t al[] = {4, j->kn.tasks_len, 1, 1, el, 1, j->enclen};
        /* the first few tasks carry a small descriptor: a worker's first
           task of the job then costs it no GET (one-task jobs, latency);
           so does every k-th, so that a batch of k tiny tasks anywhere in
           the job brings one - at 256 workers a 20000-task job otherwise
           cost each worker a GET round trip.  k is a power of two, 128 at
           least, keeping the copies under INLINE_DESC_SHARE bytes a queued
           task: every 32nd cost 11 bytes, not 3, because a stream node
           whose first entry has the extra field stores every entry's field
           names (memory: +1.0 byte a task at 128) */
        int inline_desc = (ranks[i] < INLINE_DESC_TASKS || ranks[i] % every == 0) && j->enclen &&
                          j->enclen <= INLINE_DESC_BYTES;
        st = rc_pipe_cmd(&j->pipe, inline_desc ? 7 : 5, av, al);
        off += el;
    }
    if (st == RC_OK)
        st = rc_pipe_cmd(&j->pipe, 1, (const char *[]){"EXEC"}, NULL);
    return st == RC_OK ? RC_OK : job_err(j, RC_ENOMEM, "out of memory");
}

/* The replies of pipe_tasks: +OK, +QUEUED each, then EXEC's array of ids. */
static rc_status read_tasks(rc_job *j, const uint64_t *ranks, size_t n, stream_id *out)
{
    rc_conn *c = j->ctx->conn;
    rc_status first = RC_OK;
    for (size_t i = 0; i < n + 1; i++) {
        redisReply *r = NULL;
        rc_status st = rc_conn_get(c, &r);
        if (st != RC_OK && first == RC_OK)
            first = job_err(j, st, "cannot add the tasks of job %s from %llu on: %s", j->idhex,
                            (unsigned long long)ranks[0], c->err);
        rc_conn_release(c, r);
        if (st == RC_EREDIS && !c->c)
            return first;
    }
    redisReply *r = NULL;
    rc_status st = rc_conn_get(c, &r);
    if (st == RC_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != n)) {
        snprintf(c->err, sizeof c->err, "unexpected reply to EXEC");
        st = RC_EPROTO;
    }
    for (size_t i = 0; st == RC_OK && i < n; i++)
        if (parse_id(r->element[i], &out[i]) != 0) {
            snprintf(c->err, sizeof c->err, "%s", r->element[i]->type == REDIS_REPLY_ERROR ? r->element[i]->str
                                                                                              : "no entry id");
            st = r->element[i]->type == REDIS_REPLY_ERROR ? RC_EREDIS : RC_EPROTO;
            for (size_t k = 0; k < n; k++) /* whatever went in is removed by its id */
                if (parse_id(r->element[k], &out[k]) != 0)
                    out[k] = (stream_id){0, 0};
        }
    if (st != RC_OK && first == RC_OK)
        first = job_err(j, st, "cannot add the tasks of job %s from %llu on: %s", j->idhex,
                        (unsigned long long)ranks[0], c->err);
    rc_conn_release(c, r);
    return first;
}

/* Add tasks ranks[0..n) (one transaction) and read their ids into out[]. */
static rc_status xadd_tasks(rc_job *j, const uint64_t *ranks, size_t n, stream_id *out)
{
    rc_status st = pipe_tasks(j, ranks, n);
    if (st == RC_OK && (st = rc_conn_send(j->ctx->conn, &j->pipe)) != RC_OK)
        return job_err(j, st, "cannot queue task %llu: %s", (unsigned long long)ranks[0], j->ctx->conn->err);
    rc_pipe_reset(&j->pipe);
    return st == RC_OK ? read_tasks(j, ranks, n, out) : st;
}

static rc_status prepare_outputs(rc_job *j)
{
    if (j->out_mode == OUT_KEEP) {
        j->held = calloc(j->ntasks, sizeof *j->held);
        j->held_len = calloc(j->ntasks, sizeof *j->held_len);
        if (!j->held || !j->held_len)
            return rc_seterr(j->ctx, RC_ENOMEM, "out of memory");
    } else if (j->out_mode == OUT_REDUCE) {
        j->held = calloc(j->ntasks, sizeof *j->held);
        if (!j->held)
            return rc_seterr(j->ctx, RC_ENOMEM, "out of memory");
    }
    return RC_OK;
}

static rc_status ensure_conn(rc_job *j)
{
    rc_ctx *ctx = j->ctx;
    if (!ctx->conn) {
        rc_status st = rc_connect(ctx);
        if (st != RC_OK)
            return job_err(j, st, "%s", ctx->errmsg);
    }
    return RC_OK;
}

static rc_status submit(rc_job *j, int read_ahead);
static int collect_count(const rc_job *j);
static redisReply *result_list(redisReply *r);
static rc_status take_results(rc_job *j, redisReply *list);
static int finished_ok(rc_job *j);
static void finish(rc_job *j, rc_status st);
static rc_status republish(rc_job *j, uint64_t r, const char *why);
static void report_progress(rc_job *j);

/* The master's read of its result stream, in x->av: up to count entries
   after `from`, blocking up to block_ms (0: not at all); returns the
   argument count.  x->av points into x and at `from`. */
typedef struct xread_cmd {
    char cnt[16], blk[32];
    const char *av[8];
} xread_cmd;

static int xread_argv(const rc_job *j, int count, long long block_ms, const char *from, xread_cmd *x)
{
    snprintf(x->cnt, sizeof x->cnt, "%d", count);
    snprintf(x->blk, sizeof x->blk, "%lld", block_ms);
    int n = 0;
    x->av[n++] = "XREAD";
    x->av[n++] = "COUNT";
    x->av[n++] = x->cnt;
    if (block_ms > 0) {
        x->av[n++] = "BLOCK";
        x->av[n++] = x->blk;
    }
    x->av[n++] = "STREAMS";
    x->av[n++] = j->res_key;
    x->av[n++] = from;
    return n;
}

rc_status rc_job_submit(rc_job *j) { return submit(j, 0); }

/* Send the fresh copies asked for while blocks were in flight (republish
 * queued them): none is in flight now.  The submission holds its next
 * block until they are out, so a refused task waits for a few blocks, not
 * for the whole job to be added. */
static rc_status flush_republish(rc_job *j)
{
    int was = j->submitting;
    rc_status st = RC_OK;
    j->submitting = 0;
    for (size_t i = 0; i < j->nrq && st == RC_OK; i++) {
        j->rq_wait[j->rq[i].r] = 0;
        if (!j->done[j->rq[i].r])
            st = republish(j, j->rq[i].r, j->rq[i].why);
    }
    j->nrq = 0;
    j->submitting = was;
    return st;
}

/* read_ahead: the caller waits next (rc_job_run), so a job whose tasks all
 * go in the first write sends its first blocking XREAD in that write too.
 * Its reply is the next one on the wire once the submission's are read, so
 * it becomes a prefetch (rc_conn_take) that collect() takes: Redis has the
 * master's read waiting when the result comes, and a one-task job costs
 * the master one round trip to Redis, not two. */
static rc_status submit(rc_job *j, int read_ahead)
{
    if (!j)
        return RC_EINVAL;
    rc_ctx *ctx = j->ctx;
    rc_clearerr(ctx);
    rc_status st = not_new(j);
    if (st != RC_OK)
        return st;
    if (j->attached)
        return rc_seterr(ctx, RC_ESTATE, "job %s is re-attached, not new: collect it with rc_job_wait", j->idhex);
    if ((st = rc_ctx_ensure_key(ctx)) != RC_OK || (st = prepare_outputs(j)) != RC_OK)
        return st;
    if ((st = ensure_conn(j)) != RC_OK)
        return st;
    /* the end-of-job trim rides with the job's clean-up, unanswered, so it
       must be loaded beforehand: once per connection (no trim, if this
       fails: the deliveries trim too) */
    rc_status ts;
    (void)rc_script_sha(ctx->conn, RC_SCRIPT_TRIM, &ts);
    /* One round trip for a small job: the task stream and group, the
       descriptor, the result stream and the first block of tasks go in one
       write (the descriptor first: a worker woken by a task finds it). */
    uint64_t ranks[SUBMIT_BATCH];
    size_t n = 0;
    for (; n < SUBMIT_BATCH && n < j->ntasks; n++)
        ranks[n] = n;
    n = block_len(j, ranks, n);
    char px[32];
    rc_pipe_reset(&j->pipe);
    (void)rc_pipe_cmd(&j->pipe, 6, (const char *[]){"XGROUP", "CREATE", j->kn.tasks, RC_GROUP, "0", "MKSTREAM"}, NULL);
    if ((st = pipe_meta(j, px, sizeof px)) != RC_OK || (st = pipe_result_stream(j, px)) != RC_OK ||
        (st = pipe_tasks(j, ranks, n)) != RC_OK) {
        rc_pipe_reset(&j->pipe);
        return st;
    }
    int ahead = 0;
    if (read_ahead && n == j->ntasks) {
        /* a short block: if the submission fails, its error waits for this
           read's reply (it is already on the wire), and a job whose task
           takes longer just asks again, blocking for the poll slice */
        xread_cmd x;
        int count = collect_count(j);
        long long block = rc_master_poll_ms(ctx);
        if (block > AHEAD_BLOCK_MS)
            block = AHEAD_BLOCK_MS;
        if (rc_pipe_cmd(&j->pipe, xread_argv(j, count, block, j->last_id, &x), x.av, NULL) == RC_OK)
            ahead = count;
    }
    j->t_submit = rc_now_ms();
    j->submitted_wall = rc_wall_ms();
    if ((st = rc_conn_send(ctx->conn, &j->pipe)) != RC_OK)
        return job_err(j, st, "cannot submit job %s: %s", j->idhex, ctx->conn->err);
    redisReply *g = NULL;
    st = rc_conn_get(ctx->conn, &g); /* an existing group answers BUSYGROUP */
    if (st == RC_EREDIS && g && g->type == REDIS_REPLY_ERROR && strncmp(g->str, "BUSYGROUP", 9) == 0)
        st = RC_OK;
    if (g) freeReplyObject(g);
    if (st != RC_OK)
        job_err(j, st, "cannot create queue '%s': %s", ctx->queue, ctx->conn->err);
    if (st != RC_EREDIS || ctx->conn->c) {
        rc_status s2 = read_replies(j, 3, "store");
        if (st == RC_OK)
            st = s2;
    }
    j->state = ST_RUNNING;
    if (st == RC_OK || ctx->conn->c) {
        rc_status s3 = read_tasks(j, ranks, n, j->ids);
        if (st == RC_OK)
            st = s3;
    }
    if (ahead && ctx->conn->c) {
        /* every earlier reply is read: the XREAD's is next */
        ctx->conn->deferred++;
        j->ahead = ahead;
        j->ahead_ticket = ctx->conn->drains;
    }
    /* The other blocks, SUBMIT_DEPTH in flight: Redis adds one while we
       encode the next.  One at a time, the master's encoding and Redis'
       EXEC took turns, and a pool of 256 workers drained the stream as
       fast as blocks came: it held one block or none.
       With rc_job_run, one block at a time also carries an XREAD of the
       results (not blocking), read right after that block's replies, so
       results are checked and reduced while Redis adds the next blocks.
       When many workers keep up with the submission, the results
       otherwise all waited for its end: at 256 workers the last fifth of a
       20000-task no-op job was the master alone, checking them. */
    struct { uint64_t r0; size_t n; int xread; } fl[SUBMIT_DEPTH];
    int head = 0, nfl = 0, xread_out = 0, by_result = 0;
    j->submitting = read_ahead;
    for (uint64_t r0 = n; st == RC_OK && (r0 < j->ntasks || nfl || j->nrq);) {
        if (!nfl && j->nrq) {
            if ((st = flush_republish(j)) != RC_OK)
                by_result = 1;
            continue;
        }
        if (r0 < j->ntasks && nfl < SUBMIT_DEPTH && !j->nrq) {
            if (ctx->interrupted) { /* a million tasks take seconds to add: Ctrl-C must not wait for them */
                st = job_err(j, RC_ECANCELED, "job %s interrupted while its tasks were being added (%llu of %llu "
                             "sent)", j->idhex, (unsigned long long)r0, (unsigned long long)j->ntasks);
                break;
            }
            size_t m = 0;
            for (; m < SUBMIT_BATCH && r0 + m < j->ntasks; m++)
                ranks[m] = r0 + m;
            m = block_len(j, ranks, m);
            int xread = 0;
            if ((st = pipe_tasks(j, ranks, m)) == RC_OK && read_ahead && !xread_out) {
                xread_cmd x;
                int count = collect_count(j);
                if ((st = rc_pipe_cmd(&j->pipe, xread_argv(j, count, 0, j->last_id, &x), x.av, NULL)) == RC_OK)
                    xread = xread_out = 1;
            }
            if (st == RC_OK && (st = rc_conn_send(ctx->conn, &j->pipe)) != RC_OK)
                job_err(j, st, "cannot queue task %llu: %s", (unsigned long long)r0, ctx->conn->err);
            rc_pipe_reset(&j->pipe);
            if (st == RC_OK) {
                int slot = (head + nfl++) % SUBMIT_DEPTH;
                fl[slot].r0 = r0;
                fl[slot].n = m;
                fl[slot].xread = xread;
                r0 += m;
            } else if (xread) {
                xread_out = 0;
            }
            continue;
        }
        st = read_tasks(j, &fl[head].r0, fl[head].n, j->ids + fl[head].r0);
        if (fl[head].xread && (st == RC_OK || ctx->conn->c)) {
            fl[head].xread = xread_out = 0;
            redisReply *r = NULL;
            rc_status xs = rc_conn_get(ctx->conn, &r);
            redisReply *list = xs == RC_OK ? result_list(r) : NULL;
            /* an error reply (a replaced result stream, say) is left to
               rc_job_wait's own read, which handles it */
            if (list && st == RC_OK && (st = take_results(j, list)) != RC_OK)
                by_result = 1;
            rc_conn_release(ctx->conn, r);
            if (list && st == RC_OK)
                report_progress(j); /* a million tasks take seconds to add: the meter moves meanwhile */
            if (st == RC_OK && xs != RC_OK && !ctx->conn->c)
                st = job_err(j, xs, "cannot read the results of job %s: %s", j->idhex, ctx->conn->err);
        }
        head = (head + 1) % SUBMIT_DEPTH;
        nfl--;
    }
    j->submitting = 0;
    if (st != RC_OK) {
        char keep[512];
        snprintf(keep, sizeof keep, "%s", j->errmsg);
        /* what the blocks still in flight added is read too, so that the
           cancel removes it by id */
        for (; nfl && ctx->conn->c; nfl--, head = (head + 1) % SUBMIT_DEPTH) {
            (void)read_tasks(j, &fl[head].r0, fl[head].n, j->ids + fl[head].r0);
            redisReply *r = NULL;
            if (fl[head].xread && ctx->conn->c) {
                (void)rc_conn_get(ctx->conn, &r);
                rc_conn_release(ctx->conn, r);
            }
        }
        if (by_result) {
            /* the job failed on a result (a kernel's error, say): it ends
               as rc_job_wait would have ended it */
            finish(j, st);
            return st;
        }
        (void)rc_job_cancel(j);
        job_err(j, st, "%s", keep);
        j->result = st;
        j->state = ST_DONE;
        return st;
    }
    rc_log(ctx, RC_LOG_INFO, "job %s: %llu tasks of kernel '%s' on queue '%s'", j->idhex,
           (unsigned long long)j->ntasks, j->kernel, ctx->queue);
    j->last_meta_check = j->last_refresh = j->last_progress = rc_now_ms();
    if (finished_ok(j)) /* every result came in while the tasks went in */
        finish(j, RC_OK);
    return RC_OK;
}

/* ------------------------------------------------------------------ */

/* Remove stream entries (ack + delete), in batches. */
static void remove_entries(rc_job *j, const stream_id *ids, size_t n)
{
    rc_conn *c = j->ctx->conn;
    enum { B = 200 };
    const char *av[B + 3];
    size_t al[B + 3];
    char buf[B][48];
    for (size_t i0 = 0; i0 < n; i0 += B) {
        size_t m = n - i0 < B ? n - i0 : B, k = 0;
        for (size_t i = 0; i < m; i++) {
            if (ids[i0 + i].ms == 0 && ids[i0 + i].seq == 0)
                continue; /* never published */
            snprintf(buf[k], sizeof buf[k], "%llu-%llu", (unsigned long long)ids[i0 + i].ms,
                     (unsigned long long)ids[i0 + i].seq);
            av[3 + k] = buf[k];
            al[3 + k] = strlen(buf[k]);
            k++;
        }
        if (!k)
            continue;
        redisReply *r = NULL;
        av[0] = "XACK"; al[0] = 4;
        av[1] = j->kn.tasks; al[1] = j->kn.tasks_len;
        av[2] = RC_GROUP; al[2] = strlen(RC_GROUP);
        if (rc_conn_cmd(c, &r, (int)(3 + k), av, al) == RC_EREDIS && !c->c) {
            if (r) freeReplyObject(r);
            return;
        }
        if (r) freeReplyObject(r);
        av[1] = "XDEL"; al[1] = 4; /* XDEL key ids... */
        av[2] = j->kn.tasks; al[2] = j->kn.tasks_len;
        (void)rc_conn_cmd(c, &r, (int)(2 + k), av + 1, al + 1);
        if (r) freeReplyObject(r);
    }
}

/* A re-attached master does not know its tasks' entry ids: find them. */
static void remove_entries_by_scan(rc_job *j)
{
    rc_conn *c = j->ctx->conn;
    char start[48] = "-";
    for (;;) {
        redisReply *r = NULL;
        if (rc_conn_cmdf(c, &r, "XRANGE %s %s + COUNT 500", j->kn.tasks, start) != RC_OK ||
            r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            if (r) freeReplyObject(r);
            return;
        }
        stream_id ids[500];
        size_t n = 0;
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            stream_id id;
            if (parse_id(e->element[0], &id) != 0)
                continue;
            snprintf(start, sizeof start, "(%llu-%llu", (unsigned long long)id.ms, (unsigned long long)id.seq);
            const redisReply *f = e->element[1];
            rc_env claim;
            if (f->type == REDIS_REPLY_ARRAY && f->elements == 2 && f->element[1]->type == REDIS_REPLY_STRING &&
                rc_wire_peek((const unsigned char *)f->element[1]->str, f->element[1]->len, &claim) == RC_OK &&
                claim.job == j->id)
                ids[n++] = id;
        }
        size_t got = r->elements;
        freeReplyObject(r);
        remove_entries(j, ids, n);
        if (got < 500)
            return;
    }
}

static void finish(rc_job *j, rc_status st)
{
    if (j->state != ST_RUNNING)
        return;
    j->state = ST_DONE;
    j->result = st;
    j->t_end = rc_now_ms();
    rc_conn *c = j->ctx->conn;
    if (!c)
        return;
    /* the authenticated end marker first (workers then drop leftovers of
       this job instead of waiting for its descriptor to come back), then
       the descriptor and result stream: from then on, late deliveries
       leave nothing */
    int n = 0;
    if (rc_tombstone_append(c, &j->ctx->keys, j->ctx->queue, j->id,
                            st == RC_OK ? "done" : st == RC_ECANCELED ? "cancelled" : "failed",
                            j->ctx->retention_ms) == RC_OK)
        n++;
    if (rc_conn_append(c, 4, (const char *[]){"DEL", j->meta_key, j->res_key, j->why_key}, NULL) == RC_OK)
        n++;
    /* the job's last deliveries are often too small to trim, and leave
       acked entries above an older floor behind (queue.c): take them now */
    if (c->sha[RC_SCRIPT_TRIM][0] &&
        rc_conn_append(c, 5, (const char *[]){"EVALSHA", c->sha[RC_SCRIPT_TRIM], "1", j->kn.tasks, RC_GROUP},
                       NULL) == RC_OK)
        n++;
    if (st == RC_OK && !j->nextra) {
        /* the answer is complete: the clean-up need not be waited for (its
           replies are read with the next command) */
        (void)rc_conn_defer(c, n);
    } else {
        (void)rc_conn_discard(c, n);
    }
    if (st != RC_OK && j->attached)
        remove_entries_by_scan(j);
    else if (st != RC_OK)
        remove_entries(j, j->ids, (size_t)j->ntasks);
    remove_entries(j, j->extra, j->nextra);
    if (st == RC_OK)
        rc_log(j->ctx, RC_LOG_INFO, "job %s: done, %llu tasks, %llu workers", j->idhex,
               (unsigned long long)j->ntasks, (unsigned long long)j->stats.workers_seen);
    else
        rc_log(j->ctx, st == RC_ECANCELED ? RC_LOG_INFO : RC_LOG_ERROR, "job %s failed: %s", j->idhex, j->errmsg);
}

rc_status rc_job_cancel(rc_job *j)
{
    if (!j)
        return RC_EINVAL;
    if (j->state == ST_NEW && j->attached)
        j->state = ST_RUNNING; /* cancel by id (redcoll cancel): attached, never waited on */
    if (j->state != ST_RUNNING)
        return RC_OK;
    if (!j->errmsg[0])
        job_err(j, RC_ECANCELED, "job %s cancelled", j->idhex);
    finish(j, RC_ECANCELED);
    return RC_OK;
}

void rc_job_set_progress(rc_job *j, rc_progress_fn fn, void *user)
{
    if (!j)
        return;
    j->progress = fn;
    j->progress_user = user;
}

static void add_worker(rc_job *j, uint64_t w)
{
    if (w == 0)
        w = 1;
    if ((j->stats.workers_seen + 1) * 2 > j->wcap) {
        size_t ncap = j->wcap ? j->wcap * 2 : 64;
        uint64_t *nw = calloc(ncap, sizeof *nw);
        if (!nw)
            return; /* a statistic only: keep going without it */
        for (size_t i = 0; i < j->wcap; i++)
            if (j->workers[i])
                for (size_t h = (size_t)(j->workers[i] * 0x9E3779B97F4A7C15ull) & (ncap - 1);; h = (h + 1) & (ncap - 1))
                    if (!nw[h]) { nw[h] = j->workers[i]; break; }
        free(j->workers);
        j->workers = nw;
        j->wcap = ncap;
    }
    for (size_t h = (size_t)(w * 0x9E3779B97F4A7C15ull) & (j->wcap - 1);; h = (h + 1) & (j->wcap - 1)) {
        if (j->workers[h] == w)
            return;
        if (!j->workers[h]) {
            j->workers[h] = w;
            j->stats.workers_seen++;
            return;
        }
    }
}

static rc_status republish(rc_job *j, uint64_t r, const char *why)
{
    if (j->submitting) {
        /* blocks are in flight on the connection: a fresh copy's XADD and
           its reply would cut into theirs.  It goes when they are read. */
        if (!j->rq_wait && !(j->rq_wait = calloc(j->ntasks, 1)))
            return job_err(j, RC_ENOMEM, "out of memory");
        if (j->rq_wait[r])
            return RC_OK;
        if (j->nrq == j->caprq) {
            size_t cap = j->caprq ? j->caprq * 2 : 16;
            struct repub *q = realloc(j->rq, cap * sizeof *q);
            if (!q)
                return job_err(j, RC_ENOMEM, "out of memory");
            j->rq = q;
            j->caprq = cap;
        }
        j->rq[j->nrq++] = (struct repub){r, why};
        j->rq_wait[r] = 1;
        return RC_OK;
    }
    if (j->republished[r] >= j->ctx->max_republish || j->republished[r] == 255) {
        return job_err(j, RC_EAUTH,
                       "job %s task %llu: rejected %u times (%s); tampering in Redis or workers holding a "
                       "different key (key id here: %08x)",
                       j->idhex, (unsigned long long)r, (unsigned)j->republished[r] + 1, why, j->ctx->keys.keyid);
    }
    if (j->nextra == j->capextra) {
        size_t cap = j->capextra ? j->capextra * 2 : 16;
        stream_id *p = realloc(j->extra, cap * sizeof *p);
        if (!p)
            return job_err(j, RC_ENOMEM, "out of memory");
        j->extra = p;
        j->capextra = cap;
    }
    rc_status st = publish_meta(j); /* heals a tampered descriptor too */
    if (st != RC_OK)
        return st;
    stream_id id = {0, 0};
    if ((st = xadd_tasks(j, &r, 1, &id)) != RC_OK)
        return st;
    /* ids[r] follows the newest copy (the lost-task check looks for it);
       older copies are remembered in extra for clean-up */
    j->extra[j->nextra++] = j->ids[r];
    j->ids[r] = id;
    j->republished[r]++;
    j->stats.republished++;
    rc_log(j->ctx, RC_LOG_WARN, "job %s task %llu: sent a fresh authentic copy (%s)", j->idhex,
           (unsigned long long)r, why);
    return RC_OK;
}

/* Fold task r's output into recvbuf, in MPI order: the lower ranks (recvbuf)
 * on the left, this rank on the right - float MIN/MAX ties (+0/-0, NaN
 * payloads) depend on it.  A built-in op writes the result over recvbuf
 * directly.  A user op's contract is (in, inout), so it reduces into data,
 * the result's own memory (the reply string or a held copy), which is then
 * copied to recvbuf. */
static rc_status merge(rc_job *j, uint64_t r, unsigned char *data)
{
    size_t n = j->recvcount * j->out_esize;
    if (r == 0) {
        if (n) memcpy(j->recvbuf, data, n);
        return RC_OK;
    }
    if (!j->op.fn)
        return rc_reduce_into_left(j->recvbuf, data, j->recvcount, j->out_dt, j->op);
    j->op.fn(j->recvbuf, data, j->recvcount, j->out_dt, j->op.user);
    if (n)
        memcpy(j->recvbuf, data, n);
    return RC_OK;
}

/* Task r's output ahead of its turn: keep it (see held_tag).  src is the
 * reply string data lies in, if it may be taken. */
static rc_status hold(rc_job *j, uint64_t r, unsigned char *data, size_t len, redisReply *src)
{
    held_tag t;
    if (src && src->type == REDIS_REPLY_STRING && src->len >= RC_RESP_DIRECT &&
        data - (unsigned char *)src->str >= (ptrdiff_t)sizeof t) {
        t.base = src->str;
        t.cap = src->len + 1;
        src->str = NULL; /* ours now: freeReplyObject skips it */
        src->len = 0;
        memcpy(data - sizeof t, &t, sizeof t);
        j->held[r] = data;
        return RC_OK;
    }
    unsigned char *p = malloc(sizeof t + (len ? len : 1));
    if (!p)
        return job_err(j, RC_ENOMEM, "out of memory holding task %llu's output", (unsigned long long)r);
    t.base = p;
    t.cap = 0;
    memcpy(p, &t, sizeof t);
    if (len) memcpy(p + sizeof t, data, len);
    j->held[r] = p + sizeof t;
    return RC_OK;
}

static rc_status accept_output(rc_job *j, uint64_t r, unsigned char *data, size_t len, redisReply *src)
{
    size_t want = 0;
    switch (j->out_mode) {
    case OUT_GATHER: want = j->recvcount * j->out_esize; break;
    case OUT_GATHERV: want = j->recvcounts[r] * j->out_esize; break;
    case OUT_REDUCE: want = j->recvcount * j->out_esize; break;
    default: want = len; break;
    }
    if (len != want)
        return job_err(j, RC_EPROTO, "job %s task %llu: kernel '%s' wrote %zu output bytes, the %s expects %zu",
                       j->idhex, (unsigned long long)r, j->kernel, len,
                       j->out_mode == OUT_REDUCE ? "reduce" : "gather", want);
    switch (j->out_mode) {
    case OUT_GATHER:
        if (len) memcpy(j->recvbuf + r * want, data, len);
        return RC_OK;
    case OUT_GATHERV:
        if (len) memcpy(j->recvbuf + j->rdispls[r] * j->out_esize, data, len);
        return RC_OK;
    case OUT_REDUCE:
        if (r != j->next_merge)
            return hold(j, r, data, len, src);
        rc_status st = merge(j, r, data);
        j->next_merge++;
        while (st == RC_OK && j->next_merge < j->ntasks && j->held[j->next_merge]) {
            st = merge(j, j->next_merge, j->held[j->next_merge]);
            release_held(j, j->next_merge, 1);
            j->next_merge++;
        }
        return st;
    default:
        j->held[r] = malloc(len ? len : 1);
        if (!j->held[r])
            return job_err(j, RC_ENOMEM, "out of memory keeping task %llu's output", (unsigned long long)r);
        if (len) memcpy(j->held[r], data, len);
        j->held_len[r] = len;
        return RC_OK;
    }
}

/* Handle one message from the result stream.  Returns an error only when
 * the job must fail; bad messages are counted, logged and skipped.  src, if
 * not NULL, is the reply string buf is, which a reduce may take rather than
 * copy. */
static rc_status handle(rc_job *j, unsigned char *buf, size_t len, redisReply *src)
{
    rc_ctx *ctx = j->ctx;
    rc_env e, claim;
    char why[256];
    int plausible = rc_wire_peek(buf, len, &claim) == RC_OK && claim.job == j->id && claim.rank < j->ntasks;
    rc_status st = rc_wire_decode_max(buf, len, &ctx->keys, ctx->queue, ctx->max_payload, &e, why, sizeof why);
    if (st == RC_OK && e.kind == RC_KIND_RESULT && e.sealed != j->sealed) {
        /* authentic, so a worker bug rather than an attack; still not ours */
        snprintf(why, sizeof why, "a %s result for a %s job", e.sealed ? "sealed" : "plaintext",
                 j->sealed ? "sealed" : "plaintext");
        st = RC_EPROTO;
    }
    if (st == RC_OK && e.kind == RC_KIND_RESULT && e.job == j->id && e.rank < j->ntasks &&
        e.ntasks == j->ntasks && e.kernel_len == j->kernel_len && memcmp(e.kernel, j->kernel, j->kernel_len) == 0) {
        uint64_t r = e.rank;
        if (j->done[r]) {
            j->stats.duplicates++;
            rc_log(ctx, RC_LOG_INFO, "job %s task %llu: duplicate result ignored (a late worker)", j->idhex,
                   (unsigned long long)r);
            return RC_OK;
        }
        if (e.status != RC_OK) {
            int n = (int)(e.payload_len > 300 ? 300 : e.payload_len);
            rc_status code = e.status == RC_ENOKERNEL ? RC_ENOKERNEL : RC_EKERNEL;
            return job_err(j, code, "job %s task %llu: %.*s", j->idhex, (unsigned long long)r, n,
                           (const char *)e.payload);
        }
        /* e.payload points into buf, which is ours to write */
        unsigned char *out = buf + ((const unsigned char *)e.payload - buf);
        if ((st = accept_output(j, r, out, (size_t)e.payload_len, src)) != RC_OK)
            return st;
        j->done[r] = 1;
        j->ndone++;
        if (e.attempt > 1)
            j->stats.redelivered++;
        j->stats.done = j->ndone;
        add_worker(j, e.aux);
        j->last_progress = rc_now_ms();
        return RC_OK;
    }
    if (st == RC_OK && e.kind == RC_KIND_REJECT) {
        /* an authentic worker could not verify the task: Redis altered it */
        if (e.job == j->id && e.rank < j->ntasks && !j->done[e.rank])
            return republish(j, e.rank, "a worker holding our key found the task altered");
        return RC_OK;
    }
    if (st != RC_OK && plausible && claim.kind == RC_KIND_REJECT) {
        /* unverifiable notice: a worker with another key (or a forger).  A
           hint at most: the task it names may be gone, so re-send it. */
        rc_log(ctx, RC_LOG_WARN, "job %s: worker with key id %08x rejected task %llu (ours is %08x)", j->idhex,
               claim.keyid, (unsigned long long)claim.rank, ctx->keys.keyid);
        if (!j->done[claim.rank])
            return republish(j, claim.rank, "rejected by a worker holding another key");
        return RC_OK;
    }
    j->stats.rejected++;
    if (st == RC_OK)
        snprintf(why, sizeof why, "authentic but for another job, task or kernel");
    rc_log(ctx, RC_LOG_WARN, "job %s: rejected a result%s: %s", j->idhex,
           plausible ? " claiming to be for one of its tasks" : "", why);
    if (plausible && !j->done[claim.rank])
        return republish(j, claim.rank, "its result failed verification");
    return RC_OK;
}

static int finished_ok(rc_job *j)
{
    return j->ndone == j->ntasks;
}

/* The entries of an XREAD reply of the result stream,
 * [[key, [[id, [field, value, ...]], ...]]], or NULL (nil: none). */
static redisReply *result_list(redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2 && r->element[0]->element[1]->type == REDIS_REPLY_ARRAY)
        return r->element[0]->element[1];
    return NULL;
}

/* Take the results of the entries in list, in order, moving our position
 * in the result stream past each.  Returns the status that fails the job,
 * at the first result that does; stops too when the job is complete. */
static rc_status take_results(rc_job *j, redisReply *list)
{
    for (size_t i = 0; i < list->elements; i++) {
        const redisReply *e = list->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[0]->len >= sizeof j->last_id)
            continue;
        memcpy(j->last_id, e->element[0]->str, e->element[0]->len);
        j->last_id[e->element[0]->len] = '\0';
        /* one result per field: a small delivery's results share an entry */
        const redisReply *f = e->element[1];
        if (f->type != REDIS_REPLY_ARRAY || f->elements < 2 || f->elements % 2) {
            j->stats.rejected++;
            rc_log(j->ctx, RC_LOG_WARN, "job %s: malformed result stream entry skipped", j->idhex);
            continue;
        }
        j->res_entries++;
        for (size_t k = 1; k < f->elements; k += 2) {
            redisReply *v = f->element[k];
            if (v->type != REDIS_REPLY_STRING) {
                j->stats.rejected++;
                rc_log(j->ctx, RC_LOG_WARN, "job %s: malformed result stream field skipped", j->idhex);
                continue;
            }
            j->res_bytes += v->len;
            rc_status st = handle(j, (unsigned char *)v->str, v->len, v);
            if (st != RC_OK)
                return st;
            if (finished_ok(j))
                return RC_OK;
        }
    }
    return RC_OK;
}

/* Result entries per XREAD: about COLLECT_BYTES of them, from the size of those
 * seen so far (or the size a reduce or gather expects).  Redis builds a whole
 * reply before it writes any of it, so 256 results of 1 MiB would keep the
 * master idle while Redis copies 256 MiB, then Redis idle while the master
 * checks them; a few MiB per reply, with the next one asked for before this
 * one is checked (collect), keeps both busy at once. */
#define COLLECT_BYTES ((size_t)4 << 20)

static int collect_count(const rc_job *j)
{
    size_t per = 0;
    if (j->res_entries)
        per = (size_t)(j->res_bytes / j->res_entries);
    else if (j->out_mode == OUT_REDUCE || j->out_mode == OUT_GATHER)
        per = j->recvcount * j->out_esize;
    size_t n = COLLECT_BYTES / (per + 128);
    return n < 1 ? 1 : n > POP_BATCH ? POP_BATCH : (int)n;
}

/* How long a waiting master lets results gather before its next blocking
 * read, in microseconds (0: not at all).  When each worker delivers one
 * task per round trip, a blocking XREAD would wake the master for every
 * result or two: Redis serves the blocked reader, writes its reply and
 * wakes it once per delivery - a quarter of Redis' time per task and half
 * the master's (thirteenth session, BENCHMARKS.md §1) - on the two cores
 * the workers need.  Waiting for about COALESCE results at the rate seen
 * so far makes that once per COALESCE.  Near the end (fewer results to
 * come than four waits' worth) every result is read as it comes, so a
 * job's last result, and a small job's only one, is never held back. */
static long long coalesce_us(const rc_job *j)
{
    uint64_t seen = j->ndone - j->first_done;
    if (!j->first_us || seen < COALESCE)
        return 0;
    double gap = (double)(rc_now_us() - j->first_us) / (double)seen;
    double wait = gap * COALESCE;
    if (wait > COALESCE_MAX_US)
        wait = COALESCE_MAX_US;
    if ((double)(j->ntasks - j->ndone) * gap < 4 * wait)
        return 0;
    return (long long)wait;
}

/* Read and handle the results past our position in the result stream;
 * with block_ms > 0, wait that long for the first one. */
static rc_status collect(rc_job *j, long long block_ms)
{
    rc_conn *c = j->ctx->conn;
    unsigned long ticket = j->ahead_ticket;
    int prefetched = j->ahead; /* count of the XREAD sent ahead, 0: none */
    j->ahead = 0;
    for (;;) {
        xread_cmd x;
        int count = prefetched ? prefetched : collect_count(j);
        redisReply *r = NULL;
        rc_status st = RC_EAGAIN;
        if (prefetched)
            st = rc_conn_take(c, ticket, &r); /* RC_EAGAIN: another command dropped it */
        prefetched = 0;
        if (st == RC_EAGAIN) {
            /* a blocking read ends at once on a stop request: reading is
               not destructive, so dropping the connection loses nothing */
            if (block_ms > 0)
                c->cancel_fd = rc_ctx_stop_fd(j->ctx);
            st = rc_conn_cmd(c, &r, xread_argv(j, count, block_ms, j->last_id, &x), x.av, NULL);
            c->cancel_fd = -1;
        }
        if (st == RC_EREDIS && r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) == 0) {
            /* someone replaced the result stream: check_meta puts it back */
            freeReplyObject(r);
            j->last_meta_check = 0;
            return RC_OK;
        }
        if (st != RC_OK) {
            if (r) freeReplyObject(r);
            return st;
        }
        redisReply *list = result_list(r);
        size_t got = list ? list->elements : 0;
        const redisReply *last = got ? list->element[got - 1] : NULL;
        if (got == (size_t)count && j->state == ST_RUNNING && last->type == REDIS_REPLY_ARRAY &&
            last->elements == 2 && last->element[0]->type == REDIS_REPLY_STRING &&
            last->element[0]->len < sizeof j->last_id) {
            /* a full batch: ask for the next while this one is checked */
            int next = collect_count(j);
            if (rc_conn_prefetch(c, xread_argv(j, next, 0, last->element[0]->str, &x), x.av, NULL, &ticket) == RC_OK)
                prefetched = next;
        }
        if (list && j->state == ST_RUNNING) {
            if (!j->first_us && got) {
                j->first_us = rc_now_us();
                j->first_done = j->ndone;
            }
            rc_status hs = take_results(j, list);
            if (hs != RC_OK)
                finish(j, hs);
            else if (finished_ok(j))
                finish(j, RC_OK);
        }
        rc_conn_release(c, r);
        /* a prefetch not taken stays deferred: the next command drops it */
        if (j->state != ST_RUNNING || got < (size_t)count) {
            long long wait = block_ms > 0 && got && j->state == ST_RUNNING ? coalesce_us(j) : 0;
            if (wait > 0) { /* a stop request ends it at once */
                struct pollfd pf = {.fd = rc_ctx_stop_fd(j->ctx), .events = POLLIN};
                struct timespec ts = {0, (long)wait * 1000};
                (void)ppoll(&pf, 1, &ts, NULL);
            }
            return RC_OK;
        }
        block_ms = 0; /* a full batch: more may be waiting */
    }
}

/* Keep the job's keys alive while we wait (they expire if we die). */
static void refresh_ttl(rc_job *j)
{
    long long now = rc_now_ms(), every = j->ctx->retention_ms / 3 < 60000 ? j->ctx->retention_ms / 3 : 60000;
    if (now - j->last_refresh < every)
        return;
    j->last_refresh = now;
    rc_conn *c = j->ctx->conn;
    char px[32];
    snprintf(px, sizeof px, "%lld", j->ctx->retention_ms);
    const char *keys[] = {j->meta_key, j->res_key, j->why_key, j->data ? j->data->key : NULL};
    int nk = j->data ? 4 : 3;
    for (int i = 0; i < nk; i++)
        if (rc_conn_append(c, 3, (const char *[]){"PEXPIRE", keys[i], px}, NULL) != RC_OK)
            return;
    (void)rc_conn_discard(c, nk);
}

static rc_status check_meta(rc_job *j)
{
    long long now = rc_now_ms();
    if (now - j->last_meta_check < 1000)
        return RC_OK;
    j->last_meta_check = now;
    rc_ctx *ctx = j->ctx;
    rc_conn *c = ctx->conn;
    rc_status st = rc_conn_append(c, 2, (const char *[]){"EXISTS", j->meta_key}, NULL);
    if (st == RC_OK)
        st = rc_conn_append(c, 2, (const char *[]){"TYPE", j->res_key}, NULL);
    redisReply *r = NULL, *t = NULL;
    if (st == RC_OK) {
        st = rc_conn_get(c, &r);
        if (!(st == RC_EREDIS && !c->c)) {
            rc_status s2 = rc_conn_get(c, &t);
            if (st == RC_OK)
                st = s2;
        }
    }
    int meta_gone = st == RC_OK && r && r->type == REDIS_REPLY_INTEGER && r->integer == 0;
    int res_gone = st == RC_OK && t && t->type == REDIS_REPLY_STATUS && strcmp(t->str, "stream") != 0;
    if (r) freeReplyObject(r);
    if (t) freeReplyObject(t);
    if (st != RC_OK)
        return st;
    if (!meta_gone && !res_gone)
        return RC_OK;
    char what[80];
    if (rc_tombstone_check(c, &ctx->keys, ctx->queue, j->id, 0, what, sizeof what) == 1) {
        job_err(j, RC_ECANCELED, "job %s was ended by another process (%s)", j->idhex, what);
        finish(j, RC_ECANCELED);
        return RC_OK;
    }
    if (rc_tombstone_check(c, &ctx->keys, ctx->queue, 0, j->submitted_wall, what, sizeof what) == 1) {
        job_err(j, RC_ECANCELED, "job %s: queue '%s' was removed", j->idhex, ctx->queue);
        finish(j, RC_ECANCELED);
        return RC_OK;
    }
    /* deleted without an authenticated cancel: put it back */
    if (meta_gone) {
        rc_log(ctx, RC_LOG_WARN, "job %s: its descriptor vanished from Redis without an authenticated cancel "
                                 "(eviction, flush or tampering?): restoring it", j->idhex);
        if ((st = publish_meta(j)) != RC_OK)
            return st;
    }
    if (res_gone) {
        /* results not read yet are gone with it: their tasks, acked, look
           lost to check_lost and are sent again */
        rc_log(ctx, RC_LOG_WARN, "job %s: its result stream vanished from Redis without an authenticated cancel "
                                 "(eviction, flush or tampering?): recreating it", j->idhex);
        char px[32];
        snprintf(px, sizeof px, "%lld", ctx->retention_ms);
        rc_pipe_reset(&j->pipe);
        (void)rc_pipe_cmd(&j->pipe, 2, (const char *[]){"DEL", j->res_key}, NULL);
        if ((st = pipe_result_stream(j, px)) != RC_OK)
            return st;
        if ((st = rc_conn_send(c, &j->pipe)) != RC_OK)
            return job_err(j, st, "cannot recreate the result stream of job %s: %s", j->idhex, c->err);
        return read_replies(j, 3, "recreate the result stream of");
    }
    return RC_OK;
}

/* A task whose entry vanished from the stream (deleted, or cut so badly no
 * worker could say which task it was) and that has no result would be
 * waited for forever.  When no result has come for two leases, look up the
 * newest entry of every task not done (pipelined XRANGE id id, up to 4096
 * per look) and re-send the ones that are gone; republish() bounds it, so an
 * attacker deleting forever ends the job with RC_EAUTH, not a hang. */
static rc_status check_lost(rc_job *j)
{
    rc_ctx *ctx = j->ctx;
    long long now = rc_now_ms(), quiet = 2 * ctx->lease_ms + 1000;
    if (now - j->last_progress < quiet || now - j->last_lost_check < quiet)
        return RC_OK;
    j->last_lost_check = now;
    enum { MAXCHECK = 4096 };
    uint64_t *ranks = malloc(MAXCHECK * sizeof *ranks);
    if (!ranks)
        return RC_OK; /* a safety net, not needed to make progress */
    size_t n = 0;
    char idbuf[48];
    for (uint64_t r = 0; r < j->ntasks && n < MAXCHECK; r++) {
        if (j->done[r] || (j->ids[r].ms == 0 && j->ids[r].seq == 0))
            continue; /* done, or re-attached: id unknown */
        snprintf(idbuf, sizeof idbuf, "%llu-%llu", (unsigned long long)j->ids[r].ms, (unsigned long long)j->ids[r].seq);
        if (rc_conn_append(ctx->conn, 4, (const char *[]){"XRANGE", j->kn.tasks, idbuf, idbuf}, NULL) != RC_OK)
            break;
        ranks[n++] = r;
    }
    rc_status st = RC_OK;
    size_t lost = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *rep = NULL;
        rc_status g = rc_conn_get(ctx->conn, &rep);
        int gone = g == RC_OK && rep->type == REDIS_REPLY_ARRAY && rep->elements == 0;
        if (rep) freeReplyObject(rep);
        if (g == RC_EREDIS && !ctx->conn->c) {
            st = g;
            break;
        }
        if (gone) {
            ranks[lost++] = ranks[i];
        }
    }
    for (size_t i = 0; i < lost && st == RC_OK && j->state == ST_RUNNING; i++) {
        rc_status rs = republish(j, ranks[i], "its task entry vanished from Redis without a result");
        if (rs != RC_OK) {
            finish(j, rs);
            break;
        }
    }
    free(ranks);
    return st;
}

/* One step of progress; block_ms as in collect.  A lost connection is
 * retried on the next step (after a backoff when blocking is allowed) until
 * it has been down for RC_OPT_REDIS_DEADLINE_MS; results are re-read from
 * our stream position, so nothing delivered meanwhile is lost. */
static rc_status step(rc_job *j, long long block_ms)
{
    rc_ctx *ctx = j->ctx;
    rc_status st = collect(j, block_ms);
    if (st == RC_ECANCELED && ctx->interrupted)
        return RC_OK; /* the caller's loop says the job was interrupted */
    if (st == RC_OK && j->state == ST_RUNNING)
        st = check_meta(j);
    if (st == RC_OK && j->state == ST_RUNNING)
        refresh_ttl(j);
    if (st == RC_OK && j->state == ST_RUNNING)
        st = check_lost(j);
    if (st != RC_EREDIS || ctx->conn->c) {
        if (st != RC_OK && j->state == ST_RUNNING) {
            job_err(j, st, "job %s: %s", j->idhex, ctx->conn->err);
            finish(j, st);
        }
        if (j->down_since)
            rc_log(ctx, RC_LOG_WARN, "job %s: Redis connection restored", j->idhex);
        j->down_since = 0;
        j->backoff = 50;
        return RC_OK;
    }
    long long now = rc_now_ms();
    if (!j->down_since) {
        j->down_since = now;
        rc_log(ctx, RC_LOG_WARN, "job %s: %s; reconnecting", j->idhex, ctx->conn->err);
    }
    if (now - j->down_since > ctx->redis_deadline_ms) {
        job_err(j, RC_EREDIS, "job %s: Redis unreachable for %lld ms (--redis-deadline): %s", j->idhex,
                now - j->down_since, ctx->conn->err);
        j->state = ST_DONE;
        j->result = RC_EREDIS;
        j->t_end = now;
        return RC_OK;
    }
    if (block_ms > 0) {
        rc_sleep_ms(j->backoff);
        j->backoff = j->backoff * 2 > 2000 ? 2000 : j->backoff * 2;
    }
    return RC_OK;
}

/* At most ~5 calls a second, and once at the end. */
static void report_progress(rc_job *j)
{
    if (!j->progress)
        return;
    long long now = rc_now_ms();
    if (j->state == ST_RUNNING && (j->ndone == j->progress_done || now - j->progress_at < 200))
        return;
    if (j->state != ST_RUNNING) { /* the final call, once */
        if (j->progress_final)
            return;
        j->progress_final = 1;
    }
    j->progress_done = j->ndone;
    j->progress_at = now;
    rc_job_stats st;
    rc_job_get_stats(j, &st);
    j->progress(j, &st, j->progress_user);
}

static rc_status outcome(rc_job *j)
{
    report_progress(j);
    if (j->result != RC_OK)
        snprintf(j->ctx->errmsg, sizeof j->ctx->errmsg, "%s", j->errmsg);
    return j->result;
}

rc_status rc_job_test(rc_job *j)
{
    if (!j)
        return RC_EINVAL;
    if (j->state == ST_NEW)
        return rc_seterr(j->ctx, RC_ESTATE, "job %s was not submitted", j->idhex);
    if (j->state == ST_RUNNING)
        (void)step(j, 0);
    if (j->state == ST_RUNNING) {
        report_progress(j);
        return RC_EAGAIN;
    }
    return outcome(j);
}

rc_status rc_job_wait(rc_job *j)
{
    if (!j)
        return RC_EINVAL;
    rc_ctx *ctx = j->ctx;
    if (j->state == ST_NEW && j->attached) {
        rc_status st = prepare_outputs(j);
        if (st != RC_OK)
            return st;
        j->state = ST_RUNNING;
        j->t_submit = j->last_meta_check = j->last_progress = rc_now_ms();
        j->submitted_wall = rc_wall_ms();
    }
    if (j->state == ST_NEW)
        return rc_seterr(ctx, RC_ESTATE, "job %s was not submitted", j->idhex);
    while (j->state == ST_RUNNING) {
        if (ctx->interrupted) {
            job_err(j, RC_ECANCELED, "job %s interrupted", j->idhex);
            finish(j, RC_ECANCELED);
            break;
        }
        if (ctx->job_timeout_ms > 0 && rc_now_ms() - j->t_submit > ctx->job_timeout_ms) {
            job_err(j, RC_ETIMEDOUT, "job %s: %llu of %llu tasks done after the %lld ms job timeout", j->idhex,
                    (unsigned long long)j->ndone, (unsigned long long)j->ntasks, ctx->job_timeout_ms);
            finish(j, RC_ETIMEDOUT);
            break;
        }
        (void)step(j, rc_master_poll_ms(ctx));
        report_progress(j);
    }
    return outcome(j);
}

rc_status rc_job_run(rc_job *j)
{
    rc_status st = submit(j, 1);
    if (st != RC_OK)
        return st;
    return rc_job_wait(j);
}

rc_status rc_job_output(const rc_job *j, uint64_t rank, const void **data, size_t *size)
{
    if (!j || !data || !size)
        return RC_EINVAL;
    if (j->state != ST_DONE || j->result != RC_OK)
        return rc_seterr(j->ctx, RC_ESTATE, "job %s has not finished successfully", j->idhex);
    if (j->out_mode != OUT_KEEP)
        return rc_seterr(j->ctx, RC_ESTATE, "job %s stored its outputs in a gather/reduce buffer", j->idhex);
    if (rank >= j->ntasks)
        return rc_seterr(j->ctx, RC_EINVAL, "rank %llu out of range", (unsigned long long)rank);
    *data = j->held[rank];
    *size = j->held_len[rank];
    return RC_OK;
}

rc_status rc_job_get_stats(const rc_job *j, rc_job_stats *st)
{
    if (!j || !st)
        return RC_EINVAL;
    *st = j->stats;
    long long end = j->state == ST_DONE ? j->t_end : rc_now_ms();
    st->seconds = j->state == ST_NEW ? 0.0 : (double)(end - j->t_submit) / 1000.0;
    return RC_OK;
}

const char *rc_job_kernel(const rc_job *j) { return j ? j->kernel : ""; }
uint64_t rc_job_ntasks(const rc_job *j) { return j ? j->ntasks : 0; }
uint64_t rc_job_seed(const rc_job *j) { return j ? j->seed : 0; }

void rc_job_broadcast(const rc_job *j, const void **data, size_t *size)
{
    *data = j ? j->bcast : NULL;
    *size = j ? j->bcast_len : 0;
}

rc_status rc_job_attach(rc_ctx *ctx, const char *id, rc_job **out)
{
    if (!out)
        return RC_EINVAL;
    *out = NULL;
    if (!ctx)
        return RC_EINVAL;
    rc_clearerr(ctx);
    uint64_t jid = 0;
    size_t n = id ? strlen(id) : 0;
    if (n != 16)
        return rc_seterr(ctx, RC_EINVAL, "job id '%s' is not 16 hex digits", id ? id : "(null)");
    for (size_t i = 0; i < 16; i++) {
        char c = id[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (v < 0)
            return rc_seterr(ctx, RC_EINVAL, "job id '%s' is not 16 hex digits", id);
        jid = jid << 4 | (uint64_t)v;
    }
    rc_status st;
    if (!ctx->conn && (st = rc_connect(ctx)) != RC_OK)
        return st;
    char meta[300];
    rc_job_keys(ctx->queue, jid, meta, sizeof meta, NULL, 0);
    redisReply *r = NULL;
    st = rc_conn_cmdf(ctx->conn, &r, "GET %s", meta);
    if (st != RC_OK) {
        if (r) freeReplyObject(r);
        return rc_seterr(ctx, st, "cannot read job %s: %s", id, ctx->conn->err);
    }
    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return rc_seterr(ctx, RC_ENOTFOUND, "job %s not found in queue '%s' (collected, cancelled or expired)", id,
                         ctx->queue);
    }
    rc_env e;
    char why[300];
    st = rc_wire_decode((unsigned char *)r->str, r->len, &ctx->keys, ctx->queue, &e, why, sizeof why);
    if (st == RC_OK && (e.kind != RC_KIND_JOB || e.job != jid || e.ntasks == 0 || e.ntasks > (uint64_t)1 << 40)) {
        st = RC_EAUTH;
        snprintf(why, sizeof why, "descriptor is authentic but not for job %s", id);
    }
    if (st != RC_OK) {
        freeReplyObject(r);
        return rc_seterr(ctx, st, "job %s: descriptor rejected: %s", id, why);
    }
    char kernel[RC_KERNEL_MAX + 1];
    memcpy(kernel, e.kernel, e.kernel_len);
    kernel[e.kernel_len] = '\0';
    rc_job *j = NULL;
    if ((st = rc_job_create(ctx, kernel, e.ntasks, &j)) != RC_OK) {
        freeReplyObject(r);
        return st;
    }
    j->bcast_own = malloc(e.payload_len ? (size_t)e.payload_len : 1);
    if (!j->bcast_own) {
        freeReplyObject(r);
        rc_job_destroy(j);
        return rc_seterr(ctx, RC_ENOMEM, "out of memory");
    }
    if (e.payload_len)
        memcpy(j->bcast_own, e.payload, (size_t)e.payload_len);
    j->bcast = j->bcast_own;
    j->bcast_len = (size_t)e.payload_len;
    j->seed = e.aux;
    j->sealed = e.sealed;
    freeReplyObject(r);
    j->id = jid;
    rc_hex64(jid, j->idhex);
    rc_job_keys(ctx->queue, jid, j->meta_key, sizeof j->meta_key, j->res_key, sizeof j->res_key);
    snprintf(j->why_key, sizeof j->why_key, "%s:why", j->meta_key);
    j->attached = 1;
    *out = j;
    return RC_OK;
}

/* ------------------------------------------------------------------ */
/* Stored data */

static rc_status data_store(rc_ctx *ctx, const unsigned char *buf, const size_t *counts, const size_t *displs,
                            size_t count, size_t es, uint64_t ntasks, rc_data **out)
{
    *out = NULL;
    rc_status st;
    if (ntasks == 0 || ntasks > (uint64_t)1 << 32)
        return rc_seterr(ctx, RC_EINVAL, "stored data needs 1 to 2^32 chunks");
    if (strchr(ctx->queue, ','))
        return rc_seterr(ctx, RC_EINVAL, "data goes to one queue; '%s' names several", ctx->queue);
    if ((st = rc_ctx_ensure_key(ctx)) != RC_OK)
        return st;
    if (!ctx->conn && (st = rc_connect(ctx)) != RC_OK)
        return st;
    rc_data *d = calloc(1, sizeof *d);
    if (!d)
        return rc_seterr(ctx, RC_ENOMEM, "out of memory");
    d->ctx = ctx;
    d->ntasks = ntasks;
    rc_random_u64(&d->id);
    if (!d->id)
        d->id = 1;
    char hex[17];
    rc_hex64(d->id, hex);
    snprintf(d->key, sizeof d->key, "rc:{%s}:data:%s", ctx->queue, hex);
    unsigned char *enc = NULL;
    size_t cap = 0;
    char field[32], px[32];
    snprintf(px, sizeof px, "%lld", ctx->retention_ms);
    enum { BATCH = 128 };
    uint64_t pending = 0;
    st = RC_OK;
    for (uint64_t r = 0; r < ntasks && st == RC_OK; r++) {
        size_t n = (counts ? counts[r] : count) * es;
        const unsigned char *p = buf ? buf + (displs ? displs[r] : r * count) * es : NULL;
        if (n > ctx->max_payload) {
            st = rc_seterr(ctx, RC_EINVAL, "chunk %llu is %zu bytes, over the %llu-byte limit (RC_OPT_MAX_PAYLOAD)",
                           (unsigned long long)r, n, ctx->max_payload);
            break;
        }
        rc_env e = {.kind = RC_KIND_DATA, .job = d->id, .rank = r, .ntasks = ntasks, .sealed = ctx->encrypt,
                    .payload = p, .payload_len = n};
        size_t len = rc_wire_size_env(&e);
        if (len > cap) {
            unsigned char *q = realloc(enc, len);
            if (!q) {
                st = rc_seterr(ctx, RC_ENOMEM, "out of memory");
                break;
            }
            enc = q;
            cap = len;
        }
        if ((st = rc_wire_encode(&e, &ctx->keys, ctx->queue, enc, len)) != RC_OK)
            break;
        snprintf(field, sizeof field, "%llu", (unsigned long long)r);
        const char *av[] = {"HSET", d->key, field, (const char *)enc};
        size_t al[] = {4, strlen(d->key), strlen(field), len};
        if ((st = rc_conn_append(ctx->conn, 4, av, al)) != RC_OK)
            break;
        if (++pending == BATCH || r + 1 == ntasks) {
            for (; pending; pending--) {
                redisReply *rep = NULL;
                rc_status g = rc_conn_get(ctx->conn, &rep);
                if (rep) freeReplyObject(rep);
                if (g != RC_OK && st == RC_OK)
                    st = rc_seterr(ctx, g, "cannot store data chunk: %s", ctx->conn->err);
                if (g == RC_EREDIS && !ctx->conn->c)
                    break;
            }
        }
    }
    free(enc);
    for (; pending && ctx->conn->c; pending--) { /* replies of a batch cut short */
        redisReply *rep = NULL;
        (void)rc_conn_get(ctx->conn, &rep);
        if (rep) freeReplyObject(rep);
    }
    if (st == RC_OK) {
        redisReply *rep = NULL;
        st = rc_conn_cmdf(ctx->conn, &rep, "PEXPIRE %s %s", d->key, px);
        if (rep) freeReplyObject(rep);
    }
    if (st != RC_OK) {
        rc_data_release(d);
        return st;
    }
    *out = d;
    return RC_OK;
}

rc_status rc_data_scatter(rc_ctx *ctx, const void *sendbuf, size_t sendcount, rc_datatype dt, uint64_t ntasks,
                          rc_data **out)
{
    if (!out || !ctx)
        return RC_EINVAL;
    rc_clearerr(ctx);
    size_t es = rc_datatype_size(dt), chunk;
    if (!es)
        return rc_seterr(ctx, RC_EINVAL, "unknown datatype %d", (int)dt);
    if (mul_overflows(sendcount, es, &chunk) || (chunk && !sendbuf))
        return rc_seterr(ctx, RC_EINVAL, "bad scatter buffer or count");
    return data_store(ctx, sendbuf, NULL, NULL, sendcount, es, ntasks, out);
}

rc_status rc_data_scatterv(rc_ctx *ctx, const void *sendbuf, const size_t *sendcounts, const size_t *displs,
                           rc_datatype dt, uint64_t ntasks, rc_data **out)
{
    if (!out || !ctx)
        return RC_EINVAL;
    rc_clearerr(ctx);
    size_t es = rc_datatype_size(dt);
    if (!es)
        return rc_seterr(ctx, RC_EINVAL, "unknown datatype %d", (int)dt);
    if (!sendcounts || !displs)
        return rc_seterr(ctx, RC_EINVAL, "scatterv needs counts and displacements");
    for (uint64_t r = 0; r < ntasks; r++) {
        size_t chunk, end;
        if (mul_overflows(sendcounts[r], es, &chunk) || sendcounts[r] > SIZE_MAX - displs[r] ||
            mul_overflows(displs[r] + sendcounts[r], es, &end) || (chunk && !sendbuf))
            return rc_seterr(ctx, RC_EINVAL, "scatterv: chunk %llu (count %zu at %zu) is invalid",
                             (unsigned long long)r, sendcounts[r], displs[r]);
    }
    return data_store(ctx, sendbuf, sendcounts, displs, 0, es, ntasks, out);
}

rc_status rc_job_use_data(rc_job *j, const rc_data *data)
{
    if (!j || !data)
        return RC_EINVAL;
    rc_status st = not_new(j);
    if (st != RC_OK || (st = input_once(j)) != RC_OK)
        return st;
    if (data->ntasks != j->ntasks)
        return rc_seterr(j->ctx, RC_EINVAL, "stored data has %llu chunks, job %s has %llu tasks",
                         (unsigned long long)data->ntasks, j->idhex, (unsigned long long)j->ntasks);
    if (data->ctx != j->ctx)
        return rc_seterr(j->ctx, RC_EINVAL, "stored data belongs to another context (queue)");
    j->in_mode = IN_DATA;
    j->data = data;
    /* keep it alive as long as jobs use it */
    redisReply *r = NULL;
    if (j->ctx->conn)
        (void)rc_conn_cmdf(j->ctx->conn, &r, "PEXPIRE %s %lld", data->key, j->ctx->retention_ms);
    if (r) freeReplyObject(r);
    return RC_OK;
}

rc_status rc_data_release(rc_data *d)
{
    if (!d)
        return RC_OK;
    rc_status st = RC_OK;
    if (d->ctx->conn) {
        redisReply *r = NULL;
        st = rc_conn_cmdf(d->ctx->conn, &r, "UNLINK %s", d->key);
        if (r) freeReplyObject(r);
        if (st != RC_OK)
            rc_seterr(d->ctx, st, "cannot remove stored data: %s", d->ctx->conn->err);
    }
    free(d);
    return st;
}
