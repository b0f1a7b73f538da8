/* cli_inspect.c - `redcoll workers|jobs|tasks|stats|watch|cancel`: what a queue is doing, read from Redis.
 *
 * Why: a pool of anonymous workers fed through Redis is opaque without a
 * view of it - which workers are alive and what they hold, which jobs are
 * queued or stuck, which task failed and why, whether anything is being
 * rejected as forged.  Everything needed is already in the queue's keys
 * (lib/queue.c): the worker registry, the job descriptors, the task stream
 * and its consumer group's pending-entries list (PEL), each job's result
 * stream and `why` hash.  These commands read them without changing them
 * (except `workers`, which prunes registry entries whose info key expired,
 * and `cancel`), so they are safe to run against a production queue.
 *
 * Cost: payloads are never fetched.  A small read-only Lua script walks a
 * stream in batches of 1000 and returns each entry's id and only the first
 * bytes of its envelope (the 56-byte header), so a job with large results
 * costs the same to inspect as one with small ones, and Redis is never
 * blocked for long.  Job descriptors are fetched whole only to verify them
 * when a key is given; without one, nothing read is authenticated and the
 * output says so ("verified": null).
 *
 * What the numbers mean: "done" counts distinct tasks with a successful
 * result in the result stream (a late duplicate delivery counts once, as the
 * master counts it); "running" are stream entries in the PEL (handed to a
 * worker, not yet delivered: its batch, and the next one it took ahead
 * while that runs - RC_OPT_PREFETCH); "queued" are entries not yet handed out;
 * "failed" counts tasks with a recorded failed attempt (the `why` hash);
 * "errors" counts final error results.  A job's results are deleted when its
 * master collects it, so finished jobs disappear from these views. */
#include "cli_common.h"

#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SCAN_BATCH 1000
#define PEEK_RESULT 56                       /* header only */
#define PEEK_TASK (56 + RC_KERNEL_MAX)       /* header and kernel name */
#define TASKS_LIST_MAX ((uint64_t)1 << 22)   /* per-task listing limit */
/* A worker that hands a task back (kernel error, second stop request) marks
   it idle for 1e9 ms so any worker takes it over at once: a pending entry
   this idle is waiting for a retry, not running. */
#define HANDED_BACK_MS 900000000LL

/* KEYS[1] a stream; ARGV start (inclusive id, "(id" exclusive, or "-"),
   count, prefix bytes.  Per envelope field "e" of each entry (a result
   entry may hold several): the entry's id, the first `prefix` bytes of the
   envelope, its length; an entry with none gives id, "", -1.  The last
   element is the number of entries read. */
static const char headers_lua[] =
    "local r = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))\n"
    "local out, p = {}, tonumber(ARGV[3])\n"
    "for _, e in ipairs(r) do\n"
    "  local f, any = e[2], false\n"
    "  for k = 1, #f - 1, 2 do\n"
    "    if f[k] == 'e' then\n"
    "      any = true\n"
    "      out[#out + 1] = e[1]; out[#out + 1] = string.sub(f[k + 1], 1, p); out[#out + 1] = #f[k + 1]\n"
    "    end\n"
    "  end\n"
    "  if not any then out[#out + 1] = e[1]; out[#out + 1] = ''; out[#out + 1] = -1 end\n"
    "end\n"
    "out[#out + 1] = #r\n"
    "return out\n";

/* ------------------------------------------------------------------ */
/* Small containers                                                    */

typedef struct sid { unsigned long long ms, seq; } sid;

static int parse_sid(const char *s, size_t n, sid *out)
{
    uint64_t ms, seq;
    if (rc_stream_id_parse(s, n, &ms, &seq) != 0)
        return -1;
    out->ms = ms;
    out->seq = seq;
    return 0;
}

static int sid_cmp(const sid *a, const sid *b)
{
    if (a->ms != b->ms)
        return a->ms < b->ms ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Interned strings (consumer names: a handful). */
typedef struct names { char **v; size_t n, cap; } names;

static int intern(names *t, const char *s, size_t len)
{
    for (size_t i = 0; i < t->n; i++)
        if (strlen(t->v[i]) == len && memcmp(t->v[i], s, len) == 0)
            return (int)i;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return -1;
        t->v = v;
        t->cap = cap;
    }
    char *d = malloc(len + 1);
    if (!d)
        return -1;
    memcpy(d, s, len);
    d[len] = '\0';
    cli_clean(d);
    t->v[t->n] = d;
    return (int)t->n++;
}

static void names_free(names *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i]);
    free(t->v);
    memset(t, 0, sizeof *t);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The pid in a consumer name "host:pid:workerid", or -1. */
static long consumer_pid(const char *c)
{
    const char *last = strrchr(c, ':');
    if (!last || last == c)
        return -1;
    const char *p = last - 1;
    while (p > c && *p != ':')
        p--;
    if (*p != ':')
        return -1;
    char *end;
    long v = strtol(p + 1, &end, 10);
    return end == last && v > 0 ? v : -1;
}

/* The worker id (hex) in a consumer name, or 0. */
static uint64_t consumer_wid(const char *c)
{
    const char *last = strrchr(c, ':');
    uint64_t id;
    return last && cli_parse_jobid(last + 1, &id) == 0 ? id : 0;
}

/* ------------------------------------------------------------------ */
/* Scans                                                                */

typedef int (*hdr_fn)(void *u, const char *id, const sid *s, const rc_env *e);

/* Walk stream `key` from `from` ("-" for the start), calling fn with each
 * entry's header (NULL when it is not an envelope).  0 ok, -1 Redis failed. */
static int scan_headers(cli_conn *c, const char *key, const char *from, size_t prefix, hdr_fn fn, void *u)
{
    char start[64], cnt[16], pre[16];
    snprintf(start, sizeof start, "%s", from ? from : "-");
    snprintf(cnt, sizeof cnt, "%d", SCAN_BATCH);
    snprintf(pre, sizeof pre, "%zu", prefix);
    for (;;) {
        redisReply *r = NULL;
        const char *av[] = {"EVAL", headers_lua, "1", key, start, cnt, pre};
        if (cli_cmd(c, &r, 7, av, NULL) != 0) {
            if (r) freeReplyObject(r);
            return -1;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements % 3 != 1 ||
            r->element[r->elements - 1]->type != REDIS_REPLY_INTEGER) {
            freeReplyObject(r);
            snprintf(c->conn->err, sizeof c->conn->err, "unexpected reply reading stream %s", key);
            return -1;
        }
        size_t n = r->elements / 3;
        long long entries = r->element[r->elements - 1]->integer;
        int stop = 0;
        for (size_t i = 0; i < n && !stop; i++) {
            const redisReply *id = r->element[3 * i], *h = r->element[3 * i + 1], *len = r->element[3 * i + 2];
            sid s;
            if (id->type != REDIS_REPLY_STRING || parse_sid(id->str, id->len, &s) != 0)
                continue;
            rc_env e;
            int ok = h->type == REDIS_REPLY_STRING && len->type == REDIS_REPLY_INTEGER &&
                     cli_peek_header((const unsigned char *)h->str, h->len, len->integer, &e) == 0;
            stop = fn(u, id->str, &s, ok ? &e : NULL);
            snprintf(start, sizeof start, "(%s", id->str);
        }
        freeReplyObject(r);
        if (stop || entries < SCAN_BATCH)
            return 0;
    }
}

typedef struct pel { sid id; int who; long long idle, count; } pel;

static int is_missing(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && (strstr(r->str, "NOGROUP") || strstr(r->str, "no such key"));
}

/* The group's whole pending-entries list, in id order. */
static int load_pel(cli_conn *c, const char *stream, pel **out, size_t *nout, names *who)
{
    char start[64] = "-";
    size_t n = 0, cap = 0;
    pel *v = NULL;
    for (;;) {
        redisReply *r = NULL;
        const char *av[] = {"XPENDING", stream, RC_GROUP, start, "+", "1000"};
        if (cli_cmd(c, &r, 6, av, NULL) != 0) {
            int missing = is_missing(r);
            if (r) freeReplyObject(r);
            if (missing)
                break; /* no stream or group yet: nothing pending */
            free(v);
            return -1;
        }
        size_t got = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        for (size_t i = 0; i < got; i++) {
            const redisReply *e = r->element[i];
            sid s;
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 4 || e->element[0]->type != REDIS_REPLY_STRING ||
                e->element[1]->type != REDIS_REPLY_STRING || parse_sid(e->element[0]->str, e->element[0]->len, &s))
                continue;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                pel *p = realloc(v, nc * sizeof *p);
                if (!p) {
                    freeReplyObject(r);
                    free(v);
                    snprintf(c->conn->err, sizeof c->conn->err, "out of memory");
                    return -1;
                }
                v = p;
                cap = nc;
            }
            v[n].id = s;
            v[n].who = intern(who, e->element[1]->str, e->element[1]->len);
            v[n].idle = e->element[2]->type == REDIS_REPLY_INTEGER ? e->element[2]->integer : -1;
            v[n].count = e->element[3]->type == REDIS_REPLY_INTEGER ? e->element[3]->integer : 0;
            n++;
            snprintf(start, sizeof start, "(%s", e->element[0]->str);
        }
        freeReplyObject(r);
        if (got < 1000)
            break;
    }
    *out = v;
    *nout = n;
    return 0;
}

/* In an XINFO GROUPS or CONSUMERS reply (an array of field/value lists),
   the value of `field` in the entry whose "name" is `name`, or NULL. */
static const redisReply *xinfo_field(const redisReply *xi, const char *name, const char *field)
{
    if (!xi || xi->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i < xi->elements; i++) {
        const redisReply *m = xi->element[i];
        if (m->type != REDIS_REPLY_ARRAY)
            continue;
        int match = 0;
        const redisReply *val = NULL;
        for (size_t k = 0; k + 1 < m->elements; k += 2) {
            const redisReply *f = m->element[k], *v = m->element[k + 1];
            if (f->type != REDIS_REPLY_STRING)
                continue;
            if (!strcmp(f->str, "name") && v->type == REDIS_REPLY_STRING && !strcmp(v->str, name))
                match = 1;
            else if (!strcmp(f->str, field))
                val = v;
        }
        if (match)
            return val;
    }
    return NULL;
}

/* The group's last-delivered id into *out (0-0 if none or no group):
   every entry at or below it was handed out, so one no longer pending is
   done - acked, and left in the stream for a later trim (lib/queue.c). */
static int load_delivered(cli_conn *c, const char *stream, sid *out)
{
    *out = (sid){0, 0};
    redisReply *r = NULL;
    if (cli_cmd(c, &r, 3, (const char *[]){"XINFO", "GROUPS", stream}, NULL) != 0) {
        int missing = is_missing(r);
        if (r) freeReplyObject(r);
        return missing ? 0 : -1;
    }
    const redisReply *last = xinfo_field(r, RC_GROUP, "last-delivered-id");
    if (!last || last->type != REDIS_REPLY_STRING || parse_sid(last->str, last->len, out) != 0)
        *out = (sid){0, 0};
    freeReplyObject(r);
    return 0;
}

static const pel *pel_find(const pel *v, size_t n, const sid *s)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int k = sid_cmp(&v[mid].id, s);
        if (k == 0)
            return &v[mid];
        if (k < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* A snapshot of a queue                                                */

typedef struct wkr {
    char consumer[200], host[80], queues[200], task[64];
    long pid;
    int threads, busy;
    unsigned long long done;
    long long started, beat, idle_ms;
    uint64_t wid;
} wkr;

typedef struct jobrow {
    uint64_t id;
    char hex[17];
    int has_desc, has_res, has_why, has_end, hdr_ok;
    char kernel[RC_KERNEL_MAX + 1];
    uint64_t ntasks, seed;
    int sealed;
    int verified;                 /* -1 no key, 0 failed, 1 ok */
    char verr[160];
    char ended[65];               /* the end marker's word, "" if none */
    int end_verified;             /* -1 no key, 0 no, 1 yes */
    long long ttl_ms, first_ms, last_ms;
    uint64_t results, done, dups, errors, rejects, malformed, redelivered, recent;
    uint64_t running, queued, redeliveries, failed, lost;
    const char *state;
    uint64_t *ranks;              /* scratch: ranks with a successful result */
    size_t nranks, capranks;
} jobrow;

typedef struct wlast { uint64_t wid; long long ms; } wlast;

typedef struct snap {
    long long now, wall, window_ms;
    wkr *w;
    size_t nw, pruned;
    jobrow *j;
    size_t nj;
    wlast *wl;                    /* last result time per worker id */
    size_t nwl, capwl;
    uint64_t xlen, queued, running, redeliveries, orphans, unreadable, lost, retrying;
    long long oldest_queued;
    uint64_t results, done, dups, errors, rejects, malformed, redelivered, recent, failed, unverified;
    char err[400];                /* why the snapshot is incomplete */
} snap;

static void snap_free(snap *s)
{
    for (size_t i = 0; i < s->nj; i++)
        free(s->j[i].ranks);
    free(s->j);
    free(s->w);
    free(s->wl);
    memset(s, 0, sizeof *s);
}

static void parse_info(wkr *w, const char *s, size_t len)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf - 1 ? len : sizeof buf - 1), s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *v = eq + 1;
        if (!strcmp(tok, "host")) snprintf(w->host, sizeof w->host, "%s", v);
        else if (!strcmp(tok, "pid")) w->pid = atol(v);
        else if (!strcmp(tok, "queues")) snprintf(w->queues, sizeof w->queues, "%s", v);
        else if (!strcmp(tok, "threads")) w->threads = atoi(v);
        else if (!strcmp(tok, "task")) snprintf(w->task, sizeof w->task, "%s", v);
        else if (!strcmp(tok, "done")) w->done = strtoull(v, NULL, 10);
        else if (!strcmp(tok, "started")) w->started = atoll(v);
        else if (!strcmp(tok, "beat")) w->beat = atoll(v);
    }
    cli_clean(w->host);
    cli_clean(w->queues);
    cli_clean(w->task);
    w->busy = w->task[0] && strcmp(w->task, "-") != 0;
}

/* Redis >= 7.2 says how long each consumer has not read or claimed anything. */
static long long consumer_inactive(const redisReply *xi, const char *name)
{
    const redisReply *v = xinfo_field(xi, name, "inactive");
    return v && v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
}

/* The registry: live workers; entries whose info key expired are pruned. */
static int load_workers(cli_conn *c, snap *s)
{
    char reg[300], stream[300];
    snprintf(reg, sizeof reg, "rc:{%s}:workers", c->queue);
    snprintf(stream, sizeof stream, "rc:{%s}:tasks", c->queue);
    redisReply *z = NULL;
    if (cli_cmd(c, &z, 4, (const char *[]){"ZRANGE", reg, "0", "-1"}, NULL) != 0) {
        if (z) freeReplyObject(z);
        return -1;
    }
    size_t n = z->type == REDIS_REPLY_ARRAY ? z->elements : 0;
    s->w = calloc(n ? n : 1, sizeof *s->w);
    if (!s->w) {
        freeReplyObject(z);
        snprintf(c->conn->err, sizeof c->conn->err, "out of memory");
        return -1;
    }
    char key[500];
    for (size_t i = 0; i < n; i++) {
        const redisReply *m = z->element[i];
        snprintf(key, sizeof key, "rc:{%s}:worker:%.*s", c->queue, (int)m->len, m->str);
        if (rc_conn_append(c->conn, 2, (const char *[]){"GET", key}, NULL) != RC_OK) {
            freeReplyObject(z);
            return -1;
        }
    }
    int failed = 0;
    size_t expired = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        rc_status st = rc_conn_get(c->conn, &r);
        const redisReply *m = z->element[i];
        if (st != RC_OK) {
            failed = 1;
            if (r) freeReplyObject(r);
            if (!c->conn->c)
                break;
            continue;
        }
        if (r->type == REDIS_REPLY_STRING && m->type == REDIS_REPLY_STRING) {
            wkr *w = &s->w[s->nw++];
            snprintf(w->consumer, sizeof w->consumer, "%.*s", (int)m->len, m->str);
            cli_clean(w->consumer);
            w->idle_ms = -1;
            parse_info(w, r->str, r->len);
            w->wid = consumer_wid(w->consumer);
        } else if (m->type == REDIS_REPLY_STRING) {
            expired++;
        }
        freeReplyObject(r);
    }
    if (failed) {
        freeReplyObject(z);
        return -1;
    }
    if (expired) { /* second pass: remove entries whose info expired */
        for (size_t i = 0; i < n; i++) {
            const redisReply *m = z->element[i];
            int live = 0;
            for (size_t k = 0; k < s->nw && !live; k++)
                live = strlen(s->w[k].consumer) == m->len && memcmp(s->w[k].consumer, m->str, m->len) == 0;
            if (live)
                continue;
            /* ZREM only if its info is still missing (it may just have come back) */
            snprintf(key, sizeof key, "rc:{%s}:worker:%.*s", c->queue, (int)m->len, m->str);
            redisReply *e = NULL;
            if (cli_cmd(c, &e, 2, (const char *[]){"EXISTS", key}, NULL) == 0 && e->type == REDIS_REPLY_INTEGER &&
                e->integer == 0) {
                redisReply *d = NULL;
                const char *av[] = {"ZREM", reg, m->str};
                size_t al[] = {4, strlen(reg), m->len};
                if (cli_cmd(c, &d, 3, av, al) == 0 && d->type == REDIS_REPLY_INTEGER && d->integer == 1)
                    s->pruned++;
                if (d) freeReplyObject(d);
            }
            if (e) freeReplyObject(e);
        }
    }
    freeReplyObject(z);
    redisReply *xi = NULL;
    if (s->nw && cli_cmd(c, &xi, 4, (const char *[]){"XINFO", "CONSUMERS", stream, RC_GROUP}, NULL) != 0 &&
        xi) {
        freeReplyObject(xi);
        xi = NULL;
    }
    for (size_t i = 0; i < s->nw; i++)
        s->w[i].idle_ms = s->w[i].busy ? 0 : consumer_inactive(xi, s->w[i].consumer);
    if (xi) freeReplyObject(xi);
    return 0;
}

static jobrow *job_find(snap *s, uint64_t id)
{
    size_t lo = 0, hi = s->nj;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->j[mid].id == id)
            return &s->j[mid];
        if (s->j[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int cmp_job(const void *a, const void *b)
{
    uint64_t x = ((const jobrow *)a)->id, y = ((const jobrow *)b)->id;
    return x < y ? -1 : x > y;
}

/* All rc:{Q}:job:<id>[suffix] keys, one row per job id. */
static int list_jobs(cli_conn *c, snap *s)
{
    char pattern[300], prefix[300], cursor[64] = "0";
    snprintf(prefix, sizeof prefix, "rc:{%s}:job:", c->queue);
    snprintf(pattern, sizeof pattern, "%s*", prefix);
    size_t plen = strlen(prefix), cap = 0;
    do {
        redisReply *r = NULL;
        if (cli_cmd(c, &r, 6, (const char *[]){"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"}, NULL) != 0 ||
            r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[0]->len >= sizeof cursor || r->element[1]->type != REDIS_REPLY_ARRAY) {
            if (r) freeReplyObject(r);
            return -1;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
        const redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const redisReply *k = keys->element[i];
            uint64_t id;
            char hex[17];
            if (k->type != REDIS_REPLY_STRING || k->len < plen + 16 || memcmp(k->str, prefix, plen) != 0)
                continue;
            memcpy(hex, k->str + plen, 16);
            hex[16] = '\0';
            if (cli_parse_jobid(hex, &id) != 0)
                continue;
            const char *suffix = k->str + plen + 16;
            int which = !*suffix ? 0 : !strcmp(suffix, ":res") ? 1 : !strcmp(suffix, ":why") ? 2
                      : !strcmp(suffix, ":end") ? 3 : -1;
            if (which < 0)
                continue;
            jobrow *j = NULL;
            for (size_t m = 0; m < s->nj && !j; m++) /* keys of one job come close together: few rows */
                if (s->j[m].id == id)
                    j = &s->j[m];
            if (!j) {
                if (s->nj == cap) {
                    size_t nc = cap ? cap * 2 : 16;
                    jobrow *p = realloc(s->j, nc * sizeof *p);
                    if (!p) {
                        freeReplyObject(r);
                        snprintf(c->conn->err, sizeof c->conn->err, "out of memory");
                        return -1;
                    }
                    s->j = p;
                    cap = nc;
                }
                j = &s->j[s->nj++];
                memset(j, 0, sizeof *j);
                j->id = id;
                rc_hex64(id, j->hex);
                j->verified = -1;
                j->end_verified = -1;
                j->ttl_ms = -1;
                j->first_ms = j->last_ms = -1;
            }
            if (which == 0) j->has_desc = 1;
            else if (which == 1) j->has_res = 1;
            else if (which == 2) j->has_why = 1;
            else j->has_end = 1;
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    if (s->nj)
        qsort(s->j, s->nj, sizeof *s->j, cmp_job);
    return 0;
}

/* The descriptor: kernel and task count from its header; with a key, the
 * whole envelope verified. */
static int read_desc(cli_conn *c, jobrow *j)
{
    char key[300];
    rc_job_keys(c->queue, j->id, key, sizeof key, NULL, 0);
    redisReply *r = NULL, *len = NULL;
    rc_env e;
    if (c->have_key) {
        if (cli_cmd(c, &r, 2, (const char *[]){"GET", key}, NULL) != 0) {
            if (r) freeReplyObject(r);
            return -1;
        }
        if (r->type != REDIS_REPLY_STRING) { /* gone meanwhile */
            j->has_desc = 0;
            freeReplyObject(r);
            return 0;
        }
        j->hdr_ok = cli_peek_header((unsigned char *)r->str, r->len, (long long)r->len, &e) == 0;
    } else {
        char hi[16];
        snprintf(hi, sizeof hi, "%u", PEEK_TASK - 1);
        if (cli_cmd(c, &r, 4, (const char *[]){"GETRANGE", key, "0", hi}, NULL) != 0 ||
            cli_cmd(c, &len, 2, (const char *[]){"STRLEN", key}, NULL) != 0) {
            if (r) freeReplyObject(r);
            if (len) freeReplyObject(len);
            return -1;
        }
        if (len->type != REDIS_REPLY_INTEGER || len->integer == 0) {
            j->has_desc = 0;
            freeReplyObject(r);
            freeReplyObject(len);
            return 0;
        }
        j->hdr_ok = r->type == REDIS_REPLY_STRING &&
                    cli_peek_header((unsigned char *)r->str, r->len, len->integer, &e) == 0;
        freeReplyObject(len);
    }
    if (j->hdr_ok && (e.kind != RC_KIND_JOB || e.job != j->id))
        j->hdr_ok = 0;
    if (j->hdr_ok) {
        if (e.kernel)
            snprintf(j->kernel, sizeof j->kernel, "%.*s", (int)e.kernel_len, e.kernel);
        cli_clean(j->kernel);
        j->ntasks = e.ntasks;
        j->seed = e.aux;
        j->sealed = e.sealed;
    } else {
        snprintf(j->kernel, sizeof j->kernel, "?");
    }
    if (c->have_key) {
        char why[200];
        rc_env d;
        rc_status st = rc_wire_decode((unsigned char *)r->str, r->len, &c->ctx->keys, c->queue, &d, why, sizeof why);
        if (st == RC_OK && (d.kind != RC_KIND_JOB || d.job != j->id)) {
            st = RC_EAUTH;
            snprintf(why, sizeof why, "authentic, but not the descriptor of this job (replayed?)");
        }
        j->verified = st == RC_OK;
        if (st != RC_OK) {
            snprintf(j->verr, sizeof j->verr, "%s", why);
            cli_clean(j->verr);
        }
    }
    freeReplyObject(r);
    return 0;
}

/* The end marker's word ("done", "cancelled", "failed"). */
static int read_end(cli_conn *c, jobrow *j)
{
    char meta[300], key[320];
    rc_job_keys(c->queue, j->id, meta, sizeof meta, NULL, 0);
    snprintf(key, sizeof key, "%s:end", meta);
    redisReply *r = NULL;
    if (cli_cmd(c, &r, 2, (const char *[]){"GET", key}, NULL) != 0) {
        if (r) freeReplyObject(r);
        return -1;
    }
    rc_env e;
    if (r->type == REDIS_REPLY_STRING &&
        cli_peek_header((unsigned char *)r->str, r->len, (long long)r->len, &e) == 0 && e.kind == RC_KIND_CONTROL &&
        e.payload_len <= 64) {
        size_t off = RC_HDR_BYTES + e.kernel_len + (8 - e.kernel_len % 8) % 8;
        snprintf(j->ended, sizeof j->ended, "%.*s", (int)e.payload_len, r->str + off);
        cli_clean(j->ended);
        if (c->have_key) {
            char why[120];
            rc_env d;
            j->end_verified = rc_wire_decode((unsigned char *)r->str, r->len, &c->ctx->keys, c->queue, &d, why,
                                             sizeof why) == RC_OK && d.kind == RC_KIND_CONTROL && d.job == j->id;
        }
    } else if (r->type == REDIS_REPLY_STRING) {
        snprintf(j->ended, sizeof j->ended, "?");
        j->end_verified = c->have_key ? 0 : -1;
    }
    freeReplyObject(r);
    return 0;
}

typedef struct res_ctx { snap *s; jobrow *j; } res_ctx;

static void note_worker(snap *s, uint64_t wid, long long ms)
{
    for (size_t i = 0; i < s->nwl; i++)
        if (s->wl[i].wid == wid) {
            if (ms > s->wl[i].ms)
                s->wl[i].ms = ms;
            return;
        }
    if (s->nwl == s->capwl) {
        size_t nc = s->capwl ? s->capwl * 2 : 16;
        wlast *p = realloc(s->wl, nc * sizeof *p);
        if (!p)
            return; /* a statistic only */
        s->wl = p;
        s->capwl = nc;
    }
    s->wl[s->nwl].wid = wid;
    s->wl[s->nwl++].ms = ms;
}

static int on_result(void *u, const char *id, const sid *sd, const rc_env *e)
{
    (void)id;
    res_ctx *rc = u;
    jobrow *j = rc->j;
    long long ms = (long long)sd->ms;
    j->results++;
    if (j->first_ms < 0 || ms < j->first_ms)
        j->first_ms = ms;
    if (ms > j->last_ms)
        j->last_ms = ms;
    if (!e) {
        j->malformed++;
        return 0;
    }
    if (e->kind == RC_KIND_REJECT) {
        j->rejects++;
        return 0;
    }
    if (e->kind != RC_KIND_RESULT || e->job != j->id || (j->ntasks && e->rank >= j->ntasks)) {
        j->malformed++;
        return 0;
    }
    if (ms >= rc->s->now - rc->s->window_ms)
        j->recent++;
    if (e->attempt > 1)
        j->redelivered++;
    note_worker(rc->s, e->aux, ms);
    if (e->status != 0) {
        j->errors++;
        return 0;
    }
    if (j->nranks == j->capranks) {
        size_t nc = j->capranks ? j->capranks * 2 : 64;
        uint64_t *p = realloc(j->ranks, nc * sizeof *p);
        if (!p)
            return 0;
        j->ranks = p;
        j->capranks = nc;
    }
    j->ranks[j->nranks++] = e->rank;
    return 0;
}

typedef struct task_ctx { snap *s; const pel *p; size_t np; const unsigned char *live; sid delivered; } task_ctx;

static int on_task(void *u, const char *id, const sid *sd, const rc_env *e)
{
    (void)id;
    task_ctx *t = u;
    snap *s = t->s;
    const pel *p = pel_find(t->p, t->np, sd);
    if (!p && sid_cmp(sd, &t->delivered) <= 0)
        return 0; /* done: acked, waiting for the trim */
    jobrow *j = e && e->kind == RC_KIND_TASK ? job_find(s, e->job) : NULL;
    if (!e || e->kind != RC_KIND_TASK)
        s->unreadable++;
    else if (!j || !j->has_desc)
        s->orphans++;
    if (p && p->idle < HANDED_BACK_MS) {
        s->running++;
        if (j) j->running++;
        if (p->count > 1 && j)
            j->redeliveries++;
        if (p->who < 0 || !t->live[p->who]) { /* its worker is gone: taken over after the lease */
            s->lost++;
            if (j) j->lost++;
        }
    } else {
        s->retrying += p != NULL;
        s->queued++;
        if (j) j->queued++;
        long long age = s->now - (long long)sd->ms;
        if (age > s->oldest_queued)
            s->oldest_queued = age;
    }
    if (j && (j->first_ms < 0 || (long long)sd->ms < j->first_ms))
        j->first_ms = (long long)sd->ms;
    return 0;
}

static const char *job_state(const jobrow *j)
{
    if (!j->has_desc)
        return j->ended[0] ? j->ended : "gone";
    if (j->errors)
        return "failing";
    if (j->ntasks && j->done >= j->ntasks)
        return "complete";
    if (j->running)
        return "running";
    if (j->queued)
        return "queued";
    return "stalled";
}

/* Take a snapshot of queue c->queue.  all: also jobs that ended (only their
 * end marker left).  Returns 0, or -1 with s->err set (what was read so far
 * stays usable). */
static int snapshot(cli_conn *c, snap *s, int all, long long window_ms)
{
    memset(s, 0, sizeof *s);
    s->window_ms = window_ms;
    s->now = cli_server_ms(c);
    s->wall = cli_wall_ms();
    char stream[300];
    snprintf(stream, sizeof stream, "rc:{%s}:tasks", c->queue);
    if (load_workers(c, s) != 0) {
        snprintf(s->err, sizeof s->err, "reading the worker registry: %s", c->conn->err);
        return -1;
    }
    if (list_jobs(c, s) != 0) {
        snprintf(s->err, sizeof s->err, "listing jobs: %s", c->conn->err);
        return -1;
    }
    for (size_t i = 0; i < s->nj; i++) {
        jobrow *j = &s->j[i];
        char meta[300], res[320], why[320];
        rc_job_keys(c->queue, j->id, meta, sizeof meta, res, sizeof res);
        snprintf(why, sizeof why, "%s:why", meta);
        if ((j->has_desc && read_desc(c, j) != 0) || (j->has_end && read_end(c, j) != 0)) {
            snprintf(s->err, sizeof s->err, "reading job %s: %s", j->hex, c->conn->err);
            return -1;
        }
        redisReply *r = NULL;
        if (j->has_desc) {
            if (cli_cmd(c, &r, 2, (const char *[]){"PTTL", meta}, NULL) == 0 && r->type == REDIS_REPLY_INTEGER)
                j->ttl_ms = r->integer;
            if (r) freeReplyObject(r);
            r = NULL;
        }
        if (j->has_why) {
            if (cli_cmd(c, &r, 2, (const char *[]){"HLEN", why}, NULL) == 0 && r->type == REDIS_REPLY_INTEGER)
                j->failed = (uint64_t)r->integer;
            if (r) freeReplyObject(r);
        }
        if (j->has_res) {
            res_ctx rc = {s, j};
            if (scan_headers(c, res, "-", PEEK_RESULT, on_result, &rc) != 0) {
                snprintf(s->err, sizeof s->err, "reading the results of job %s: %s", j->hex, c->conn->err);
                return -1;
            }
            if (j->nranks) {
                qsort(j->ranks, j->nranks, sizeof *j->ranks, cmp_u64);
                size_t u = 1;
                for (size_t k = 1; k < j->nranks; k++)
                    u += j->ranks[k] != j->ranks[k - 1];
                j->done = u;
                j->dups = j->nranks - u;
            }
            free(j->ranks);
            j->ranks = NULL;
            j->nranks = j->capranks = 0;
        }
    }
    redisReply *r = NULL;
    if (cli_cmd(c, &r, 2, (const char *[]){"XLEN", stream}, NULL) == 0 && r->type == REDIS_REPLY_INTEGER)
        s->xlen = (uint64_t)r->integer;
    if (r) freeReplyObject(r);
    pel *p = NULL;
    size_t np = 0;
    names who = {0};
    sid delivered; /* read before the pending list: an entry handed out after it reads as queued or running */
    if (load_delivered(c, stream, &delivered) != 0) {
        snprintf(s->err, sizeof s->err, "reading the consumer group: %s", c->conn->err);
        return -1;
    }
    if (load_pel(c, stream, &p, &np, &who) != 0) {
        names_free(&who);
        snprintf(s->err, sizeof s->err, "reading the pending entries: %s", c->conn->err);
        return -1;
    }
    for (size_t i = 0; i < np; i++)
        s->redeliveries += p[i].count > 1;
    unsigned char *live = calloc(who.n ? who.n : 1, 1);
    if (!live) {
        free(p);
        names_free(&who);
        snprintf(s->err, sizeof s->err, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < who.n; i++)
        for (size_t k = 0; k < s->nw && !live[i]; k++)
            live[i] = strcmp(who.v[i], s->w[k].consumer) == 0;
    task_ctx tc = {s, p, np, live, delivered};
    int st = scan_headers(c, stream, "-", PEEK_RESULT, on_task, &tc);
    free(live);
    free(p);
    names_free(&who);
    if (st != 0) {
        snprintf(s->err, sizeof s->err, "reading the task stream: %s", c->conn->err);
        return -1;
    }
    /* totals, states; drop ended jobs unless asked for */
    size_t keep = 0;
    for (size_t i = 0; i < s->nj; i++) {
        jobrow *j = &s->j[i];
        j->state = job_state(j);
        s->results += j->results;
        s->done += j->done;
        s->dups += j->dups;
        s->errors += j->errors;
        s->rejects += j->rejects;
        s->malformed += j->malformed;
        s->redelivered += j->redelivered;
        s->recent += j->recent;
        s->failed += j->failed;
        s->unverified += j->has_desc && j->verified == 0;
        if (j->has_desc || (all && (j->has_end || j->has_res)))
            s->j[keep++] = *j;
    }
    s->nj = keep;
    /* an idle worker's idle time: since its last result still in Redis, or
       since it started if it has delivered nothing yet */
    for (size_t i = 0; i < s->nw; i++) {
        wkr *w = &s->w[i];
        if (w->busy)
            continue;
        long long best = w->idle_ms;
        for (size_t k = 0; k < s->nwl; k++)
            if (s->wl[k].wid == w->wid) {
                long long since = s->now - s->wl[k].ms;
                if (best < 0 || since < best)
                    best = since < 0 ? 0 : since;
            }
        if (best < 0 && w->done == 0 && w->started > 0)
            best = s->wall - w->started;
        w->idle_ms = best;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Rendering                                                            */

static void print_workers_text(FILE *f, const snap *s, const char *queue)
{
    fprintf(f, "queue %s: %zu worker(s)", queue, s->nw);
    if (s->pruned)
        fprintf(f, " (%zu expired registry entr%s pruned)", s->pruned, s->pruned == 1 ? "y" : "ies");
    fprintf(f, "\n");
    if (!s->nw)
        return;
    fprintf(f, "%-16s %7s %-12s %3s %-5s %-22s %6s %8s %8s %6s\n", "HOST", "PID", "QUEUES", "THR", "STATE", "TASK",
            "DONE", "UP", "IDLE", "BEAT");
    for (size_t i = 0; i < s->nw; i++) {
        const wkr *w = &s->w[i];
        char up[32], idle[32], beat[32];
        cli_fmt_dur(up, sizeof up, w->started > 0 ? s->wall - w->started : -1);
        cli_fmt_dur(idle, sizeof idle, w->idle_ms);
        cli_fmt_dur(beat, sizeof beat, w->beat > 0 ? (s->wall - w->beat < 0 ? 0 : s->wall - w->beat) : -1);
        fprintf(f, "%-16.16s %7ld %-12.12s %3d %-5s %-22.22s %6llu %8s %8s %6s\n", w->host, w->pid, w->queues,
                w->threads, w->busy ? "busy" : "idle", w->busy ? w->task : "-", w->done, up, idle, beat);
    }
}

static void print_worker_json(FILE *f, const snap *s, const wkr *w)
{
    fprintf(f, "{\"consumer\":");
    cli_json_str(f, w->consumer, strlen(w->consumer));
    fprintf(f, ",\"host\":");
    cli_json_str(f, w->host, strlen(w->host));
    fprintf(f, ",\"pid\":%ld,\"queues\":", w->pid);
    cli_json_str(f, w->queues, strlen(w->queues));
    fprintf(f, ",\"threads\":%d,\"state\":\"%s\",\"task\":", w->threads, w->busy ? "busy" : "idle");
    if (w->busy) {
        cli_json_str(f, w->task, strlen(w->task));
        const char *slash = strchr(w->task, '/');
        uint64_t jid;
        char hex[17];
        snprintf(hex, sizeof hex, "%.16s", w->task);
        if (slash && slash - w->task == 16 && cli_parse_jobid(hex, &jid) == 0 && slash[1] &&
            strspn(slash + 1, "0123456789") == strlen(slash + 1) && strlen(slash + 1) < 20)
            fprintf(f, ",\"job\":\"%s\",\"rank\":%s", hex, slash + 1);
    } else {
        fprintf(f, "null");
    }
    fprintf(f, ",\"done\":%llu,\"up_ms\":%lld,\"idle_ms\":", w->done, w->started > 0 ? s->wall - w->started : -1);
    if (w->idle_ms >= 0)
        fprintf(f, "%lld", w->idle_ms);
    else
        fprintf(f, "null");
    fprintf(f, ",\"beat_age_ms\":%lld}", w->beat > 0 ? (s->wall - w->beat < 0 ? 0 : s->wall - w->beat) : -1);
}

static void print_job_text_header(FILE *f)
{
    fprintf(f, "%-16s %-14s %8s %8s %7s %8s %6s %6s %7s %8s %-9s %s\n", "JOB", "KERNEL", "TASKS", "DONE", "RUNNING",
            "QUEUED", "FAILED", "ERRORS", "REJECTS", "AGE", "STATE", "AUTH");
}

static const char *auth_word(int v) { return v < 0 ? "-" : v ? "ok" : "BAD"; }

static void print_job_text(FILE *f, const snap *s, const jobrow *j)
{
    char age[32];
    cli_fmt_dur(age, sizeof age, j->first_ms >= 0 ? s->now - j->first_ms : -1);
    fprintf(f, "%-16s %-14.14s %8llu %8llu %7llu %8llu %6llu %6llu %7llu %8s %-9s %s\n", j->hex,
            j->has_desc ? j->kernel : "-", (unsigned long long)j->ntasks, (unsigned long long)j->done,
            (unsigned long long)j->running, (unsigned long long)j->queued, (unsigned long long)j->failed,
            (unsigned long long)j->errors, (unsigned long long)j->rejects, age, j->state,
            j->has_desc ? auth_word(j->verified) : auth_word(j->end_verified));
}

static void print_job_json(FILE *f, const snap *s, const jobrow *j)
{
    fprintf(f, "{\"id\":\"%s\",\"kernel\":", j->hex);
    if (j->has_desc)
        cli_json_str(f, j->kernel, strlen(j->kernel));
    else
        fprintf(f, "null");
    fprintf(f, ",\"tasks\":%llu,\"done\":%llu,\"running\":%llu,\"queued\":%llu,\"failed\":%llu,\"errors\":%llu"
               ",\"rejects\":%llu,\"results\":%llu,\"duplicates\":%llu,\"redelivered\":%llu,\"redeliveries\":%llu"
               ",\"lost\":%llu,\"malformed\":%llu,\"age_ms\":%lld,\"ttl_ms\":%lld,\"sealed\":%s"
               ",\"state\":\"%s\",\"ended\":",
            (unsigned long long)j->ntasks, (unsigned long long)j->done, (unsigned long long)j->running,
            (unsigned long long)j->queued, (unsigned long long)j->failed, (unsigned long long)j->errors,
            (unsigned long long)j->rejects, (unsigned long long)j->results, (unsigned long long)j->dups,
            (unsigned long long)j->redelivered, (unsigned long long)j->redeliveries, (unsigned long long)j->lost,
            (unsigned long long)j->malformed, j->first_ms >= 0 ? s->now - j->first_ms : -1LL, j->ttl_ms,
            j->sealed ? "true" : "false", j->state);
    if (j->ended[0])
        cli_json_str(f, j->ended, strlen(j->ended));
    else
        fprintf(f, "null");
    int v = j->has_desc ? j->verified : j->end_verified;
    fprintf(f, ",\"verified\":%s", v < 0 ? "null" : v ? "true" : "false");
    if (j->verr[0]) {
        fprintf(f, ",\"verify_error\":");
        cli_json_str(f, j->verr, strlen(j->verr));
    }
    fputc('}', f);
}

static double throughput(const snap *s)
{
    return s->window_ms > 0 ? (double)s->recent * 1000.0 / (double)s->window_ms : 0.0;
}

static size_t busy_workers(const snap *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nw; i++)
        n += s->w[i].busy != 0;
    return n;
}

static void print_stats_text(FILE *f, const snap *s, const char *queue)
{
    char oldest[32];
    cli_fmt_dur(oldest, sizeof oldest, s->queued ? s->oldest_queued : -1);
    fprintf(f, "queue %s\n", queue);
    fprintf(f, "  workers alive      %zu (%zu busy)\n", s->nw, busy_workers(s));
    fprintf(f, "  jobs               %zu\n", s->nj);
    fprintf(f, "  tasks queued       %llu (oldest %s)\n", (unsigned long long)s->queued, oldest);
    fprintf(f, "  tasks running      %llu", (unsigned long long)s->running);
    if (s->lost)
        fprintf(f, " (%llu held by workers that are gone: retried once their lease lapses)",
                (unsigned long long)s->lost);
    fprintf(f, "\n");
    if (s->retrying)
        fprintf(f, "  tasks retrying     %llu handed back after a failed attempt or a stop, queued again\n",
                (unsigned long long)s->retrying);
    fprintf(f, "  redeliveries       %llu in flight on a second or later attempt; %llu results needed one\n",
            (unsigned long long)s->redeliveries, (unsigned long long)s->redelivered);
    fprintf(f, "  throughput         %.2f results/s over the last %.0f s\n", throughput(s),
            (double)s->window_ms / 1000.0);
    fprintf(f, "  results stored     %llu (%llu tasks done, %llu duplicates, %llu errors)\n",
            (unsigned long long)s->results, (unsigned long long)s->done, (unsigned long long)s->dups,
            (unsigned long long)s->errors);
    fprintf(f, "  failed attempts    %llu task(s) with a recorded failure\n", (unsigned long long)s->failed);
    fprintf(f, "  auth failures      %llu (%llu rejection notices from workers, %llu malformed results, %llu "
               "descriptors that do not verify)\n",
            (unsigned long long)(s->rejects + s->malformed + s->unverified), (unsigned long long)s->rejects,
            (unsigned long long)s->malformed, (unsigned long long)s->unverified);
    if (s->orphans || s->unreadable)
        fprintf(f, "  leftovers          %llu task(s) of jobs without a descriptor, %llu unreadable entries\n",
                (unsigned long long)s->orphans, (unsigned long long)s->unreadable);
}

static void print_stats_json(FILE *f, const snap *s)
{
    fprintf(f, "{\"window_s\":%.3f,\"workers\":%zu,\"workers_busy\":%zu,\"jobs\":%zu,\"tasks_queued\":%llu"
               ",\"tasks_running\":%llu,\"tasks_running_lost\":%llu,\"tasks_retrying\":%llu"
               ",\"oldest_queued_ms\":%lld,\"stream_length\":%llu,\"redeliveries\":%llu"
               ",\"redelivered_results\":%llu,\"results_recent\":%llu,\"throughput_per_s\":%.3f,\"results\":%llu"
               ",\"done\":%llu,\"duplicates\":%llu,\"task_errors\":%llu,\"failed_attempts\":%llu"
               ",\"auth_failures\":%llu,\"rejections\":%llu,\"malformed\":%llu,\"unverified_jobs\":%llu"
               ",\"orphan_tasks\":%llu,\"unreadable_tasks\":%llu}",
            (double)s->window_ms / 1000.0, s->nw, busy_workers(s), s->nj, (unsigned long long)s->queued,
            (unsigned long long)s->running, (unsigned long long)s->lost, (unsigned long long)s->retrying,
            s->queued ? s->oldest_queued : -1LL, (unsigned long long)s->xlen,
            (unsigned long long)s->redeliveries, (unsigned long long)s->redelivered, (unsigned long long)s->recent,
            throughput(s), (unsigned long long)s->results, (unsigned long long)s->done, (unsigned long long)s->dups,
            (unsigned long long)s->errors, (unsigned long long)s->failed,
            (unsigned long long)(s->rejects + s->malformed + s->unverified), (unsigned long long)s->rejects,
            (unsigned long long)s->malformed, (unsigned long long)s->unverified, (unsigned long long)s->orphans,
            (unsigned long long)s->unreadable);
}

/* ------------------------------------------------------------------ */
/* Option parsing shared by the view commands                          */

enum { O_REDIS = 256, O_KEY, O_QUEUE, O_JSON, O_HELP, O_ALL, O_WINDOW, O_INTERVAL, O_COUNT, O_STATE };
/* Options beyond --redis --key-file --queue --json --help, per command. */
enum { A_ALL = 1, A_WINDOW = 2, A_INTERVAL = 4, A_COUNT = 8, A_STATE = 16 };

typedef struct view_opts {
    cli_opts o;
    int all;
    long long window_ms, interval_ms;
    unsigned long long count;
    const char *state;
    const char *arg;       /* the positional JOB */
} view_opts;

/* Parse the options in argv (argv[0] is the command name; positionals were
 * taken out by parse_args).  Returns -1 to go on, else the exit status
 * (help printed: 0; bad: 2). */
static int parse_view(int argc, char **argv, const char *help, unsigned allow, view_opts *v)
{
    static const struct option opts[] = {
        {"redis", required_argument, 0, O_REDIS},   {"key-file", required_argument, 0, O_KEY},
        {"queue", required_argument, 0, O_QUEUE},   {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, O_HELP},           {"all", no_argument, 0, O_ALL},
        {"window", required_argument, 0, O_WINDOW}, {"interval", required_argument, 0, O_INTERVAL},
        {"count", required_argument, 0, O_COUNT},   {"state", required_argument, 0, O_STATE},
        {0, 0, 0, 0}};
    const char *cmd = argv[0];
    memset(v, 0, sizeof *v);
    v->window_ms = 10000;
    v->interval_ms = 2000;
    optind = 0; /* glibc: full re-initialisation */
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        unsigned need = ch == O_ALL ? A_ALL : ch == O_WINDOW ? A_WINDOW : ch == O_INTERVAL ? A_INTERVAL
                      : ch == O_COUNT ? A_COUNT : ch == O_STATE ? A_STATE : 0;
        if (need && !(allow & need)) {
            fprintf(stderr, "redcoll %s: option '%s' does not apply here (see redcoll %s --help)\n", cmd,
                    argv[optind - 1 - (optarg && optarg == argv[optind - 1])], cmd);
            return CLI_USAGE;
        }
        switch (ch) {
        case O_REDIS: v->o.url = optarg; break;
        case O_KEY: v->o.keyfile = optarg; break;
        case O_QUEUE: v->o.queue = optarg; break;
        case O_JSON: v->o.json = 1; break;
        case O_ALL: v->all = 1; break;
        case O_STATE: v->state = optarg; break;
        case O_WINDOW:
            if (cli_parse_secs(cmd, "--window", optarg, &v->window_ms) != 0)
                return CLI_USAGE;
            if (v->window_ms < 1000 || v->window_ms > 86400000) {
                fprintf(stderr, "redcoll %s: --window must be 1 to 86400 seconds\n", cmd);
                return CLI_USAGE;
            }
            break;
        case O_INTERVAL:
            if (cli_parse_secs(cmd, "--interval", optarg, &v->interval_ms) != 0)
                return CLI_USAGE;
            if (v->interval_ms < 50) {
                fprintf(stderr, "redcoll %s: --interval must be at least 0.05 seconds\n", cmd);
                return CLI_USAGE;
            }
            break;
        case O_COUNT:
            if (cli_parse_count(cmd, "--count", optarg, 1, 1000000000ULL, &v->count) != 0)
                return CLI_USAGE;
            break;
        case 'h':
        case O_HELP: fputs(help, stdout); return CLI_OK;
        case ':':
            fprintf(stderr, "redcoll %s: option '%s' needs a value (see redcoll %s --help)\n", cmd,
                    argv[optind - 1], cmd);
            return CLI_USAGE;
        default:
            fprintf(stderr, "redcoll %s: unknown option '%s' (see redcoll %s --help)\n", cmd, argv[optind - 1],
                    cmd);
            return CLI_USAGE;
        }
    }
    return -1;
}

/* Options and at most one positional (JOB) in any order.  Positionals are
 * taken out first, so getopt sees only options and their values. */
static int parse_args(int argc, char **argv, const char *help, unsigned allow, int want_arg, view_opts *v)
{
    static const char *const with_value[] = {"--redis", "--key-file", "--queue", "--window", "--interval",
                                             "--count", "--state"};
    char **args = calloc((size_t)argc + 1, sizeof *args);
    const char *pos = NULL, *extra = NULL;
    int n = 0;
    if (!args) {
        fprintf(stderr, "redcoll %s: out of memory\n", argv[0]);
        return CLI_FAIL;
    }
    args[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) { /* the rest are positionals */
            for (i++; i < argc; i++) {
                if (!pos) pos = argv[i];
                else if (!extra) extra = argv[i];
            }
            break;
        }
        if (a[0] == '-' && a[1]) {
            args[n++] = argv[i];
            for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
                if (!strcmp(a, with_value[k]) && i + 1 < argc) {
                    args[n++] = argv[++i];
                    break;
                }
            continue;
        }
        if (!pos) pos = a;
        else if (!extra) extra = a;
    }
    args[n] = NULL;
    int st = parse_view(n, args, help, allow, v);
    free(args);
    if (st >= 0)
        return st;
    if ((pos && !want_arg) || extra) {
        fprintf(stderr, "redcoll %s: unexpected argument '%s' (see redcoll %s --help)\n", argv[0],
                want_arg ? extra : pos, argv[0]);
        return CLI_USAGE;
    }
    if (want_arg && !pos) {
        fprintf(stderr, "redcoll %s: missing JOB (16 hex digits; see redcoll %s --help)\n", argv[0], argv[0]);
        return CLI_USAGE;
    }
    v->arg = pos;
    return -1;
}

/* ------------------------------------------------------------------ */
/* workers, jobs, stats                                                 */

static const char workers_help[] =
    "usage: redcoll workers [--queue Q] [--json] [--redis URL]\n"
    "Live workers of queue Q, from its registry (rc:{Q}:workers and each worker's\n"
    "expiring rc:{Q}:worker:<consumer> entry, refreshed with every heartbeat).\n"
    "Registry entries whose info expired (a worker killed without unregistering) are\n"
    "pruned.\n\n"
    "Columns: host, pid, queues served, OpenMP threads, state (busy: holds a task,\n"
    "shown as JOB/RANK), tasks done since start, up time, idle time (since its last\n"
    "result still stored in Redis, or since start; '-' unknown), age of the last\n"
    "heartbeat (workers beat every lease/4; an entry expires after ~3 beats).\n\n"
    CLI_HELP_CONN CLI_HELP_QUEUE
    "  --key-file F      not needed (accepted for symmetry)\n"
    "  --json            one JSON object: queue, time_ms, pruned, workers: [one object\n"
    "                    per line: consumer, host, pid, queues, threads, state, task, job,\n"
    "                    rank, done, up_ms, idle_ms, beat_age_ms]\n"
    "  --help            this text\n\n" CLI_HELP_ENV;

static const char jobs_help[] =
    "usage: redcoll jobs [--queue Q] [--all] [--json] [--key-file F] [--redis URL]\n"
    "Jobs in queue Q (one per descriptor rc:{Q}:job:<id>), with their progress:\n"
    "  TASKS    tasks in the job          DONE     distinct tasks with a result\n"
    "  RUNNING  handed to a worker        QUEUED   not yet handed out\n"
    "  FAILED   tasks with a failed attempt recorded (retried elsewhere)\n"
    "  ERRORS   final error results (the job will fail)\n"
    "  REJECTS  rejection notices: a worker could not authenticate a task\n"
    "  AGE      since the oldest entry of the job still in Redis (approximate)\n"
    "  STATE    queued, running, complete (awaiting its master), failing, stalled\n"
    "           (nothing queued or running, not complete); with --all also done,\n"
    "           cancelled, failed (ended jobs: only the end marker is left)\n"
    "  AUTH     ok / BAD: the descriptor verifies with the key; '-': no key given\n"
    "The owner (master host) is not stored in Redis and is not shown.  A job\n"
    "disappears when its master collects it.\n\n"
    CLI_HELP_CONN CLI_HELP_QUEUE
    "  --key-file F      verify descriptors with this key (else REDCOLL_KEY_FILE if set)\n"
    "  --all             include ended jobs\n"
    "  --json            one JSON object: queue, time_ms, jobs: [one object per line: id,\n"
    "                    kernel, tasks, done, running, queued, failed, errors, rejects,\n"
    "                    results, duplicates, redelivered (results that needed more than\n"
    "                    one attempt), redeliveries (running on a second or later attempt),\n"
    "                    lost (running on a worker no longer registered), malformed, age_ms,\n"
    "                    ttl_ms, sealed, state, ended, verified (true/false/null),\n"
    "                    verify_error]\n"
    "  --help            this text\n\n" CLI_HELP_ENV;

static const char stats_help[] =
    "usage: redcoll stats [--queue Q] [--window S] [--json] [--key-file F] [--redis URL]\n"
    "Queue Q at a glance: workers alive (and busy), jobs, tasks queued and running,\n"
    "redeliveries (in-flight tasks on a second or later attempt: a worker died or\n"
    "stalled), throughput (results delivered per second over the last S seconds,\n"
    "from the result streams' entry ids, which Redis stamps with its clock), results\n"
    "stored, failed attempts, and authentication failures: rejection notices\n"
    "workers wrote when a task did not verify, malformed result entries, and (with\n"
    "a key) job descriptors that do not verify.  Refusals of entries too damaged to\n"
    "name their job leave no trace in Redis and only show in the worker's log.\n"
    "Only jobs still in Redis count: a collected job's results are deleted.\n\n"
    CLI_HELP_CONN CLI_HELP_QUEUE
    "  --window S        throughput window in seconds (default 10)\n"
    "  --key-file F      also verify job descriptors (else REDCOLL_KEY_FILE if set)\n"
    "  --json            one JSON object: queue, time_ms, window_s, workers, workers_busy,\n"
    "                    jobs, tasks_queued, tasks_running, tasks_running_lost (held by a\n"
    "                    worker no longer registered), tasks_retrying (handed back, queued\n"
    "                    again), oldest_queued_ms, stream_length (entries in the task\n"
    "                    stream, with finished ones a later trim removes),\n"
    "                    redeliveries, redelivered_results, results_recent,\n"
    "                    throughput_per_s, results, done, duplicates, task_errors,\n"
    "                    failed_attempts, auth_failures, rejections, malformed,\n"
    "                    unverified_jobs, orphan_tasks, unreadable_tasks\n"
    "  --help            this text\n\n" CLI_HELP_ENV;

/* Common frame of workers / jobs / stats: parse, connect, snapshot. */
static int view_begin(int argc, char **argv, const char *help, unsigned allow, view_opts *v, cli_conn *c, snap *s)
{
    int st = parse_args(argc, argv, help, allow, 0, v);
    if (st >= 0)
        return st;
    if ((st = cli_open(c, argv[0], &v->o, 0)) != CLI_OK)
        return st;
    if (snapshot(c, s, v->all, v->window_ms) != 0) {
        fprintf(stderr, "redcoll %s: %s\n", argv[0], s->err);
        snap_free(s);
        cli_close(c);
        return CLI_FAIL;
    }
    return -1;
}

static void json_head(FILE *f, const cli_conn *c, const snap *s)
{
    fprintf(f, "{\"queue\":");
    cli_json_str(f, c->queue, strlen(c->queue));
    fprintf(f, ",\"time_ms\":%lld", s->wall);
}

int cmd_workers(int argc, char **argv)
{
    view_opts v;
    cli_conn c;
    snap s;
    int st = view_begin(argc, argv, workers_help, 0, &v, &c, &s);
    if (st >= 0)
        return st;
    if (v.o.json) {
        json_head(stdout, &c, &s);
        printf(",\"pruned\":%zu,\"workers\":[", s.pruned);
        for (size_t i = 0; i < s.nw; i++) {
            printf("%s\n", i ? "," : "");
            print_worker_json(stdout, &s, &s.w[i]);
        }
        printf("%s]}\n", s.nw ? "\n" : "");
    } else {
        print_workers_text(stdout, &s, c.queue);
    }
    snap_free(&s);
    cli_close(&c);
    return CLI_OK;
}

int cmd_jobs(int argc, char **argv)
{
    view_opts v;
    cli_conn c;
    snap s;
    int st = view_begin(argc, argv, jobs_help, A_ALL, &v, &c, &s);
    if (st >= 0)
        return st;
    if (v.o.json) {
        json_head(stdout, &c, &s);
        printf(",\"jobs\":[");
        for (size_t i = 0; i < s.nj; i++) {
            printf("%s\n", i ? "," : "");
            print_job_json(stdout, &s, &s.j[i]);
        }
        printf("%s]}\n", s.nj ? "\n" : "");
    } else {
        printf("queue %s: %zu job(s)%s\n", c.queue, s.nj, c.have_key ? "" : " (no key: descriptors not verified)");
        if (s.nj)
            print_job_text_header(stdout);
        for (size_t i = 0; i < s.nj; i++)
            print_job_text(stdout, &s, &s.j[i]);
    }
    snap_free(&s);
    cli_close(&c);
    return CLI_OK;
}

int cmd_stats(int argc, char **argv)
{
    view_opts v;
    cli_conn c;
    snap s;
    int st = view_begin(argc, argv, stats_help, A_WINDOW, &v, &c, &s);
    if (st >= 0)
        return st;
    if (v.o.json) {
        json_head(stdout, &c, &s);
        printf(",\"stats\":");
        print_stats_json(stdout, &s);
        printf("}\n");
    } else {
        print_stats_text(stdout, &s, c.queue);
    }
    snap_free(&s);
    cli_close(&c);
    return CLI_OK;
}

/* ------------------------------------------------------------------ */
/* watch                                                                */

static volatile sig_atomic_t g_stop;

static void on_stop(int sig)
{
    (void)sig;
    g_stop = 1;
}

static const char watch_help[] =
    "usage: redcoll watch [--queue Q] [--interval S] [--count N] [--window S] [--all]\n"
    "                     [--json] [--key-file F] [--redis URL]\n"
    "A live view of queue Q: workers, jobs and stats (see redcoll workers, jobs and\n"
    "stats --help for the columns), redrawn every S seconds.  On a terminal the screen\n"
    "is cleared and redrawn; otherwise (a pipe, a log) one snapshot is printed per\n"
    "interval, each starting with a '== redcoll watch' line.  Stops on Ctrl-C\n"
    "(SIGINT) or SIGTERM with status 0, or after N snapshots.  A Redis failure is\n"
    "shown in the snapshot and retried at the next interval.\n\n"
    CLI_HELP_CONN CLI_HELP_QUEUE
    "  --interval S      seconds between snapshots (default 2)\n"
    "  --count N         stop after N snapshots (status 1 if the last one failed)\n"
    "  --window S        throughput window in seconds (default 10)\n"
    "  --all             include ended jobs\n"
    "  --key-file F      verify job descriptors (else REDCOLL_KEY_FILE if set)\n"
    "  --json            one JSON object per snapshot, one per line: queue, time_ms,\n"
    "                    error, workers, jobs, stats (as in those commands' --json)\n"
    "  --help            this text\n\n" CLI_HELP_ENV;

static void render(FILE *f, const cli_conn *c, const snap *s, int ok, int json, long long interval_ms)
{
    if (json) {
        json_head(f, c, s);
        fprintf(f, ",\"error\":");
        if (ok)
            fprintf(f, "null");
        else
            cli_json_str(f, s->err, strlen(s->err));
        fprintf(f, ",\"workers\":[");
        for (size_t i = 0; i < s->nw; i++) {
            fprintf(f, "%s", i ? "," : "");
            print_worker_json(f, s, &s->w[i]);
        }
        fprintf(f, "],\"jobs\":[");
        for (size_t i = 0; i < s->nj; i++) {
            fprintf(f, "%s", i ? "," : "");
            print_job_json(f, s, &s->j[i]);
        }
        fprintf(f, "],\"stats\":");
        print_stats_json(f, s);
        fprintf(f, "}\n");
        return;
    }
    char when[64];
    time_t t = (time_t)(s->wall / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(f, "== redcoll watch: queue %s at %s (every %.1f s; Ctrl-C stops)\n", c->queue, when,
            (double)interval_ms / 1000.0);
    if (!ok)
        fprintf(f, "!! %s\n", s->err);
    fprintf(f, "\n");
    print_workers_text(f, s, c->queue);
    fprintf(f, "\n%zu job(s)\n", s->nj);
    if (s->nj)
        print_job_text_header(f);
    for (size_t i = 0; i < s->nj; i++)
        print_job_text(f, s, &s->j[i]);
    fprintf(f, "\n");
    print_stats_text(f, s, c->queue);
}

int cmd_watch(int argc, char **argv)
{
    view_opts v;
    int st = parse_args(argc, argv, watch_help, A_ALL | A_WINDOW | A_INTERVAL | A_COUNT, 0, &v);
    if (st >= 0)
        return st;
    cli_conn c;
    if ((st = cli_open(&c, argv[0], &v.o, 0)) != CLI_OK)
        return st;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int tty = isatty(STDOUT_FILENO);
    int ok = 1;
    for (unsigned long long n = 0; !g_stop && (!v.count || n < v.count); n++) {
        if (n) { /* sleep in slices so Ctrl-C is prompt */
            long long end = cli_wall_ms() + v.interval_ms;
            while (!g_stop && cli_wall_ms() < end) {
                long long left = end - cli_wall_ms();
                struct timespec ts = {0, (left > 50 ? 50 : left) * 1000000L};
                nanosleep(&ts, NULL);
            }
            if (g_stop)
                break;
        }
        snap s;
        ok = snapshot(&c, &s, v.all, v.window_ms) == 0;
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) {
            snap_free(&s);
            fprintf(stderr, "redcoll watch: out of memory\n");
            cli_close(&c);
            return CLI_FAIL;
        }
        render(f, &c, &s, ok, v.o.json, v.interval_ms);
        fclose(f);
        if (tty && !v.o.json)
            fputs("\033[H\033[2J", stdout);
        fwrite(buf, 1, len, stdout);
        if (!tty && !v.o.json)
            fputc('\n', stdout);
        fflush(stdout);
        free(buf);
        snap_free(&s);
    }
    cli_close(&c);
    return g_stop || ok ? CLI_OK : CLI_FAIL;
}

/* ------------------------------------------------------------------ */
/* tasks                                                                */

enum { T_MISSING = 0, T_QUEUED = 1, T_RUNNING = 2, T_FAILED = 3, T_DONE = 4 };
static const char *const tstate_name[] = {"missing", "queued", "running", "failed", "done"};

typedef struct trow {
    long long t;          /* done/failed: result time (server ms); running: idle ms */
    int32_t who;          /* running: consumer index; done/failed: worker-id index */
    uint16_t attempt;     /* done/failed: attempt number; running: deliveries (saturating) */
    uint8_t state;
} trow;

typedef struct note { uint64_t rank; char *text; } note;

typedef struct tasks_ctx {
    uint64_t job, ntasks;
    trow *rows;
    const pel *p;
    size_t np;
    names *who;
    uint64_t *wids;
    size_t nwids, capwids;
    char (*fail_ids)[48];       /* result entries of failed tasks, to read their message */
    uint64_t *fail_ranks;
    size_t nfail, capfail;
    uint64_t rejects, foreign;
} tasks_ctx;

static int wid_index(tasks_ctx *t, uint64_t wid)
{
    for (size_t i = 0; i < t->nwids; i++)
        if (t->wids[i] == wid)
            return (int)i;
    if (t->nwids == t->capwids) {
        size_t nc = t->capwids ? t->capwids * 2 : 16;
        uint64_t *p = realloc(t->wids, nc * sizeof *p);
        if (!p)
            return -1;
        t->wids = p;
        t->capwids = nc;
    }
    t->wids[t->nwids] = wid;
    return (int)t->nwids++;
}

static int on_task_entry(void *u, const char *id, const sid *sd, const rc_env *e)
{
    (void)id;
    tasks_ctx *t = u;
    if (!e || e->kind != RC_KIND_TASK || e->job != t->job || e->rank >= t->ntasks)
        return 0;
    trow *r = &t->rows[e->rank];
    const pel *p = pel_find(t->p, t->np, sd);
    if (p && p->idle >= HANDED_BACK_MS)
        p = NULL; /* handed back: waiting for another worker */
    if (p && r->state < T_RUNNING) {
        r->state = T_RUNNING;
        r->who = p->who;
        r->t = p->idle;
        r->attempt = p->count > 65535 ? 65535 : (uint16_t)p->count;
    } else if (!p && r->state < T_QUEUED) {
        r->state = T_QUEUED;
    }
    return 0;
}

static int on_task_result(void *u, const char *id, const sid *sd, const rc_env *e)
{
    tasks_ctx *t = u;
    if (e && e->kind == RC_KIND_REJECT) {
        t->rejects++;
        return 0;
    }
    if (!e || e->kind != RC_KIND_RESULT || e->job != t->job || e->rank >= t->ntasks) {
        t->foreign++;
        return 0;
    }
    trow *r = &t->rows[e->rank];
    if (r->state == T_DONE)
        return 0; /* a duplicate: the master keeps the first */
    if (e->status == 0 || r->state != T_FAILED) {
        r->state = e->status == 0 ? T_DONE : T_FAILED;
        r->who = wid_index(t, e->aux);
        r->attempt = e->attempt;
        r->t = (long long)sd->ms;
    }
    if (e->status != 0 && t->nfail < 10000) {
        if (t->nfail == t->capfail) {
            size_t nc = t->capfail ? t->capfail * 2 : 16;
            char (*a)[48] = realloc(t->fail_ids, nc * sizeof *a);
            if (!a)
                return 0;
            t->fail_ids = a;
            uint64_t *b = realloc(t->fail_ranks, nc * sizeof *b);
            if (!b)
                return 0;
            t->fail_ranks = b;
            t->capfail = nc;
        }
        snprintf(t->fail_ids[t->nfail], 48, "%s", id);
        t->fail_ranks[t->nfail++] = e->rank;
    }
    return 0;
}

static int cmp_note(const void *a, const void *b)
{
    uint64_t x = ((const note *)a)->rank, y = ((const note *)b)->rank;
    return x < y ? -1 : x > y;
}

static const char *note_find(const note *v, size_t n, uint64_t rank)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].rank == rank)
            return v[mid].text;
        if (v[mid].rank < rank)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int add_note(note **v, size_t *n, size_t *cap, uint64_t rank, const char *s, size_t len)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        note *p = realloc(*v, nc * sizeof *p);
        if (!p)
            return -1;
        *v = p;
        *cap = nc;
    }
    char *d = malloc(len + 1);
    if (!d)
        return -1;
    memcpy(d, s, len);
    d[len] = '\0';
    cli_clean(d);
    (*v)[*n].rank = rank;
    (*v)[(*n)++].text = d;
    return 0;
}

static const char tasks_help[] =
    "usage: redcoll tasks JOB [--queue Q] [--state S] [--json] [--key-file F] [--redis URL]\n"
    "The state of every task of job JOB (16 hex digits, as printed by its master and\n"
    "by redcoll jobs):\n"
    "  done     a result is in the job's result stream: the worker that delivered it,\n"
    "           the attempt it was, how long ago\n"
    "  running  handed to a worker (in the consumer group's pending list): the\n"
    "           worker, ms since its lease was last renewed, deliveries (attempts),\n"
    "           whether the worker is still registered (if not, another worker takes\n"
    "           the task over once the lease lapses)\n"
    "  queued   waiting in the queue, or handed back for a retry; with the last\n"
    "           failure if an attempt failed\n"
    "  failed   a final error result: the error text\n"
    "  missing  none of the above: refused by a worker (see REJECTS), lost with a\n"
    "           flushed Redis, or its master has not re-sent it yet\n"
    "Workers are named host:pid:workerid when they are still alive, else by\n"
    "worker id.\n\n"
    CLI_HELP_CONN CLI_HELP_QUEUE
    "  --state S         list only tasks in state S (done, running, queued, failed, missing)\n"
    "  --key-file F      verify the descriptor (else REDCOLL_KEY_FILE if set)\n"
    "  --json            one JSON object: job, queue, kernel, tasks, verified, counts\n"
    "                    {done, running, queued, failed, missing}, rejects, items: [one\n"
    "                    object per line: rank, state, worker, worker_id, pid, attempt,\n"
    "                    deliveries, idle_ms, worker_alive, ago_ms, error, last_error]\n"
    "  --help            this text\n\n" CLI_HELP_ENV;

int cmd_tasks(int argc, char **argv)
{
    view_opts v;
    int st = parse_args(argc, argv, tasks_help, A_STATE, 1, &v);
    if (st >= 0)
        return st;
    uint64_t jid;
    if (cli_parse_jobid(v.arg, &jid) != 0) {
        fprintf(stderr, "redcoll tasks: '%s' is not a job id (16 hex digits)\n", v.arg);
        return CLI_USAGE;
    }
    int want = -1;
    if (v.state) {
        for (int i = 0; i < 5; i++)
            if (!strcmp(v.state, tstate_name[i]))
                want = i;
        if (want < 0) {
            fprintf(stderr, "redcoll tasks: --state '%s': use done, running, queued, failed or missing\n", v.state);
            return CLI_USAGE;
        }
    }
    cli_conn c;
    if ((st = cli_open(&c, "tasks", &v.o, 0)) != CLI_OK)
        return st;
    long long now = cli_server_ms(&c);
    jobrow j;
    memset(&j, 0, sizeof j);
    j.id = jid;
    j.verified = -1;
    j.has_desc = 1;
    rc_hex64(jid, j.hex);
    int rc = CLI_FAIL;
    tasks_ctx t;
    memset(&t, 0, sizeof t);
    names who = {0};
    note *why = NULL, *errs = NULL;
    size_t nwhy = 0, capwhy = 0, nerr = 0, caperr = 0;
    names live = {0};
    pel *p = NULL;
    redisReply *r = NULL;
    if (read_desc(&c, &j) != 0) {
        fprintf(stderr, "redcoll tasks: reading job %s: %s\n", v.arg, c.conn->err);
        goto out;
    }
    if (!j.has_desc) {
        j.has_end = 1;
        if (read_end(&c, &j) != 0) {
            fprintf(stderr, "redcoll tasks: reading job %s: %s\n", v.arg, c.conn->err);
            goto out;
        }
        if (j.ended[0])
            fprintf(stderr, "redcoll tasks: job %s in queue '%s' has ended (%s): its tasks and results are gone\n",
                    j.hex, c.queue, j.ended);
        else
            fprintf(stderr, "redcoll tasks: job %s not found in queue '%s' (collected, cancelled or expired)\n",
                    j.hex, c.queue);
        goto out;
    }
    if (!j.hdr_ok || j.ntasks == 0) {
        fprintf(stderr, "redcoll tasks: job %s's descriptor is not a readable envelope\n", j.hex);
        goto out;
    }
    if (j.ntasks > TASKS_LIST_MAX) {
        fprintf(stderr, "redcoll tasks: job %s has %llu tasks; per-task listing stops at %llu (use redcoll jobs)\n",
                j.hex, (unsigned long long)j.ntasks, (unsigned long long)TASKS_LIST_MAX);
        goto out;
    }
    t.job = jid;
    t.ntasks = j.ntasks;
    t.rows = calloc((size_t)j.ntasks, sizeof *t.rows);
    if (!t.rows) {
        fprintf(stderr, "redcoll tasks: out of memory for %llu tasks\n", (unsigned long long)j.ntasks);
        goto out;
    }
    char stream[300], meta[300], res[320], whykey[320];
    snprintf(stream, sizeof stream, "rc:{%s}:tasks", c.queue);
    rc_job_keys(c.queue, jid, meta, sizeof meta, res, sizeof res);
    snprintf(whykey, sizeof whykey, "%s:why", meta);
    size_t np = 0;
    if (load_pel(&c, stream, &p, &np, &who) != 0) {
        fprintf(stderr, "redcoll tasks: reading the pending entries: %s\n", c.conn->err);
        goto out;
    }
    t.p = p;
    t.np = np;
    t.who = &who;
    if (scan_headers(&c, stream, "-", PEEK_RESULT, on_task_entry, &t) != 0 ||
        scan_headers(&c, res, "-", PEEK_RESULT, on_task_result, &t) != 0) {
        fprintf(stderr, "redcoll tasks: reading job %s: %s\n", j.hex, c.conn->err);
        goto out;
    }
    /* why the last attempt of each task failed */
    if (cli_cmd(&c, &r, 2, (const char *[]){"HGETALL", whykey}, NULL) == 0 && r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            const redisReply *k = r->element[i], *val = r->element[i + 1];
            /* a:<rank> -> a MAC'd attempt record (worker.c attempt_write):
               its payload is the last failure's reason */
            if (k->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING || k->len < 3 ||
                strncmp(k->str, "a:", 2) != 0)
                continue;
            rc_env e;
            char whyerr[200];
            if (!c.ctx->keys.set)
                (void)add_note(&why, &nwhy, &capwhy, strtoull(k->str + 2, NULL, 10),
                               "(recorded; give the key to read it)", 35);
            else if (rc_wire_decode_max((unsigned char *)val->str, val->len, &c.ctx->keys, c.queue, 1024, &e, whyerr,
                                        sizeof whyerr) == RC_OK && e.kind == RC_KIND_CONTROL && e.payload_len)
                (void)add_note(&why, &nwhy, &capwhy, e.rank, e.payload, (size_t)e.payload_len);
        }
        if (nwhy)
            qsort(why, nwhy, sizeof *why, cmp_note);
    }
    if (r) freeReplyObject(r);
    r = NULL;
    /* the text of final errors */
    for (size_t i = 0; i < t.nfail; i++) {
        /* the entry may hold other tasks' results too: take this rank's */
        if (cli_cmd(&c, &r, 4, (const char *[]){"XRANGE", res, t.fail_ids[i], t.fail_ids[i]}, NULL) == 0 &&
            r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
            r->element[0]->elements == 2 && r->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
            const redisReply *f = r->element[0]->element[1];
            for (size_t k = 1; k < f->elements; k += 2) {
                const redisReply *val = f->element[k];
                rc_env e;
                if (val->type == REDIS_REPLY_STRING &&
                    rc_wire_peek((const unsigned char *)val->str, val->len, &e) == RC_OK && !e.sealed &&
                    e.kind == RC_KIND_RESULT && e.rank == t.fail_ranks[i] && e.status != 0) {
                    (void)add_note(&errs, &nerr, &caperr, t.fail_ranks[i], e.payload,
                                   e.payload_len > 400 ? 400 : (size_t)e.payload_len);
                    break;
                }
            }
        }
        if (r) freeReplyObject(r);
        r = NULL;
    }
    if (nerr)
        qsort(errs, nerr, sizeof *errs, cmp_note);
    /* live workers: to name the workers of done tasks, and to tell a
       running task whose worker is gone */
    snap ws;
    memset(&ws, 0, sizeof ws);
    ws.now = now;
    ws.wall = cli_wall_ms();
    if (load_workers(&c, &ws) != 0) {
        fprintf(stderr, "redcoll tasks: reading the worker registry: %s\n", c.conn->err);
        snap_free(&ws);
        goto out;
    }
    for (size_t i = 0; i < ws.nw; i++)
        (void)intern(&live, ws.w[i].consumer, strlen(ws.w[i].consumer));
    snap_free(&ws);
    uint64_t count[5] = {0};
    for (uint64_t k = 0; k < j.ntasks; k++)
        count[t.rows[k].state]++;
    if (v.o.json) {
        printf("{\"job\":\"%s\",\"queue\":", j.hex);
        cli_json_str(stdout, c.queue, strlen(c.queue));
        printf(",\"kernel\":");
        cli_json_str(stdout, j.kernel, strlen(j.kernel));
        printf(",\"tasks\":%llu,\"verified\":%s,\"counts\":{\"done\":%llu,\"running\":%llu,\"queued\":%llu,"
               "\"failed\":%llu,\"missing\":%llu},\"rejects\":%llu,\"items\":[",
               (unsigned long long)j.ntasks, j.verified < 0 ? "null" : j.verified ? "true" : "false",
               (unsigned long long)count[T_DONE], (unsigned long long)count[T_RUNNING],
               (unsigned long long)count[T_QUEUED], (unsigned long long)count[T_FAILED],
               (unsigned long long)count[T_MISSING], (unsigned long long)t.rejects);
    } else {
        printf("job %s (kernel %s, %llu tasks) in queue %s: %llu done, %llu running, %llu queued, %llu failed, "
               "%llu missing%s\n",
               j.hex, j.kernel, (unsigned long long)j.ntasks, c.queue, (unsigned long long)count[T_DONE],
               (unsigned long long)count[T_RUNNING], (unsigned long long)count[T_QUEUED],
               (unsigned long long)count[T_FAILED], (unsigned long long)count[T_MISSING],
               j.verified < 0 ? " (no key: not verified)" : j.verified ? "" : " (descriptor does NOT verify)");
        if (t.rejects)
            printf("%llu rejection notice(s): workers could not authenticate tasks of this job\n",
                   (unsigned long long)t.rejects);
        printf("%8s  %-8s %8s  %-40s %s\n", "RANK", "STATE", "ATTEMPT", "WORKER", "DETAIL");
    }
    size_t shown = 0;
    for (uint64_t k = 0; k < j.ntasks; k++) {
        const trow *row = &t.rows[k];
        if (want >= 0 && row->state != want)
            continue;
        char worker[200] = "", widhex[17] = "";
        long pid = -1;
        int alive = 0;
        if (row->state == T_RUNNING && row->who >= 0) {
            snprintf(worker, sizeof worker, "%s", who.v[row->who]);
            for (size_t i = 0; i < live.n && !alive; i++)
                alive = strcmp(live.v[i], worker) == 0;
            pid = consumer_pid(worker);
            uint64_t wid = consumer_wid(worker);
            if (wid)
                rc_hex64(wid, widhex);
        } else if ((row->state == T_DONE || row->state == T_FAILED) && row->who >= 0) {
            rc_hex64(t.wids[row->who], widhex);
            for (size_t i = 0; i < live.n; i++)
                if (consumer_wid(live.v[i]) == t.wids[row->who])
                    snprintf(worker, sizeof worker, "%s", live.v[i]);
            pid = worker[0] ? consumer_pid(worker) : -1;
        }
        const char *err = row->state == T_FAILED ? note_find(errs, nerr, k) : NULL;
        const char *last = row->state != T_DONE ? note_find(why, nwhy, k) : NULL;
        long long ago = (row->state == T_DONE || row->state == T_FAILED) ? now - row->t : -1;
        if (v.o.json) {
            printf("%s\n{\"rank\":%llu,\"state\":\"%s\"", shown ? "," : "", (unsigned long long)k,
                   tstate_name[row->state]);
            if (worker[0]) {
                printf(",\"worker\":");
                cli_json_str(stdout, worker, strlen(worker));
            }
            if (widhex[0])
                printf(",\"worker_id\":\"%s\"", widhex);
            if (pid > 0)
                printf(",\"pid\":%ld", pid);
            if (row->state == T_RUNNING)
                printf(",\"deliveries\":%u,\"idle_ms\":%lld,\"worker_alive\":%s", (unsigned)row->attempt, row->t,
                       alive ? "true" : "false");
            if (row->state == T_DONE || row->state == T_FAILED)
                printf(",\"attempt\":%u,\"ago_ms\":%lld", (unsigned)row->attempt, ago < 0 ? 0 : ago);
            if (err) {
                printf(",\"error\":");
                cli_json_str(stdout, err, strlen(err));
            }
            if (last) {
                printf(",\"last_error\":");
                cli_json_str(stdout, last, strlen(last));
            }
            printf("}");
        } else {
            char detail[600] = "", attempt[16] = "-", d[32];
            if (row->state == T_RUNNING) {
                cli_fmt_dur(d, sizeof d, row->t);
                snprintf(detail, sizeof detail, "lease renewed %s ago%s", d,
                         alive ? "" : "; its worker is gone: retried once the lease lapses");
                snprintf(attempt, sizeof attempt, "%u", (unsigned)row->attempt);
            } else if (row->state == T_DONE || row->state == T_FAILED) {
                cli_fmt_dur(d, sizeof d, ago < 0 ? 0 : ago);
                snprintf(detail, sizeof detail, "%s ago%s%s", d, err ? ": " : "", err ? err : "");
                snprintf(attempt, sizeof attempt, "%u", (unsigned)row->attempt);
            }
            if (last) {
                size_t l = strlen(detail);
                snprintf(detail + l, sizeof detail - l, "%slast failure: %s", l ? "; " : "", last);
            }
            if (!worker[0] && widhex[0])
                snprintf(worker, sizeof worker, "worker %s", widhex);
            printf("%8llu  %-8s %8s  %-40s %s\n", (unsigned long long)k, tstate_name[row->state], attempt,
                   worker[0] ? worker : "-", detail);
        }
        shown++;
    }
    if (v.o.json)
        printf("%s]}\n", shown ? "\n" : "");
    rc = CLI_OK;
out:
    if (r) freeReplyObject(r);
    free(p);
    names_free(&who);
    names_free(&live);
    for (size_t i = 0; i < nwhy; i++)
        free(why[i].text);
    for (size_t i = 0; i < nerr; i++)
        free(errs[i].text);
    free(why);
    free(errs);
    free(t.rows);
    free(t.wids);
    free(t.fail_ids);
    free(t.fail_ranks);
    cli_close(&c);
    return rc;
}

/* ------------------------------------------------------------------ */
/* cancel                                                               */

static const char cancel_help[] =
    "usage: redcoll cancel JOB [--queue Q] [--key-file F] [--json] [--redis URL]\n"
    "Cancel job JOB (16 hex digits) by id: remove its queued tasks, descriptor,\n"
    "results and failure notes, leaving only its authenticated end marker\n"
    "rc:{Q}:job:JOB:end (\"cancelled\"), so workers drop what they still hold of it\n"
    "and its master's wait returns RC_ECANCELED (pi exits 130).  Needs the key:\n"
    "workers and masters act only on an authenticated end marker.\n"
    "Exit status 1 if the job is not found (already collected, cancelled or\n"
    "expired) or its descriptor does not verify with the key.\n\n"
    CLI_HELP_CONN CLI_HELP_QUEUE
    "  --key-file F      the shared key (or REDCOLL_KEY_FILE)\n"
    "  --json            print {\"job\":..., \"queue\":..., \"cancelled\":true, \"kernel\":...,\n"
    "                    \"tasks\":N}\n"
    "  --help            this text\n\n" CLI_HELP_ENV;

int cmd_cancel(int argc, char **argv)
{
    view_opts v;
    int st = parse_args(argc, argv, cancel_help, 0, 1, &v);
    if (st >= 0)
        return st;
    uint64_t jid;
    if (cli_parse_jobid(v.arg, &jid) != 0) {
        fprintf(stderr, "redcoll cancel: '%s' is not a job id (16 hex digits)\n", v.arg);
        return CLI_USAGE;
    }
    cli_conn c;
    if ((st = cli_open(&c, "cancel", &v.o, 1)) != CLI_OK)
        return st;
    char hex[17];
    rc_hex64(jid, hex);
    rc_job *job = NULL;
    rc_status rs = rc_job_attach(c.ctx, hex, &job);
    if (rs != RC_OK) {
        char what[80] = "";
        if (rs == RC_ENOTFOUND && rc_tombstone_check(c.conn, &c.ctx->keys, c.queue, jid, 0, what, sizeof what) == 1)
            fprintf(stderr, "redcoll cancel: job %s in queue '%s' has already ended (%s)\n", hex, c.queue, what);
        else
            fprintf(stderr, "redcoll cancel: %s: %s\n", rc_strerror(rs), rc_ctx_errmsg(c.ctx));
        cli_close(&c);
        return rs == RC_EINVAL ? CLI_USAGE : CLI_FAIL;
    }
    char kernel[RC_KERNEL_MAX + 1];
    snprintf(kernel, sizeof kernel, "%s", rc_job_kernel(job));
    uint64_t ntasks = rc_job_ntasks(job);
    rs = rc_job_cancel(job);
    rc_job_destroy(job);
    if (rs != RC_OK) {
        fprintf(stderr, "redcoll cancel: %s: %s\n", rc_strerror(rs), rc_ctx_errmsg(c.ctx));
        cli_close(&c);
        return CLI_FAIL;
    }
    if (v.o.json) {
        printf("{\"job\":\"%s\",\"queue\":", hex);
        cli_json_str(stdout, c.queue, strlen(c.queue));
        printf(",\"cancelled\":true,\"kernel\":");
        cli_json_str(stdout, kernel, strlen(kernel));
        printf(",\"tasks\":%llu}\n", (unsigned long long)ntasks);
    }
    fprintf(stderr, "redcoll cancel: job %s (kernel %s, %llu tasks) in queue '%s' cancelled\n", hex, kernel,
            (unsigned long long)ntasks, c.queue);
    cli_close(&c);
    return CLI_OK;
}
