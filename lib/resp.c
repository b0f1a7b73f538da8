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
 * and, unless an application installs its own allocator, in 1.x).  Replies
 * are hostile input: an array's element table grows as elements arrive, so
 * a header announcing 2^31 elements costs nothing until they come; lengths,
 * counts, nesting and line lengths are bounded; integers are parsed strictly;
 * every string is NUL-terminated at len. */
#include "internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define RESP_BUF ((size_t)256 << 10) /* the buffer kept between replies */
#define RESP_LINE_MAX ((size_t)1 << 20) /* status, error and integer lines */
#define RESP_BULK_MAX ((long long)512 << 20) /* Redis' proto-max-bulk-len */
#define RESP_ELEM_MAX ((long long)1 << 28)
#define RESP_DEPTH 16

typedef struct resp_frame {
    redisReply *arr;
    size_t want; /* elements announced */
    size_t cap;  /* room in arr->element */
} resp_frame;

/* Large strings handed back (rc_resp_recycle) for the next ones: a master
   reducing 1 MiB results otherwise gets a fresh mapping per result, and the
   kernel's page faults and zeroing cost more than the MAC check. */
#define RESP_POOL 8
#define RESP_POOL_BYTES ((size_t)32 << 20)

struct rc_resp {
    struct { char *p; size_t cap; } pool[RESP_POOL];
    int npool;
    size_t pool_bytes;
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
    free(p->buf);
    free(p);
}

/* Keep buf (cap bytes, from malloc) for a later large string if there is
 * room: 1 if kept, 0 if the caller still owns it. */
static int pool_put(rc_resp *p, char *buf, size_t cap)
{
    if (cap < RC_RESP_DIRECT || p->npool == RESP_POOL || p->pool_bytes + cap > RESP_POOL_BYTES)
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

static void recycle(rc_resp *p, redisReply *r, int depth)
{
    if (r->type == REDIS_REPLY_ARRAY && depth < RESP_DEPTH) {
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i])
                recycle(p, r->element[i], depth + 1);
        return;
    }
    /* len + 1: what the string was allocated with, at least */
    if (r->type != REDIS_REPLY_STRING || !r->str || r->len < RC_RESP_DIRECT || !pool_put(p, r->str, r->len + 1))
        return;
    r->str = NULL; /* freeReplyObject skips it now */
    r->len = 0;
}

void rc_resp_recycle(rc_resp *p, redisReply *r)
{
    if (p && r)
        recycle(p, r, 0);
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
    return malloc(n);
}

size_t rc_resp_buffered(const rc_resp *p)
{
    return p->len - p->pos;
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

static redisReply *new_reply(int type)
{
    redisReply *r = calloc(1, sizeof *r);
    if (r)
        r->type = type;
    return r;
}

static redisReply *new_string(int type, const char *s, size_t n)
{
    redisReply *r = new_reply(type);
    if (!r)
        return NULL;
    if (!(r->str = malloc(n + 1))) {
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
            size_t ncap = f->cap ? f->cap * 2 : 8;
            if (ncap > f->want)
                ncap = f->want;
            redisReply **ne = realloc(f->arr->element, ncap * sizeof *ne);
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
                if (!(item = new_string(*s == '+' ? REDIS_REPLY_STATUS : REDIS_REPLY_ERROR, ls, (size_t)(cr - ls))))
                    NOMEM("out of memory reading a Redis reply");
                p->pos += hdr;
                break;
            case ':':
                if (parse_ll(ls, cr, LLONG_MIN, LLONG_MAX, &v) != 0)
                    BAD("Redis protocol error: bad integer reply");
                if (!(item = new_reply(REDIS_REPLY_INTEGER)))
                    NOMEM("out of memory reading a Redis reply");
                item->integer = v;
                p->pos += hdr;
                break;
            case '$': {
                if (parse_ll(ls, cr, -1, RESP_BULK_MAX, &v) != 0)
                    BAD("Redis protocol error: bad string length");
                if (v < 0) {
                    if (!(item = new_reply(REDIS_REPLY_NIL)))
                        NOMEM("out of memory reading a Redis reply");
                    p->pos += hdr;
                    break;
                }
                size_t n = (size_t)v, avail = p->len - p->pos - hdr;
                if (avail >= n + 2) {
                    if (s[hdr + n] != '\r' || s[hdr + n + 1] != '\n')
                        BAD("Redis protocol error: a %zu-byte string does not end in CRLF", n);
                    if (!(item = new_string(REDIS_REPLY_STRING, s + hdr, n)))
                        NOMEM("out of memory for a %zu-byte Redis reply", n);
                    p->pos += hdr + n + 2;
                    break;
                }
                if (n < RC_RESP_DIRECT)
                    return 0; /* fits in the buffer: wait for the rest there */
                /* its own allocation now, the rest of it straight from the socket */
                redisReply *b = new_reply(REDIS_REPLY_STRING);
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
                    if (!(item = new_reply(REDIS_REPLY_NIL)))
                        NOMEM("out of memory reading a Redis reply");
                    break;
                }
                if (!(item = new_reply(REDIS_REPLY_ARRAY)))
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
