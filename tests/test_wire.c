/* test_wire.c - the envelope codec, Redis URL parser and key files, attacked byte by byte.
 *
 * Everything a worker or master reads from Redis goes through rc_wire_decode
 * first, so it must reject every malformed or altered input with a status and
 * never read outside the buffer.  This test therefore goes exhaustive where
 * it is cheap: every truncation length and every single-bit flip of real
 * envelopes (each copied into an exact-size heap buffer, so AddressSanitizer
 * sees any overread), plus forged headers re-MACed with the right key so the
 * length, kind, version and reserved-field checks are tested on their own and
 * not hidden behind the MAC.  The URL parser and key-file reader are the
 * other two places user input enters the library, and their error messages
 * are part of the interface (they are what a user sees), so the messages are
 * checked as well as the codes.
 */
#include "internal.h"

/* zero padding after the kernel name: the payload starts 8-byte aligned */
#define KPAD(k) ((8 - ((k) & 7)) & 7)

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

static const char *st_name(rc_status st)
{
    static const char *const names[] = {"RC_OK", "RC_EINVAL", "RC_ENOMEM", "RC_EREDIS", "RC_ETIMEDOUT",
                                        "RC_EAUTH", "RC_EPROTO", "RC_EKERNEL", "RC_ENOKERNEL", "RC_EKEY",
                                        "RC_ECANCELED", "RC_EIO", "RC_EAGAIN", "RC_ETYPE", "RC_ESTATE",
                                        "RC_ENOTFOUND"};
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "RC_?";
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "test_wire: out of memory\n");
        exit(1);
    }
    return p;
}

/* Exact-size heap copy, so ASan flags any read past len. */
static unsigned char *dup_exact(const unsigned char *buf, size_t len)
{
    unsigned char *p = xmalloc(len);
    if (len)
        memcpy(p, buf, len);
    return p;
}

static void put16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }

/* Recompute the MAC of an envelope we altered, as a forger with the key
 * would: only the structural checks can catch it then.  The kind byte says
 * which MAC (BLAKE2b, or a fresh nonce and Poly1305). */
static void remac(unsigned char *buf, size_t len, const rc_keys *k, const char *queue)
{
    rc_wire_sign(k, queue, buf, len);
}

static rc_keys key_a, key_b;
static const char *const QUEUE = "testq";

static void make_keys(void)
{
    unsigned char s[RC_KEYBYTES];
    for (unsigned i = 0; i < RC_KEYBYTES; i++)
        s[i] = (unsigned char)(i * 7 + 1);
    CHECK(rc_keys_derive(&key_a, s) == RC_OK, "derive key a");
    s[0] ^= 1;
    CHECK(rc_keys_derive(&key_b, s) == RC_OK, "derive key b");
    CHECK(key_a.set && key_b.set, "keys marked set");
    CHECK(key_a.keyid != key_b.keyid, "different secrets give different key ids (%08x %08x)", key_a.keyid,
          key_b.keyid);
    CHECK(memcmp(key_a.mac, key_b.mac, sizeof key_a.mac) != 0, "different secrets give different MAC keys");
    rc_keys again;
    s[0] ^= 1;
    CHECK(rc_keys_derive(&again, s) == RC_OK && again.keyid == key_a.keyid &&
              memcmp(again.mac, key_a.mac, sizeof again.mac) == 0,
          "key derivation is deterministic");
}

/* Encode e with key_a/QUEUE into a fresh exact-size buffer. */
static unsigned char *encode(const rc_env *e, size_t *len)
{
    *len = rc_wire_size(e->kernel_len, e->payload_len);
    unsigned char *buf = xmalloc(*len);
    rc_status st = rc_wire_encode(e, &key_a, QUEUE, buf, *len);
    CHECK(st == RC_OK, "encode kind %u kernel %zu payload %llu: %s", e->kind, e->kernel_len,
          (unsigned long long)e->payload_len, st_name(st));
    return buf;
}

static rc_status decode(const unsigned char *buf, size_t len, const rc_keys *k, const char *queue, rc_env *e,
                        char *why, size_t whylen)
{
    unsigned char *copy = dup_exact(buf, len);
    why[0] = '\0';
    rc_status st = rc_wire_decode(copy, len, k, queue, e, why, whylen);
    free(copy);
    return st;
}

/* ------------------------------------------------------------------ */
/* Envelopes                                                            */

static void test_roundtrip_and_attacks(uint8_t kind, const char *kernel, size_t plen)
{
    unsigned char *payload = xmalloc(plen);
    for (size_t i = 0; i < plen; i++)
        payload[i] = (unsigned char)(i * 31 + kind);
    rc_env e = {.kind = kind, .job = 0x0123456789abcdefULL, .rank = 41, .ntasks = 1000, .aux = 0xfeedfacecafebeefULL,
                .status = kind == RC_KIND_RESULT ? 7u : 0u, .kernel = kernel, .kernel_len = strlen(kernel),
                .payload = plen ? payload : NULL, .payload_len = plen};
    size_t n;
    unsigned char *buf = encode(&e, &n);
    size_t trailer = plen >= RC_PMAC_MIN ? RC_PMAC_BYTES : RC_MAC_BYTES;
    CHECK(n == RC_HDR_BYTES + e.kernel_len + KPAD(e.kernel_len) + plen + trailer, "rc_wire_size %zu", n);
    CHECK(buf[0] == 'R' && buf[1] == 'C' && buf[2] == RC_WIRE_VERSION &&
              buf[3] == (kind | (trailer == RC_PMAC_BYTES ? RC_KIND_PMAC : 0)),
          "header magic/version/kind 0x%02x for a %zu-byte payload", buf[3], plen);

    /* round trip, with the result pointing into the decoded buffer */
    char why[512];
    rc_env d;
    unsigned char *copy = dup_exact(buf, n);
    rc_status st = rc_wire_decode(copy, n, &key_a, QUEUE, &d, why, sizeof why);
    CHECK(st == RC_OK, "round trip kind %u kernel '%s' payload %zu: %s (%s)", kind, kernel, plen, st_name(st), why);
    if (st == RC_OK) {
        CHECK(d.kind == kind && d.keyid == key_a.keyid && d.job == e.job && d.rank == e.rank &&
                  d.ntasks == e.ntasks && d.aux == e.aux && d.status == e.status,
              "round trip fields kind %u", kind);
        CHECK(d.kernel_len == e.kernel_len && (e.kernel_len == 0 || memcmp(d.kernel, kernel, e.kernel_len) == 0),
              "round trip kernel '%s'", kernel);
        CHECK(d.payload_len == plen && (plen == 0 || memcmp(d.payload, payload, plen) == 0),
              "round trip payload %zu", plen);
        CHECK((const unsigned char *)d.kernel == copy + RC_HDR_BYTES, "kernel points into the buffer");
        CHECK((const unsigned char *)d.payload == copy + RC_HDR_BYTES + e.kernel_len + KPAD(e.kernel_len),
              "payload points into the buffer");
        CHECK((uintptr_t)d.payload % 8 == 0, "payload is 8-byte aligned in a malloc'd buffer");
        if (KPAD(e.kernel_len)) { /* non-zero padding is rejected even with a valid MAC */
            unsigned char *bad = dup_exact(buf, n);
            bad[RC_HDR_BYTES + e.kernel_len] = 1;
            remac(bad, n, &key_a, QUEUE);
            rc_env d2;
            CHECK(rc_wire_decode(bad, n, &key_a, QUEUE, &d2, why, sizeof why) == RC_EPROTO && strstr(why, "padding"),
                  "non-zero padding after kernel '%s' rejected", kernel);
            free(bad);
        }
    }
    rc_env p;
    CHECK(rc_wire_peek(copy, n, &p) == RC_OK && p.kind == kind && p.job == e.job && p.rank == e.rank &&
              p.keyid == key_a.keyid,
          "peek kind %u", kind);
    free(copy);

    /* every truncation: one check per length */
    for (size_t len = 0; len < n; len++) {
        st = decode(buf, len, &key_a, QUEUE, &d, why, sizeof why);
        CHECK(st == RC_EPROTO && why[0] != '\0',
              "truncated to %zu of %zu bytes (kind %u): %s, want RC_EPROTO with a reason ('%s')", len, n, kind,
              st_name(st), why);
        unsigned char *c2 = dup_exact(buf, len);
        rc_status ps = rc_wire_peek(c2, len, &p);
        free(c2);
        CHECK(ps == RC_EPROTO, "peek of a truncation to %zu of %zu bytes: %s", len, n, st_name(ps));
    }

    /* every single flipped bit: one check per bit */
    for (size_t byte = 0; byte < n; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[byte] ^= (unsigned char)(1u << bit);
            st = decode(buf, n, &key_a, QUEUE, &d, why, sizeof why);
            buf[byte] ^= (unsigned char)(1u << bit);
            CHECK((st == RC_EPROTO || st == RC_EAUTH) && why[0] != '\0',
                  "bit %d of byte %zu flipped (kind %u, %zu bytes): %s, want RC_EPROTO or RC_EAUTH with a reason",
                  bit, byte, kind, n, st_name(st));
        }
    }
    st = decode(buf, n, &key_a, QUEUE, &d, why, sizeof why);
    CHECK(st == RC_OK, "envelope intact after the flips");

    /* appended bytes, of several values and counts */
    for (size_t extra = 1; extra <= 40; extra += (extra < 4 ? 1 : 9)) {
        unsigned char *big = xmalloc(n + extra);
        memcpy(big, buf, n);
        memset(big + n, extra & 1 ? 0 : 0xa5, extra);
        st = decode(big, n + extra, &key_a, QUEUE, &d, why, sizeof why);
        CHECK(st == RC_EPROTO || st == RC_EAUTH, "%zu appended bytes (kind %u): %s", extra, kind, st_name(st));
        CHECK(st != RC_OK, "%zu appended bytes accepted", extra);
        free(big);
    }

    /* wrong key: says which key made it and which one we hold */
    st = decode(buf, n, &key_b, QUEUE, &d, why, sizeof why);
    char ida[16], idb[16];
    snprintf(ida, sizeof ida, "%08x", key_a.keyid);
    snprintf(idb, sizeof idb, "%08x", key_b.keyid);
    CHECK(st == RC_EAUTH, "wrong key (kind %u): %s, want RC_EAUTH", kind, st_name(st));
    CHECK(strstr(why, ida) && strstr(why, idb), "wrong-key why '%s' names both key ids %s and %s", why, ida, idb);
    CHECK(d.kernel == NULL && d.payload == NULL, "wrong key: no pointers handed out");

    /* another queue, same key */
    st = decode(buf, n, &key_a, "testq2", &d, why, sizeof why);
    CHECK(st == RC_EAUTH, "other queue (kind %u): %s, want RC_EAUTH", kind, st_name(st));
    CHECK(why[0] != '\0', "other queue: why is set");
    st = decode(buf, n, &key_a, "testQ", &d, why, sizeof why);
    CHECK(st == RC_EAUTH, "queue name is case sensitive: %s", st_name(st));
    st = decode(buf, n, &key_a, "", &d, why, sizeof why);
    CHECK(st == RC_EAUTH, "empty queue name: %s", st_name(st));

    /* tiny why buffers must not break anything */
    copy = dup_exact(buf, n);
    st = rc_wire_decode(copy, n, &key_b, QUEUE, &d, why, 1);
    CHECK(st == RC_EAUTH && why[0] == '\0', "why of 1 byte: %s", st_name(st));
    st = rc_wire_decode(copy, 3, &key_a, QUEUE, &d, why, 0);
    CHECK(st == RC_EPROTO, "why of 0 bytes: %s", st_name(st));
    free(copy);

    free(buf);
    free(payload);
}

/* A forged envelope: valid MAC, bad structure. */
static void test_forged(void)
{
    static const unsigned char payload[24] = "0123456789abcdefghijklm";
    rc_env e = {.kind = RC_KIND_TASK, .job = 9, .rank = 1, .ntasks = 2, .kernel = "pi", .kernel_len = 2,
                .payload = payload, .payload_len = sizeof payload};
    size_t n;
    unsigned char *good = encode(&e, &n);
    char why[512];
    rc_env d;
    rc_status st;

    /* the forger's tool works: re-MACing an unaltered envelope verifies */
    unsigned char *b = dup_exact(good, n);
    remac(b, n, &key_a, QUEUE);
    CHECK(memcmp(b, good, n) == 0, "remac reproduces the encoder's MAC");
    free(b);

    /* declared payload lengths near 2^64, or past what was received */
    const uint64_t lens[] = {UINT64_MAX,
                             UINT64_MAX - 1,
                             UINT64_MAX - 1 - RC_HDR_BYTES,
                             (uint64_t)0 - 2, /* + kernel_len 2 wraps to 0 */
                             (uint64_t)1 << 63,
                             ((uint64_t)1 << 63) + sizeof payload,
                             ((uint64_t)1 << 32) + sizeof payload,
                             RC_PAYLOAD_MAX + 1,
                             RC_PAYLOAD_MAX,
                             sizeof payload + 1,
                             sizeof payload - 1,
                             0};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        b = dup_exact(good, n);
        put64(b + 48, lens[i]);
        remac(b, n, &key_a, QUEUE);
        st = decode(b, n, &key_a, QUEUE, &d, why, sizeof why);
        CHECK(st == RC_EPROTO, "payload_len %llu (re-MACed): %s, want RC_EPROTO (%s)", (unsigned long long)lens[i],
              st_name(st), why);
        free(b);
    }
    /* kernel_len + payload_len that wraps around 2^64 to exactly the bytes
       received: only a bound on payload_len itself stops this one, and
       without it the payload pointer would land past the buffer */
    for (uint16_t kl = 3; kl <= RC_KERNEL_MAX; kl++) {
        uint64_t rest = n - RC_HDR_BYTES - RC_MAC_BYTES; /* 26 < kl for large kl */
        if (rest >= kl)
            continue;
        b = dup_exact(good, n);
        put16(b + 44, kl);
        put64(b + 48, (uint64_t)0 - kl + rest);
        remac(b, n, &key_a, QUEUE);
        st = decode(b, n, &key_a, QUEUE, &d, why, sizeof why);
        CHECK(st == RC_EPROTO, "kernel_len %u + payload_len 2^64-%u+%llu wraps to the %llu bytes present: %s",
              kl, kl, (unsigned long long)rest, (unsigned long long)rest, st_name(st));
        unsigned char *c2 = dup_exact(b, n);
        CHECK(rc_wire_peek(c2, n, &d) == RC_EPROTO, "peek of the wrapping lengths (kernel_len %u)", kl);
        free(c2);
        free(b);
    }
    /* the same wrap attempt with the real kernel length moved instead */
    b = dup_exact(good, n);
    put16(b + 44, 0);
    remac(b, n, &key_a, QUEUE);
    st = decode(b, n, &key_a, QUEUE, &d, why, sizeof why);
    CHECK(st == RC_EPROTO, "kernel_len 0 but 2 kernel bytes present: %s", st_name(st));
    free(b);

    /* kernel_len > RC_KERNEL_MAX, with the bytes really there */
    {
        char kname[200];
        memset(kname, 'k', sizeof kname);
        for (size_t kl = RC_KERNEL_MAX - 1; kl <= RC_KERNEL_MAX + 2; kl++) {
            size_t len = RC_HDR_BYTES + kl + KPAD(kl) + RC_MAC_BYTES;
            b = xmalloc(len);
            memset(b, 0, len);
            /* build it from a 0-kernel envelope's header */
            rc_env z = {.kind = RC_KIND_JOB, .job = 5, .ntasks = 1, .kernel = kname, .kernel_len = 0};
            CHECK(rc_wire_encode(&z, &key_a, QUEUE, b, RC_HDR_BYTES + RC_MAC_BYTES) == RC_OK, "encode empty");
            put16(b + 44, (uint16_t)kl);
            memcpy(b + RC_HDR_BYTES, kname, kl);
            remac(b, len, &key_a, QUEUE);
            st = decode(b, len, &key_a, QUEUE, &d, why, sizeof why);
            if (kl <= RC_KERNEL_MAX)
                CHECK(st == RC_OK && d.kernel_len == kl, "kernel_len %zu accepted: %s (%s)", kl, st_name(st), why);
            else
                CHECK(st == RC_EPROTO && strstr(why, "kernel"), "kernel_len %zu: %s, want RC_EPROTO (%s)", kl,
                      st_name(st), why);
            free(b);
        }
        b = dup_exact(good, n);
        put16(b + 44, 0xffff);
        remac(b, n, &key_a, QUEUE);
        st = decode(b, n, &key_a, QUEUE, &d, why, sizeof why);
        CHECK(st == RC_EPROTO, "kernel_len 65535: %s", st_name(st));
        free(b);
        /* and the encoder refuses to make one */
        rc_env big = {.kind = RC_KIND_JOB, .kernel = kname, .kernel_len = RC_KERNEL_MAX + 1};
        size_t bl = rc_wire_size(big.kernel_len, 0);
        b = xmalloc(bl);
        CHECK(rc_wire_encode(&big, &key_a, QUEUE, b, bl) == RC_EINVAL, "encode kernel_len 65 -> RC_EINVAL");
        free(b);
    }

    /* version */
    const unsigned versions[] = {0, 1, 3, 0x7f, 0x80, 0xff}; /* 1: before RC_KIND_PMAC */
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        b = dup_exact(good, n);
        b[2] = (unsigned char)versions[i];
        remac(b, n, &key_a, QUEUE);
        st = decode(b, n, &key_a, QUEUE, &d, why, sizeof why);
        char want[32];
        snprintf(want, sizeof want, "version %u", versions[i]);
        CHECK(st == RC_EPROTO, "version %u: %s, want RC_EPROTO", versions[i], st_name(st));
        CHECK(strstr(why, want) != NULL, "version %u: why '%s' should contain '%s'", versions[i], why, want);
        free(b);
    }

    /* kind */
    const unsigned kinds[] = {0, 7, 8, 0x80, 0x87, 0xff};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        b = dup_exact(good, n);
        b[3] = (unsigned char)kinds[i];
        remac(b, n, &key_a, QUEUE);
        st = decode(b, n, &key_a, QUEUE, &d, why, sizeof why);
        CHECK(st == RC_EPROTO, "kind %u: %s, want RC_EPROTO", kinds[i], st_name(st));
        free(b);
    }

    /* magic and reserved field */
    for (int i = 0; i < 2; i++) {
        b = dup_exact(good, n);
        b[i] = 'X';
        remac(b, n, &key_a, QUEUE);
        st = decode(b, n, &key_a, QUEUE, &d, why, sizeof why);
        CHECK(st == RC_EPROTO && strstr(why, "magic"), "magic byte %d: %s (%s)", i, st_name(st), why);
        free(b);
    }
    for (int v = 1; v <= 0x8000; v <<= 3) {
        b = dup_exact(good, n);
        put16(b + 46, (uint16_t)v);
        remac(b, n, &key_a, QUEUE);
        st = decode(b, n, &key_a, QUEUE, &d, why, sizeof why);
        CHECK(st == RC_EPROTO, "reserved field 0x%x: %s", v, st_name(st));
        free(b);
    }

    /* encoder argument checks */
    unsigned char small[RC_HDR_BYTES + RC_MAC_BYTES + 8];
    rc_env z = {.kind = RC_KIND_TASK};
    CHECK(rc_wire_encode(&z, &key_a, QUEUE, small, sizeof small) == RC_EINVAL, "encode: outlen too big");
    CHECK(rc_wire_encode(&z, &key_a, QUEUE, small, RC_HDR_BYTES + RC_MAC_BYTES - 1) == RC_EINVAL,
          "encode: outlen too small");
    rc_keys unset;
    memset(&unset, 0, sizeof unset);
    CHECK(rc_wire_encode(&z, &unset, QUEUE, small, RC_HDR_BYTES + RC_MAC_BYTES) == RC_EINVAL,
          "encode: no key -> RC_EINVAL");
    z.payload_len = RC_PAYLOAD_MAX + 1;
    CHECK(rc_wire_encode(&z, &key_a, QUEUE, small, sizeof small) == RC_EINVAL, "encode: payload too big");

    /* a splice: header of one valid envelope, MAC of another */
    rc_env e2 = e;
    e2.rank = 2;
    size_t n2;
    unsigned char *other = encode(&e2, &n2);
    b = dup_exact(good, n);
    memcpy(b + n - RC_MAC_BYTES, other + n2 - RC_MAC_BYTES, RC_MAC_BYTES);
    st = decode(b, n, &key_a, QUEUE, &d, why, sizeof why);
    CHECK(st == RC_EAUTH && strstr(why, "MAC"), "spliced MAC: %s (%s)", st_name(st), why);
    free(b);
    free(other);

    /* zero-filled and random-looking junk of every small size */
    for (size_t len = 0; len <= RC_HDR_BYTES + RC_MAC_BYTES + 70; len++) {
        b = xmalloc(len);
        memset(b, 0, len);
        st = decode(b, len, &key_a, QUEUE, &d, why, sizeof why);
        CHECK(st == RC_EPROTO, "%zu zero bytes: %s", len, st_name(st));
        for (size_t i = 0; i < len; i++)
            b[i] = (unsigned char)(i * 151 + len);
        if (len >= 3) {
            b[0] = 'R';
            b[1] = 'C';
            b[2] = RC_WIRE_VERSION;
        }
        st = decode(b, len, &key_a, QUEUE, &d, why, sizeof why);
        CHECK(st == RC_EPROTO || st == RC_EAUTH, "%zu junk bytes: %s", len, st_name(st));
        free(b);
    }
    free(good);
}

/* Each payload size has one MAC kind: a forger with the key who flips the
 * kind bit (and re-signs with the other MAC) is refused by name, and a
 * Poly1305 envelope carries a fresh nonce each time it is made. */
static void test_mac_kind(void)
{
    const size_t sizes[] = {0, 100, RC_PMAC_MIN - 1, RC_PMAC_MIN, (size_t)1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *payload = xmalloc(sizes[i]);
        memset(payload, 0x5a, sizes[i]);
        rc_env e = {.kind = RC_KIND_RESULT, .job = 5, .rank = 1, .ntasks = 2, .kernel = "vec", .kernel_len = 3,
                    .payload = sizes[i] ? payload : NULL, .payload_len = sizes[i]};
        size_t n;
        unsigned char *good = encode(&e, &n), *again = encode(&e, &n);
        int poly = sizes[i] >= RC_PMAC_MIN;
        CHECK(((good[3] & RC_KIND_PMAC) != 0) == poly, "%zu-byte payload: kind byte 0x%02x", sizes[i], good[3]);
        CHECK((memcmp(good, again, n) != 0) == poly, "%zu-byte payload: two encodings %s", sizes[i],
              poly ? "should differ (fresh nonce)" : "should be identical (deterministic MAC)");
        char why[512];
        rc_env d;
        CHECK(decode(good, n, &key_a, QUEUE, &d, why, sizeof why) == RC_OK, "%zu-byte payload decodes (%s)",
              sizes[i], why);
        /* the other kind's trailer length: re-lay the message out by hand */
        size_t body = n - (poly ? RC_PMAC_BYTES : RC_MAC_BYTES);
        size_t m = body + (poly ? RC_MAC_BYTES : RC_PMAC_BYTES);
        unsigned char *b = xmalloc(m > n ? m : n);
        memcpy(b, good, body);
        b[3] ^= RC_KIND_PMAC;
        remac(b, m, &key_a, QUEUE);
        rc_status st = decode(b, m, &key_a, QUEUE, &d, why, sizeof why);
        CHECK(st == RC_EPROTO && strstr(why, "MAC kind"), "%zu-byte payload with the other MAC kind: %s (%s)",
              sizes[i], st_name(st), why);
        /* the Poly1305 tag under another queue's name, or with the nonce altered */
        if (poly) {
            memcpy(b, good, n);
            b[n - RC_PMAC_BYTES] ^= 1;
            st = decode(b, n, &key_a, QUEUE, &d, why, sizeof why);
            CHECK(st == RC_EAUTH, "altered nonce: %s", st_name(st));
            memcpy(b, good, n);
            b[n - 1] ^= 0x80;
            st = decode(b, n, &key_a, QUEUE, &d, why, sizeof why);
            CHECK(st == RC_EAUTH, "altered Poly1305 tag: %s", st_name(st));
            b[n - 1] ^= 0x80;
            b[RC_HDR_BYTES + 8 + sizes[i] / 2] ^= 4;
            st = decode(b, n, &key_a, QUEUE, &d, why, sizeof why);
            CHECK(st == RC_EAUTH, "altered payload byte under Poly1305: %s", st_name(st));
        }
        free(b);
        free(good);
        free(again);
        free(payload);
    }
}

static void test_envelopes(void)
{
    char k64[RC_KERNEL_MAX + 1];
    memset(k64, 'x', RC_KERNEL_MAX);
    k64[RC_KERNEL_MAX] = '\0';
    const char *kernels[] = {"", "pi", k64};
    const size_t plens[] = {0, 1, 33};
    for (uint8_t kind = RC_KIND_JOB; kind <= RC_KIND_REJECT; kind++)
        for (size_t k = 0; k < 3; k++)
            for (size_t p = 0; p < 3; p++)
                test_roundtrip_and_attacks(kind, kernels[k], plens[p]);
    /* either side of the switch to the Poly1305 MAC */
    test_roundtrip_and_attacks(RC_KIND_RESULT, "pi", RC_PMAC_MIN - 1);
    test_roundtrip_and_attacks(RC_KIND_RESULT, "pi", RC_PMAC_MIN);
    test_roundtrip_and_attacks(RC_KIND_TASK, "", RC_PMAC_MIN + 8);
    test_forged();
    test_mac_kind();
}

/* ------------------------------------------------------------------ */
/* URLs                                                                 */

static void url_ok(const char *s, int is_unix, const char *host, int port, const char *path, const char *user,
                   const char *pass, int db)
{
    rc_url u;
    char why[256] = "";
    rc_status st = rc_url_parse(s, &u, why, sizeof why);
    CHECK(st == RC_OK, "url '%s': %s (%s)", s, st_name(st), why);
    if (st != RC_OK)
        return;
    CHECK(u.is_unix == is_unix, "url '%s': is_unix %d", s, u.is_unix);
    CHECK(strcmp(u.host, host) == 0, "url '%s': host '%s', want '%s'", s, u.host, host);
    if (!is_unix)
        CHECK(u.port == port, "url '%s': port %d, want %d", s, u.port, port);
    CHECK(strcmp(u.path, path) == 0, "url '%s': path '%s', want '%s'", s, u.path, path);
    CHECK(strcmp(u.user, user) == 0, "url '%s': user '%s', want '%s'", s, u.user, user);
    CHECK(strcmp(u.pass, pass) == 0, "url '%s': pass '%s', want '%s'", s, u.pass, pass);
    CHECK(u.db == db, "url '%s': db %d, want %d", s, u.db, db);
}

static void url_bad(const char *s)
{
    rc_url u;
    char why[256] = "";
    rc_status st = rc_url_parse(s, &u, why, sizeof why);
    CHECK(st == RC_EINVAL, "bad url '%s': %s, want RC_EINVAL", s ? s : "(null)", st_name(st));
    CHECK(why[0] != '\0', "bad url '%s': empty message", s ? s : "(null)");
}

static void test_urls(void)
{
    url_ok("redis://host", 0, "host", 6379, "", "", "", 0);
    url_ok("redis://localhost:6380/4", 0, "localhost", 6380, "", "", "", 4);
    url_ok("redis://host/", 0, "host", 6379, "", "", "", 0);
    url_ok("redis://user:pass@host:7000/3", 0, "host", 7000, "", "user", "pass", 3);
    url_ok("redis://:pass@host", 0, "host", 6379, "", "", "pass", 0);
    url_ok("redis://secret@host:1", 0, "host", 1, "", "", "secret", 0);
    url_ok("redis://u:p%40ss%3Aw%2F%25x@h:65535/0", 0, "h", 65535, "", "u", "p@ss:w/%x", 0);
    url_ok("redis://u:a@b@host", 0, "host", 6379, "", "u", "a@b", 0);
    url_ok("redis://[::1]:6380", 0, "::1", 6380, "", "", "", 0);
    url_ok("redis://[::1]", 0, "::1", 6379, "", "", "", 0);
    url_ok("redis://127.0.0.1:6379/1000000", 0, "127.0.0.1", 6379, "", "", "", 1000000);
    url_ok("unix:///tmp/x.sock?db=2", 1, "", 0, "/tmp/x.sock", "", "", 2);
    url_ok("unix:///tmp/x.sock", 1, "", 0, "/tmp/x.sock", "", "", 0);

    url_bad(NULL);
    url_bad("");
    url_bad("http://host:6379");
    url_bad("rediss://host");
    url_bad("redis://");
    url_bad("redis:///3");
    url_bad("redis://host:0");
    url_bad("redis://host:70000");
    url_bad("redis://host:65536");
    url_bad("redis://host:abc");
    url_bad("redis://host:");
    url_bad("redis://host:-1");
    url_bad("redis://host:99999999999999999999");
    url_bad("redis://host/x");
    url_bad("redis://host:6379/x");
    url_bad("redis://host/-1");
    url_bad("redis://host/1000001");
    url_bad("redis://[::1");
    url_bad("redis://[::1:6380/2");
    url_bad("redis://[::1]x");
    url_bad("redis://[]:6379");
    url_bad("redis://user:pass@");
    url_bad("redis://u:p%4@host");
    url_bad("redis://u:p%zz@host");
    url_bad("unix:relative");
    url_bad("unix://relative.sock");
    url_bad("unix://");
    url_bad("unix:///tmp/x.sock?db=x");
    url_bad("unix:///tmp/x.sock?foo=1");

    /* host name too long for the buffer: refused, not truncated */
    char longurl[400];
    snprintf(longurl, sizeof longurl, "redis://%0300d:6379", 0);
    url_bad(longurl);
    char longpass[400];
    snprintf(longpass, sizeof longpass, "redis://:%0300d@host", 0);
    url_bad(longpass);
}

/* ------------------------------------------------------------------ */
/* Key files                                                            */

static char tmpdir[256];

static void write_file(const char *path, const char *text, size_t len, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0, "create %s: %s", path, strerror(errno));
    if (fd < 0)
        return;
    CHECK(write(fd, text, len) == (ssize_t)len, "write %s", path);
    CHECK(fchmod(fd, mode) == 0, "chmod %s", path);
    close(fd);
}

static rc_status read_key(const char *path, unsigned char out[RC_KEYBYTES], char *why, size_t whylen)
{
    why[0] = '\0';
    return rc_key_read_file(path, out, why, whylen);
}

static void test_key_files(void)
{
    char path[400], why[512];
    unsigned char key[RC_KEYBYTES];
    rc_status st;
    const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";
    char text[200];

    snprintf(path, sizeof path, "%s/good.key", tmpdir);
    snprintf(text, sizeof text, "%s\n", hex);
    write_file(path, text, strlen(text), 0600);
    memset(key, 0xee, sizeof key);
    st = read_key(path, key, why, sizeof why);
    CHECK(st == RC_OK, "good key file: %s (%s)", st_name(st), why);
    int same = 1;
    for (unsigned i = 0; i < RC_KEYBYTES; i++)
        same &= key[i] == i;
    CHECK(same, "good key file decoded to the right bytes");

    /* no newline, CRLF, mode 0400 */
    write_file(path, hex, strlen(hex), 0600);
    CHECK(read_key(path, key, why, sizeof why) == RC_OK, "key without newline: %s", why);
    snprintf(text, sizeof text, "%s\r\n", hex);
    write_file(path, text, strlen(text), 0400);
    CHECK(read_key(path, key, why, sizeof why) == RC_OK, "key with CRLF, mode 0400: %s", why);

    /* readable by others */
    const mode_t open_modes[] = {0644, 0640, 0604, 0601, 0660, 0666};
    for (size_t i = 0; i < sizeof open_modes / sizeof open_modes[0]; i++) {
        snprintf(text, sizeof text, "%s\n", hex);
        write_file(path, text, strlen(text), open_modes[i]);
        st = read_key(path, key, why, sizeof why);
        CHECK(st == RC_EKEY, "key mode %03o: %s, want RC_EKEY", (unsigned)open_modes[i], st_name(st));
        CHECK(strstr(why, "chmod 600") != NULL, "key mode %03o: message '%s' should say chmod 600",
              (unsigned)open_modes[i], why);
        CHECK(strstr(why, path) != NULL, "key mode %03o: message names the file", (unsigned)open_modes[i]);
    }

    /* malformed contents */
    char h63[70], h65[70], nonhex[70], spaced[80], junk_after[200];
    snprintf(h63, sizeof h63, "%.63s\n", hex);
    snprintf(h65, sizeof h65, "%s0\n", hex);
    snprintf(nonhex, sizeof nonhex, "%.62szz\n", hex);
    snprintf(spaced, sizeof spaced, " %s\n", hex);
    /* 64 digits, 8 newlines, then more text: "exactly 64 hex digits" says no */
    snprintf(junk_after, sizeof junk_after, "%s\n\n\n\n\n\n\n\nthis is not part of a key\n", hex);
    const struct { const char *name, *text; } bad[] = {
        {"empty", ""},
        {"63 hex digits", h63},
        {"65 hex digits", h65},
        {"non-hex digits", nonhex},
        {"leading space", spaced},
        {"binary key", "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10"
                       "\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x20"},
        {"64 digits then junk past the read buffer", junk_after},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i].text, strlen(bad[i].text), 0600);
        st = read_key(path, key, why, sizeof why);
        CHECK(st == RC_EKEY, "key file with %s: %s, want RC_EKEY", bad[i].name, st_name(st));
        CHECK(st != RC_EKEY || why[0] != '\0', "key file with %s: empty message", bad[i].name);
    }

    /* missing file, directory, symlink */
    snprintf(path, sizeof path, "%s/does-not-exist.key", tmpdir);
    st = read_key(path, key, why, sizeof why);
    CHECK(st == RC_EKEY, "missing key file: %s", st_name(st));
    CHECK(strstr(why, path) != NULL, "missing key file: message '%s' names the path", why);
    st = read_key(tmpdir, key, why, sizeof why);
    CHECK(st == RC_EKEY, "directory as key file: %s", st_name(st));
    char target[400], link[400];
    snprintf(target, sizeof target, "%s/target.key", tmpdir);
    snprintf(link, sizeof link, "%s/link.key", tmpdir);
    snprintf(text, sizeof text, "%s\n", hex);
    write_file(target, text, strlen(text), 0600);
    CHECK(symlink(target, link) == 0, "symlink: %s", strerror(errno));
    st = read_key(link, key, why, sizeof why);
    CHECK(st == RC_EKEY, "symlinked key file refused (O_NOFOLLOW): %s", st_name(st));

    /* rc_ctx_load_key carries the message through */
    rc_ctx *ctx = rc_ctx_create();
    CHECK(ctx != NULL, "rc_ctx_create");
    if (ctx) {
        snprintf(path, sizeof path, "%s/open.key", tmpdir);
        write_file(path, text, strlen(text), 0644);
        CHECK(rc_ctx_load_key(ctx, path) == RC_EKEY && strstr(rc_ctx_errmsg(ctx), "chmod 600"),
              "rc_ctx_load_key 0644: '%s'", rc_ctx_errmsg(ctx));
        CHECK(rc_ctx_load_key(ctx, target) == RC_OK && rc_ctx_errmsg(ctx)[0] == '\0',
              "rc_ctx_load_key good: '%s'", rc_ctx_errmsg(ctx));
        rc_ctx_destroy(ctx);
    }
}

static void test_keygen(void)
{
    char path[400], path2[400], msg[512], why[512];
    struct stat sb;
    unsigned char k1[RC_KEYBYTES], k2[RC_KEYBYTES];

    mode_t old = umask(0);
    snprintf(path, sizeof path, "%s/gen.key", tmpdir);
    rc_status st = rc_keygen_file(path, msg, sizeof msg);
    CHECK(st == RC_OK, "keygen under umask 0: %s (%s)", st_name(st), msg);
    CHECK(stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 07777) == 0600,
          "keygen under umask 0: mode %04o, want 0600", (unsigned)(sb.st_mode & 07777));
    CHECK(sb.st_size == RC_KEYBYTES * 2 + 1, "keygen file is 64 hex digits + newline (%lld bytes)",
          (long long)sb.st_size);
    CHECK(read_key(path, k1, why, sizeof why) == RC_OK, "generated key reads back: %s", why);

    /* refuses to overwrite, leaves the file alone */
    char before[100] = "", after[100] = "";
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(before, sizeof before, f)) before[0] = '\0';
        fclose(f);
    }
    st = rc_keygen_file(path, msg, sizeof msg);
    CHECK(st == RC_EIO, "keygen over an existing file: %s, want RC_EIO", st_name(st));
    CHECK(strstr(msg, path) != NULL && strstr(msg, "overwrite") != NULL, "keygen refusal message '%s'", msg);
    f = fopen(path, "r");
    if (f) {
        if (!fgets(after, sizeof after, f)) after[0] = '\0';
        fclose(f);
    }
    CHECK(before[0] && strcmp(before, after) == 0, "existing key file unchanged");
    CHECK(rc_keygen_file(path, NULL, 0) == RC_EIO, "keygen with NULL msg");

    /* nor through a dangling symlink */
    snprintf(path2, sizeof path2, "%s/dangling.key", tmpdir);
    char dest[400];
    snprintf(dest, sizeof dest, "%s/dangling-target", tmpdir);
    CHECK(symlink(dest, path2) == 0, "symlink");
    st = rc_keygen_file(path2, msg, sizeof msg);
    CHECK(st == RC_EIO && access(dest, F_OK) != 0, "keygen through a dangling symlink refused: %s", st_name(st));

    /* a strict umask too, and two keys differ */
    umask(077);
    snprintf(path2, sizeof path2, "%s/gen2.key", tmpdir);
    CHECK(rc_keygen_file(path2, msg, sizeof msg) == RC_OK, "keygen under umask 077: %s", msg);
    CHECK(stat(path2, &sb) == 0 && (sb.st_mode & 07777) == 0600, "keygen under umask 077: mode %04o",
          (unsigned)(sb.st_mode & 07777));
    CHECK(read_key(path2, k2, why, sizeof why) == RC_OK && memcmp(k1, k2, sizeof k1) != 0,
          "two generated keys differ");
    umask(old);

    CHECK(rc_keygen_file("", msg, sizeof msg) == RC_EINVAL, "keygen empty path");
    CHECK(rc_keygen_file(NULL, msg, sizeof msg) == RC_EINVAL, "keygen NULL path");
    snprintf(path2, sizeof path2, "%s/no/such/dir/k", tmpdir);
    st = rc_keygen_file(path2, msg, sizeof msg);
    CHECK(st == RC_EIO && strstr(msg, path2), "keygen in a missing directory: %s (%s)", st_name(st), msg);
}

static void rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_wire: could not remove %s\n", dir);
}


/* ------------------------------------------------------------------ */
/* Sealing (--encrypt) and key rings (rotation)                          */

static void test_sealed(void)
{
    static const char secret_msg[] = "the payload nobody without the key may read";
    const size_t plen = sizeof secret_msg - 1;
    for (unsigned kind = RC_KIND_JOB; kind <= RC_KIND_RESULT; kind++) {
        rc_env e = {.kind = (uint8_t)kind, .job = 77, .rank = 3, .ntasks = 9, .sealed = 1,
                    .kernel = "pi", .kernel_len = 2, .payload = secret_msg, .payload_len = plen};
        size_t n = rc_wire_size_env(&e);
        CHECK(n == rc_wire_size(2, plen) + RC_SEAL_BYTES, "sealed size %zu", n);
        unsigned char *buf = xmalloc(n);
        CHECK(rc_wire_encode(&e, &key_a, QUEUE, buf, n) == RC_OK, "sealed encode kind %u", kind);
        CHECK(buf[3] == (kind | RC_KIND_SEALED), "sealed flag on the wire");
        /* the plaintext appears nowhere in what Redis stores */
        int leaked = 0;
        for (size_t i = 0; i + plen <= n; i++)
            leaked |= memcmp(buf + i, secret_msg, plen) == 0;
        CHECK(!leaked, "plaintext visible in a sealed envelope");
        /* two seals of the same message differ (fresh nonce) */
        unsigned char *buf2 = xmalloc(n);
        CHECK(rc_wire_encode(&e, &key_a, QUEUE, buf2, n) == RC_OK && memcmp(buf, buf2, n) != 0,
              "sealing twice gives different bytes");
        free(buf2);
        unsigned char *copy = dup_exact(buf, n);
        rc_env d;
        char why[300];
        rc_status st = rc_wire_decode(copy, n, &key_a, QUEUE, &d, why, sizeof why);
        CHECK(st == RC_OK && d.sealed && d.kind == kind && d.payload_len == plen &&
                  memcmp(d.payload, secret_msg, plen) == 0 && (uintptr_t)d.payload % 8 == 0,
              "sealed round trip kind %u: %s (%s)", kind, st_name(st), why);
        free(copy);
        /* every flipped bit is still rejected */
        for (size_t bit = 0; bit < n * 8; bit += 7) {
            copy = dup_exact(buf, n);
            copy[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            st = rc_wire_decode(copy, n, &key_a, QUEUE, &d, why, sizeof why);
            CHECK(st == RC_EPROTO || st == RC_EAUTH, "sealed, bit %zu flipped: %s", bit, st_name(st));
            free(copy);
        }
        /* the wrong key cannot open it */
        copy = dup_exact(buf, n);
        CHECK(rc_wire_decode(copy, n, &key_b, QUEUE, &d, why, sizeof why) == RC_EAUTH, "sealed, wrong key");
        free(copy);
        free(buf);
    }
    /* a payload limit is enforced before anything is verified */
    unsigned char big[4096];
    memset(big, 7, sizeof big);
    rc_env e = {.kind = RC_KIND_TASK, .job = 1, .ntasks = 1, .kernel = "k", .kernel_len = 1, .payload = big,
                .payload_len = sizeof big};
    size_t n;
    unsigned char *buf = encode(&e, &n);
    rc_env d;
    char why[300];
    CHECK(rc_wire_decode_max(buf, n, &key_a, QUEUE, 4095, &d, why, sizeof why) == RC_EPROTO &&
              strstr(why, "limit"), "payload over RC_OPT_MAX_PAYLOAD rejected: %s", why);
    CHECK(rc_wire_decode_max(buf, n, &key_a, QUEUE, 4096, &d, why, sizeof why) == RC_OK, "payload at the limit");
    free(buf);
}

static void test_keyring(void)
{
    unsigned char s_old[RC_KEYBYTES], s_new[RC_KEYBYTES];
    for (unsigned i = 0; i < RC_KEYBYTES; i++) {
        s_old[i] = (unsigned char)(i * 7 + 1); /* key_a's secret */
        s_new[i] = (unsigned char)(i * 13 + 5);
    }
    rc_keys only_new, ring; /* ring: sends with new, accepts old */
    CHECK(rc_keys_derive(&only_new, s_new) == RC_OK, "derive new");
    CHECK(rc_keys_derive(&ring, s_new) == RC_OK && rc_keys_add_old(&ring, s_old) == RC_OK, "ring new+old");
    rc_env e = {.kind = RC_KIND_TASK, .job = 5, .rank = 1, .ntasks = 2, .kernel = "k", .kernel_len = 1,
                .payload = "abc", .payload_len = 3};
    size_t n = rc_wire_size_env(&e);
    unsigned char *buf = xmalloc(n), *copy;
    rc_env d;
    char why[300];
    /* made with the old key: the ring accepts it, the new key alone names both ids */
    CHECK(rc_wire_encode(&e, &key_a, QUEUE, buf, n) == RC_OK, "encode with old");
    copy = dup_exact(buf, n);
    CHECK(rc_wire_decode(copy, n, &ring, QUEUE, &d, why, sizeof why) == RC_OK && d.keyid == key_a.keyid,
          "ring accepts the old key: %s", why);
    free(copy);
    copy = dup_exact(buf, n);
    char ida[16], idn[16];
    snprintf(ida, sizeof ida, "%08x", key_a.keyid);
    snprintf(idn, sizeof idn, "%08x", only_new.keyid);
    CHECK(rc_wire_decode(copy, n, &only_new, QUEUE, &d, why, sizeof why) == RC_EAUTH && strstr(why, ida) &&
              strstr(why, idn), "new key alone refuses the old one, naming both: %s", why);
    free(copy);
    /* the ring sends with the new key, which an old-only process refuses */
    CHECK(rc_wire_encode(&e, &ring, QUEUE, buf, n) == RC_OK, "encode with ring");
    CHECK(buf[4] == (unsigned char)only_new.keyid, "ring signs with its first key");
    copy = dup_exact(buf, n);
    CHECK(rc_wire_decode(copy, n, &key_a, QUEUE, &d, why, sizeof why) == RC_EAUTH, "old-only refuses new");
    free(copy);
    free(buf);

    /* key files with several keys */
    char path[600], text[400], ha[70], hn[70];
    for (unsigned i = 0; i < RC_KEYBYTES; i++) {
        snprintf(ha + 2 * i, 3, "%02x", s_old[i]);
        snprintf(hn + 2 * i, 3, "%02x", s_new[i]);
    }
    snprintf(path, sizeof path, "%s/ring.key", tmpdir);
    snprintf(text, sizeof text, "%s\n\n%s\n", hn, ha);
    write_file(path, text, strlen(text), 0600);
    unsigned char secrets[RC_KEYRING_MAX][RC_KEYBYTES];
    int k = 0;
    CHECK(rc_key_read_ring(path, secrets, &k, why, sizeof why) == RC_OK && k == 2 &&
              memcmp(secrets[0], s_new, RC_KEYBYTES) == 0 && memcmp(secrets[1], s_old, RC_KEYBYTES) == 0,
          "two-key ring file read in order: %s", why);
    snprintf(text, sizeof text, "%s\n%s\n%s\n%s\n%s\n", hn, ha, hn, ha, hn);
    write_file(path, text, strlen(text), 0600);
    CHECK(rc_key_read_ring(path, secrets, &k, why, sizeof why) == RC_EKEY, "five keys refused");
    snprintf(text, sizeof text, "%s\nnot a key\n", hn);
    write_file(path, text, strlen(text), 0600);
    CHECK(rc_key_read_ring(path, secrets, &k, why, sizeof why) == RC_EKEY && strstr(why, "line 2"),
          "bad second line named: %s", why);
}


/* What fuzzing found, kept as plain regressions. */
static void test_fuzz_findings(void)
{
    char path[600], why[400], hex[70];
    unsigned char secrets[RC_KEYRING_MAX][RC_KEYBYTES];
    int k;
    for (unsigned i = 0; i < RC_KEYBYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned)(i * 11 + 3));
    snprintf(path, sizeof path, "%s/cr.key", tmpdir);
    char text[100];
    snprintf(text, sizeof text, "%s\r", hex); /* last line ends in CR, no LF: used to loop forever */
    write_file(path, text, strlen(text), 0600);
    CHECK(rc_key_read_ring(path, secrets, &k, why, sizeof why) == RC_OK && k == 1, "CR-terminated key: %s", why);
    write_file(path, "\r", 1, 0600);
    CHECK(rc_key_read_ring(path, secrets, &k, why, sizeof why) == RC_EKEY, "lone CR is no key");
    char nul[80];
    memcpy(nul, hex, 64);
    nul[64] = '\n';
    nul[65] = '\0';
    memcpy(nul + 66, "junk", 4);
    write_file(path, nul, 70, 0600);
    CHECK(rc_key_read_ring(path, secrets, &k, why, sizeof why) == RC_EKEY && strstr(why, "NUL"),
          "bytes after a NUL are not ignored: %s", why);
    rc_url u;
    CHECK(rc_url_parse("redis://user:SECRET@host:0", &u, why, sizeof why) == RC_EINVAL && !strstr(why, "SECRET") &&
              strstr(why, "***"), "errors do not show the password: %s", why);
    CHECK(rc_url_parse("redis://SECRET@host:99999", &u, why, sizeof why) == RC_EINVAL && !strstr(why, "SECRET"),
          "short form password hidden too: %s", why);
    CHECK(rc_url_parse("redis://:pa%00ss@host", &u, why, sizeof why) == RC_EINVAL, "%%00 in a password refused");
}

int main(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_wire.XXXXXX", t && *t && strlen(t) < 200 ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "test_wire: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    make_keys();
    test_envelopes();
    test_urls();
    test_key_files();
    test_keygen();
    test_sealed();
    test_keyring();
    test_fuzz_findings();
    rm_rf(tmpdir);
    return unit_done("test_wire");
}
