/* overhead - per-task cost of the whole redcoll path next to a raw hiredis queue on the same Redis.
 *
 * Why: redcoll's promise is that a task of 10 ms or more pays a negligible
 * toll for scheduling, fault recovery and authentication.  That toll is only
 * known if it is measured against the floor: what the same Redis, on the same
 * machine, in the same run, does for a bare queue with no envelope, no MAC,
 * no Lua and no lease thread.  This program runs no-op tasks (8-byte output)
 * through the embedded default (rc_local_start, W workers that are this very
 * binary with --worker) for W = 1, 2, 8, measures jobs of many tasks
 * (tasks/s) and jobs of one task (latency p50/p99), optionally sealed
 * (--encrypt adds RC_OPT_ENCRYPT rows next to the authenticated-only ones),
 * then, on the same private redis-server with the redcoll workers frozen,
 * runs a raw hiredis producer and K = W forked consumers in six modes:
 *   list-1           BLMOVE a task to a processing list, then LPUSH result + LREM (2 round trips/task)
 *   list-pipe        result push, LREM and the next BLMOVE in one round trip
 *   stream-1         XREADGROUP COUNT 1, then XADD result + XACK + XDEL (2 round trips/task: redcoll's shape)
 *   stream-pipe      result, ack, delete and the next XREADGROUP in one round trip
 *   stream-256       XREADGROUP COUNT 256; 256 XADDs + one XACK + one XDEL + next read in one round trip
 *   stream-256-auth  stream-256 with a keyed BLAKE2b-256 MAC on every task and result, verified
 * and the one-task round trip (XADD, worker, XREAD).  Every phase resets
 * INFO commandstats first, so commands per task and Redis CPU per task are
 * exact for that phase.  Ratios redcoll/raw are printed for matching modes;
 * they are what to compare across machines and commits, since the absolute
 * numbers come from a shared, noisy 2-core VM.
 *
 *   overhead [--quick] [--json] [--encrypt] [--workers 1,2,8] [--tasks N]
 *            [--raw-tasks N] [--latency-jobs J] [--repeat R] [--modes LIST] [--raw-only]
 *   overhead --worker      (what rc_local_start runs: serve the "noop" kernel) */
#include "bench_common.h"
#include "redcoll.h"

#include <sodium.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define QUEUE "redcoll"    /* the context's default queue */
#define MAXW 16
#define TASK_BYTES 16
#define MAC_BYTES 32
#define BATCH 256
#define RAW_FIRST 3000     /* raw tasks in the first round */
#define RAW_MIN 2000       /* ... and at least this many later */
#define RAW_TARGET_S 0.6   /* later rounds: about this long per raw phase */


/* ------------------------------------------------------------------ */
/* worker role */

static int noop_kernel(rc_task *t, void *user)
{
    (void)user;
    double *out;
    if (rc_task_output(t, sizeof *out, (void **)&out) != RC_OK)
        return rc_task_fail(t, "out of memory");
    *out = 1.0;
    return 0;
}

static int worker_main(long max_batch)
{
    rc_ctx *ctx = rc_ctx_create();
    if (!ctx || rc_register_kernel(ctx, "noop", noop_kernel, NULL) != RC_OK)
        return 1;
    if (max_batch && rc_ctx_set_int(ctx, RC_OPT_MAX_BATCH, max_batch) != RC_OK)
        return 1;
    bc_ctx = ctx;
    rc_status st = rc_worker_run(ctx);
    if (st != RC_OK)
        fprintf(stderr, "overhead worker: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
    bc_ctx = NULL;
    rc_ctx_destroy(ctx);
    return st == RC_OK ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* raw baseline */

enum { RAW_LIST1, RAW_LISTPIPE, RAW_STREAM1, RAW_STREAMPIPE, RAW_STREAM256, RAW_STREAM256AUTH, RAW_NMODES };
static const char *const raw_names[RAW_NMODES] = {"list-1",     "list-pipe",  "stream-1",
                                                  "stream-pipe", "stream-256", "stream-256-auth"};
static const char *const raw_shape[RAW_NMODES] = {
    "BLMOVE; LPUSH+LREM", "LPUSH+LREM+BLMOVE", "XREADGROUP 1; XADD+XACK+XDEL", "XADD+XACK+XDEL+XREADGROUP 1",
    "XREADGROUP 256; 256 XADD+XACK+XDEL+XREADGROUP", "as stream-256 + BLAKE2b MAC per task and result"};

static unsigned char g_key[32]; /* the raw MAC key (children inherit it) */

static int is_list(int mode) { return mode == RAW_LIST1 || mode == RAW_LISTPIPE; }

static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint64_t get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void mac16(const unsigned char *msg, unsigned char *mac)
{
    crypto_generichash(mac, MAC_BYTES, msg, TASK_BYTES, g_key, sizeof g_key);
}

static int mac_ok(const unsigned char *msg)
{
    unsigned char m[MAC_BYTES];
    mac16(msg, m);
    return crypto_verify_32(m, msg + TASK_BYTES) == 0;
}

/* task i: {i, 3i+1}; result: {i, 3i+2} (+ MAC in auth mode) */
static size_t make_task(uint64_t i, int auth, unsigned char *out)
{
    put64(out, i);
    put64(out + 8, 3 * i + 1);
    if (auth)
        mac16(out, out + TASK_BYTES);
    return TASK_BYTES + (auth ? MAC_BYTES : 0);
}

static size_t make_result(const unsigned char *task, size_t len, int auth, unsigned char *out)
{
    if (len != TASK_BYTES + (auth ? MAC_BYTES : 0) || (auth && !mac_ok(task)))
        return 0;
    put64(out, get64(task));
    put64(out + 8, get64(task + 8) + 1);
    if (auth)
        mac16(out, out + TASK_BYTES);
    return TASK_BYTES + (auth ? MAC_BYTES : 0);
}

/* [[stream, [[id, [f, v]], ...]]] -> the entry list, or NULL */
static const redisReply *stream_entries(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        return NULL;
    const redisReply *s = r->element[0];
    if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 || s->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    return s->element[1];
}

static int entry_value(const redisReply *e, const char **id, size_t *idlen, const unsigned char **v, size_t *vlen)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[1]->type != REDIS_REPLY_ARRAY || e->element[1]->elements != 2 ||
        e->element[1]->element[1]->type != REDIS_REPLY_STRING)
        return -1;
    *id = e->element[0]->str;
    *idlen = e->element[0]->len;
    *v = (const unsigned char *)e->element[1]->element[1]->str;
    *vlen = e->element[1]->element[1]->len;
    return 0;
}

static void die_child(const char *what, redisContext *c)
{
    fprintf(stderr, "overhead raw worker %ld: %s: %s\n", (long)getpid(), what, c ? c->errstr : "");
    _exit(1);
}

static redisReply *get_reply(redisContext *c)
{
    void *r = NULL;
    if (redisGetReply(c, &r) != REDIS_OK || !r)
        die_child("reply", c);
    if (((redisReply *)r)->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "overhead raw worker: %s\n", ((redisReply *)r)->str);
        _exit(1);
    }
    return r;
}

/* Append the stream reply's results (XADD each) and the XACK/XDEL of its ids. */
static size_t append_stream_results(redisContext *c, const redisReply *list, const char *tasks, const char *res,
                                    int auth)
{
    size_t n = list->elements;
    const char **av = malloc((n + 3) * sizeof *av);
    size_t *al = malloc((n + 3) * sizeof *al);
    if (!av || !al)
        die_child("out of memory", NULL);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id;
        size_t idlen, vlen;
        const unsigned char *v;
        unsigned char out[TASK_BYTES + MAC_BYTES];
        if (entry_value(list->element[i], &id, &idlen, &v, &vlen) != 0)
            die_child("malformed stream entry", NULL);
        size_t olen = make_result(v, vlen, auth, out);
        if (!olen)
            die_child("task failed verification", NULL);
        redisAppendCommand(c, "XADD %s * d %b", res, out, olen);
        av[3 + k] = id;
        al[3 + k] = idlen;
        k++;
    }
    av[0] = "XACK";
    al[0] = 4;
    av[1] = tasks;
    al[1] = strlen(tasks);
    av[2] = "g";
    al[2] = 1;
    redisAppendCommandArgv(c, (int)(3 + k), av, al);
    av[1] = "XDEL"; /* XDEL key ids... */
    al[1] = 4;
    av[2] = tasks;
    al[2] = strlen(tasks);
    redisAppendCommandArgv(c, (int)(2 + k), av + 1, al + 1);
    free(av);
    free(al);
    return n + 2;
}

static void raw_worker(const char *url, int mode, const char *tasks, const char *res, const char *ready)
{
    redisContext *c = bc_connect(url);
    if (!c)
        _exit(1);
    char consumer[32], proc[96];
    snprintf(consumer, sizeof consumer, "c%ld", (long)getpid());
    snprintf(proc, sizeof proc, "%s:proc:%ld", tasks, (long)getpid());
    redisReply *r = bc_cmd(c, "RPUSH %s 1", ready);
    if (!r)
        _exit(1);
    freeReplyObject(r);
    int auth = mode == RAW_STREAM256AUTH;
    const char *count = mode == RAW_STREAM256 || mode == RAW_STREAM256AUTH ? "256" : "1";
    unsigned char out[TASK_BYTES + MAC_BYTES];
    if (is_list(mode)) {
        redisReply *task = NULL;
        for (;;) {
            while (!task || task->type != REDIS_REPLY_STRING) {
                if (task)
                    freeReplyObject(task);
                task = redisCommand(c, "BLMOVE %s %s RIGHT LEFT 1", tasks, proc);
                if (!task)
                    die_child("BLMOVE", c);
            }
            size_t olen = make_result((const unsigned char *)task->str, task->len, 0, out);
            if (!olen)
                die_child("bad task", NULL);
            redisAppendCommand(c, "LPUSH %s %b", res, out, olen);
            redisAppendCommand(c, "LREM %s 1 %b", proc, task->str, task->len);
            if (mode == RAW_LISTPIPE)
                redisAppendCommand(c, "BLMOVE %s %s RIGHT LEFT 1", tasks, proc);
            freeReplyObject(task);
            task = NULL;
            freeReplyObject(get_reply(c));
            freeReplyObject(get_reply(c));
            if (mode == RAW_LISTPIPE)
                task = get_reply(c);
        }
    }
    /* streams */
    redisReply *batch = NULL;
    for (;;) {
        while (!batch || !stream_entries(batch) || stream_entries(batch)->elements == 0) {
            if (batch)
                freeReplyObject(batch);
            batch = redisCommand(c, "XREADGROUP GROUP g %s COUNT %s BLOCK 1000 STREAMS %s >", consumer, count, tasks);
            if (!batch || batch->type == REDIS_REPLY_ERROR)
                die_child("XREADGROUP", c);
        }
        size_t nrep = append_stream_results(c, stream_entries(batch), tasks, res, auth);
        int pipelined = mode != RAW_STREAM1;
        if (pipelined)
            redisAppendCommand(c, "XREADGROUP GROUP g %s COUNT %s BLOCK 1000 STREAMS %s >", consumer, count, tasks);
        freeReplyObject(batch);
        batch = NULL;
        for (size_t i = 0; i < nrep; i++)
            freeReplyObject(get_reply(c));
        if (pipelined)
            batch = get_reply(c);
    }
}

typedef struct raw_result {
    int mode, k;
    uint64_t n;
    double seconds, rate;
    int ok;
    bc_phase ph;
} raw_result;

static pid_t fork_raw_worker(const char *url, int mode, const char *tasks, const char *res, const char *ready)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        raw_worker(url, mode, tasks, res, ready);
        _exit(0);
    }
    return pid;
}

static void stop_children(pid_t *pids, int k)
{
    for (int i = 0; i < k; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGKILL);
    for (int i = 0; i < k; i++)
        if (pids[i] > 0)
            waitpid(pids[i], NULL, 0);
}

/* Fork k consumers of `mode` on fresh keys and wait until they are connected. */
static int start_raw(const char *url, redisContext *c, int mode, int k, pid_t *pids, char *tasks, char *res,
                     size_t keylen)
{
    static int serial;
    char ready[96];
    serial++;
    snprintf(tasks, keylen, "raw:{q}:%d:tasks", serial);
    snprintf(res, keylen, "raw:{q}:%d:res", serial);
    snprintf(ready, sizeof ready, "raw:{q}:%d:ready", serial);
    redisReply *r = bc_cmd(c, "DEL %s %s %s", tasks, res, ready);
    if (!r)
        return -1;
    freeReplyObject(r);
    if (!is_list(mode)) {
        if (!(r = bc_cmd(c, "XGROUP CREATE %s g $ MKSTREAM", tasks)))
            return -1;
        freeReplyObject(r);
    }
    for (int i = 0; i < k; i++)
        pids[i] = fork_raw_worker(url, mode, tasks, res, ready);
    for (int i = 0; i < k; i++) {
        r = bc_cmd(c, "BLPOP %s 10", ready);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "overhead: raw workers did not start\n");
            if (r)
                freeReplyObject(r);
            stop_children(pids, k);
            return -1;
        }
        freeReplyObject(r);
    }
    return 0;
}

static int check_result(const unsigned char *v, size_t len, int auth, uint64_t n, unsigned char *seen)
{
    if (len != TASK_BYTES + (auth ? MAC_BYTES : 0) || (auth && !mac_ok(v)))
        return -1;
    uint64_t i = get64(v);
    if (i >= n || get64(v + 8) != 3 * i + 2 || seen[i])
        return -1;
    seen[i] = 1;
    return 0;
}

static int run_raw(const char *url, redisContext *mc, int mode, int k, uint64_t n, raw_result *out)
{
    memset(out, 0, sizeof *out);
    out->mode = mode;
    out->k = k;
    out->n = n;
    pid_t pids[MAXW] = {0};
    char tasks[96], res[96];
    redisContext *c = bc_connect(url);
    unsigned char *seen = calloc(n, 1);
    if (!c || !seen || start_raw(url, mc, mode, k, pids, tasks, res, sizeof tasks) != 0) {
        free(seen);
        if (c)
            redisFree(c);
        return -1;
    }
    int auth = mode == RAW_STREAM256AUTH, list = is_list(mode), bad = 0;
    bc_phase_begin(mc, &out->ph);
    for (uint64_t i0 = 0; i0 < n && !bad; i0 += BATCH) {
        uint64_t m = n - i0 < BATCH ? n - i0 : BATCH;
        for (uint64_t i = i0; i < i0 + m; i++) {
            unsigned char t[TASK_BYTES + MAC_BYTES];
            size_t len = make_task(i, auth, t);
            if (list)
                redisAppendCommand(c, "LPUSH %s %b", tasks, t, len);
            else
                redisAppendCommand(c, "XADD %s * d %b", tasks, t, len);
        }
        for (uint64_t i = 0; i < m; i++) {
            void *r = NULL;
            if (redisGetReply(c, &r) != REDIS_OK || !r || ((redisReply *)r)->type == REDIS_REPLY_ERROR)
                bad = 1;
            if (r)
                freeReplyObject(r);
        }
    }
    uint64_t got = 0;
    char last[64] = "0-0";
    double deadline = bc_now() + 120;
    while (got < n && !bad && !bc_stop && bc_now() < deadline) {
        redisReply *r;
        if (list) {
            r = redisCommand(c, "LPOP %s %d", res, BATCH);
            if (r && r->type == REDIS_REPLY_NIL) {
                freeReplyObject(r);
                r = redisCommand(c, "BLPOP %s 1", res);
                if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
                    if (check_result((const unsigned char *)r->element[1]->str, r->element[1]->len, 0, n, seen))
                        bad = 1;
                    got++;
                }
            } else if (r && r->type == REDIS_REPLY_ARRAY) {
                for (size_t i = 0; i < r->elements; i++) {
                    if (check_result((const unsigned char *)r->element[i]->str, r->element[i]->len, 0, n, seen))
                        bad = 1;
                    got++;
                }
            }
        } else {
            r = redisCommand(c, "XREAD COUNT %d BLOCK 1000 STREAMS %s %s", BATCH, res, last);
            const redisReply *list_r = stream_entries(r);
            for (size_t i = 0; list_r && i < list_r->elements; i++) {
                const char *id;
                size_t idlen, vlen;
                const unsigned char *v;
                if (entry_value(list_r->element[i], &id, &idlen, &v, &vlen) != 0 ||
                    check_result(v, vlen, auth, n, seen) != 0) {
                    bad = 1;
                    continue;
                }
                snprintf(last, sizeof last, "%.*s", (int)idlen, id);
                got++;
            }
        }
        if (!r) {
            fprintf(stderr, "overhead: raw producer: %s\n", c->errstr);
            bad = 1;
        } else {
            freeReplyObject(r);
        }
    }
    bc_phase_end(mc, &out->ph);
    stop_children(pids, k);
    out->seconds = out->ph.wall;
    out->rate = out->seconds > 0 ? (double)got / out->seconds : 0;
    out->ok = !bad && got == n;
    if (!out->ok)
        fprintf(stderr, "overhead: raw %s: %" PRIu64 " of %" PRIu64 " results, %s\n", raw_names[mode], got, n,
                bad ? "bad result" : "timed out");
    redisReply *r = redisCommand(mc, "DEL %s %s", tasks, res);
    if (r)
        freeReplyObject(r);
    redisFree(c);
    free(seen);
    return out->ok ? 0 : -1;
}

typedef struct lat_result {
    int jobs;
    double p50, p99, mean, min, max;
    double commands_per_job;
    int ok;
} lat_result;

/* latency samples pooled over the repetitions */
typedef struct samples {
    double *v;
    int n, cap;
    double calls;
    int ok, ran;
} samples;

static void samples_add(samples *s, double x)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        double *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v)
            return;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
}

static void lat_from(samples *s, lat_result *o)
{
    memset(o, 0, sizeof *o);
    double sum = 0;
    for (int i = 0; i < s->n; i++)
        sum += s->v[i];
    o->jobs = s->n;
    o->ok = s->ok && s->n > 0;
    o->mean = s->n ? sum / s->n * 1e3 : 0;
    o->p50 = bc_percentile(s->v, (size_t)s->n, 50) * 1e3; /* sorts */
    o->p99 = bc_percentile(s->v, (size_t)s->n, 99) * 1e3;
    o->min = s->n ? s->v[0] * 1e3 : 0;
    o->max = s->n ? s->v[s->n - 1] * 1e3 : 0;
    o->commands_per_job = s->n ? s->calls / s->n : 0;
}

/* One task at a time through stream-pipe consumers: the raw floor of a one-task job. */
static int raw_latency(const char *url, redisContext *mc, int k, int jobs, samples *s)
{
    pid_t pids[MAXW] = {0};
    char tasks[96], res[96], last[64] = "0-0";
    redisContext *c = bc_connect(url);
    s->ran = 1;
    if (!c || start_raw(url, mc, RAW_STREAMPIPE, k, pids, tasks, res, sizeof tasks) != 0) {
        if (c)
            redisFree(c);
        s->ok = 0;
        return -1;
    }
    bc_phase ph;
    bc_phase_begin(mc, &ph);
    int done = 0;
    for (int j = 0; j < jobs && !bc_stop; j++) {
        unsigned char t[TASK_BYTES];
        make_task((uint64_t)j, 0, t);
        double t0 = bc_now();
        redisReply *r = redisCommand(c, "XADD %s * d %b", tasks, t, (size_t)TASK_BYTES);
        if (!r)
            break;
        freeReplyObject(r);
        r = redisCommand(c, "XREAD COUNT 1 BLOCK 5000 STREAMS %s %s", res, last);
        const redisReply *l = stream_entries(r);
        const char *id;
        size_t idlen, vlen;
        const unsigned char *v;
        int good = l && l->elements == 1 && entry_value(l->element[0], &id, &idlen, &v, &vlen) == 0 &&
                   vlen == TASK_BYTES && get64(v) == (uint64_t)j;
        if (good)
            snprintf(last, sizeof last, "%.*s", (int)idlen, id);
        if (r)
            freeReplyObject(r);
        if (!good)
            break;
        samples_add(s, bc_now() - t0);
        done++;
    }
    bc_phase_end(mc, &ph);
    stop_children(pids, k);
    s->calls += (double)ph.calls;
    if (done != jobs)
        s->ok = 0;
    redisReply *r = redisCommand(mc, "DEL %s %s", tasks, res);
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return done == jobs ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* redcoll phases */

typedef struct rc_result {
    int sealed;
    uint64_t n;
    double seconds, rate, job_seconds;
    int ok;
    bc_phase ph;
} rc_result;

static int rc_throughput(rc_ctx *ctx, redisContext *mc, uint64_t n, int sealed, rc_result *o)
{
    memset(o, 0, sizeof *o);
    o->sealed = sealed;
    o->n = n;
    rc_job *job = NULL;
    double sum = 0;
    rc_status st = rc_ctx_set_int(ctx, RC_OPT_ENCRYPT, sealed);
    bc_phase_begin(mc, &o->ph);
    if (st == RC_OK) st = rc_job_create(ctx, "noop", n, &job);
    if (st == RC_OK) st = rc_job_reduce(job, &sum, 1, RC_DOUBLE, rc_op_builtin(RC_SUM));
    if (st == RC_OK) st = rc_job_run(job);
    bc_phase_end(mc, &o->ph);
    if (st == RC_OK) {
        rc_job_stats js;
        rc_job_get_stats(job, &js);
        o->job_seconds = js.seconds;
    }
    rc_job_destroy(job);
    o->seconds = o->ph.wall;
    o->rate = o->seconds > 0 ? (double)n / o->seconds : 0;
    o->ok = st == RC_OK && sum == (double)n;
    if (st != RC_OK)
        fprintf(stderr, "overhead: redcoll job: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
    else if (!o->ok)
        fprintf(stderr, "overhead: redcoll job: sum %.17g, expected %" PRIu64 "\n", sum, n);
    return o->ok ? 0 : -1;
}

static int rc_latency(rc_ctx *ctx, redisContext *mc, int jobs, int sealed, samples *s)
{
    s->ran = 1;
    if (rc_ctx_set_int(ctx, RC_OPT_ENCRYPT, sealed) != RC_OK) {
        s->ok = 0;
        return -1;
    }
    bc_phase ph;
    bc_phase_begin(mc, &ph);
    int done = 0;
    for (int j = 0; j < jobs && !bc_stop; j++) {
        rc_job *job = NULL;
        double sum = 0;
        double t0 = bc_now();
        rc_status st = rc_job_create(ctx, "noop", 1, &job);
        if (st == RC_OK) st = rc_job_reduce(job, &sum, 1, RC_DOUBLE, rc_op_builtin(RC_SUM));
        if (st == RC_OK) st = rc_job_run(job);
        rc_job_destroy(job);
        double dt = bc_now() - t0;
        if (st != RC_OK || sum != 1.0) {
            fprintf(stderr, "overhead: one-task job %d: %s: %s\n", j, rc_strerror(st), rc_ctx_errmsg(ctx));
            break;
        }
        samples_add(s, dt);
        done++;
    }
    bc_phase_end(mc, &ph);
    s->calls += (double)ph.calls;
    if (done != jobs)
        s->ok = 0;
    return done == jobs ? 0 : -1;
}

/* ------------------------------------------------------------------ */

#define MAXREP 9

typedef struct wrun {
    int w, ok, nrep, have_sealed, raw_only;
    int max_batch;                    /* the workers' RC_OPT_MAX_BATCH (0: default) */
    rc_result rc[2][MAXREP];          /* [0] authenticated, [1] sealed */
    raw_result raw[RAW_NMODES][MAXREP];
    int raw_ran[RAW_NMODES];
    lat_result lat[2], rawlat;
    double start_s;                   /* rc_local_start until every worker registered */
} wrun;

typedef struct spread {
    int best, n;
    double max, med, min;
    double rates[MAXREP];
} spread;

/* best (highest rate) of the runs, median and range */
static spread spread_of(const double *rates, const int *ok, int n)
{
    spread s;
    memset(&s, 0, sizeof s);
    s.best = -1;
    double tmp[MAXREP];
    for (int i = 0; i < n; i++) {
        s.rates[i] = rates[i];
        if (!ok[i])
            continue;
        tmp[s.n++] = rates[i];
        if (s.best < 0 || rates[i] > rates[s.best])
            s.best = i;
    }
    if (s.n) {
        qsort(tmp, (size_t)s.n, sizeof *tmp, bc_cmp_double);
        s.min = tmp[0];
        s.max = tmp[s.n - 1];
        s.med = s.n % 2 ? tmp[s.n / 2] : (tmp[s.n / 2 - 1] + tmp[s.n / 2]) / 2;
    }
    return s;
}

static spread rc_spread(const wrun *r, int s)
{
    double v[MAXREP];
    int ok[MAXREP];
    for (int i = 0; i < r->nrep; i++)
        v[i] = r->rc[s][i].rate, ok[i] = r->rc[s][i].ok;
    return spread_of(v, ok, r->nrep);
}

static spread raw_spread(const wrun *r, int m)
{
    double v[MAXREP];
    int ok[MAXREP];
    for (int i = 0; i < r->nrep; i++)
        v[i] = r->raw[m][i].rate, ok[i] = r->raw[m][i].ok;
    return spread_of(v, ok, r->nrep);
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0; }

static void print_phase_line(const char *label, uint64_t n, const spread *s, const bc_phase *p)
{
    char br[400];
    if (s->best < 0) {
        printf("  %-16s FAILED\n", label);
        return;
    }
    bc_phase_breakdown(p, (double)n, 8, br, sizeof br);
    printf("  %-16s %9.0f tasks/s (median %7.0f, %7.0f-%-7.0f)  cmds/task %5.2f  redis %5.1f us/task (%3.0f%% "
           "busy)  workers %5.1f us/task, %4.2f wake-ups/task  master %5.1f us/task\n",
           label, s->max, s->med, s->min, s->max, n ? (double)p->calls / (double)n : 0,
           n ? p->redis_cpu * 1e6 / (double)n : 0, p->wall > 0 ? 100 * p->redis_cpu / p->wall : 0,
           n ? p->kids_cpu * 1e6 / (double)n : 0, n ? p->kids_runs / (double)n : 0,
           n ? p->self_cpu * 1e6 / (double)n : 0);
    printf("  %-16s   per task: %s\n", "", br);
}

static void print_text(const wrun *r)
{
    printf("\n== %d worker(s)%s (all registered %.2f s after rc_local_start); best of %d run(s), CPU and commands "
           "from the best ==\n",
           r->w, r->max_batch == 1 ? ", one task per take (RC_OPT_MAX_BATCH 1)" : "", r->start_s, r->nrep);
    spread rs[2] = {rc_spread(r, 0), rc_spread(r, 1)};
    if (!r->raw_only) {
        printf(" redcoll, rc_job_run of %" PRIu64 " no-op tasks, reduce SUM of 8-byte outputs:\n", r->rc[0][0].n);
        for (int s = 0; s < 1 + r->have_sealed; s++)
            print_phase_line(s ? "sealed" : "authenticated", r->rc[s][0].n, &rs[s],
                             rs[s].best >= 0 ? &r->rc[s][rs[s].best].ph : &r->rc[s][0].ph);
    }
    printf(" raw hiredis, %d consumer process(es), same redis-server, redcoll workers frozen:\n", r->w);
    for (int m = 0; m < RAW_NMODES; m++) {
        if (!r->raw_ran[m])
            continue;
        spread s = raw_spread(r, m);
        int b = s.best >= 0 ? s.best : 0;
        print_phase_line(raw_names[m], r->raw[m][b].n, &s, &r->raw[m][b].ph);
    }
    printf(" one-task latency (ms)        p50      p99     mean      min      max  cmds/job   jobs\n");
    const char *ln[] = {"redcoll authenticated", "redcoll sealed"};
    for (int s = 0; s < 1 + r->have_sealed && !r->raw_only; s++)
        printf("  %-22s %8.3f %8.3f %8.3f %8.3f %8.3f %8.1f %6d%s\n", ln[s], r->lat[s].p50, r->lat[s].p99,
               r->lat[s].mean, r->lat[s].min, r->lat[s].max, r->lat[s].commands_per_job, r->lat[s].jobs,
               r->lat[s].ok ? "" : " FAILED");
    printf("  %-22s %8.3f %8.3f %8.3f %8.3f %8.3f %8.1f %6d%s\n", "raw XADD->XREAD", r->rawlat.p50, r->rawlat.p99,
           r->rawlat.mean, r->rawlat.min, r->rawlat.max, r->rawlat.commands_per_job, r->rawlat.jobs,
           r->rawlat.ok ? "" : " FAILED");
    if (r->raw_only)
        return;
    printf(" ratio redcoll authenticated / raw, tasks/s (best/best; median/median):\n  ");
    for (int m = 0; m < RAW_NMODES; m++) {
        if (!r->raw_ran[m])
            continue;
        spread s = raw_spread(r, m);
        printf(" %s %.3f (%.3f);", raw_names[m], ratio(rs[0].max, s.max), ratio(rs[0].med, s.med));
    }
    printf("\n");
    if (r->have_sealed) {
        spread a = raw_spread(r, RAW_STREAM256AUTH);
        printf(" sealed / authenticated tasks/s %.3f (%.3f); sealed / raw stream-256-auth %.3f; latency p50 sealed / "
               "authenticated %.3f\n",
               ratio(rs[1].max, rs[0].max), ratio(rs[1].med, rs[0].med), ratio(rs[1].max, a.max),
               ratio(r->lat[1].p50, r->lat[0].p50));
    }
    printf(" latency redcoll / raw: p50 %.2f, p99 %.2f\n", ratio(r->lat[0].p50, r->rawlat.p50),
           ratio(r->lat[0].p99, r->rawlat.p99));
    fflush(stdout);
}

static void json_lat(bc_json *j, const char *mode, const lat_result *l)
{
    bj_begin_obj(j, NULL);
    bj_str(j, "mode", mode);
    bj_int(j, "jobs", l->jobs);
    bj_num(j, "p50_ms", l->p50);
    bj_num(j, "p99_ms", l->p99);
    bj_num(j, "mean_ms", l->mean);
    bj_num(j, "min_ms", l->min);
    bj_num(j, "max_ms", l->max);
    bj_num(j, "commands_per_job", l->commands_per_job);
    bj_bool(j, "ok", l->ok);
    bj_end_obj(j);
}

static void json_series(bc_json *j, const spread *s, int nrep, uint64_t n, const bc_phase *best)
{
    bj_int(j, "tasks", (long long)n);
    bj_num(j, "tasks_per_s", s->max);
    bj_num(j, "tasks_per_s_median", s->med);
    bj_num(j, "tasks_per_s_min", s->min);
    bj_begin_arr(j, "tasks_per_s_runs");
    for (int i = 0; i < nrep; i++)
        bj_num(j, NULL, s->rates[i]);
    bj_end_arr(j);
    bj_bool(j, "ok", s->best >= 0 && s->n == nrep);
    if (best)
        bj_phase(j, "best_phase", best, (double)n);
}

static void json_run(bc_json *j, const wrun *r)
{
    bj_begin_obj(j, NULL);
    bj_int(j, "workers", r->w);
    bj_int(j, "max_batch", r->max_batch ? r->max_batch : 64);
    bj_num(j, "start_s", r->start_s);
    bj_int(j, "repeats", r->nrep);
    spread rs[2] = {rc_spread(r, 0), rc_spread(r, 1)};
    bj_begin_arr(j, "redcoll");
    for (int s = 0; s < 1 + r->have_sealed && !r->raw_only; s++) {
        bj_begin_obj(j, NULL);
        bj_str(j, "mode", s ? "sealed" : "authenticated");
        json_series(j, &rs[s], r->nrep, r->rc[s][0].n, rs[s].best >= 0 ? &r->rc[s][rs[s].best].ph : NULL);
        bj_end_obj(j);
    }
    bj_end_arr(j);
    bj_begin_arr(j, "raw");
    for (int m = 0; m < RAW_NMODES; m++) {
        if (!r->raw_ran[m])
            continue;
        spread s = raw_spread(r, m);
        bj_begin_obj(j, NULL);
        bj_str(j, "mode", raw_names[m]);
        bj_str(j, "shape", raw_shape[m]);
        bj_int(j, "consumers", r->w);
        json_series(j, &s, r->nrep, r->raw[m][s.best >= 0 ? s.best : 0].n, s.best >= 0 ? &r->raw[m][s.best].ph : NULL);
        bj_end_obj(j);
    }
    bj_end_arr(j);
    bj_begin_arr(j, "latency");
    if (!r->raw_only) {
        json_lat(j, "redcoll-authenticated", &r->lat[0]);
        if (r->have_sealed)
            json_lat(j, "redcoll-sealed", &r->lat[1]);
    }
    json_lat(j, "raw-xadd-xread", &r->rawlat);
    bj_end_arr(j);
    bj_begin_obj(j, "ratios");
    for (int m = 0; m < RAW_NMODES && !r->raw_only; m++) {
        if (!r->raw_ran[m])
            continue;
        spread s = raw_spread(r, m);
        char k[80];
        snprintf(k, sizeof k, "redcoll_over_%s", raw_names[m]);
        bj_num(j, k, ratio(rs[0].max, s.max));
        snprintf(k, sizeof k, "redcoll_over_%s_median", raw_names[m]);
        bj_num(j, k, ratio(rs[0].med, s.med));
    }
    if (r->have_sealed && !r->raw_only) {
        bj_num(j, "sealed_over_authenticated", ratio(rs[1].max, rs[0].max));
        bj_num(j, "sealed_over_authenticated_median", ratio(rs[1].med, rs[0].med));
        bj_num(j, "sealed_latency_p50_over_authenticated", ratio(r->lat[1].p50, r->lat[0].p50));
    }
    if (!r->raw_only) {
        bj_num(j, "latency_p50_redcoll_over_raw", ratio(r->lat[0].p50, r->rawlat.p50));
        bj_num(j, "latency_p99_redcoll_over_raw", ratio(r->lat[0].p99, r->rawlat.p99));
    }
    bj_end_obj(j);
    bj_end_obj(j);
}

static unsigned g_modes = (1u << RAW_NMODES) - 1; /* raw modes to run (--modes) */
static int g_raw_only;                               /* --raw-only: skip the redcoll phases */
static int g_single = 1;                             /* --no-single: skip the one-task-per-take pools */

static int run_pool(int w, uint64_t n, uint64_t rawn, int jobs, int sealed, int nrep, int max_batch, unsigned modes,
                    bc_machine *m, int *have_machine, wrun *out)
{
    memset(out, 0, sizeof *out);
    out->w = w;
    out->max_batch = max_batch;
    out->have_sealed = sealed;
    out->raw_only = g_raw_only;
    out->nrep = nrep;
    char self[4096];
    bc_self_exe(self, sizeof self);
    char mb[16];
    snprintf(mb, sizeof mb, "%d", max_batch);
    const char *argv[] = {self, "--worker", max_batch ? "--max-batch" : NULL, mb, NULL};
    rc_ctx *ctx = rc_ctx_create();
    rc_local *loc = NULL;
    redisContext *mc = NULL;
    samples lat[2] = {{.ok = 1}, {.ok = 1}}, rawlat = {.ok = 1};
    int ok = 0, per_rep = (jobs + nrep - 1) / nrep;
    if (!ctx)
        return -1;
    bc_ctx = ctx;
    double t0 = bc_now();
    rc_status st = rc_local_start(ctx, argv, w, &loc);
    if (st != RC_OK) {
        fprintf(stderr, "overhead: rc_local_start: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
        goto out;
    }
    if (!(mc = bc_connect(rc_local_url(loc))))
        goto out;
    if (!*have_machine) {
        bc_machine_get(m, mc);
        *have_machine = 1;
    }
    if (bc_wait_workers(mc, QUEUE, w, 30) < w) {
        fprintf(stderr, "overhead: only some of %d workers registered within 30 s\n", w);
        goto out;
    }
    out->start_s = bc_now() - t0;
    fprintf(stderr, "overhead: %d worker(s) ready in %.2f s\n", w, out->start_s);
    /* warm-up: workers load their scripts, the master its connection */
    rc_result warm;
    if (rc_throughput(ctx, mc, (uint64_t)(4 * w), 0, &warm) != 0)
        goto out;
    ok = 1;
    /* each round runs every phase once, redcoll and raw back to back, so a
       burst of load from elsewhere hits one round, not one side */
    for (int rep = 0; rep < nrep && !bc_stop; rep++) {
        for (int s = 0; s < 1 + sealed && !bc_stop && !g_raw_only; s++) {
            fprintf(stderr, "overhead: %d worker(s), round %d/%d: redcoll %s, %" PRIu64 " tasks; %d one-task jobs\n",
                    w, rep + 1, nrep, s ? "sealed" : "authenticated", n, per_rep);
            ok &= rc_throughput(ctx, mc, n, s, &out->rc[s][rep]) == 0;
            ok &= rc_latency(ctx, mc, per_rep, s, &lat[s]) == 0;
        }
        /* the raw baseline: redcoll's idle workers would poll and beat on
           the same server; freeze them so the raw figures are the raw path */
        bc_signal_self_children(SIGSTOP);
        for (int mode = 0; mode < RAW_NMODES && !bc_stop; mode++) {
            if (!(modes & (1u << mode)))
                continue;
            out->raw_ran[mode] = 1;
            /* slow modes would dominate the run: the first round measures a
               few thousand tasks, later ones aim at RAW_TARGET_S seconds */
            uint64_t nr = rawn < RAW_FIRST ? rawn : RAW_FIRST;
            for (int k = 0; k < rep; k++)
                if (out->raw[mode][k].ok) {
                    double want = out->raw[mode][k].rate * RAW_TARGET_S;
                    uint64_t t = want < RAW_MIN ? RAW_MIN : (uint64_t)want;
                    if (t > nr || k == 0)
                        nr = t;
                }
            if (rep && nr > rawn)
                nr = rawn;
            fprintf(stderr, "overhead: %d consumer(s), round %d/%d: raw %s, %" PRIu64 " tasks\n", w, rep + 1, nrep,
                    raw_names[mode], nr);
            ok &= run_raw(rc_local_url(loc), mc, mode, w, nr, &out->raw[mode][rep]) == 0;
        }
        if (!bc_stop)
            ok &= raw_latency(rc_local_url(loc), mc, w, per_rep, &rawlat) == 0;
        bc_signal_self_children(SIGCONT);
    }
    lat_from(&lat[0], &out->lat[0]);
    lat_from(&lat[1], &out->lat[1]);
    lat_from(&rawlat, &out->rawlat);
out:
    free(lat[0].v);
    free(lat[1].v);
    free(rawlat.v);
    out->ok = ok && !bc_stop;
    if (mc)
        redisFree(mc);
    rc_local_stop(loc);
    bc_ctx = NULL;
    rc_ctx_destroy(ctx);
    return out->ok ? 0 : -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: overhead [--quick] [--json] [--encrypt] [--workers 1,2,8] [--tasks N] [--raw-tasks N]\n"
               "                [--latency-jobs J] [--repeat R] [--modes LIST] [--raw-only] [--no-single]\n"
               "No-op tasks through redcoll's embedded default next to a raw hiredis queue on the same\n"
               "private Redis: tasks/s, one-task job latency, Redis commands and CPU per task, ratios.\n"
               "  --quick          small jobs (about 10 s in all)\n"
               "  --encrypt        also run every redcoll phase sealed (RC_OPT_ENCRYPT)\n"
               "  --workers LIST   pool sizes (default 1,2,8; at most %d)\n"
               "  --tasks N        tasks of each redcoll throughput job (default 10000)\n"
               "  --raw-tasks N    most tasks of a raw phase (default 100000): the first round runs\n"
               "                   3000, later rounds about 0.6 s worth (at least 2000)\n"
               "  --latency-jobs J one-task jobs timed per pool, over all rounds (default 300)\n"
               "  --repeat R       rounds of every phase, redcoll and raw back to back; the best\n"
               "                   round is reported with the median and range (default 3; --quick 1)\n"
               "  --modes LIST     raw modes to run (default all: list-1,list-pipe,stream-1,stream-pipe,\n"
               "                   stream-256,stream-256-auth)\n"
               "  --raw-only       skip the redcoll phases (raw baseline only)\n"
               "  --no-single      skip the second pass, where the same pools take one task per round\n"
               "                   trip (RC_OPT_MAX_BATCH 1) next to the raw one-at-a-time modes\n"
               "  --json           one JSON object on stdout (progress on stderr)\n",
            MAXW);
}

int main(int argc, char **argv)
{
    if ((argc == 2 || (argc == 4 && strcmp(argv[2], "--max-batch") == 0)) && strcmp(argv[1], "--worker") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = bc_on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        return worker_main(argc == 4 ? atol(argv[3]) : 0);
    }
    int json = 0, sealed = 0, quick = 0, nw = 0, ws[MAXW];
    uint64_t n = 0, rawn = 0;
    int jobs = 0, nrep = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--encrypt"))
            sealed = 1;
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--raw-only"))
            g_raw_only = 1;
        else if (!strcmp(argv[i], "--no-single"))
            g_single = 0;
        else if (!strcmp(argv[i], "--modes") && i + 1 < argc) {
            g_modes = 0;
            for (char *t = strtok(argv[++i], ","); t; t = strtok(NULL, ",")) {
                int found = 0;
                for (int m = 0; m < RAW_NMODES; m++)
                    if (!strcmp(t, raw_names[m]))
                        g_modes |= 1u << m, found = 1;
                if (!found) {
                    fprintf(stderr, "overhead: unknown raw mode '%s'\n", t);
                    return 2;
                }
            }
        }
        else if (!strcmp(argv[i], "--tasks") && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--raw-tasks") && i + 1 < argc)
            rawn = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--latency-jobs") && i + 1 < argc)
            jobs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
            nrep = atoi(argv[++i]);
            if (nrep < 1 || nrep > MAXREP) {
                fprintf(stderr, "overhead: --repeat takes 1..%d\n", MAXREP);
                return 2;
            }
        }
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            char *s = argv[++i];
            nw = 0;
            while (*s && nw < MAXW) {
                ws[nw] = (int)strtol(s, &s, 10);
                if (ws[nw] < 1 || ws[nw] > MAXW) {
                    fprintf(stderr, "overhead: --workers takes 1..%d, comma-separated\n", MAXW);
                    return 2;
                }
                nw++;
                if (*s == ',')
                    s++;
                else if (*s) {
                    usage(stderr);
                    return 2;
                }
            }
        } else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!nw) {
        ws[0] = 1, ws[1] = 2, ws[2] = 8;
        nw = 3;
    }
    if (!n)
        n = quick ? 3000 : 10000;
    if (!rawn)
        rawn = 100000;
    if (!jobs)
        jobs = quick ? 100 : 300;
    if (!nrep)
        nrep = quick ? 1 : 3;
    if (n > 100000000 || rawn > 100000000 || jobs < 1 || jobs > 1000000) {
        fprintf(stderr, "overhead: --tasks/--raw-tasks at most 1e8, --latency-jobs 1..1e6\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    randombytes_buf(g_key, sizeof g_key);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = bc_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    bc_machine m;
    memset(&m, 0, sizeof m);
    int have_machine = 0, ok = 1;
    wrun *runs = calloc((size_t)nw * 2, sizeof *runs);
    if (!runs)
        return 1;
    double t_all = bc_now();
    double load0 = bc_loadavg1();
    /* each pool as it comes (tasks taken in batches), then the same pool
       taking one task per round trip next to the raw one-at-a-time modes */
    unsigned single = g_modes & ((1u << RAW_LIST1) | (1u << RAW_LISTPIPE) | (1u << RAW_STREAM1) |
                                 (1u << RAW_STREAMPIPE));
    int nruns = nw * (g_single && single && !g_raw_only ? 2 : 1);
    for (int i = 0; i < nruns && !bc_stop; i++) {
        int one = i >= nw;
        ok &= run_pool(ws[i % nw], one ? n / 4 : n, rawn, one ? jobs / 3 : jobs, one ? 0 : sealed, nrep, one,
                       one ? single : g_modes, &m, &have_machine, &runs[i]) == 0;
        if (!json && have_machine && i == 0)
            printf("overhead: redcoll %s; machine %s, %s, %ld cores, %s, Redis %s, load %.2f at start\n",
                   REDCOLL_VERSION_STRING, m.host, m.cpu, m.cores, m.kernel, m.redis_version, load0);
        if (!json)
            print_text(&runs[i]);
    }
    nw = nruns;
    m.load1 = load0;
    double total = bc_now() - t_all;
    if (json) {
        bc_json j = {0};
        bj_begin_obj(&j, NULL);
        bj_str(&j, "benchmark", "overhead");
        bj_str(&j, "redcoll_version", REDCOLL_VERSION_STRING);
        bj_machine(&j, &m);
        bj_begin_obj(&j, "config");
        bj_int(&j, "tasks", (long long)n);
        bj_int(&j, "raw_tasks", (long long)rawn);
        bj_int(&j, "latency_jobs", jobs);
        bj_int(&j, "repeats", nrep);
        bj_int(&j, "task_bytes", TASK_BYTES);
        bj_int(&j, "result_bytes", 8);
        bj_bool(&j, "encrypt", sealed);
        bj_bool(&j, "quick", quick);
        bj_end_obj(&j);
        bj_begin_arr(&j, "runs");
        for (int i = 0; i < nw; i++)
            json_run(&j, &runs[i]);
        bj_end_arr(&j);
        bj_num(&j, "load1_at_end", bc_loadavg1());
        bj_num(&j, "total_seconds", total);
        bj_bool(&j, "ok", ok && !bc_stop);
        bj_end_obj(&j);
        printf("%s\n", j.buf ? j.buf : "{}");
        bj_free(&j);
    } else {
        printf("\ntotal %.1f s, load %.2f at end%s\n", total, bc_loadavg1(), ok ? "" : "; SOME PHASES FAILED");
    }
    free(runs);
    return bc_stop ? 130 : ok ? 0 : 1;
}
