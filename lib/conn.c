/* conn.c - one hiredis connection with connect and command timeouts, AUTH,
 * SELECT and transparent reconnection, and the two things hiredis does not
 * do cheaply: sending large payloads and fire-and-forget commands.
 *
 * Written against the API common to hiredis 0.14 (Debian 12) and 1.x:
 * redisConnect*WithTimeout, redisSetTimeout, redisAppendCommandArgv,
 * redisBufferWrite and the reader (redisReaderFeed/GetReply).  A connection
 * whose socket failed is useless in hiredis (the context keeps its error),
 * so on any I/O error the context is freed and the next command reconnects;
 * callers decide how long to keep retrying.  Every command has a timeout, so
 * a dead peer never blocks a worker or master forever.
 *
 * Replies are read here, not by redisGetReply: resp.c parses them out of a
 * 256 KiB buffer kept between replies and receives large strings straight
 * into their final allocation (hiredis reads 16 KiB per read(2) and copies
 * every string twice).  hiredis' own reader only sees the AUTH and SELECT
 * replies of a fresh connection.
 * Large arguments are written with sendmsg straight from the caller's memory
 * (rc_pipe), with MSG_NOSIGNAL; what hiredis buffers goes out through its
 * own write(2), with SIGPIPE blocked around it (rc_sigpipe_hold).  Both paths
 * write to the socket themselves, which hiredis 1.x built with TLS would
 * not allow: redcoll does not use in-process TLS. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>


static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Copy s[0..n) into out, undoing %XX escapes (passwords may need them). */
static int pct_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = h * 16 + l;
            if (c == 0)
                return -1; /* a NUL would silently cut the password short */
            i += 2;
        }
        if (o + 1 >= outlen) return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

static int parse_uint(const char *s, size_t n, long max, long *out)
{
    if (n == 0 || n > 10) return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max) return -1;
    *out = v;
    return 0;
}

/* The URL as it may appear in messages: the password replaced by "***"
   (errors end up in logs, which must not undo REDCOLL_URL_FILE). */
static void redact(const char *s, char *out, size_t n)
{
    const char *scheme = strstr(s, "://");
    const char *start = scheme ? scheme + 3 : s;
    const char *slash = strchr(start, '/');
    const char *at = NULL;
    for (const char *x = start; *x && (!slash || x < slash); x++)
        if (*x == '@') at = x;
    if (!at) {
        snprintf(out, n, "%s", s);
        return;
    }
    const char *colon = memchr(start, ':', (size_t)(at - start));
    if (colon)
        snprintf(out, n, "%.*s:***%s", (int)(colon - s), s, at);
    else
        snprintf(out, n, "%.*s***%s", (int)(start - s), s, at);
}

rc_status rc_url_parse(const char *raw, rc_url *u, char *why, size_t whylen)
{
    char s_shown[600];
    const char *s = raw;
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (!raw || !*raw) {
        snprintf(why, whylen, "empty Redis URL");
        return RC_EINVAL;
    }
    redact(raw, s_shown, sizeof s_shown);
    if (strncmp(s, "unix://", 7) == 0) {
        const char *p = s + 7, *q = strchr(p, '?');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 0 || p[0] != '/' || n >= sizeof u->path) {
            snprintf(why, whylen, "bad unix socket URL '%s': expected unix:///absolute/path[?db=N]", s_shown);
            return RC_EINVAL;
        }
        memcpy(u->path, p, n);
        u->is_unix = 1;
        if (q) {
            long db;
            if (strncmp(q, "?db=", 4) != 0 || parse_uint(q + 4, strlen(q + 4), 1000000, &db) != 0) {
                snprintf(why, whylen, "bad unix socket URL '%s': only ?db=N is understood", s_shown);
                return RC_EINVAL;
            }
            u->db = (int)db;
        }
        return RC_OK;
    }
    if (strncmp(s, "redis://", 8) != 0) {
        snprintf(why, whylen, "bad Redis URL '%s': expected redis://[user:pass@]host[:port][/db] or unix:///path", s_shown);
        return RC_EINVAL;
    }
    const char *p = s + 8;
    const char *end = p + strlen(p);
    const char *slash = strchr(p, '/');
    const char *hostend = slash ? slash : end;
    const char *at = NULL;
    for (const char *x = p; x < hostend; x++)
        if (*x == '@') at = x;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *uend = colon ? colon : at;
        if (pct_decode(p, (size_t)(uend - p), u->user, sizeof u->user) != 0 ||
            (colon && pct_decode(colon + 1, (size_t)(at - colon - 1), u->pass, sizeof u->pass) != 0)) {
            snprintf(why, whylen, "bad credentials in Redis URL (too long or bad %%-escape)");
            return RC_EINVAL;
        }
        if (!colon) { /* redis://password@host is the common short form */
            memcpy(u->pass, u->user, sizeof u->pass < sizeof u->user ? sizeof u->pass : sizeof u->user);
            u->user[0] = '\0';
        }
        p = at + 1;
    }
    const char *hs = p, *he, *portp = NULL;
    if (*p == '[') { /* [ipv6]:port */
        const char *rb = memchr(p, ']', (size_t)(hostend - p));
        if (!rb) {
            snprintf(why, whylen, "bad Redis URL: unterminated '[' in host");
            return RC_EINVAL;
        }
        hs = p + 1;
        he = rb;
        if (rb + 1 < hostend) {
            if (rb[1] != ':') {
                snprintf(why, whylen, "bad Redis URL: junk after ']'");
                return RC_EINVAL;
            }
            portp = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(hostend - p));
        he = colon ? colon : hostend;
        if (colon) portp = colon + 1;
    }
    if (he == hs || (size_t)(he - hs) >= sizeof u->host) {
        snprintf(why, whylen, "bad Redis URL '%s': missing or too long host", s_shown);
        return RC_EINVAL;
    }
    memcpy(u->host, hs, (size_t)(he - hs));
    if (portp) {
        long port;
        if (parse_uint(portp, (size_t)(hostend - portp), 65535, &port) != 0 || port == 0) {
            snprintf(why, whylen, "bad port in Redis URL '%s'", s_shown);
            return RC_EINVAL;
        }
        u->port = (int)port;
    }
    if (slash && slash + 1 < end) {
        long db;
        if (parse_uint(slash + 1, (size_t)(end - slash - 1), 1000000, &db) != 0) {
            snprintf(why, whylen, "bad database number in Redis URL '%s'", s_shown);
            return RC_EINVAL;
        }
        u->db = (int)db;
    }
    return RC_OK;
}

static struct timeval tv_ms(long long ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    return tv;
}

void rc_conn_drop(rc_conn *c)
{
    if (c->c) {
        redisFree(c->c);
        c->c = NULL;
    }
    if (c->deferred)
        c->drains++;
    c->deferred = 0; /* their replies went with the socket */
    c->keep = 0;     /* kept ones not read yet too; those read stay in c->kept */
    rc_resp_reset(c->resp); /* and so did whatever was read ahead */
}

static rc_status conn_open(rc_conn *c)
{
    rc_conn_drop(c);
    redisContext *rc = c->url.is_unix ? redisConnectUnixWithTimeout(c->url.path, tv_ms(c->connect_ms))
                                      : redisConnectWithTimeout(c->url.host, c->url.port, tv_ms(c->connect_ms));
    if (!rc) {
        snprintf(c->err, sizeof c->err, "cannot allocate a Redis context");
        return RC_ENOMEM;
    }
    if (rc->err) {
        if (c->url.is_unix)
            snprintf(c->err, sizeof c->err, "cannot connect to Redis at unix:%s: %s", c->url.path, rc->errstr);
        else
            snprintf(c->err, sizeof c->err, "cannot connect to Redis at %s:%d: %s", c->url.host, c->url.port, rc->errstr);
        redisFree(rc);
        return RC_EREDIS;
    }
    if (redisSetTimeout(rc, tv_ms(c->command_ms)) != REDIS_OK) {
        snprintf(c->err, sizeof c->err, "cannot set Redis command timeout");
        redisFree(rc);
        return RC_EREDIS;
    }
    c->c = rc;
    redisReply *r = NULL;
    sigset_t old;
    if (c->url.pass[0]) {
        int guarded = rc_sigpipe_hold(&old);
        if (c->url.user[0])
            r = redisCommand(rc, "AUTH %s %s", c->url.user, c->url.pass);
        else
            r = redisCommand(rc, "AUTH %s", c->url.pass);
        rc_sigpipe_release(guarded, &old, !r);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(c->err, sizeof c->err, "Redis refused the credentials%s%s: %s",
                     c->url.user[0] ? " of user " : "", c->url.user,
                     r ? r->str : rc->errstr);
            if (r) freeReplyObject(r);
            rc_conn_drop(c);
            return RC_EREDIS;
        }
        freeReplyObject(r);
    }
    if (c->url.db) {
        int guarded = rc_sigpipe_hold(&old);
        r = redisCommand(rc, "SELECT %d", c->url.db);
        rc_sigpipe_release(guarded, &old, !r);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(c->err, sizeof c->err, "cannot select Redis database %d: %s", c->url.db,
                     r ? r->str : rc->errstr);
            if (r) freeReplyObject(r);
            rc_conn_drop(c);
            return RC_EREDIS;
        }
        freeReplyObject(r);
    }
    return RC_OK;
}

rc_conn *rc_conn_new(const rc_url *url, long long connect_ms, long long command_ms)
{
    rc_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->url = *url;
    c->cancel_fd = c->cancel_fd2 = -1;
    c->connect_ms = connect_ms;
    c->command_ms = command_ms;
    return c;
}

static rc_status drain_deferred(rc_conn *c);

void rc_conn_free(rc_conn *c)
{
    if (!c)
        return;
    /* read what fire-and-forget commands answered: closing a TCP socket
       with unread data resets it, which may lose them on the server side */
    if (c->c && c->deferred)
        (void)drain_deferred(c);
    rc_conn_drop(c);
    for (size_t i = 0; i < c->kept_n; i++)
        rc_conn_release(c, c->kept[c->kept_head + i]);
    free(c->kept);
    rc_resp_free(c->resp);
    free(c);
}

/* A worker's connection with an awaited reply less than this long ago is
   taken to be alive (rc_conn_ensure): under Redis' smallest idle timeout,
   one second. */
#define RC_PEEK_QUIET_MS 100

static int drain_ready(rc_conn *c);

rc_status rc_conn_ensure(rc_conn *c)
{
    /* Replies of fire-and-forget commands still on their way: the
       connection is in use this very moment, so there is no stale socket to
       look for, and waiting for them here would add a round trip to the
       next command (a job's clean-up to the next job's submission, a
       tenth of a one-task job).  They are read, and dropped, before this
       command's reply.  Replies already here are read now, so the check
       below sees the socket as it is. */
    if (c->c && !c->c->err && c->deferred && !c->c->obuf[0] && !drain_ready(c))
        return RC_OK;
    if (c->c && !c->c->err && !c->c->obuf[0] &&
        (!c->peek_after_quiet || rc_now_ms() - c->last_reply_ms >= RC_PEEK_QUIET_MS)) {
        /* between commands: the server may have closed it (restart,
           timeout); find out now, for the price of one syscall, rather
           than fail the next command.  A worker's loop skips it on a
           connection that answered a moment ago: Redis closes idle clients
           only after whole seconds, and a restart since is the race this
           check never closed anyway (the loop retries the command like any
           lost one).  It was a recv finding nothing before every round
           trip: a quarter of the system calls of a worker taking one task
           at a time. */
        char b;
        ssize_t n = recv(c->c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            rc_conn_drop(c);
    }
    if (c->c && !c->c->err)
        return RC_OK;
    return conn_open(c);
}

static rc_status io_failed(rc_conn *c)
{
    snprintf(c->err, sizeof c->err, "Redis connection failed: %s",
             c->c && c->c->errstr[0] ? c->c->errstr : "connection lost");
    rc_conn_drop(c);
    return RC_EREDIS;
}

static rc_status io_failed_errno(rc_conn *c, int e, const char *what)
{
    snprintf(c->err, sizeof c->err, "Redis connection failed: %s: %s", what,
             e == EAGAIN || e == EWOULDBLOCK ? "timed out" : e ? strerror(e) : "server closed the connection");
    rc_conn_drop(c);
    return RC_EREDIS;
}

static rc_status check_reply(rc_conn *c, redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "NOAUTH", 6) == 0)
            snprintf(c->err, sizeof c->err, "Redis requires a password: give it in the URL "
                                            "(redis://[user]:PASSWORD@host) or in REDCOLL_URL_FILE (%.*s)",
                     (int)r->len, r->str);
        else if (strncmp(r->str, "NOPERM", 6) == 0)
            snprintf(c->err, sizeof c->err, "the Redis ACL user lacks a permission redcoll needs (streams, "
                                            "scripts, transactions, keys rc:{queue}:*): %.*s", (int)r->len, r->str);
        else
            snprintf(c->err, sizeof c->err, "Redis error: %.*s", (int)r->len, r->str);
        return RC_EREDIS;
    }
    return RC_OK;
}

/* Write whatever hiredis holds in its output buffer (with SIGPIPE held
 * off: rc_sigpipe_hold). */
static rc_status write_obuf(rc_conn *c)
{
    if (!c->c->err && !c->c->obuf[0])
        return RC_OK; /* nothing to write (a request starts with '*', so an empty sds) */
    sigset_t old;
    int guarded = rc_sigpipe_hold(&old);
    int done = 0, failed = 0;
    while (!done && !failed)
        failed = redisBufferWrite(c->c, &done) != REDIS_OK;
    rc_sigpipe_release(guarded, &old, failed);
    return failed ? io_failed(c) : RC_OK;
}

/* Wait for the socket to be readable: 1, -1 with errno (EAGAIN: the
 * command timeout passed), or -2 if only `cancel` or `cancel2` (each >= 0,
 * or -1: none) turned readable.
 * poll(2), not a read(2) that blocks: a process
 * blocked in read sleeps on the socket's one wait queue, so it is also woken
 * - for nothing - each time Redis takes in what it sent (the kernel's
 * "write space" wake-up), and Redis pays for that wake-up on the hot path
 * (perf: a tenth of its time with one task per round trip).  poll's waiter
 * asks for POLLIN only, and the kernel skips it for write-space wake-ups. */
static int wait_readable(rc_conn *c, int cancel, int cancel2)
{
    long long ms = c->command_ms > 0 ? c->command_ms : -1;
    struct pollfd p[3] = {{.fd = c->c->fd, .events = POLLIN}, {.fd = cancel, .events = POLLIN},
                          {.fd = cancel2, .events = POLLIN}}; /* poll skips a negative fd */
    int n = poll(p, cancel2 >= 0 ? 3 : cancel >= 0 ? 2 : 1, ms > INT_MAX ? INT_MAX : (int)ms);
    if (n == 0) {
        errno = EAGAIN;
        return -1;
    }
    if (n < 0)
        return -1;
    return p[0].revents ? 1 : -2; /* POLLHUP, POLLERR: the read says what happened */
}

/* The next reply off the socket, whatever it is.  nowait: RC_EAGAIN (the
 * connection kept) when it has not fully arrived yet. */
static rc_status read_reply_ex(rc_conn *c, redisReply **out, int nowait)
{
    *out = NULL;
    if (!c->c)
        return io_failed(c);
    rc_status st = write_obuf(c);
    if (st != RC_OK)
        return st;
    if (!c->resp && !(c->resp = rc_resp_new())) {
        snprintf(c->err, sizeof c->err, "out of memory for a reply reader");
        rc_conn_drop(c);
        return RC_ENOMEM;
    }
    int cancel = c->cancel_fd, cancel2 = c->cancel_fd2;
    for (;;) {
        redisReply *r = NULL;
        char why[160];
        int got = rc_resp_parse(c->resp, &r, why, sizeof why);
        if (got > 0) {
            if (!nowait) /* awaited: the server sent it since our request (drained replies may be old) */
                c->last_reply_ms = rc_now_ms();
            *out = r;
            return RC_OK;
        }
        if (got < 0) {
            snprintf(c->err, sizeof c->err, "%s", why);
            rc_conn_drop(c);
            return got == -2 ? RC_ENOMEM : RC_EPROTO;
        }
        char *dst;
        size_t room;
        if (rc_resp_want(c->resp, &dst, &room) != 0) {
            snprintf(c->err, sizeof c->err, "out of memory reading a Redis reply");
            rc_conn_drop(c);
            return RC_ENOMEM;
        }
        ssize_t n = nowait ? 1 : wait_readable(c, cancel, cancel2);
        if (n == -2) {
            /* a stop request, or a wake-up: give up only on a reply none of
               which came (a blocking read still waiting for work); once
               part of it is here the rest is on its way, and it may hold
               entries that are ours now */
            if (rc_resp_between(c->resp)) {
                snprintf(c->err, sizeof c->err, "wait for Redis cancelled (a stop request, or a wake-up)");
                rc_conn_drop(c);
                return RC_ECANCELED;
            }
            cancel = cancel2 = -1;
            continue;
        }
        if (n > 0)
            n = recv(c->c->fd, dst, room, nowait ? MSG_DONTWAIT : 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (nowait && n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return RC_EAGAIN;
        if (n <= 0)
            return io_failed_errno(c, n < 0 ? errno : 0, "reading a reply");
        rc_resp_got(c->resp, (size_t)n);
    }
}

static rc_status read_reply(rc_conn *c, redisReply **out) { return read_reply_ex(c, out, 0); }

/* A deferred reply r was read: kept (room was reserved) or dropped. */
static void deferred_read(rc_conn *c, redisReply *r)
{
    if (c->keep > 0) {
        c->keep--;
        if (c->kept_head + c->kept_n == c->kept_cap) { /* room is reserved: it is at the front */
            memmove(c->kept, c->kept + c->kept_head, c->kept_n * sizeof *c->kept);
            c->kept_head = 0;
        }
        c->kept[c->kept_head + c->kept_n++] = r;
    } else {
        rc_conn_release(c, r);
    }
    c->deferred--;
}

static rc_status drain_deferred(rc_conn *c)
{
    if (c->deferred > 0)
        c->drains++;
    while (c->deferred > 0) {
        redisReply *r = NULL;
        rc_status st = read_reply(c, &r);
        if (st != RC_OK)
            return st; /* the connection is gone, and with it the count */
        deferred_read(c, r);
    }
    return RC_OK;
}

/* Read and drop the deferred replies that have arrived, without waiting:
 * 1 when none is left, 0 when some are still on their way (or the
 * connection failed: it is dropped, and the caller reopens it). */
static int drain_ready(rc_conn *c)
{
    while (c->deferred > 0) {
        redisReply *r = NULL;
        rc_status st = read_reply_ex(c, &r, 1);
        if (st == RC_EAGAIN)
            return 0;
        if (st != RC_OK)
            return 1;
        deferred_read(c, r);
        c->drains++; /* a prefetched reply, if it was one, is gone */
    }
    return 1;
}

rc_status rc_conn_get(rc_conn *c, redisReply **reply)
{
    *reply = NULL;
    if (!c->c)
        return io_failed(c);
    rc_status st = drain_deferred(c);
    if (st != RC_OK)
        return st;
    redisReply *r = NULL;
    if ((st = read_reply(c, &r)) != RC_OK)
        return st;
    *reply = r;
    return check_reply(c, r);
}

rc_status rc_conn_prefetch(rc_conn *c, int argc, const char **argv, const size_t *lens, unsigned long *ticket)
{
    rc_status st = rc_conn_ensure(c); /* also reads any older deferred replies */
    if (st != RC_OK)
        return st;
    if (c->deferred && (st = drain_deferred(c)) != RC_OK)
        return st;
    if ((st = rc_conn_append(c, argc, argv, lens)) != RC_OK || (st = rc_conn_defer(c, 1)) != RC_OK)
        return st;
    *ticket = c->drains;
    return RC_OK;
}

rc_status rc_conn_take(rc_conn *c, unsigned long ticket, redisReply **reply)
{
    *reply = NULL;
    if (!c->c || c->deferred != 1 || c->drains != ticket)
        return RC_EAGAIN;
    c->deferred = 0;
    redisReply *r = NULL;
    rc_status st = read_reply(c, &r);
    if (st != RC_OK)
        return st;
    *reply = r;
    return check_reply(c, r);
}

rc_status rc_conn_keep_reserve(rc_conn *c, int n)
{
    size_t need = c->kept_n + (size_t)c->keep + (size_t)n;
    if (need <= c->kept_cap)
        return RC_OK;
    size_t cap = c->kept_cap ? c->kept_cap : 8;
    while (cap < need)
        cap *= 2;
    redisReply **k = realloc(c->kept, cap * sizeof *k);
    if (!k) {
        snprintf(c->err, sizeof c->err, "out of memory keeping replies");
        return RC_ENOMEM;
    }
    c->kept = k;
    c->kept_cap = cap;
    return RC_OK;
}

void rc_conn_keep_sent(rc_conn *c, int n)
{
    if (!c->c)
        return; /* the send failed and dropped the connection: nothing is on its way */
    c->deferred += n;
    c->keep += n;
}

rc_status rc_conn_prefetch_keep(rc_conn *c, int argc, const char **argv, const size_t *lens)
{
    rc_status st = rc_conn_ensure(c);
    if (st == RC_OK && c->deferred > c->keep)
        st = drain_deferred(c); /* dropped ones must not sit before it (none on a worker's) */
    if (st == RC_OK)
        st = rc_conn_keep_reserve(c, 1);
    if (st == RC_OK)
        st = rc_conn_append(c, argc, argv, lens);
    if (st == RC_OK)
        st = write_obuf(c);
    if (st == RC_OK)
        rc_conn_keep_sent(c, 1);
    return st;
}

rc_status rc_conn_take_kept(rc_conn *c, redisReply **reply)
{
    *reply = NULL;
    redisReply *r = NULL;
    if (c->kept_n) {
        r = c->kept[c->kept_head++];
        if (!--c->kept_n)
            c->kept_head = 0;
    } else {
        if (c->keep <= 0 || !c->c)
            return RC_EAGAIN;
        rc_status st = read_reply(c, &r); /* on its way: it is the first deferred reply */
        if (st != RC_OK)
            return st; /* the connection is gone, and the reply with it */
        c->keep--;
        c->deferred--;
    }
    *reply = r;
    return check_reply(c, r);
}

void rc_conn_release(rc_conn *c, redisReply *r)
{
    rc_resp_release(c ? c->resp : NULL, r);
}

void rc_conn_give(rc_conn *c, void *buf, size_t cap)
{
    rc_resp_give(c ? c->resp : NULL, buf, cap);
}

rc_status rc_conn_discard(rc_conn *c, int n)
{
    rc_status first = RC_OK;
    char err[sizeof c->err] = "";
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        rc_status st = rc_conn_get(c, &r);
        rc_conn_release(c, r);
        if (st != RC_OK && first == RC_OK) {
            first = st;
            memcpy(err, c->err, sizeof err);
        }
        if (st == RC_EREDIS && !c->c)
            break; /* connection gone: nothing more to read */
    }
    if (first != RC_OK)
        memcpy(c->err, err, sizeof err);
    return first;
}

rc_status rc_conn_append(rc_conn *c, int argc, const char **argv, const size_t *lens)
{
    rc_status st = rc_conn_ensure(c);
    if (st != RC_OK)
        return st;
    if (redisAppendCommandArgv(c->c, argc, argv, lens) != REDIS_OK) {
        snprintf(c->err, sizeof c->err, "out of memory queueing a Redis command");
        return RC_ENOMEM;
    }
    return RC_OK;
}

rc_status rc_conn_cmd(rc_conn *c, redisReply **reply, int argc, const char **argv,
                      const size_t *lens)
{
    *reply = NULL;
    rc_status st = rc_conn_append(c, argc, argv, lens);
    if (st != RC_OK)
        return st;
    return rc_conn_get(c, reply);
}

rc_status rc_conn_cmdf(rc_conn *c, redisReply **reply, const char *fmt, ...)
{
    *reply = NULL;
    rc_status st = rc_conn_ensure(c);
    if (st != RC_OK)
        return st;
    va_list ap;
    va_start(ap, fmt);
    int ok = redisvAppendCommand(c->c, fmt, ap);
    va_end(ap);
    if (ok != REDIS_OK) {
        snprintf(c->err, sizeof c->err, "out of memory queueing a Redis command");
        return RC_ENOMEM;
    }
    return rc_conn_get(c, reply);
}

rc_status rc_conn_defer(rc_conn *c, int n)
{
    if (!c->c)
        return io_failed(c);
    rc_status st = write_obuf(c);
    if (st == RC_OK)
        c->deferred += n;
    return st;
}

/* ------------------------------------------------------------------ */
/* Pipes */

void rc_pipe_reset(rc_pipe *p)
{
    p->len = p->seg_start = p->nseg = p->bytes = 0;
    p->ncmd = 0;
    p->nomem = 0;
}

void rc_pipe_free(rc_pipe *p)
{
    free(p->buf);
    free(p->seg);
    memset(p, 0, sizeof *p);
}

static int pipe_room(rc_pipe *p, size_t n)
{
    if (p->len + n <= p->cap)
        return 0;
    size_t cap = p->cap ? p->cap : 4096;
    while (cap < p->len + n)
        cap *= 2;
    char *b = realloc(p->buf, cap);
    if (!b)
        return -1;
    p->buf = b;
    p->cap = cap;
    return 0;
}

static int pipe_seg(rc_pipe *p, const char *ref, size_t off, size_t len)
{
    if (!len)
        return 0;
    if (p->nseg == p->capseg) {
        size_t cap = p->capseg ? p->capseg * 2 : 16;
        rc_pipe_seg *s = realloc(p->seg, cap * sizeof *s);
        if (!s)
            return -1;
        p->seg = s;
        p->capseg = cap;
    }
    p->seg[p->nseg++] = (rc_pipe_seg){ref, off, len};
    p->bytes += len;
    return 0;
}

/* Close the run of copied bytes since the last reference. */
static int pipe_cut(rc_pipe *p)
{
    int rv = pipe_seg(p, NULL, p->seg_start, p->len - p->seg_start);
    p->seg_start = p->len;
    return rv;
}

static int pipe_text(rc_pipe *p, const char *s, size_t n)
{
    if (pipe_room(p, n) != 0)
        return -1;
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    return 0;
}

/* "<c><n>\r\n" into hdr (room for 24 bytes); its length.  By hand: a
   master sends five of these per task and a worker three, and snprintf was
   a fifth of their instructions. */
static size_t resp_header(char *hdr, char c, size_t n)
{
    char digits[20];
    size_t k = 0;
    do {
        digits[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    size_t len = 0;
    hdr[len++] = c;
    while (k)
        hdr[len++] = digits[--k];
    hdr[len++] = '\r';
    hdr[len++] = '\n';
    return len;
}

rc_status rc_pipe_cmd(rc_pipe *p, int argc, const char *const *argv, const size_t *lens)
{
    if (p->nomem)
        return RC_ENOMEM;
    char hdr[24];
    int bad = pipe_text(p, hdr, resp_header(hdr, '*', (size_t)argc));
    for (int i = 0; i < argc && !bad; i++) {
        size_t n = lens ? lens[i] : strlen(argv[i]);
        bad = pipe_text(p, hdr, resp_header(hdr, '$', n));
        if (bad)
            break;
        if (n >= RC_PIPE_REF)
            bad = pipe_cut(p) || pipe_seg(p, argv[i], 0, n);
        else
            bad = pipe_text(p, argv[i], n);
        bad = bad || pipe_text(p, "\r\n", 2);
    }
    if (bad) {
        p->nomem = 1;
        return RC_ENOMEM;
    }
    p->ncmd++;
    return RC_OK;
}

rc_status rc_conn_send(rc_conn *c, rc_pipe *p)
{
    if (p->nomem || pipe_cut(p) != 0) {
        rc_pipe_reset(p);
        snprintf(c->err, sizeof c->err, "out of memory preparing Redis commands");
        return RC_ENOMEM;
    }
    rc_status st = rc_conn_ensure(c);
    if (st == RC_OK)
        st = write_obuf(c); /* what was appended before goes first */
    size_t k = 0, done = 0; /* segment k, bytes of it already written */
    while (st == RC_OK && k < p->nseg) {
        struct iovec iov[64];
        int n = 0;
        for (size_t i = k; i < p->nseg && n < 64; i++, n++) {
            const char *base = p->seg[i].ref ? p->seg[i].ref : p->buf + p->seg[i].off;
            size_t skip = i == k ? done : 0;
            iov[n].iov_base = (void *)(base + skip);
            iov[n].iov_len = p->seg[i].len - skip;
        }
        /* sendmsg, not writev: with MSG_NOSIGNAL a peer that closed the
           socket before or during this write (megabytes of tasks take
           many calls) is an EPIPE for the caller, not a SIGPIPE that
           kills a program which never asked for one */
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->c->fd, &mh, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            st = io_failed_errno(c, w < 0 ? errno : 0, "sending commands");
            break;
        }
        size_t left = (size_t)w;
        while (left && k < p->nseg) {
            size_t rest = p->seg[k].len - done;
            if (left < rest) {
                done += left;
                left = 0;
            } else {
                left -= rest;
                done = 0;
                k++;
            }
        }
    }
    rc_pipe_reset(p);
    return st;
}
