/* fuzz_reply.c - libFuzzer target for Redis replies as a hostile server could send them.
 *
 * Why: workers and masters never see raw bytes from Redis; they see the
 * reply trees lib/resp.c builds from them (XREADGROUP, XAUTOCLAIM-script and
 * XREAD replies whose leaves are envelopes).  This target feeds the input to
 * an rc_resp reader in pieces, exactly as a connection does (the first byte
 * picks the piece size, so splits inside headers, CRLFs and large strings
 * received in place are all reached), and for every reply it yields walks
 * the whole tree: it checks the properties the library's reply consumers
 * rely on without re-checking them (array elements are never NULL, strings
 * are NUL-terminated at `len`, the nesting is bounded), hands each tree
 * back whole with rc_resp_release as masters and workers do (so the next
 * replies are built from pooled parts), and runs rc_wire_peek,
 * rc_wire_decode and rc_wire_decode_max (fixed key ring and queue of
 * fuzz_common.h) on every string, each from a fresh exact-size heap copy
 * (sealed payloads are decrypted in place) so AddressSanitizer sees any
 * overread.  The seeds are replies shaped like the real ones carrying real
 * envelopes, so mutations keep the tree shapes the worker and master parse.
 * The shape checks themselves (entry_parts, take_over, read_new in worker.c;
 * collect and handle in job.c) are static and not reachable from here.
 *
 * Unlike hiredis' reader, resp.c grows an array's element table as the
 * elements arrive, so an announced count of 2^28 costs nothing here and
 * needs no cap in the fuzzer.
 */
#include "fuzz_common.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_DEPTH 16 /* resp.c nests at most 16 levels; anything deeper is a reader bug */

static rc_keys K;
static size_t n_strings, n_decoded;

/* FUZZ_REPLY_STATS=1: say at exit how many strings were seen and how many
   verified, to check that a regenerated corpus still carries real envelopes */
static void print_stats(void)
{
    fprintf(stderr, "fuzz_reply: %zu strings, %zu authentic envelopes\n", n_strings, n_decoded);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_keys(&K);
    if (getenv("FUZZ_REPLY_STATS"))
        atexit(print_stats);
    return 0;
}

static void check_string(const redisReply *r)
{
    FUZZ_CHECK(r->str != NULL, "string reply of type %d without str", r->type);
    FUZZ_CHECK(r->str[r->len] == '\0', "string reply not NUL-terminated at len %zu", (size_t)r->len);
    size_t len = (size_t)r->len;
    unsigned char *buf = malloc(len ? len : 1);
    FUZZ_CHECK(buf != NULL, "malloc");
    if (len)
        memcpy(buf, r->str, len);
    n_strings++;
    rc_env p, e;
    char why[300];
    rc_status ps = rc_wire_peek(buf, len, &p);
    rc_status ds = rc_wire_decode(buf, len, &K, FUZZ_QUEUE, &e, why, sizeof why);
    FUZZ_CHECK(ps == RC_OK || ps == RC_EPROTO, "peek %d", (int)ps);
    FUZZ_CHECK((ps == RC_OK) == (ds != RC_EPROTO), "peek %d, decode %d", (int)ps, (int)ds);
    if (ds == RC_OK) {
        n_decoded++;
        /* plaintext ends where the string does, or before the 16-byte tag if sealed */
        const unsigned char *end = (const unsigned char *)e.payload + e.payload_len + (e.sealed ? 16 : 0);
        FUZZ_CHECK(e.kernel_len <= RC_KERNEL_MAX &&
                       end + rc_wire_trailer(e.payload_len + (e.sealed ? RC_SEAL_BYTES : 0)) == buf + len,
                   "decoded envelope does not end where the string does");
        volatile unsigned char sink = 0;
        for (uint64_t i = 0; i < e.payload_len; i++) sink ^= ((const unsigned char *)e.payload)[i];
        (void)sink;
    } else {
        FUZZ_CHECK(memchr(why, '\0', sizeof why) != NULL && why[0], "failure without a reason");
    }
    /* as rc_tombstone_check reads a marker: with a 64-byte payload limit, on the reply's own bytes */
    if (len)
        memcpy(buf, r->str, len);
    rc_status ms = rc_wire_decode_max(buf, len, &K, FUZZ_QUEUE, 64, &e, why, sizeof why);
    uint64_t plain = ps == RC_OK ? p.payload_len - (p.sealed && p.payload_len >= RC_SEAL_BYTES ? RC_SEAL_BYTES : 0) : 0;
    if (ps == RC_OK && plain <= 64)
        FUZZ_CHECK(ms == ds, "decode_max(64) %d, decode %d", (int)ms, (int)ds);
    else
        FUZZ_CHECK(ms == RC_EPROTO, "decode_max(64) gives %d on %s", (int)ms,
                   ps == RC_OK ? "a payload over the limit" : "a malformed envelope");
    free(buf);
}

static void walk(const redisReply *r, int depth)
{
    FUZZ_CHECK(r != NULL, "NULL reply node");
    FUZZ_CHECK(depth <= FUZZ_MAX_DEPTH, "reply nested deeper than %d", FUZZ_MAX_DEPTH);
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        check_string(r);
        break;
    case REDIS_REPLY_ARRAY:
        FUZZ_CHECK(r->elements == 0 || r->element != NULL, "array without an element table");
        for (size_t i = 0; i < r->elements; i++) {
            FUZZ_CHECK(r->element[i] != NULL, "element %zu of %zu is NULL", i, (size_t)r->elements);
            walk(r->element[i], depth + 1);
        }
        break;
    case REDIS_REPLY_INTEGER:
    case REDIS_REPLY_NIL:
        break;
    default:
        FUZZ_CHECK(0, "unknown reply type %d", r->type);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the bytes arrive as a socket would deliver them: in pieces, here of a
       size the first byte picks (1..256 bytes, or all at once) */
    size_t piece = size ? (data[0] ? data[0] : size) : 1;
    rc_resp *rp = rc_resp_new();
    FUZZ_CHECK(rp != NULL, "rc_resp_new");
    size_t off = 0;
    for (;;) {
        redisReply *reply = NULL;
        char why[200];
        int st = rc_resp_parse(rp, &reply, why, sizeof why);
        if (st < 0) {
            FUZZ_CHECK(reply == NULL && why[0], "an error without a reason, or with a reply");
            break;
        }
        if (st > 0) {
            walk(reply, 0);
            rc_resp_release(rp, reply); /* its parts build the next replies */
            continue;
        }
        if (off == size)
            break; /* incomplete: a connection would wait for more bytes */
        size_t m = rc_resp_feed(rp, data + off, size - off < piece ? size - off : piece);
        FUZZ_CHECK(m > 0, "no room for more bytes");
        off += m;
    }
    rc_resp_free(rp);
    return 0;
}
