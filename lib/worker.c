/* worker.c - the worker loop and its lease thread.
 *
 * A worker is one consumer of the queue's group.  Its loop takes one entry at
 * a time: first any entry whose lease lapsed (XAUTOCLAIM, so a task held by a
 * dead worker is run again), else a new one (XREADGROUP, blocking for a short
 * poll slice so stop requests and linger are noticed).  Taking is atomic with
 * recording the owner: the entry sits in the group's pending list under this
 * worker's name from the moment it is handed out.
 *
 * Nothing is trusted before its MAC verifies.  An entry that fails is never
 * run: the worker reports it on the job's result list (the master sends a
 * fresh authentic copy), deletes it so no one else wastes time on it, says
 * loudly whether its own key looks wrong, and backs off exponentially so a
 * mis-keyed worker cannot eat the queue.
 *
 * The lease is renewed by a separate thread with its own connection: an
 * OpenMP kernel that saturates every core cannot starve it, and a blocking
 * command on the main connection never delays it.  The job descriptor
 * (kernel, seed, broadcast blob) is fetched once per job and cached. */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOB_CACHE 4
#define ID_MAX 48

typedef struct job_cache {
    uint64_t job, ntasks, seed;
    char kernel[RC_KERNEL_MAX + 1];
    size_t kernel_len;
    unsigned char *blob;
    size_t blob_len;
    long long used;
    int valid;
} job_cache;

typedef struct worker {
    rc_ctx *ctx;
    rc_conn *conn;
    rc_keynames kn;
    char consumer[160];
    uint64_t wid;

    pthread_t hb;
    int hb_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int hb_stop;
    char held[ID_MAX];        /* entry id in hand, "" if none (guarded by mu) */
    int lease_lost;           /* set by the lease thread (guarded by mu) */

    job_cache cache[JOB_CACHE];
    rc_task task;
    unsigned char *res;
    size_t rescap;
    char cursor[ID_MAX];      /* XAUTOCLAIM scan position */
    long long last_reclaim;
    int auth_fails;
    uint64_t done;
    int redis_down;
} worker;

/* ------------------------------------------------------------------ */
/* Lease thread */

static void *lease_thread(void *arg)
{
    worker *w = arg;
    rc_ctx *ctx = w->ctx;
    rc_url u;
    u = w->conn->url;
    rc_conn *c = rc_conn_new(&u, ctx->connect_ms, ctx->command_ms);
    long long period = ctx->heartbeat_ms > 0 ? ctx->heartbeat_ms : ctx->lease_ms / 4;
    if (period < 10)
        period = 10;
    char id[ID_MAX], lost_id[ID_MAX] = "";
    pthread_mutex_lock(&w->mu);
    while (!w->hb_stop) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += (time_t)(period / 1000);
        dl.tv_nsec += (long)(period % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &dl);
        if (w->hb_stop || !w->held[0] || !c)
            continue;
        memcpy(id, w->held, sizeof id);
        pthread_mutex_unlock(&w->mu);

        const char *av[] = {w->kn.tasks, RC_GROUP, w->consumer, id};
        redisReply *r = NULL;
        rc_status st = rc_script(c, RC_SCRIPT_RENEW, &r, 1, 3, av, NULL);
        int owned = st == RC_OK && r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        if (st != RC_OK)
            rc_log(ctx, RC_LOG_DEBUG, "lease renewal of %s failed: %s", id, c->err);
        else if (!owned && strcmp(lost_id, id) != 0) {
            rc_log(ctx, RC_LOG_WARN, "entry %s is no longer ours (its lease lapsed and another worker took it, "
                                     "or its job ended); finishing anyway: the master keeps one result per task",
                   id);
            memcpy(lost_id, id, sizeof lost_id);
        }
        if (r) freeReplyObject(r);
        pthread_mutex_lock(&w->mu);
        if (!owned && st == RC_OK && strcmp(w->held, id) == 0)
            w->lease_lost = 1;
    }
    pthread_mutex_unlock(&w->mu);
    rc_conn_free(c);
    return NULL;
}

static void set_held(worker *w, const char *id)
{
    pthread_mutex_lock(&w->mu);
    snprintf(w->held, sizeof w->held, "%s", id ? id : "");
    w->lease_lost = 0;
    pthread_mutex_unlock(&w->mu);
}

/* ------------------------------------------------------------------ */

static int is_nogroup(const rc_conn *c, rc_status st)
{
    /* Redis 7 unblocks a reader of a deleted stream with "UNBLOCKED ... no
       longer exists"; either way the queue was removed */
    return st == RC_EREDIS && c->c && (strstr(c->err, "NOGROUP") != NULL || strstr(c->err, "UNBLOCKED") != NULL);
}

static int interrupted(const worker *w) { return w->ctx->interrupted != 0; }

/* Sleep up to ms, waking early on a stop request. */
static void nap(const worker *w, long long ms)
{
    long long end = rc_now_ms() + ms;
    while (!interrupted(w)) {
        long long left = end - rc_now_ms();
        if (left <= 0)
            break;
        rc_sleep_ms(left < 50 ? left : 50);
    }
}

/* An entry as handed out by Redis: [id, [field, value, ...]] or nil for an
 * entry deleted while pending (Redis < 7).  Everything is checked: the
 * reply's shape comes from a server we do not trust. */
static int entry_parts(const redisReply *e, const char **id, size_t *idlen, const unsigned char **buf,
                       size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[0]->len == 0 || e->element[0]->len >= ID_MAX)
        return -1;
    *id = e->element[0]->str;
    *idlen = e->element[0]->len;
    const redisReply *f = e->element[1];
    if (f->type == REDIS_REPLY_ARRAY && f->elements == 2 && f->element[0]->type == REDIS_REPLY_STRING &&
        f->element[0]->len == 1 && f->element[0]->str[0] == 'e' && f->element[1]->type == REDIS_REPLY_STRING) {
        *buf = (const unsigned char *)f->element[1]->str;
        *len = f->element[1]->len;
    }
    return 0;
}

static rc_status deliver(worker *w, const char *id, uint64_t job, const unsigned char *env, size_t len)
{
    char meta[300], res[320];
    rc_job_keys(w->ctx->queue, job, meta, sizeof meta, res, sizeof res);
    const char *av[] = {w->kn.tasks, meta, res, RC_GROUP, id, (const char *)env};
    size_t al[] = {w->kn.tasks_len, strlen(meta), strlen(res), strlen(RC_GROUP), strlen(id), len};
    long long backoff = 100;
    for (;;) {
        redisReply *r = NULL;
        rc_status st = rc_script(w->conn, RC_SCRIPT_DELIVER, &r, 3, 3, av, al);
        if (r) freeReplyObject(r);
        if (st == RC_OK || is_nogroup(w->conn, st))
            return st;
        if (st != RC_EREDIS || w->conn->c) {
            rc_log(w->ctx, RC_LOG_ERROR, "cannot deliver entry %s: %s", id, w->conn->err);
            return st;
        }
        /* connection lost: the lease keeps the task ours for a while, and if
           it lapses another worker runs it; keep trying until stopped */
        rc_log(w->ctx, RC_LOG_WARN, "delivering entry %s: %s; retrying", id, w->conn->err);
        if (interrupted(w))
            return st;
        nap(w, backoff);
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
}

static rc_status ensure_res(worker *w, size_t n)
{
    if (n <= w->rescap)
        return RC_OK;
    unsigned char *p = realloc(w->res, n);
    if (!p)
        return RC_ENOMEM;
    w->res = p;
    w->rescap = n;
    return RC_OK;
}

/* Refuse an entry we cannot trust: report, delete, back off. */
static void refuse(worker *w, const char *id, const unsigned char *buf, size_t len, rc_status why_st,
                   const char *why)
{
    rc_ctx *ctx = w->ctx;
    rc_env claim;
    int peek = buf && rc_wire_peek(buf, len, &claim) == RC_OK;
    char jobhex[17] = "?";
    if (peek)
        rc_hex64(claim.job, jobhex);
    w->auth_fails++;
    rc_log(ctx, RC_LOG_ERROR, "REFUSED entry %s (claims job %s task %llu): %s: %s", id, jobhex,
           peek ? (unsigned long long)claim.rank : 0ULL, rc_strerror(why_st), why);
    if (peek && claim.keyid != ctx->keys.keyid)
        rc_log(ctx, RC_LOG_ERROR, "this worker's key (id %08x) is not the key the master used (id %08x): "
                                  "check --key-file / REDCOLL_KEY_FILE; not running anything I cannot verify",
               ctx->keys.keyid, claim.keyid);
    size_t n = 0;
    if (peek) {
        size_t wl = strlen(why);
        rc_env e = {.kind = RC_KIND_REJECT, .job = claim.job, .rank = claim.rank, .ntasks = claim.ntasks,
                    .aux = w->wid, .status = (uint32_t)why_st, .payload = why, .payload_len = wl};
        n = rc_wire_size(0, wl);
        if (ensure_res(w, n) != RC_OK || rc_wire_encode(&e, &ctx->keys, ctx->queue, w->res, n) != RC_OK)
            n = 0;
    }
    (void)deliver(w, id, peek ? claim.job : 0, w->res, n);
    long long backoff = 250LL << (w->auth_fails - 1 < 5 ? w->auth_fails - 1 : 5);
    if (backoff > 8000)
        backoff = 8000;
    rc_log(ctx, RC_LOG_WARN, "%d refusal(s) in a row; backing off %lld ms", w->auth_fails, backoff);
    nap(w, backoff);
}

static job_cache *job_lookup(worker *w, uint64_t job, int *gone, char *why, size_t whylen, rc_status *st)
{
    rc_ctx *ctx = w->ctx;
    *gone = 0;
    *st = RC_OK;
    job_cache *lru = &w->cache[0];
    for (int i = 0; i < JOB_CACHE; i++) {
        if (w->cache[i].valid && w->cache[i].job == job) {
            w->cache[i].used = rc_now_ms();
            return &w->cache[i];
        }
        if (!w->cache[i].valid || w->cache[i].used < lru->used)
            lru = &w->cache[i];
    }
    char meta[300];
    rc_job_keys(ctx->queue, job, meta, sizeof meta, NULL, 0);
    redisReply *r = NULL;
    *st = rc_conn_cmdf(w->conn, &r, "GET %s", meta);
    if (*st != RC_OK) {
        snprintf(why, whylen, "%s", w->conn->err);
        if (r) freeReplyObject(r);
        return NULL;
    }
    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        *gone = 1;
        return NULL;
    }
    rc_env e;
    *st = rc_wire_decode((const unsigned char *)r->str, r->len, &ctx->keys, ctx->queue, &e, why, whylen);
    if (*st == RC_OK && (e.kind != RC_KIND_JOB || e.job != job)) {
        snprintf(why, whylen, "job descriptor is authentic but not for this job (replayed?)");
        *st = RC_EAUTH;
    }
    if (*st != RC_OK) {
        freeReplyObject(r);
        return NULL;
    }
    unsigned char *blob = malloc(e.payload_len ? (size_t)e.payload_len : 1);
    if (!blob) {
        freeReplyObject(r);
        snprintf(why, whylen, "out of memory for a %llu-byte broadcast", (unsigned long long)e.payload_len);
        *st = RC_ENOMEM;
        return NULL;
    }
    if (e.payload_len)
        memcpy(blob, e.payload, (size_t)e.payload_len);
    free(lru->blob);
    lru->blob = blob;
    lru->blob_len = (size_t)e.payload_len;
    lru->job = job;
    lru->ntasks = e.ntasks;
    lru->seed = e.aux;
    memcpy(lru->kernel, e.kernel, e.kernel_len);
    lru->kernel[e.kernel_len] = '\0';
    lru->kernel_len = e.kernel_len;
    lru->used = rc_now_ms();
    lru->valid = 1;
    freeReplyObject(r);
    return lru;
}

static void list_kernels(const rc_ctx *ctx, char *out, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < ctx->nkernels && o + 1 < n; i++) {
        int k = snprintf(out + o, n - o, "%s%s", i ? ", " : "", ctx->kernels[i].name);
        if (k < 0)
            break;
        o += (size_t)k;
    }
    if (!ctx->nkernels)
        snprintf(out, n, "none");
}

/* Run one verified entry and deliver its result. */
static rc_status run_entry(worker *w, const char *id, const unsigned char *buf, size_t len)
{
    rc_ctx *ctx = w->ctx;
    rc_env e;
    char why[300];
    rc_status st = rc_wire_decode(buf, len, &ctx->keys, ctx->queue, &e, why, sizeof why);
    if (st == RC_OK && e.kind != RC_KIND_TASK) {
        snprintf(why, sizeof why, "authentic envelope of kind %u in the task stream (replayed?)", e.kind);
        st = RC_EAUTH;
    }
    if (st != RC_OK) {
        refuse(w, id, buf, len, st, why);
        return RC_OK;
    }
    int gone;
    job_cache *jc = job_lookup(w, e.job, &gone, why, sizeof why, &st);
    if (!jc && gone) {
        char hex[17];
        rc_hex64(e.job, hex);
        rc_log(ctx, RC_LOG_INFO, "job %s is gone (finished or cancelled); dropping its task %llu", hex,
               (unsigned long long)e.rank);
        return deliver(w, id, e.job, NULL, 0);
    }
    if (!jc) {
        if (st == RC_EREDIS)
            return st;
        refuse(w, id, buf, len, st, why);
        return RC_OK;
    }
    if (jc->ntasks != e.ntasks || e.rank >= e.ntasks || jc->kernel_len != e.kernel_len ||
        memcmp(jc->kernel, e.kernel, e.kernel_len) != 0) {
        refuse(w, id, buf, len, RC_EAUTH, "task does not match its job descriptor (spliced?)");
        return RC_OK;
    }
    w->auth_fails = 0;

    rc_task *t = &w->task;
    t->rank = e.rank;
    t->ntasks = e.ntasks;
    t->seed = jc->seed;
    t->job = e.job;
    t->threads = ctx->threads;
    t->input = e.payload;
    t->input_len = (size_t)e.payload_len;
    t->bcast = jc->blob;
    t->bcast_len = jc->blob_len;
    t->out_len = 0;
    t->failed = 0;
    t->err[0] = '\0';

    uint32_t status = RC_OK;
    const void *out;
    size_t outlen;
    char msg[700];
    const rc_kernel_entry *k = rc_kernel_find(ctx, e.kernel, e.kernel_len);
    if (!k) {
        char names[300];
        list_kernels(ctx, names, sizeof names);
        snprintf(msg, sizeof msg, "kernel '%.*s' is not registered on worker %s/%ld (it has: %s)",
                 (int)e.kernel_len, e.kernel, ctx->host, (long)getpid(), names);
        rc_log(ctx, RC_LOG_ERROR, "%s", msg);
        status = RC_ENOKERNEL;
        out = msg;
        outlen = strlen(msg);
    } else {
        int rv = k->fn(t, k->user);
        if (rv != 0 || t->failed) {
            snprintf(msg, sizeof msg, "kernel '%s' failed on %s/%ld: %s", k->name, ctx->host, (long)getpid(),
                     t->err[0] ? t->err : "returned an error without a message");
            rc_log(ctx, RC_LOG_WARN, "task %llu: %s", (unsigned long long)e.rank, msg);
            status = RC_EKERNEL;
            out = msg;
            outlen = strlen(msg);
        } else {
            out = t->out;
            outlen = t->out_len;
        }
    }
    rc_env r = {.kind = RC_KIND_RESULT, .job = e.job, .rank = e.rank, .ntasks = e.ntasks, .aux = w->wid,
                .status = status, .kernel = e.kernel, .kernel_len = e.kernel_len, .payload = out,
                .payload_len = outlen};
    size_t n = rc_wire_size(e.kernel_len, outlen);
    if (ensure_res(w, n) != RC_OK) {
        rc_log(ctx, RC_LOG_ERROR, "out of memory for a %zu-byte result; leaving task %llu to another worker", n,
               (unsigned long long)e.rank);
        return RC_OK;
    }
    if ((st = rc_wire_encode(&r, &ctx->keys, ctx->queue, w->res, n)) != RC_OK)
        return st;
    st = deliver(w, id, e.job, w->res, n);
    if (st == RC_OK)
        w->done++;
    return st;
}

/* Take one entry: a lapsed lease first, else a new one.  *reply holds it. */
static rc_status take(worker *w, redisReply **reply, const redisReply **entry)
{
    rc_ctx *ctx = w->ctx;
    *reply = NULL;
    *entry = NULL;
    long long now = rc_now_ms();
    long long every = ctx->lease_ms / 4 < 1000 ? ctx->lease_ms / 4 : 1000;
    if (every < ctx->poll_ms)
        every = ctx->poll_ms;
    if (now - w->last_reclaim >= every || strcmp(w->cursor, "0-0") != 0) {
        char lease[32];
        snprintf(lease, sizeof lease, "%lld", ctx->lease_ms);
        redisReply *r = NULL;
        rc_status st = rc_conn_cmdf(w->conn, &r, "XAUTOCLAIM %s %s %s %s %s COUNT 1", w->kn.tasks, RC_GROUP,
                                    w->consumer, lease, w->cursor);
        if (st != RC_OK) {
            if (r) freeReplyObject(r);
            return st;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && r->element[0]->type == REDIS_REPLY_STRING &&
            r->element[0]->len < ID_MAX) {
            memcpy(w->cursor, r->element[0]->str, r->element[0]->len);
            w->cursor[r->element[0]->len] = '\0';
            const redisReply *list = r->element[1];
            if (list->type == REDIS_REPLY_ARRAY && list->elements > 0 &&
                list->element[0]->type == REDIS_REPLY_ARRAY) {
                *reply = r;
                *entry = list->element[0];
                rc_log(ctx, RC_LOG_INFO, "took over entry %.*s: its lease of %lld ms lapsed",
                       (int)list->element[0]->element[0]->len, list->element[0]->element[0]->str, ctx->lease_ms);
                return RC_OK;
            }
        } else {
            strcpy(w->cursor, "0-0");
        }
        freeReplyObject(r);
        if (strcmp(w->cursor, "0-0") == 0)
            w->last_reclaim = now;
    }
    char block[32];
    snprintf(block, sizeof block, "%lld", ctx->poll_ms);
    redisReply *r = NULL;
    rc_status st = rc_conn_cmdf(w->conn, &r, "XREADGROUP GROUP %s %s COUNT 1 BLOCK %s STREAMS %s >", RC_GROUP,
                                w->consumer, block, w->kn.tasks);
    if (st != RC_OK) {
        if (r) freeReplyObject(r);
        return st;
    }
    /* [[stream, [entry]]] or nil */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2 && r->element[0]->element[1]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->element[1]->elements > 0) {
        *reply = r;
        *entry = r->element[0]->element[1]->element[0];
        return RC_OK;
    }
    freeReplyObject(r);
    return RC_OK;
}

static void release_consumer(worker *w)
{
    /* forget our consumer name only if it holds nothing: DELCONSUMER drops
       its pending entries, which would then never be redelivered */
    redisReply *r = NULL;
    if (rc_conn_cmdf(w->conn, &r, "XPENDING %s %s - + 1 %s", w->kn.tasks, RC_GROUP, w->consumer) == RC_OK &&
        r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
        freeReplyObject(r);
        r = NULL;
        (void)rc_conn_cmdf(w->conn, &r, "XGROUP DELCONSUMER %s %s %s", w->kn.tasks, RC_GROUP, w->consumer);
    }
    if (r) freeReplyObject(r);
}

rc_status rc_worker_run(rc_ctx *ctx)
{
    if (!ctx)
        return RC_EINVAL;
    rc_clearerr(ctx);
    rc_status st = rc_ctx_ensure_key(ctx);
    if (st != RC_OK)
        return st;
    if (!ctx->nkernels)
        return rc_seterr(ctx, RC_EINVAL, "no kernels registered: a worker could run nothing");
    rc_url u;
    if ((st = rc_ctx_url(ctx, &u)) != RC_OK)
        return st;
    worker *w = calloc(1, sizeof *w);
    if (!w)
        return rc_seterr(ctx, RC_ENOMEM, "out of memory");
    w->ctx = ctx;
    w->conn = rc_conn_new(&u, ctx->connect_ms, ctx->command_ms);
    if (!w->conn) {
        free(w);
        return rc_seterr(ctx, RC_ENOMEM, "out of memory");
    }
    rc_keys_for_queue(ctx->queue, &w->kn);
    rc_random_u64(&w->wid);
    if (!w->wid)
        w->wid = 1;
    char hex[17];
    rc_hex64(w->wid, hex);
    snprintf(w->consumer, sizeof w->consumer, "%s:%ld:%s", ctx->host, (long)getpid(), hex);
    strcpy(w->cursor, "0-0");
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);

    st = RC_OK;
    long long idle_since = rc_now_ms(), backoff = 100;
    int have_group = 0;
    if (pthread_create(&w->hb, NULL, lease_thread, w) != 0) {
        st = rc_seterr(ctx, RC_EIO, "cannot start the lease thread");
        goto out;
    }
    w->hb_started = 1;
    rc_log(ctx, RC_LOG_INFO, "worker %s serving queue '%s' (key id %08x, %d thread(s) per task)", w->consumer,
           ctx->queue, ctx->keys.keyid, ctx->threads);
    while (!interrupted(w)) {
        if (ctx->linger_ms > 0 && rc_now_ms() - idle_since > ctx->linger_ms) {
            rc_log(ctx, RC_LOG_INFO, "idle for %lld ms (linger): exiting", ctx->linger_ms);
            break;
        }
        redisReply *r = NULL;
        const redisReply *entry = NULL;
        if (!have_group) {
            st = rc_queue_ensure_group(w->conn, &w->kn);
            if (st == RC_OK)
                have_group = 1;
        }
        if (st == RC_OK)
            st = take(w, &r, &entry);
        if (is_nogroup(w->conn, st)) {
            rc_log(ctx, RC_LOG_WARN, "queue '%s' was removed: exiting", ctx->queue);
            if (r) freeReplyObject(r);
            st = RC_OK;
            break;
        }
        if (st != RC_OK) {
            if (r) freeReplyObject(r);
            if (st != RC_EREDIS)
                break;
            if (!w->redis_down)
                rc_log(ctx, RC_LOG_WARN, "%s; retrying", w->conn->err);
            w->redis_down = 1;
            nap(w, backoff);
            backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
            st = RC_OK;
            continue;
        }
        if (w->redis_down)
            rc_log(ctx, RC_LOG_WARN, "Redis reachable again");
        w->redis_down = 0;
        backoff = 100;
        if (!entry) {
            if (r) freeReplyObject(r);
            continue;
        }
        const char *idp;
        size_t idlen, len;
        const unsigned char *buf;
        char id[ID_MAX];
        if (entry_parts(entry, &idp, &idlen, &buf, &len) != 0) {
            rc_log(ctx, RC_LOG_ERROR, "malformed stream entry from Redis: skipped");
            freeReplyObject(r);
            continue;
        }
        memcpy(id, idp, idlen);
        id[idlen] = '\0';
        set_held(w, id);
        if (!buf)
            refuse(w, id, NULL, 0, RC_EPROTO, "stream entry has no envelope field");
        else
            st = run_entry(w, id, buf, len);
        set_held(w, NULL);
        freeReplyObject(r);
        idle_since = rc_now_ms();
        if (is_nogroup(w->conn, st)) {
            rc_log(ctx, RC_LOG_WARN, "queue '%s' was removed: exiting", ctx->queue);
            st = RC_OK;
            break;
        }
        if (st == RC_EREDIS) { /* Redis went away mid-task: keep serving */
            st = RC_OK;
            continue;
        }
        if (st != RC_OK)
            break;
    }
    if (st == RC_OK && !w->redis_down)
        release_consumer(w);
    if (st != RC_OK && !ctx->errmsg[0])
        rc_seterr(ctx, st, "%s", w->conn->err);
out:
    if (w->hb_started) {
        pthread_mutex_lock(&w->mu);
        w->hb_stop = 1;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->hb, NULL);
    }
    rc_log(ctx, RC_LOG_INFO, "worker %s stopped after %llu task(s)", w->consumer, (unsigned long long)w->done);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    for (int i = 0; i < JOB_CACHE; i++)
        free(w->cache[i].blob);
    free(w->task.out);
    free(w->res);
    rc_conn_free(w->conn);
    free(w);
    return st;
}

rc_status rc_queue_remove(rc_ctx *ctx)
{
    if (!ctx)
        return RC_EINVAL;
    rc_clearerr(ctx);
    rc_status st;
    if (!ctx->conn) {
        /* no key needed: removing is what anyone with Redis access can do */
        rc_url u;
        if ((st = rc_ctx_url(ctx, &u)) != RC_OK)
            return st;
        if (!(ctx->conn = rc_conn_new(&u, ctx->connect_ms, ctx->command_ms)))
            return rc_seterr(ctx, RC_ENOMEM, "out of memory");
    }
    rc_keynames kn;
    rc_keys_for_queue(ctx->queue, &kn);
    /* the stream first: workers see NOGROUP and exit; then every job key */
    redisReply *r = NULL;
    st = rc_conn_cmdf(ctx->conn, &r, "DEL %s", kn.tasks);
    if (r) freeReplyObject(r);
    if (st != RC_OK)
        return rc_seterr(ctx, st, "cannot remove queue '%s': %s", ctx->queue, ctx->conn->err);
    char pattern[300], cursor[32] = "0";
    snprintf(pattern, sizeof pattern, "rc:{%s}:*", ctx->queue);
    do {
        st = rc_conn_cmdf(ctx->conn, &r, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (st != RC_OK || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof cursor) {
            if (r) freeReplyObject(r);
            return rc_seterr(ctx, st == RC_OK ? RC_EPROTO : st, "cannot list the keys of queue '%s': %s",
                             ctx->queue, ctx->conn->err);
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            if (keys->element[i]->type != REDIS_REPLY_STRING)
                continue;
            redisReply *d = NULL;
            const char *av[] = {"UNLINK", keys->element[i]->str};
            size_t al[] = {6, keys->element[i]->len};
            (void)rc_conn_cmd(ctx->conn, &d, 2, av, al);
            if (d) freeReplyObject(d);
        }
        freeReplyObject(r);
        r = NULL;
    } while (strcmp(cursor, "0") != 0);
    return RC_OK;
}
