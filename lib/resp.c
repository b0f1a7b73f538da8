/* resp.c - the reader of Redis replies (RESP2): bytes in, hiredis reply trees
 * out, without copying large strings.
 *
 * Why not hiredis' reader: it appends every byte read to its own buffer,
 * then copies each bulk string out of it into a fresh allocation, so a 1 MiB
 * result crossed memory three times (socket -> read buffer -> reader buffer
 * -> string) before its MAC was even checked; on the master of a reduce that
 * was a quarter of its time.  Here a bulk string of RC_RESP_DIRECT bytes or
 * more gets its final allocation as soon as its header is read, and the rest
 * of it goes from the socket straight into that allocation: one copy, by the
 * kernel.  Smaller replies are parsed out of one buffer that is kept between
 * replies.
 *
 * The parser is pure: conn.c asks where the next bytes should go
 * (rc_resp_want), reads into that space, and reports how many arrived
 * (rc_resp_got); rc_resp_parse then yields whole replies.  The state between
 * calls is a stack of the arrays being filled and at most one half-received
 * large string, so a reply can arrive in any number of pieces.
 *
 * The trees are plain redisReply objects, allocated with malloc/calloc in
 * the layout of the hiredis header this file is compiled against, so callers
 * free them with freeReplyObject as before (which frees with free() in 0.14
 * and, unless an application installs its own allocator, in 1.x), or hand
 * them back whole with rc_resp_release to build later replies.  Replies are
 * hostile input: an array's element table grows as elements arrive, so a
 * header announcing 2^31 elements costs one 4 KiB table until they come; lengths,
 * counts, nesting and line lengths are bounded; integers are parsed strictly;
 * every string is NUL-terminated at len. */
#include "internal.h"

#include <limits.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define RESP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RESP_ASAN 1
#endif
#endif
#ifdef RESP_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define RESP_BUF ((size_t)256 << 10) /* the buffer kept between replies */
#define RESP_LINE_MAX ((size_t)1 << 20) /* status, error and integer lines */
#define RESP_BULK_MAX ((long long)512 << 20) /* Redis' proto-max-bulk-len */
#define RESP_ELEM_MAX ((long long)1 << 28)
#define RESP_DEPTH 16
#define RESP_FIRST_TABLE ((size_t)512) /* 4 KiB: the largest pooled class */

typedef struct resp_frame {
    redisReply *arr;
    size_t want; /* elements announced */
    size_t cap;  /* room in arr->element */
} resp_frame;

/* Large strings handed back (rc_resp_release) for the next ones: a master
   reducing 1 MiB results otherwise gets a fresh mapping per result, and the
   kernel's page faults and zeroing cost more than the MAC check.  One
   string larger than the whole budget may stay too, alone (results of
   64 MiB: 0.6 ms of faults per MiB here, a third of the master's time),
   until a large string it does not fit comes. */
#define RESP_POOL 8
#define RESP_POOL_BYTES ((size_t)32 << 20)

/* The small parts of replies handed back whole (rc_resp_release): nodes,
   and strings and element tables in power-of-two classes of 32 B to 4 KiB.
   A worker's take of 64 entries is some 450 of them, and a master's submit
   of 256 tasks 800 (+QUEUED and ids); through malloc they were a fifth of
   both processes' instructions, most of it in _int_malloc and _int_free
   once the trees outgrew the per-thread cache.  A part goes into a class
   only if malloc_usable_size says it holds the whole class (so a part
   allocated elsewhere is merely freed), and while pooled it is poisoned
   for AddressSanitizer, which then still sees a use after release. */
#define RESP_SMALL_MIN ((size_t)32)
#define RESP_CLASSES 8
#define RESP_SMALL_BYTES ((size_t)8 << 20) /* what the pools may hold: a master's reply of 16k results */

typedef struct resp_stack { void **v; size_t n, cap; } resp_stack;

struct rc_resp {
    struct { char *p; size_t cap; } pool[RESP_POOL];
    int npool;
    size_t pool_bytes;
    resp_stack nodes;                 /* pooled redisReply nodes */
    resp_stack small[RESP_CLASSES];   /* pooled buffers of RESP_SMALL_MIN << class bytes */
    size_t small_bytes;               /* held by both */
    char *buf;
    size_t pos, len, cap;
    resp_frame stack[RESP_DEPTH];
    int depth;
    redisReply *bulk; /* large string being received in place */
    size_t bulk_have;
};

rc_resp *rc_resp_new(void)
{
    return calloc(1, sizeof(rc_resp));
}

void rc_resp_reset(rc_resp *p)
{
    if (!p)
        return;
    /* an array joins its parent only when complete, so each frame and the
       half-received string own their parts alone */
    for (int i = 0; i < p->depth; i++)
        freeReplyObject(p->stack[i].arr);
    if (p->bulk)
        freeReplyObject(p->bulk);
    p->depth = 0;
    p->bulk = NULL;
    p->bulk_have = 0;
    p->pos = p->len = 0;
    if (p->cap > RESP_BUF) {
        free(p->buf);
        p->buf = NULL;
        p->cap = 0;
    }
}

void rc_resp_free(rc_resp *p)
{
    if (!p)
        return;
    rc_resp_reset(p);
    for (int i = 0; i < p->npool; i++)
        free(p->pool[i].p);
    for (size_t i = 0; i < p->nodes.n; i++) {
        UNPOISON(p->nodes.v[i], sizeof(redisReply));
        free(p->nodes.v[i]);
    }
    free(p->nodes.v);
    for (int c = 0; c < RESP_CLASSES; c++) {
        for (size_t i = 0; i < p->small[c].n; i++) {
            UNPOISON(p->small[c].v[i], RESP_SMALL_MIN << c);
            free(p->small[c].v[i]);
        }
        free(p->small[c].v);
    }
    free(p->buf);
    free(p);
}

/* Keep buf (cap bytes, from malloc) for a later large string if there is
 * room: 1 if kept, 0 if the caller still owns it. */
static int pool_put(rc_resp *p, char *buf, size_t cap)
{
    if (cap < RC_RESP_DIRECT || p->npool == RESP_POOL ||
        (p->pool_bytes + cap > RESP_POOL_BYTES && !(p->npool == 0 && cap > RESP_POOL_BYTES)))
        return 0;
    p->pool[p->npool].p = buf;
    p->pool[p->npool].cap = cap;
    p->npool++;
    p->pool_bytes += cap;
    return 1;
}

/* Take buf (cap bytes, from malloc) into the pool, or free it. */
void rc_resp_give(rc_resp *p, char *buf, size_t cap)
{
    if (buf && !(p && pool_put(p, buf, cap)))
        free(buf);
}

/* The class holding n bytes, or -1 if none does. */
static int small_class(size_t n)
{
    int c = 0;
    for (size_t size = RESP_SMALL_MIN; size < n; size <<= 1)
        if (++c == RESP_CLASSES)
            return -1;
    return c;
}

/* Pool b (size bytes, poisoned while pooled) within the budget: 1, or 0
   if the caller must free it. */
static int stack_push(rc_resp *p, resp_stack *st, void *b, size_t size)
{
    if (p->small_bytes + size > RESP_SMALL_BYTES)
        return 0;
    if (st->n == st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 256;
        void **nv = realloc(st->v, nc * sizeof *nv);
        if (!nv)
            return 0;
        st->v = nv;
        st->cap = nc;
    }
    POISON(b, size);
    st->v[st->n++] = b;
    p->small_bytes += size;
    return 1;
}

static void *stack_pop(rc_resp *p, resp_stack *st, size_t size)
{
    if (!st->n)
        return NULL;
    void *b = st->v[--st->n];
    p->small_bytes -= size;
    UNPOISON(b, size);
    return b;
}

/* n bytes: a pooled buffer of n's class, or a new one of the whole class
   (so that it can be pooled when released) */
static void *small_alloc(rc_resp *p, size_t n)
{
    int c = small_class(n);
    if (c < 0)
        return malloc(n);
    void *b = stack_pop(p, &p->small[c], RESP_SMALL_MIN << c);
    return b ? b : malloc(RESP_SMALL_MIN << c);
}

/* Pool or free b, which holds at least n bytes. */
static void small_free(rc_resp *p, void *b, size_t n)
{
    int c = small_class(n ? n : 1);
    if (!(c >= 0 && malloc_usable_size(b) >= (RESP_SMALL_MIN << c) &&
          stack_push(p, &p->small[c], b, RESP_SMALL_MIN << c)))
        free(b);
}

static void release(rc_resp *p, redisReply *r, int depth)
{
    if (r->type == REDIS_REPLY_ARRAY && r->element) {
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]) {
                if (depth < RESP_DEPTH)
                    release(p, r->element[i], depth + 1);
                else
                    freeReplyObject(r->element[i]);
            }
        small_free(p, r->element, r->elements * sizeof *r->element);
    } else if ((r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR) &&
               r->str) {
        if (r->len < RC_RESP_DIRECT)
            small_free(p, r->str, r->len + 1);
        else if (!pool_put(p, r->str, r->len + 1))
            free(r->str);
    } else if (r->str) { /* hiredis 1.x types that carry a string (double, verbatim, big number) */
        free(r->str);
    }
    if (!stack_push(p, &p->nodes, r, sizeof *r))
        free(r);
}

void rc_resp_release(rc_resp *p, redisReply *r)
{
    if (!r)
        return;
    if (!p)
        freeReplyObject(r);
    else
        release(p, r, 0);
}

/* n bytes for a large string: a recycled buffer of about that size, or new */
static char *big_alloc(rc_resp *p, size_t n)
{
    for (int i = 0; i < p->npool; i++)
        if (p->pool[i].cap >= n && p->pool[i].cap / 2 <= n) {
            char *b = p->pool[i].p;
            p->pool_bytes -= p->pool[i].cap;
            p->pool[i] = p->pool[--p->npool];
            return b;
        }
    if (p->pool_bytes > RESP_POOL_BYTES) { /* the one oversized string, of another size: not kept for ever */
        free(p->pool[0].p);
        p->npool = 0;
        p->pool_bytes = 0;
    }
    return malloc(n);
}

size_t rc_resp_buffered(const rc_resp *p)
{
    return p->len - p->pos;
}

int rc_resp_between(const rc_resp *p)
{
    return !p || (p->depth == 0 && !p->bulk && p->pos == p->len);
}

int rc_resp_want(rc_resp *p, char **dst, size_t *room)
{
    if (p->bulk && p->bulk_have < p->bulk->len) {
        *dst = p->bulk->str + p->bulk_have;
        *room = p->bulk->len - p->bulk_have;
        return 0;
    }
    if (p->pos == p->len)
        p->pos = p->len = 0;
    if (p->pos > 0 && p->cap - p->len < p->cap / 4) {
        memmove(p->buf, p->buf + p->pos, p->len - p->pos);
        p->len -= p->pos;
        p->pos = 0;
    }
    if (p->len == p->cap) {
        /* only a line or small string longer than the buffer gets here; the
           parser bounds both, so this cannot grow without limit */
        size_t ncap = p->cap ? p->cap * 2 : RESP_BUF;
        char *nb = realloc(p->buf, ncap);
        if (!nb)
            return -1;
        p->buf = nb;
        p->cap = ncap;
    }
    *dst = p->buf + p->len;
    *room = p->cap - p->len;
    return 0;
}

void rc_resp_got(rc_resp *p, size_t n)
{
    if (p->bulk && p->bulk_have < p->bulk->len)
        p->bulk_have += n;
    else
        p->len += n;
}

size_t rc_resp_feed(rc_resp *p, const void *buf, size_t n)
{
    char *dst;
    size_t room;
    if (rc_resp_want(p, &dst, &room) != 0 || room == 0)
        return 0;
    size_t m = n < room ? n : room;
    memcpy(dst, buf, m);
    rc_resp_got(p, m);
    return m;
}

static redisReply *new_reply(rc_resp *p, int type)
{
    redisReply *r = stack_pop(p, &p->nodes, sizeof *r);
    if (r)
        memset(r, 0, sizeof *r);
    else if (!(r = calloc(1, sizeof *r)))
        return NULL;
    r->type = type;
    return r;
}

static redisReply *new_string(rc_resp *p, int type, const char *s, size_t n)
{
    redisReply *r = new_reply(p, type);
    if (!r)
        return NULL;
    if (!(r->str = small_alloc(p, n + 1))) {
        free(r);
        return NULL;
    }
    if (n)
        memcpy(r->str, s, n);
    r->str[n] = '\0';
    r->len = n;
    return r;
}

/* A decimal integer filling [s, e) exactly, within [lo, hi]. */
static int parse_ll(const char *s, const char *e, long long lo, long long hi, long long *out)
{
    int neg = 0;
    if (s < e && *s == '-') {
        neg = 1;
        s++;
    }
    if (s == e || e - s > 19)
        return -1;
    unsigned long long v = 0;
    for (; s < e; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned long long)(*s - '0'); /* 19 digits cannot wrap */
    }
    if (neg ? v > (unsigned long long)LLONG_MAX + 1 : v > (unsigned long long)LLONG_MAX)
        return -1;
    long long x = neg ? (v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v) : (long long)v;
    if (x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

#define BAD(...) do { snprintf(why, whylen, __VA_ARGS__); return -1; } while (0)
#define NOMEM(...) do { snprintf(why, whylen, __VA_ARGS__); return -2; } while (0)

/* Put a finished item into the array on top of the stack (or hand it out). */
static int place(rc_resp *p, redisReply *item, redisReply **out, char *why, size_t whylen)
{
    for (;;) {
        if (p->depth == 0) {
            *out = item;
            return 1;
        }
        resp_frame *f = &p->stack[p->depth - 1];
        if (f->arr->elements == f->cap) {
            /* the first table from the pool, as large as the array up to
               RESP_FIRST_TABLE entries; beyond that, doubling */
            size_t ncap = f->cap ? f->cap * 2 : RESP_FIRST_TABLE;
            if (ncap > f->want)
                ncap = f->want;
            redisReply **ne = f->cap ? realloc(f->arr->element, ncap * sizeof *ne) : small_alloc(p, ncap * sizeof *ne);
            if (!ne) {
                freeReplyObject(item);
                NOMEM("out of memory for a %zu-element reply", f->want);
            }
            f->arr->element = ne;
            f->cap = ncap;
        }
        f->arr->element[f->arr->elements++] = item;
        if (f->arr->elements < f->want)
            return 0;
        item = f->arr;
        p->depth--;
    }
}

int rc_resp_parse(rc_resp *p, redisReply **out, char *why, size_t whylen)
{
    *out = NULL;
    for (;;) {
        redisReply *item = NULL;
        if (p->bulk) {
            if (p->bulk_have < p->bulk->len || p->len - p->pos < 2)
                return 0;
            if (p->buf[p->pos] != '\r' || p->buf[p->pos + 1] != '\n')
                BAD("Redis protocol error: a %zu-byte string does not end in CRLF", p->bulk->len);
            p->pos += 2;
            item = p->bulk;
            p->bulk = NULL;
        }
        if (!item) {
            if (p->pos == p->len)
                return 0;
            const char *s = p->buf + p->pos, *end = p->buf + p->len;
            const char *cr = memchr(s, '\r', (size_t)(end - s));
            if (!cr || cr + 1 == end) {
                if ((size_t)(end - s) > RESP_LINE_MAX)
                    BAD("Redis protocol error: a reply line longer than %zu bytes", RESP_LINE_MAX);
                return 0;
            }
            if (cr[1] != '\n')
                BAD("Redis protocol error: CR without LF");
            const char *ls = s + 1; /* the line after the type byte */
            size_t hdr = (size_t)(cr + 2 - s);
            long long v;
            switch (*s) {
            case '+':
            case '-':
                if (!(item = new_string(p, *s == '+' ? REDIS_REPLY_STATUS : REDIS_REPLY_ERROR, ls, (size_t)(cr - ls))))
                    NOMEM("out of memory reading a Redis reply");
                p->pos += hdr;
                break;
            case ':':
                if (parse_ll(ls, cr, LLONG_MIN, LLONG_MAX, &v) != 0)
                    BAD("Redis protocol error: bad integer reply");
                if (!(item = new_reply(p, REDIS_REPLY_INTEGER)))
                    NOMEM("out of memory reading a Redis reply");
                item->integer = v;
                p->pos += hdr;
                break;
            case '$': {
                if (parse_ll(ls, cr, -1, RESP_BULK_MAX, &v) != 0)
                    BAD("Redis protocol error: bad string length");
                if (v < 0) {
                    if (!(item = new_reply(p, REDIS_REPLY_NIL)))
                        NOMEM("out of memory reading a Redis reply");
                    p->pos += hdr;
                    break;
                }
                size_t n = (size_t)v, avail = p->len - p->pos - hdr;
                if (avail >= n + 2) {
                    if (s[hdr + n] != '\r' || s[hdr + n + 1] != '\n')
                        BAD("Redis protocol error: a %zu-byte string does not end in CRLF", n);
                    if (!(item = new_string(p, REDIS_REPLY_STRING, s + hdr, n)))
                        NOMEM("out of memory for a %zu-byte Redis reply", n);
                    p->pos += hdr + n + 2;
                    break;
                }
                if (n < RC_RESP_DIRECT)
                    return 0; /* fits in the buffer: wait for the rest there */
                /* its own allocation now, the rest of it straight from the socket */
                redisReply *b = new_reply(p, REDIS_REPLY_STRING);
                if (!b || !(b->str = big_alloc(p, n + 1))) {
                    free(b);
                    NOMEM("out of memory for a %zu-byte Redis reply", n);
                }
                size_t take = avail < n ? avail : n;
                memcpy(b->str, s + hdr, take);
                b->str[n] = '\0';
                b->len = n;
                p->pos += hdr + take;
                p->bulk = b;
                p->bulk_have = take;
                continue;
            }
            case '*': {
                if (parse_ll(ls, cr, -1, RESP_ELEM_MAX, &v) != 0)
                    BAD("Redis protocol error: bad array length");
                p->pos += hdr;
                if (v < 0) {
                    if (!(item = new_reply(p, REDIS_REPLY_NIL)))
                        NOMEM("out of memory reading a Redis reply");
                    break;
                }
                if (!(item = new_reply(p, REDIS_REPLY_ARRAY)))
                    NOMEM("out of memory reading a Redis reply");
                if (v == 0)
                    break;
                if (p->depth == RESP_DEPTH) {
                    freeReplyObject(item);
                    BAD("Redis protocol error: replies nested deeper than %d", RESP_DEPTH);
                }
                p->stack[p->depth].arr = item;
                p->stack[p->depth].want = (size_t)v;
                p->stack[p->depth].cap = 0;
                p->depth++;
                continue;
            }
            default:
                BAD("Redis protocol error: unknown reply type byte 0x%02x", (unsigned char)*s);
            }
        }
        int r = place(p, item, out, why, whylen);
        if (r != 0)
            return r;
    }
}
