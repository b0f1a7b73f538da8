/* wire.c - the versioned binary envelope of every job, task, result and
 * rejection notice; pure codec, no I/O.
 *
 * Everything read from Redis is hostile until its MAC verifies, so decoding
 * goes: fixed-size header length, magic and version, each declared length
 * against what is left (in 64-bit arithmetic, so no sum can wrap), the total
 * matching exactly, then the MAC over all of it in constant time; only then
 * are fields handed out.  The MAC is keyed BLAKE2b for payloads under 4 KiB
 * and Poly1305 under a one-time key from XChaCha20 and a random nonce above
 * (internal.h has the layout; the kind byte says which, and each size has
 * exactly one).  Integers are written byte by byte in little-endian
 * order so the format does not depend on struct layout or alignment.  The
 * MAC also covers the queue name, which is not on the wire: a message copied
 * into another queue fails verification.
 *
 * Sealing (--encrypt) is encrypt-then-MAC: the payload becomes a random
 * 24-byte nonce, the XChaCha20-Poly1305 ciphertext and its tag, with header
 * and kernel name as associated data, under a key derived from the same
 * secret; the outer MAC then covers it like any payload.  Random 192-bit
 * nonces make reuse a non-event without any state to keep.  Keys are picked
 * by the key id in the header, so a ring of old and new keys lets a fleet
 * rotate without downtime. */
#include "internal.h"

#include <string.h>

#include <sodium.h>

static void put16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* zero bytes after the kernel name that put the payload on an 8-byte
   boundary (Redis hands each reply string out in its own malloc block, so
   kernels and reductions can read doubles from it in place) */
static size_t kpad(size_t kernel_len) { return (8 - (kernel_len & 7)) & 7; }

size_t rc_wire_trailer(uint64_t payload_len)
{
    return payload_len >= RC_PMAC_MIN ? RC_PMAC_BYTES : RC_MAC_BYTES;
}

size_t rc_wire_size(size_t kernel_len, uint64_t payload_len)
{
    return RC_HDR_BYTES + kernel_len + kpad(kernel_len) + (size_t)payload_len + rc_wire_trailer(payload_len);
}

void rc_wire_sign(const rc_keys *k, const char *queue, unsigned char *buf, size_t len)
{
    if (buf[3] & RC_KIND_PMAC) {
        size_t body = len - RC_PMAC_BYTES;
        randombytes_buf(buf + body, RC_PMAC_NONCE);
        rc_pmac_with(k->pmac, buf + body, queue, buf, body, buf + body + RC_PMAC_NONCE);
    } else {
        rc_mac(k, queue, buf, len - RC_MAC_BYTES, buf + len - RC_MAC_BYTES);
    }
}

size_t rc_wire_size_env(const rc_env *e)
{
    return rc_wire_size(e->kernel_len, e->payload_len + (e->sealed ? RC_SEAL_BYTES : 0));
}

rc_status rc_wire_encode(const rc_env *e, const rc_keys *k, const char *queue,
                         unsigned char *out, size_t outlen)
{
    if (!k->set || e->kernel_len > RC_KERNEL_MAX || e->payload_len > RC_PAYLOAD_MAX ||
        outlen != rc_wire_size_env(e) || (e->kind & RC_KIND_FLAGS))
        return RC_EINVAL;
    uint64_t wire_len = e->payload_len + (e->sealed ? RC_SEAL_BYTES : 0);
    out[0] = 'R';
    out[1] = 'C';
    out[2] = RC_WIRE_VERSION;
    out[3] = (unsigned char)(e->kind | (e->sealed ? RC_KIND_SEALED : 0) |
                             (rc_wire_trailer(wire_len) == RC_PMAC_BYTES ? RC_KIND_PMAC : 0));
    put32(out + 4, k->keyid);
    put64(out + 8, e->job);
    put64(out + 16, e->rank);
    put64(out + 24, e->ntasks);
    put64(out + 32, e->aux);
    put32(out + 40, e->status);
    put16(out + 44, (uint16_t)e->kernel_len);
    put16(out + 46, e->kind == RC_KIND_RESULT ? e->attempt : 0);
    put64(out + 48, wire_len);
    if (e->kernel_len)
        memcpy(out + RC_HDR_BYTES, e->kernel, e->kernel_len);
    size_t pad = kpad(e->kernel_len), ad = RC_HDR_BYTES + e->kernel_len + pad;
    memset(out + RC_HDR_BYTES + e->kernel_len, 0, pad);
    if (e->sealed) {
        unsigned char *nonce = out + ad;
        randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
        unsigned long long clen;
        crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen,
                                                   e->payload, e->payload_len, out, ad, NULL, nonce, k->enc);
    } else if (e->payload_len) {
        memcpy(out + ad, e->payload, (size_t)e->payload_len);
    }
    rc_wire_sign(k, queue, out, outlen);
    return RC_OK;
}

static rc_status parse_header(const unsigned char *buf, size_t len, rc_env *e,
                              char *why, size_t whylen)
{
    if (len < RC_HDR_BYTES + RC_MAC_BYTES) {
        snprintf(why, whylen, "%zu bytes is shorter than the smallest envelope (%u)", len,
                 RC_HDR_BYTES + RC_MAC_BYTES);
        return RC_EPROTO;
    }
    if (buf[0] != 'R' || buf[1] != 'C') {
        snprintf(why, whylen, "bad magic 0x%02x%02x", buf[0], buf[1]);
        return RC_EPROTO;
    }
    if (buf[2] != RC_WIRE_VERSION) {
        snprintf(why, whylen, "envelope version %u, this build speaks %u (workers and masters of one queue must "
                 "run the same redcoll wire version)", buf[2], RC_WIRE_VERSION);
        return RC_EPROTO;
    }
    size_t trailer = (buf[3] & RC_KIND_PMAC) ? RC_PMAC_BYTES : RC_MAC_BYTES;
    if (len < RC_HDR_BYTES + trailer) {
        snprintf(why, whylen, "%zu bytes is shorter than the smallest envelope with a %zu-byte MAC", len, trailer);
        return RC_EPROTO;
    }
    memset(e, 0, sizeof *e);
    e->kind = buf[3] & (unsigned char)~RC_KIND_FLAGS;
    e->sealed = (buf[3] & RC_KIND_SEALED) != 0;
    e->keyid = get32(buf + 4);
    e->job = get64(buf + 8);
    e->rank = get64(buf + 16);
    e->ntasks = get64(buf + 24);
    e->aux = get64(buf + 32);
    e->status = get32(buf + 40);
    e->kernel_len = get16(buf + 44);
    e->payload_len = get64(buf + 48);
    if (e->kind < RC_KIND_JOB || e->kind > RC_KIND_DATA) {
        snprintf(why, whylen, "unknown envelope kind %u", e->kind);
        return RC_EPROTO;
    }
    e->attempt = get16(buf + 46);
    if (e->attempt != 0 && e->kind != RC_KIND_RESULT) {
        snprintf(why, whylen, "reserved header field is not zero");
        return RC_EPROTO;
    }
    if (e->kernel_len > RC_KERNEL_MAX) {
        snprintf(why, whylen, "kernel name length %zu exceeds %u", e->kernel_len, RC_KERNEL_MAX);
        return RC_EPROTO;
    }
    /* 64-bit: len < 2^63 and each term is bounded, so this cannot wrap */
    uint64_t rest = (uint64_t)len - RC_HDR_BYTES - trailer;
    size_t pad = kpad(e->kernel_len);
    if (e->payload_len > RC_PAYLOAD_MAX || (uint64_t)e->kernel_len + pad + e->payload_len != rest) {
        snprintf(why, whylen, "declared lengths (kernel %zu + payload %llu) do not match the %zu bytes received",
                 e->kernel_len, (unsigned long long)e->payload_len, len);
        return RC_EPROTO;
    }
    if ((trailer == RC_PMAC_BYTES) != (rc_wire_trailer(e->payload_len) == RC_PMAC_BYTES)) {
        snprintf(why, whylen, "MAC kind (%s) does not match the payload size (%llu bytes)",
                 trailer == RC_PMAC_BYTES ? "Poly1305" : "BLAKE2b", (unsigned long long)e->payload_len);
        return RC_EPROTO;
    }
    for (size_t i = 0; i < pad; i++)
        if (buf[RC_HDR_BYTES + e->kernel_len + i] != 0) {
            snprintf(why, whylen, "padding after the kernel name is not zero");
            return RC_EPROTO;
        }
    e->kernel = (const char *)buf + RC_HDR_BYTES;
    e->payload = buf + RC_HDR_BYTES + e->kernel_len + pad;
    return RC_OK;
}

rc_status rc_wire_peek(const unsigned char *buf, size_t len, rc_env *e)
{
    char why[8];
    return parse_header(buf, len, e, why, sizeof why);
}

rc_status rc_wire_decode_max(unsigned char *buf, size_t len, const rc_keys *k, const char *queue,
                             uint64_t max_payload, rc_env *e, char *why, size_t whylen)
{
    rc_status st = parse_header(buf, len, e, why, whylen);
    if (st != RC_OK)
        return st;
    uint64_t plain = e->payload_len - (e->sealed && e->payload_len >= RC_SEAL_BYTES ? RC_SEAL_BYTES : 0);
    if (plain > max_payload) {
        snprintf(why, whylen, "payload of %llu bytes exceeds the %llu-byte limit (RC_OPT_MAX_PAYLOAD)",
                 (unsigned long long)plain, (unsigned long long)max_payload);
        memset(e, 0, sizeof *e);
        return RC_EPROTO;
    }
    rc_subkeys scratch;
    const rc_subkeys *sk = rc_keys_find(k, e->keyid, &scratch);
    if (!sk) {
        char ring[64] = "";
        size_t o = (size_t)snprintf(ring, sizeof ring, "%08x", k->keyid);
        for (int i = 0; i < k->nold && o < sizeof ring; i++)
            o += (size_t)snprintf(ring + o, sizeof ring - o, ", %08x", k->old[i].keyid);
        snprintf(why, whylen, "MAC made with key id %08x, this process holds key id %s (different key files?)",
                 e->keyid, ring);
        memset(e, 0, sizeof *e);
        sodium_memzero(&scratch, sizeof scratch);
        return RC_EAUTH;
    }
    unsigned char mac[RC_MAC_BYTES];
    int ok;
    if (buf[3] & RC_KIND_PMAC) {
        size_t body = len - RC_PMAC_BYTES;
        rc_pmac_with(sk->pmac, buf + body, queue, buf, body, mac);
        ok = crypto_verify_16(mac, buf + body + RC_PMAC_NONCE) == 0;
    } else {
        size_t body = len - RC_MAC_BYTES;
        rc_mac_with(sk->mac, queue, buf, body, mac);
        ok = crypto_verify_32(mac, buf + body) == 0;
    }
    sodium_memzero(mac, sizeof mac);
    if (!ok) {
        snprintf(why, whylen, "MAC does not verify (data altered or forged)");
        memset(e, 0, sizeof *e);
        sodium_memzero(&scratch, sizeof scratch);
        return RC_EAUTH;
    }
    if (e->sealed) {
        /* authentic, so this cannot fail unless the ring is inconsistent */
        unsigned char *p = (unsigned char *)e->payload, *nonce = p;
        size_t ad = (size_t)(p - buf);
        unsigned long long mlen = 0;
        if (e->payload_len < RC_SEAL_BYTES ||
            crypto_aead_xchacha20poly1305_ietf_decrypt(p + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &mlen, NULL,
                                                       p + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                                       e->payload_len - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                                       buf, ad, nonce, sk->enc) != 0) {
            snprintf(why, whylen, "sealed payload does not decrypt");
            memset(e, 0, sizeof *e);
            sodium_memzero(&scratch, sizeof scratch);
            return RC_EAUTH;
        }
        e->payload = p + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
        e->payload_len = mlen;
    }
    sodium_memzero(&scratch, sizeof scratch);
    return RC_OK;
}

rc_status rc_wire_decode(unsigned char *buf, size_t len, const rc_keys *k, const char *queue, rc_env *e,
                         char *why, size_t whylen)
{
    return rc_wire_decode_max(buf, len, k, queue, RC_PAYLOAD_MAX, e, why, whylen);
}
