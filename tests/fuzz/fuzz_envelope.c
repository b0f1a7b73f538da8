/* fuzz_envelope.c - libFuzzer target for the envelope codec (rc_wire_decode[_max], rc_wire_peek, rc_wire_encode).
 *
 * Why: every job, task, result and control marker a worker or master reads
 * from Redis goes through rc_wire_decode before anything else looks at it,
 * so it is the first thing a hostile server attacks.  The input is decoded
 * as it is (with the fixed key ring and queue of fuzz_common.h), from a fresh
 * exact-size heap copy each time (a sealed payload is decrypted in place, and
 * AddressSanitizer then sees a read even one byte past the end).  A fuzzer
 * cannot forge a MAC, so the input is then decoded again with the current
 * key's id written into its header and its last 32 bytes replaced by the
 * right MAC: that drives every header, length and sealing check that sits
 * behind verification.  Invariants checked: decode and peek agree on what is
 * malformed; the payload limit of rc_wire_decode_max is applied to the
 * plaintext size and nothing else changes; on success every pointer and
 * length lies inside the buffer and the payload is 8-byte aligned;
 * re-encoding the decoded fields gives back exactly the input bytes (sealed:
 * the same header and, once decrypted, the same plaintext); an authentic
 * message does not verify under another queue name or a key outside the ring.
 */
#include "fuzz_common.h"

#include <stdint.h>
#include <string.h>

#define SMALL_LIMIT 16 /* the payload limit of the rc_wire_decode_max calls */

static rc_keys K;      /* the ring the seeds were made with */
static rc_keys WRONG;  /* a key outside it */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_keys(&K);
    unsigned char s[RC_KEYBYTES];
    memset(s, 0xa5, sizeof s);
    if (rc_keys_derive(&WRONG, s) != RC_OK)
        abort();
    return 0;
}

static size_t pad8(size_t n) { return (8 - (n & 7)) & 7; }

static unsigned char *dup_bytes(const unsigned char *p, size_t n)
{
    unsigned char *c = malloc(n ? n : 1);
    FUZZ_CHECK(c != NULL, "malloc");
    if (n)
        memcpy(c, p, n);
    return c;
}

static void check_why(const char *why, size_t whylen)
{
    FUZZ_CHECK(memchr(why, '\0', whylen) != NULL, "failure text not NUL-terminated");
    FUZZ_CHECK(whylen < 2 || why[0] != '\0', "failure without a reason");
}

/* A peeked or decoded envelope describes exactly the bytes of buf. */
static void check_env(const unsigned char *buf, size_t len, const rc_env *e, int decoded)
{
    /* the set of kinds grows (RC_KIND_*); only the range the header can express is fixed */
    FUZZ_CHECK(e->kind >= RC_KIND_JOB && e->kind < RC_KIND_SEALED, "kind %u", e->kind);
    FUZZ_CHECK(e->kind == RC_KIND_RESULT || e->attempt == 0, "attempt %u on kind %u", e->attempt, e->kind);
    FUZZ_CHECK(e->sealed == ((buf[3] & RC_KIND_SEALED) != 0), "sealed flag %d, header byte %02x", e->sealed,
               buf[3]);
    FUZZ_CHECK(e->kernel_len <= RC_KERNEL_MAX, "kernel_len %zu", e->kernel_len);
    FUZZ_CHECK(e->payload_len <= RC_PAYLOAD_MAX, "payload_len %llu", (unsigned long long)e->payload_len);
    FUZZ_CHECK((const unsigned char *)e->kernel == buf + RC_HDR_BYTES, "kernel pointer");
    size_t off = RC_HDR_BYTES + e->kernel_len + pad8(e->kernel_len);
    FUZZ_CHECK(off % 8 == 0, "payload offset %zu not 8-aligned", off);
    uint64_t wire = e->payload_len;
    if (decoded && e->sealed) { /* plaintext in place after the nonce, tag after it */
        FUZZ_CHECK((const unsigned char *)e->payload == buf + off + 24, "sealed payload pointer");
        wire += RC_SEAL_BYTES;
    } else {
        FUZZ_CHECK((const unsigned char *)e->payload == buf + off, "payload pointer");
    }
    size_t trailer = rc_wire_trailer(wire);
    FUZZ_CHECK(trailer == ((buf[3] & RC_KIND_PMAC) ? RC_PMAC_BYTES : RC_MAC_BYTES), "MAC kind %02x for %llu bytes",
               buf[3], (unsigned long long)wire);
    FUZZ_CHECK(off + wire + trailer == len, "lengths %zu+%llu+%zu != %zu", off, (unsigned long long)wire, trailer,
               len);
    FUZZ_CHECK(rc_wire_size(e->kernel_len, wire) == len, "rc_wire_size disagrees");
    for (size_t i = RC_HDR_BYTES + e->kernel_len; i < off; i++)
        FUZZ_CHECK(buf[i] == 0, "non-zero padding byte at %zu accepted", i);
    if (decoded) { /* touch every byte handed out: ASan checks they are ours */
        volatile unsigned char sink = 0;
        for (size_t i = 0; i < e->kernel_len; i++) sink ^= (unsigned char)e->kernel[i];
        for (uint64_t i = 0; i < e->payload_len; i++) sink ^= ((const unsigned char *)e->payload)[i];
        (void)sink;
    }
}

/* Re-encoding what was decoded gives back the input (orig: the bytes before decoding). */
static void check_roundtrip(const unsigned char *orig, size_t len, const rc_env *e)
{
    rc_subkeys scratch;
    const rc_subkeys *sk = rc_keys_find(&K, e->keyid, &scratch);
    FUZZ_CHECK(sk != NULL, "decoded with key id %08x the ring does not hold", e->keyid);
    rc_keys k; /* the key that made it, as the current key of a one-key ring */
    memset(&k, 0, sizeof k);
    memcpy(k.mac, sk->mac, sizeof k.mac);
    memcpy(k.enc, sk->enc, sizeof k.enc);
    memcpy(k.pmac, sk->pmac, sizeof k.pmac);
    k.keyid = sk->keyid;
    k.set = 1;
    FUZZ_CHECK(rc_wire_size_env(e) == len, "rc_wire_size_env %zu, input %zu", rc_wire_size_env(e), len);
    unsigned char *out = malloc(len);
    FUZZ_CHECK(out != NULL, "malloc");
    rc_status st = rc_wire_encode(e, &k, FUZZ_QUEUE, out, len);
    FUZZ_CHECK(st == RC_OK, "re-encode failed: %d", (int)st);
    if (!e->sealed) {
        /* a Poly1305 trailer has a fresh nonce, so only what precedes it repeats */
        size_t same = (orig[3] & RC_KIND_PMAC) ? len - RC_PMAC_BYTES : len;
        for (size_t i = 0; i < same; i++)
            FUZZ_CHECK(out[i] == orig[i], "re-encoded byte %zu is %02x, input has %02x", i, out[i], orig[i]);
        if (same != len) {
            rc_env d;
            char why[300];
            FUZZ_CHECK(rc_wire_decode(out, len, &K, FUZZ_QUEUE, &d, why, sizeof why) == RC_OK,
                       "re-encoded envelope does not decode: %s", why);
        }
    } else { /* fresh nonce: same header and kernel, same plaintext once opened */
        size_t ad = RC_HDR_BYTES + e->kernel_len + pad8(e->kernel_len);
        FUZZ_CHECK(memcmp(out, orig, ad) == 0, "re-sealed header differs");
        rc_env d;
        char why[300];
        st = rc_wire_decode(out, len, &K, FUZZ_QUEUE, &d, why, sizeof why);
        FUZZ_CHECK(st == RC_OK, "re-sealed envelope does not decode: %s", why);
        FUZZ_CHECK(d.payload_len == e->payload_len &&
                       (e->payload_len == 0 || memcmp(d.payload, e->payload, (size_t)e->payload_len) == 0),
                   "re-sealed payload differs");
    }
    st = rc_wire_encode(e, &k, FUZZ_QUEUE, out, len - 1);
    FUZZ_CHECK(st == RC_EINVAL, "encode into a short buffer: %d", (int)st);
    free(out);
    sodium_memzero(&scratch, sizeof scratch);
}

/* Decode bytes[0..len) every way; returns the status with K and FUZZ_QUEUE. */
static rc_status decode_all(const unsigned char *bytes, size_t len, rc_status peek_st, const rc_env *peeked)
{
    rc_env e;
    char why[300];
    unsigned char *buf = dup_bytes(bytes, len);
    rc_status st = rc_wire_decode(buf, len, &K, FUZZ_QUEUE, &e, why, sizeof why);
    FUZZ_CHECK(st == RC_OK || st == RC_EPROTO || st == RC_EAUTH, "decode returned %d", (int)st);
    /* the header checks are the same in both: decode fails as malformed on exactly what peek refuses */
    FUZZ_CHECK((peek_st == RC_OK) == (st != RC_EPROTO), "peek %d but decode %d (%s)", (int)peek_st, (int)st,
               st == RC_OK ? "" : why);
    if (st != RC_OK) {
        check_why(why, sizeof why);
        if (st == RC_EAUTH) {
            static const rc_env zero;
            FUZZ_CHECK(memcmp(&e, &zero, sizeof e) == 0, "fields of an unverified envelope left set");
        }
    } else {
        check_env(buf, len, &e, 1);
        check_roundtrip(bytes, len, &e);
        rc_env o;
        unsigned char *c = dup_bytes(bytes, len);
        rc_status so = rc_wire_decode(c, len, &K, FUZZ_OTHER_QUEUE, &o, why, sizeof why);
        FUZZ_CHECK(so == RC_EAUTH, "authentic for queue '%s' but also verifies for '%s'", FUZZ_QUEUE,
                   FUZZ_OTHER_QUEUE);
        check_why(why, sizeof why);
        memcpy(c, bytes, len);
        so = rc_wire_decode(c, len, &WRONG, FUZZ_QUEUE, &o, why, sizeof why);
        FUZZ_CHECK(so == RC_EAUTH, "verifies under a key outside the ring");
        check_why(why, sizeof why);
        free(c);
    }
    free(buf);

    /* the payload limit: applied to the plaintext size, before anything else */
    buf = dup_bytes(bytes, len);
    rc_status sm = rc_wire_decode_max(buf, len, &K, FUZZ_QUEUE, SMALL_LIMIT, &e, why, sizeof why);
    if (peek_st == RC_OK) {
        uint64_t plain = peeked->payload_len;
        if (peeked->sealed && plain >= RC_SEAL_BYTES)
            plain -= RC_SEAL_BYTES;
        if (plain > SMALL_LIMIT)
            FUZZ_CHECK(sm == RC_EPROTO, "payload of %llu bytes passes a %d-byte limit: %d",
                       (unsigned long long)plain, SMALL_LIMIT, (int)sm);
        else
            FUZZ_CHECK(sm == st, "under the limit decode_max gives %d, decode %d", (int)sm, (int)st);
    } else {
        FUZZ_CHECK(sm == RC_EPROTO, "malformed, but decode_max gives %d", (int)sm);
    }
    free(buf);

    /* tiny reason buffers must be respected (heap, so ASan sees an overflow) */
    char *tiny = malloc(1);
    FUZZ_CHECK(tiny != NULL, "malloc");
    buf = dup_bytes(bytes, len);
    rc_status st1 = rc_wire_decode(buf, len, &K, FUZZ_QUEUE, &e, tiny, 1);
    FUZZ_CHECK(st1 == st, "status depends on the reason buffer: %d vs %d", (int)st1, (int)st);
    if (st1 != RC_OK)
        FUZZ_CHECK(tiny[0] == '\0', "1-byte reason buffer not NUL-terminated");
    free(tiny);
    free(buf);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *buf = dup_bytes(data, size);

    rc_env p;
    rc_status ps = rc_wire_peek(buf, size, &p);
    FUZZ_CHECK(ps == RC_OK || ps == RC_EPROTO, "peek returned %d", (int)ps);
    if (ps == RC_OK)
        check_env(buf, size, &p, 0);
    FUZZ_CHECK(memcmp(buf, data, size) == 0, "peek wrote to its input");

    decode_all(buf, size, ps, &p);

    /* the same bytes as the holder of the current key could send them */
    if (size >= RC_PMAC_BYTES && size >= 8) {
        for (int i = 0; i < 4; i++)
            buf[4 + i] = (unsigned char)(K.keyid >> (8 * i));
        rc_wire_sign(&K, FUZZ_QUEUE, buf, size);
        rc_status st = decode_all(buf, size, ps, &p);
        /* a sealed payload made up by the fuzzer does not open: RC_EAUTH */
        FUZZ_CHECK(st == ps || (ps == RC_OK && p.sealed && st == RC_EAUTH),
                   "with a valid MAC decode gives %d, peek %d", (int)st, (int)ps);
    }
    free(buf);
    return 0;
}
