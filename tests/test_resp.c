/* test_resp.c - the reply reader (lib/resp.c), fed by hand in every split.
 *
 * Every byte a worker or master reads from Redis goes through this parser
 * before anything else sees it, so it must build the same trees whatever
 * pieces the socket delivers them in, receive large strings in place (the
 * point of it), and refuse malformed input by name without reading outside
 * what it was given or allocating what a header merely announces.  Pieces are
 * copied into the space rc_resp_want hands out, exactly as conn.c's read(2)
 * does; the suite runs under ASan and valgrind (memcheck.resp), which catch
 * leaks of half-built trees and any overread.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "unit.h"

#define MAXR 64

/* Feed n bytes in pieces of at most `piece`, parsing after each; the replies
   in out[], their count returned; -1 on a parse error (why set). */
static int feed(rc_resp *p, const char *bytes, size_t n, size_t piece, redisReply **out, char *why, size_t wl)
{
    int k = 0;
    size_t off = 0;
    for (;;) {
        redisReply *r = NULL;
        int st = rc_resp_parse(p, &r, why, wl);
        if (st < 0)
            return -1;
        if (st > 0) {
            if (k < MAXR)
                out[k++] = r;
            else
                freeReplyObject(r);
            continue;
        }
        if (off == n)
            return k;
        size_t m = rc_resp_feed(p, bytes + off, n - off < piece ? n - off : piece);
        if (m == 0)
            return -1;
        off += m;
    }
}

static void free_all(redisReply **r, int n)
{
    for (int i = 0; i < n; i++)
        freeReplyObject(r[i]);
}

static int is_str(const redisReply *r, int type, const char *s)
{
    return r && r->type == type && r->len == strlen(s) && memcmp(r->str, s, r->len) == 0 && r->str[r->len] == '\0';
}

/* The XREADGROUP-shaped reply and the scalar types, in every piece size. */
static void test_shapes(void)
{
    static const char in[] = "+OK\r\n"
                             "-ERR unknown command\r\n"
                             ":0\r\n"
                             ":-9223372036854775808\r\n"
                             ":9223372036854775807\r\n"
                             "$-1\r\n"
                             "*-1\r\n"
                             "*0\r\n"
                             "$0\r\n\r\n"
                             "$5\r\nhe\r\no\r\n" /* CRLF inside a bulk string is data */
                             "*1\r\n*2\r\n$3\r\nkey\r\n*2\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nt\r\n$4\r\nabcd\r\n"
                             "*2\r\n$3\r\n1-2\r\n*-1\r\n";
    for (size_t piece = 1; piece <= sizeof in; piece++) {
        rc_resp *p = rc_resp_new();
        redisReply *r[MAXR];
        char why[200] = "";
        int n = feed(p, in, sizeof in - 1, piece, r, why, sizeof why);
        CHECK(n == 11, "pieces of %zu: %d replies (%s)", piece, n, why);
        if (n == 11) {
            CHECK(is_str(r[0], REDIS_REPLY_STATUS, "OK"), "status");
            CHECK(is_str(r[1], REDIS_REPLY_ERROR, "ERR unknown command"), "error");
            CHECK(r[2]->type == REDIS_REPLY_INTEGER && r[2]->integer == 0, "integer 0");
            CHECK(r[3]->type == REDIS_REPLY_INTEGER && r[3]->integer == INT64_MIN, "integer min");
            CHECK(r[4]->type == REDIS_REPLY_INTEGER && r[4]->integer == INT64_MAX, "integer max");
            CHECK(r[5]->type == REDIS_REPLY_NIL && r[6]->type == REDIS_REPLY_NIL, "nil string and nil array");
            CHECK(r[7]->type == REDIS_REPLY_ARRAY && r[7]->elements == 0, "empty array");
            CHECK(is_str(r[8], REDIS_REPLY_STRING, ""), "empty string");
            CHECK(is_str(r[9], REDIS_REPLY_STRING, "he\r\no"), "string with CRLF inside");
            const redisReply *t = r[10];
            int ok = t->type == REDIS_REPLY_ARRAY && t->elements == 1 && t->element[0]->type == REDIS_REPLY_ARRAY &&
                     t->element[0]->elements == 2 && is_str(t->element[0]->element[0], REDIS_REPLY_STRING, "key");
            const redisReply *list = ok ? t->element[0]->element[1] : NULL;
            ok = ok && list->type == REDIS_REPLY_ARRAY && list->elements == 2;
            ok = ok && is_str(list->element[0]->element[0], REDIS_REPLY_STRING, "1-1") &&
                 is_str(list->element[0]->element[1]->element[1], REDIS_REPLY_STRING, "abcd") &&
                 is_str(list->element[1]->element[0], REDIS_REPLY_STRING, "1-2") &&
                 list->element[1]->element[1]->type == REDIS_REPLY_NIL;
            CHECK(ok, "pieces of %zu: the stream reply's tree", piece);
            CHECK(rc_resp_buffered(p) == 0, "nothing left over");
        }
        free_all(r, n > 0 ? n : 0);
        rc_resp_free(p);
    }
}

/* A string of RC_RESP_DIRECT bytes or more is received into its own memory. */
static void test_direct(void)
{
    const size_t sizes[] = {RC_RESP_DIRECT - 1, RC_RESP_DIRECT, (size_t)1 << 20, ((size_t)3 << 20) + 5};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        char hdr[32];
        int hl = snprintf(hdr, sizeof hdr, "*2\r\n$%zu\r\n", n);
        size_t total = (size_t)hl + n + 2 + 4;
        char *in = malloc(total);
        memcpy(in, hdr, (size_t)hl);
        for (size_t i = 0; i < n; i++)
            in[hl + (int)i] = (char)('a' + i % 23);
        memcpy(in + hl + n, "\r\n:7\r\n", 6);
        const size_t pieces[] = {1000, 65536, total};
        for (size_t pi = 0; pi < 3; pi++) {
            rc_resp *p = rc_resp_new();
            char why[200] = "";
            size_t off = 0;
            int got = 0;
            redisReply *one = NULL;
            while (!got) {
                int st = rc_resp_parse(p, &one, why, sizeof why);
                if (st != 0) {
                    got = st;
                    break;
                }
                char *dst;
                size_t room;
                if (off == total || rc_resp_want(p, &dst, &room) != 0)
                    break;
                size_t m = total - off < room ? total - off : room;
                if (m > pieces[pi])
                    m = pieces[pi];
                memcpy(dst, in + off, m);
                rc_resp_got(p, m);
                off += m;
            }
            CHECK(got == 1 && one && one->type == REDIS_REPLY_ARRAY && one->elements == 2, "%zu-byte string (%s)", n,
                  why);
            if (got == 1 && one->elements == 2) {
                const redisReply *s = one->element[0];
                CHECK(s->type == REDIS_REPLY_STRING && s->len == n && memcmp(s->str, in + hl, n) == 0 &&
                          s->str[n] == '\0',
                      "%zu-byte string content, pieces of %zu", n, pieces[pi]);
                CHECK(one->element[1]->type == REDIS_REPLY_INTEGER && one->element[1]->integer == 7,
                      "the element after a large string");
            }
            if (one)
                freeReplyObject(one);
            rc_resp_free(p);
        }
        /* the space handed out is inside the string once its header is in */
        if (n >= RC_RESP_DIRECT) {
            rc_resp *p = rc_resp_new();
            char *dst;
            size_t room;
            redisReply *one = NULL;
            char why[200] = "";
            size_t first = (size_t)hl + 100;
            CHECK(rc_resp_want(p, &dst, &room) == 0 && room >= first, "room for the header");
            memcpy(dst, in, first);
            rc_resp_got(p, first);
            CHECK(rc_resp_parse(p, &one, why, sizeof why) == 0, "incomplete: no reply yet");
            CHECK(rc_resp_want(p, &dst, &room) == 0 && room == n - 100, "room is exactly the rest of the string "
                  "(%zu, want %zu)", room, n - 100);
            memcpy(dst, in + first, room);
            rc_resp_got(p, room);
            CHECK(rc_resp_want(p, &dst, &room) == 0, "room after the string");
            memcpy(dst, in + hl + n, 6);
            rc_resp_got(p, 6);
            CHECK(rc_resp_parse(p, &one, why, sizeof why) == 1 && one && one->elements == 2, "whole (%s)", why);
            if (one && one->elements == 2) {
                const char *str = one->element[0]->str;
                CHECK(memcmp(str, in + hl, n) == 0, "in-place string content");
                /* handed back, the same memory takes the next string of that size */
                rc_resp_release(p, one);
                one = NULL;
                CHECK(rc_resp_want(p, &dst, &room) == 0, "room");
                memcpy(dst, in, first);
                rc_resp_got(p, first);
                CHECK(rc_resp_parse(p, &one, why, sizeof why) == 0, "second: incomplete");
                CHECK(rc_resp_want(p, &dst, &room) == 0 && dst == str + 100, "the recycled buffer is reused");
            }
            if (one)
                freeReplyObject(one);
            rc_resp_free(p); /* with a half-received string: nothing leaks */
        }
        free(in);
    }
}

/* Malformed input: refused by name, half-built trees freed on reset. */
static void test_bad(void)
{
    struct { const char *in; const char *why; } bad[] = {
        {"?x\r\n", "unknown reply type"},
        {"+OK\rX", "CR without LF"},
        {":12a\r\n", "bad integer"},
        {":\r\n", "bad integer"},
        {":99999999999999999999\r\n", "bad integer"},
        {":9223372036854775808\r\n", "bad integer"},
        {"$-2\r\n", "bad string length"},
        {"$abc\r\n", "bad string length"},
        {"$536870913\r\n", "bad string length"},
        {"$3\r\nabcXY", "does not end in CRLF"},
        {"*-2\r\n", "bad array length"},
        {"*268435457\r\n", "bad array length"},
        {"*2\r\n:1\r\n*1\r\n$x\r\n", "bad string length"},
        {"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n",
         "nested deeper"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        for (size_t piece = 1; piece <= 7; piece += 6) {
            rc_resp *p = rc_resp_new();
            redisReply *r[MAXR];
            char why[200] = "";
            int n = feed(p, bad[i].in, strlen(bad[i].in), piece, r, why, sizeof why);
            CHECK(n == -1 && strstr(why, bad[i].why), "'%s' in pieces of %zu: %d, why '%s' (want '%s')", bad[i].in,
                  piece, n, why, bad[i].why);
            rc_resp_reset(p);
            /* usable again after a reset */
            n = feed(p, ":5\r\n", 4, 4, r, why, sizeof why);
            CHECK(n == 1 && r[0]->integer == 5, "after a reset");
            if (n == 1)
                freeReplyObject(r[0]);
            rc_resp_free(p);
        }
    /* a large string whose end is wrong, received in place */
    {
        size_t n = RC_RESP_DIRECT + 10;
        char *in = malloc(n + 32);
        int hl = snprintf(in, 32, "$%zu\r\n", n);
        memset(in + hl, 'z', n);
        memcpy(in + hl + n, "XY", 2);
        rc_resp *p = rc_resp_new();
        redisReply *r[MAXR];
        char why[200] = "";
        int k = feed(p, in, (size_t)hl + n + 2, 4096, r, why, sizeof why);
        CHECK(k == -1 && strstr(why, "does not end in CRLF"), "large string without CRLF: %d '%s'", k, why);
        rc_resp_free(p);
        free(in);
    }
    /* announced, never sent: a 2^28-element array header allocates nothing
       big, and a half-built tree is freed by the reset */
    {
        rc_resp *p = rc_resp_new();
        redisReply *r[MAXR];
        char why[200] = "";
        static const char in[] = "*268435456\r\n*3\r\n$2\r\nab\r\n:1\r\n";
        int n = feed(p, in, sizeof in - 1, 5, r, why, sizeof why);
        CHECK(n == 0, "incomplete huge array: %d (%s)", n, why);
        rc_resp_reset(p);
        rc_resp_free(p);
    }
    /* a line with no end, longer than any Redis sends */
    {
        size_t n = ((size_t)1 << 20) + 10;
        char *in = malloc(n);
        in[0] = '+';
        memset(in + 1, 'x', n - 1);
        rc_resp *p = rc_resp_new();
        redisReply *r[MAXR];
        char why[200] = "";
        int k = feed(p, in, n, 65536, r, why, sizeof why);
        CHECK(k == -1 && strstr(why, "longer than"), "endless line: %d '%s'", k, why);
        rc_resp_free(p);
        free(in);
    }
}

/* Replies handed back whole (rc_resp_release) make the next ones: the
 * same nodes, strings and element tables, no malloc.  A tree allocated
 * elsewhere (hiredis' sizes: a string of exactly len + 1 bytes) is freed,
 * never pooled: reused for a longer string it would be overrun, which the
 * ASan build of this test would catch. */
static void test_release(void)
{
    static const char in[] = "*3\r\n$5\r\nhello\r\n:7\r\n*1\r\n+OK\r\n";
    rc_resp *p = rc_resp_new();
    redisReply *out[MAXR];
    char why[200] = "";
    CHECK(feed(p, in, sizeof in - 1, sizeof in, out, why, sizeof why) == 1, "first reply (%s)", why);
    redisReply *first = out[0];
    /* every part of the first tree: 5 nodes, 2 strings, 2 element tables */
    const void *parts[9] = {first, first->element[0], first->element[1], first->element[2],
                            first->element[2]->element[0], first->element[0]->str,
                            first->element[2]->element[0]->str, first->element, first->element[2]->element};
    rc_resp_release(p, first);
    CHECK(feed(p, in, sizeof in - 1, 7, out, why, sizeof why) == 1, "second reply (%s)", why);
    redisReply *again = out[0];
    CHECK(again->type == REDIS_REPLY_ARRAY && again->elements == 3 && again->element[0]->len == 5 &&
              memcmp(again->element[0]->str, "hello", 6) == 0 && again->element[1]->integer == 7 &&
              again->element[2]->elements == 1 && strcmp(again->element[2]->element[0]->str, "OK") == 0,
          "a reply built from released parts reads the same");
    const void *now[9] = {again, again->element[0], again->element[1], again->element[2],
                          again->element[2]->element[0], again->element[0]->str,
                          again->element[2]->element[0]->str, again->element, again->element[2]->element};
    int reused = 0;
    for (int a = 0; a < 9; a++)
        for (int b = 0; b < 9; b++)
            if (now[a] == parts[b]) {
                reused++;
                break;
            }
    CHECK(reused == 9, "%d of the second tree's 9 parts are the first tree's (all should be)", reused);
    freeReplyObject(again); /* pooled parts are plain malloc blocks: hiredis frees them */

    redisReply *foreign = calloc(1, sizeof *foreign);
    CHECK(foreign != NULL && (foreign->str = malloc(6)) != NULL, "allocation");
    if (foreign && foreign->str) {
        foreign->type = REDIS_REPLY_STRING;
        memcpy(foreign->str, "hello", 6);
        foreign->len = 5;
        const void *fstr = foreign->str;
        rc_resp_release(p, foreign);
        static const char longer[] = "$30\r\n012345678901234567890123456789\r\n";
        CHECK(feed(p, longer, sizeof longer - 1, sizeof longer, out, why, sizeof why) == 1, "after a foreign tree (%s)",
              why);
        CHECK((const void *)out[0]->str != fstr && memcmp(out[0]->str, "012345678901234567890123456789", 31) == 0,
              "a 6-byte string from elsewhere is not reused for 31 bytes");
        rc_resp_release(p, out[0]);
    }
    rc_resp_release(NULL, NULL);
    rc_resp_free(p); /* frees the pools: nothing leaks (memcheck.resp) */
}

static long minor_faults(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : 0;
}

/* A "$n" bulk string of n bytes of c, with its header and CRLF; *len set. */
static char *bulk_of(size_t n, char c, size_t *len)
{
    char head[32];
    int h = snprintf(head, sizeof head, "$%zu\r\n", n);
    char *b = malloc((size_t)h + n + 2);
    if (!b)
        return NULL;
    memcpy(b, head, (size_t)h);
    memset(b + h, c, n);
    memcpy(b + h + n, "\r\n", 2);
    *len = (size_t)h + n + 2;
    return b;
}

/* One string larger than the large-string pool's whole budget (32 MiB) is
 * kept too, alone, for the next of its size - a master reducing 64 MiB
 * results otherwise faults in fresh pages for each - and is freed, not
 * kept for ever, when a large string of another size comes; strings it
 * holds are never written past their end (the ASan build). */
static void test_release_oversized(void)
{
    size_t big = (size_t)40 << 20, mid = (size_t)1 << 20, lb, lm;
    char *inb = bulk_of(big, 'b', &lb), *inm = bulk_of(mid, 'm', &lm);
    CHECK(inb && inm, "allocation");
    if (!inb || !inm) {
        free(inb);
        free(inm);
        return;
    }
    rc_resp *p = rc_resp_new();
    redisReply *out[MAXR];
    char why[200] = "";
    CHECK(feed(p, inb, lb, 1 << 20, out, why, sizeof why) == 1 && out[0]->len == big, "40 MiB string (%s)", why);
    const char *first = out[0]->str;
    rc_resp_release(p, out[0]);
    inb[lb - 3] = 'B'; /* the second one differs in its last byte */
    long faults = minor_faults();
    CHECK(feed(p, inb, lb, 1 << 20, out, why, sizeof why) == 1 && out[0]->len == big, "second 40 MiB (%s)", why);
    faults = minor_faults() - faults;
    /* the same address proves nothing (munmap then mmap hands it out again): fresh pages fault */
    CHECK(out[0]->str == first && faults < (long)(big / 4096 / 4),
          "the second 40 MiB string was not received into the first one's buffer (%ld page faults)", faults);
    CHECK(out[0]->str[0] == 'b' && out[0]->str[big - 1] == 'B' && out[0]->str[big] == '\0', "second string's bytes");
    rc_resp_release(p, out[0]);
    CHECK(feed(p, inm, lm, 1 << 16, out, why, sizeof why) == 1 && out[0]->len == mid, "1 MiB after it (%s)", why);
    CHECK(out[0]->str != first && out[0]->str[mid - 1] == 'm', "a 1 MiB string was given the 40 MiB buffer");
    rc_resp_release(p, out[0]); /* pooled within the budget: the 40 MiB one is gone */
    CHECK(feed(p, inb, lb, 1 << 20, out, why, sizeof why) == 1 && out[0]->str[big - 1] == 'B', "third 40 MiB (%s)",
          why);
    freeReplyObject(out[0]);
    rc_resp_free(p); /* nothing leaks (memcheck.resp) */
    free(inb);
    free(inm);
}

/* Stream ids arrive in replies (from Redis: hostile until proven) and are
   parsed once per task; anything but two plain decimal numbers that fit in
   64 bits is refused, where sscanf("%llu") took signs, spaces and wrapped
   overflow. */
static void test_stream_ids(void)
{
    static const struct { const char *s; int ok; uint64_t ms, seq; } cases[] = {
        {"1764691234567-0", 1, 1764691234567ULL, 0},
        {"0-1", 1, 0, 1},
        {"18446744073709551615-18446744073709551615", 1, UINT64_MAX, UINT64_MAX},
        {"00000000000000000001-7", 1, 1, 7},
        {"18446744073709551616-0", 0, 0, 0},   /* 2^64 */
        {"0-99999999999999999999", 0, 0, 0},   /* over 2^64 */
        {"000000000000000000001-0", 0, 0, 0},  /* 21 digits */
        {"", 0, 0, 0}, {"-", 0, 0, 0}, {"1-", 0, 0, 0}, {"-1", 0, 0, 0}, {"12", 0, 0, 0},
        {"+1-2", 0, 0, 0}, {" 1-2", 0, 0, 0}, {"1-2 ", 0, 0, 0}, {"1--2", 0, 0, 0},
        {"1-2-3", 0, 0, 0}, {"1x-2", 0, 0, 0}, {"-1-2", 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t ms = 42, seq = 42;
        int rv = rc_stream_id_parse(cases[i].s, strlen(cases[i].s), &ms, &seq);
        CHECK((rv == 0) == cases[i].ok, "id '%s': %s", cases[i].s, rv == 0 ? "accepted" : "refused");
        if (cases[i].ok && rv == 0)
            CHECK(ms == cases[i].ms && seq == cases[i].seq, "id '%s' read as %llu-%llu", cases[i].s,
                  (unsigned long long)ms, (unsigned long long)seq);
        if (!cases[i].ok)
            CHECK(ms == 42 && seq == 42, "refused id '%s' changed the output", cases[i].s);
    }
    /* the length given is the id: bytes after it are not read */
    uint64_t ms = 0, seq = 0;
    CHECK(rc_stream_id_parse("12-34junk", 5, &ms, &seq) == 0 && ms == 12 && seq == 34, "id within a longer buffer");
    CHECK(rc_stream_id_parse(NULL, 0, &ms, &seq) != 0, "NULL id accepted");
}

/* The command writer's protocol, byte for byte: the counts are formatted by
   hand, so every width of count and length is checked. */
static void test_commands(void)
{
    rc_pipe p = {0};
    const char *av[12];
    size_t al[12];
    static char big[1234567];
    memset(big, 'x', sizeof big);
    av[0] = "XADD"; al[0] = 4;
    av[1] = ""; al[1] = 0;
    av[2] = "0123456789"; al[2] = 10;
    CHECK(rc_pipe_cmd(&p, 3, av, al) == RC_OK, "small command");
    static const char want[] = "*3\r\n$4\r\nXADD\r\n$0\r\n\r\n$10\r\n0123456789\r\n";
    CHECK(p.len == sizeof want - 1 && memcmp(p.buf, want, p.len) == 0, "small command bytes: '%.*s'", (int)p.len, p.buf);
    rc_pipe_reset(&p);
    for (int i = 0; i < 12; i++) {
        av[i] = "a";
        al[i] = 1;
    }
    CHECK(rc_pipe_cmd(&p, 12, av, NULL) == RC_OK, "12 arguments, lengths by strlen");
    CHECK(p.len == 5 + 12 * 7 && memcmp(p.buf, "*12\r\n$1\r\na\r\n", 12) == 0, "12-argument header: '%.*s'",
          (int)p.len, p.buf);
    rc_pipe_reset(&p);
    av[0] = big; al[0] = sizeof big;
    CHECK(rc_pipe_cmd(&p, 1, av, al) == RC_OK, "large argument");
    /* a large argument is sent from where it lies: the buffer holds the
       protocol around it */
    static const char around[] = "*1\r\n$1234567\r\n\r\n";
    CHECK(p.len == sizeof around - 1 && memcmp(p.buf, around, p.len) == 0, "large argument framing: '%.*s'",
          (int)p.len, p.buf);
    rc_pipe_free(&p);
}

int main(void)
{
    test_shapes();
    test_direct();
    test_bad();
    test_release();
    test_release_oversized();
    test_stream_ids();
    test_commands();
    return unit_done("test_resp");
}
