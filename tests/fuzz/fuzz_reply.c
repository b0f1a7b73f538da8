/* fuzz_reply.c - libFuzzer target for Redis replies as a hostile server could send them.
 *
 * Why: workers and masters never see raw bytes from Redis; they see the
 * reply trees hiredis builds from them (XREADGROUP, XAUTOCLAIM-script and
 * XREAD replies whose leaves are envelopes).  This target feeds the input to
 * a hiredis redisReader, exactly as a connection would, and for every reply
 * it yields walks the whole tree: it checks the properties the library's
 * reply consumers rely on without re-checking them (array elements are never
 * NULL, strings are NUL-terminated at `len`, the nesting is bounded) and runs
 * rc_wire_peek, rc_wire_decode and rc_wire_decode_max (fixed key ring and
 * queue of fuzz_common.h) on every string, each from a fresh exact-size heap
 * copy (sealed payloads are decrypted in place) so AddressSanitizer sees any
 * overread.  The seeds are replies shaped like the real ones carrying real
 * envelopes, so mutations keep the tree shapes the worker and master parse.
 * The shape checks themselves (entry_parts, take_over, read_new in worker.c;
 * collect and handle in job.c) are static and not reachable from here; see
 * the fuzzing notes in the lead's report for which ones to expose.
 *
 * hiredis 0.14 allocates an array's element table as soon as it reads the
 * `*<count>` header (up to INT_MAX entries, 16 GiB) before any element
 * arrives; that is a property of hiredis, not of redcoll, so arrays are capped
 * at FUZZ_MAX_ELEMENTS here (the reader then reports out-of-memory, as it
 * would for a failed allocation) to keep the fuzzer looking at redcoll.
 */
#include "fuzz_common.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_ELEMENTS 4096
#define FUZZ_MAX_DEPTH 16 /* hiredis 0.14 nests at most 9 levels; anything deeper is a reader bug */

static rc_keys K;
static redisReplyObjectFunctions base_fn, capped_fn;
static size_t n_strings, n_decoded;

/* FUZZ_REPLY_STATS=1: say at exit how many strings were seen and how many
   verified, to check that a regenerated corpus still carries real envelopes */
static void print_stats(void)
{
    fprintf(stderr, "fuzz_reply: %zu strings, %zu authentic envelopes\n", n_strings, n_decoded);
}

static void *capped_array(const redisReadTask *task, int elements)
{
    if (elements > FUZZ_MAX_ELEMENTS)
        return NULL;
    return base_fn.createArray(task, elements);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_keys(&K);
    redisReader *r = redisReaderCreate();
    if (!r || !r->fn)
        abort();
    base_fn = *r->fn; /* hiredis' own reply constructors */
    redisReaderFree(r);
    capped_fn = base_fn;
    capped_fn.createArray = capped_array;
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
        FUZZ_CHECK(e.kernel_len <= RC_KERNEL_MAX && end + RC_MAC_BYTES == buf + len,
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
        FUZZ_CHECK(r->elements <= FUZZ_MAX_ELEMENTS, "array of %zu elements", (size_t)r->elements);
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
    redisReader *rd = redisReaderCreateWithFunctions(&capped_fn);
    FUZZ_CHECK(rd != NULL, "redisReaderCreate");
    if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK) {
        for (;;) {
            void *reply = NULL;
            if (redisReaderGetReply(rd, &reply) != REDIS_OK) {
                FUZZ_CHECK(reply == NULL, "reply handed out with an error");
                break;
            }
            if (!reply)
                break; /* incomplete: a connection would wait for more bytes */
            walk(reply, 0);
            freeReplyObject(reply);
        }
    }
    redisReaderFree(rd);
    return 0;
}
