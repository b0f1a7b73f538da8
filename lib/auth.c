/* auth.c - the shared secret, the keys derived from it, and MACs.
 *
 * A key file holds 32 random bytes as 64 hex digits, or up to four such lines
 * (a key ring: the first line signs and seals, the others are still accepted,
 * so a fleet can rotate keys without downtime).  From each secret we
 * derive, with libsodium's KDF, a MAC key (keyed BLAKE2b-256: 4x cheaper than
 * HMAC-SHA512-256 on small messages, which matters when tasks are tiny), a
 * second one for the Poly1305 MAC of large messages (3x faster than BLAKE2b
 * per byte, which matters when results are large; wire.c), and a
 * public key id that goes into every envelope, so a worker with the wrong
 * key can say so precisely instead of "bad MAC".  The secret itself is wiped
 * as soon as the derived keys exist, and never logged. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define KDF_CTX "redcoll1" /* crypto_kdf_CONTEXTBYTES == 8 */

static rc_status derive(rc_subkeys *sk, const unsigned char secret[RC_KEYBYTES])
{
    unsigned char id[crypto_kdf_KEYBYTES];
    if (crypto_kdf_derive_from_key(sk->mac, sizeof sk->mac, 1, KDF_CTX, secret) != 0 ||
        crypto_kdf_derive_from_key(id, sizeof id, 2, KDF_CTX, secret) != 0 ||
        crypto_kdf_derive_from_key(sk->enc, sizeof sk->enc, 3, KDF_CTX, secret) != 0 ||
        crypto_kdf_derive_from_key(sk->pmac, sizeof sk->pmac, 4, KDF_CTX, secret) != 0)
        return RC_EKEY;
    sk->keyid = (uint32_t)id[0] | (uint32_t)id[1] << 8 | (uint32_t)id[2] << 16 | (uint32_t)id[3] << 24;
    sodium_memzero(id, sizeof id);
    return RC_OK;
}

rc_status rc_keys_derive(rc_keys *k, const unsigned char secret[RC_KEYBYTES])
{
    rc_subkeys sk;
    if (derive(&sk, secret) != RC_OK)
        return RC_EKEY;
    sodium_memzero(k, sizeof *k);
    memcpy(k->mac, sk.mac, sizeof k->mac);
    memcpy(k->enc, sk.enc, sizeof k->enc);
    memcpy(k->pmac, sk.pmac, sizeof k->pmac);
    k->keyid = sk.keyid;
    k->set = 1;
    sodium_memzero(&sk, sizeof sk);
    return RC_OK;
}

rc_status rc_keys_add_old(rc_keys *k, const unsigned char secret[RC_KEYBYTES])
{
    if (!k->set || k->nold >= RC_KEYRING_MAX - 1)
        return RC_EINVAL;
    if (derive(&k->old[k->nold], secret) != RC_OK)
        return RC_EKEY;
    k->nold++;
    return RC_OK;
}

const rc_subkeys *rc_keys_find(const rc_keys *k, uint32_t keyid, rc_subkeys *scratch)
{
    if (!k->set)
        return NULL;
    if (keyid == k->keyid) {
        memcpy(scratch->mac, k->mac, sizeof scratch->mac);
        memcpy(scratch->enc, k->enc, sizeof scratch->enc);
        memcpy(scratch->pmac, k->pmac, sizeof scratch->pmac);
        scratch->keyid = k->keyid;
        return scratch;
    }
    for (int i = 0; i < k->nold; i++)
        if (k->old[i].keyid == keyid)
            return &k->old[i];
    return NULL;
}

void rc_mac(const rc_keys *k, const char *queue, const unsigned char *msg, size_t len,
            unsigned char out[RC_MAC_BYTES])
{
    rc_mac_with(k->mac, queue, msg, len, out);
}

void rc_mac_with(const unsigned char key[32], const char *queue, const unsigned char *msg, size_t len,
                 unsigned char out[RC_MAC_BYTES])
{
    crypto_generichash_state st;
    size_t ql = strlen(queue);
    unsigned char qlen[2] = {(unsigned char)ql, (unsigned char)(ql >> 8)};
    crypto_generichash_init(&st, key, 32, RC_MAC_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)"redcoll/1", 9);
    crypto_generichash_update(&st, qlen, 2);
    crypto_generichash_update(&st, (const unsigned char *)queue, ql);
    crypto_generichash_update(&st, msg, len);
    crypto_generichash_final(&st, out, RC_MAC_BYTES);
    sodium_memzero(&st, sizeof st);
}

void rc_pmac_with(const unsigned char key[32], const unsigned char nonce[RC_PMAC_NONCE], const char *queue,
                  const unsigned char *msg, size_t len, unsigned char tag[16])
{
    unsigned char otk[crypto_onetimeauth_KEYBYTES];
    crypto_onetimeauth_state st;
    size_t ql = strlen(queue);
    unsigned char qlen[2] = {(unsigned char)ql, (unsigned char)(ql >> 8)};
    crypto_stream_xchacha20(otk, sizeof otk, nonce, key);
    crypto_onetimeauth_init(&st, otk);
    crypto_onetimeauth_update(&st, (const unsigned char *)"redcoll/2p", 10);
    crypto_onetimeauth_update(&st, qlen, 2);
    crypto_onetimeauth_update(&st, (const unsigned char *)queue, ql);
    crypto_onetimeauth_update(&st, msg, len);
    crypto_onetimeauth_final(&st, tag);
    sodium_memzero(otk, sizeof otk);
    sodium_memzero(&st, sizeof st);
}

rc_status rc_random_u64(uint64_t *out)
{
    randombytes_buf(out, sizeof *out);
    return RC_OK;
}

rc_status rc_key_read_ring(const char *path, unsigned char secrets[RC_KEYRING_MAX][RC_KEYBYTES], int *n,
                           char *why, size_t whylen)
{
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(why, whylen, "cannot open key file %s: %s", path, strerror(errno));
        return RC_EKEY;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(why, whylen, "key file %s is not a regular file", path);
        close(fd);
        return RC_EKEY;
    }
    if (sb.st_mode & 077) {
        snprintf(why, whylen, "key file %s has mode %03o: others can read it; run chmod 600 %s",
                 path, (unsigned)(sb.st_mode & 0777), path);
        close(fd);
        return RC_EKEY;
    }
    if (sb.st_uid != geteuid()) {
        snprintf(why, whylen, "key file %s is owned by uid %u, not by this user (uid %u)", path,
                 (unsigned)sb.st_uid, (unsigned)geteuid());
        close(fd);
        return RC_EKEY;
    }
    enum { LINE = RC_KEYBYTES * 2 + 1, MAXLEN = RC_KEYRING_MAX * (LINE + 1) };
    if (sb.st_size > (off_t)MAXLEN) {
        snprintf(why, whylen, "key file %s is %lld bytes: it must hold 1 to %d lines of %u hex digits",
                 path, (long long)sb.st_size, RC_KEYRING_MAX, RC_KEYBYTES * 2);
        close(fd);
        return RC_EKEY;
    }
    char text[MAXLEN + 1];
    ssize_t got = read(fd, text, sizeof text - 1);
    close(fd);
    if (got < 0) {
        snprintf(why, whylen, "cannot read key file %s: %s", path, strerror(errno));
        return RC_EKEY;
    }
    text[got] = '\0';
    rc_status st = RC_OK;
    int line = 0;
    if (memchr(text, '\0', (size_t)got)) {
        sodium_memzero(text, sizeof text);
        snprintf(why, whylen, "key file %s contains a NUL byte: it must hold lines of %u hex digits", path,
                 RC_KEYBYTES * 2);
        return RC_EKEY;
    }
    for (char *p = text; *p && st == RC_OK;) {
        char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char *next = end ? end + 1 : p + len; /* before len loses a '\r' (fuzz_keyfile found the hang) */
        line++;
        if (len && p[len - 1] == '\r')
            len--;
        size_t bin_len = 0;
        if (len == 0) {
            /* blank lines are allowed */
        } else if (*n == RC_KEYRING_MAX) {
            snprintf(why, whylen, "key file %s holds more than %d keys", path, RC_KEYRING_MAX);
            st = RC_EKEY;
        } else if (len != RC_KEYBYTES * 2 ||
                   sodium_hex2bin(secrets[*n], RC_KEYBYTES, p, len, NULL, &bin_len, NULL) != 0 ||
                   bin_len != RC_KEYBYTES) {
            snprintf(why, whylen, "key file %s line %d must be exactly %u hex digits (make a key with `redcoll keygen`)",
                     path, line, RC_KEYBYTES * 2);
            st = RC_EKEY;
        } else {
            (*n)++;
        }
        p = next;
    }
    sodium_memzero(text, sizeof text);
    if (st == RC_OK && *n == 0) {
        snprintf(why, whylen, "key file %s holds no key: it must hold exactly %u hex digits (make one with "
                              "`redcoll keygen`)", path, RC_KEYBYTES * 2);
        st = RC_EKEY;
    }
    if (st != RC_OK) {
        sodium_memzero(secrets, (size_t)RC_KEYRING_MAX * RC_KEYBYTES);
        *n = 0;
    }
    return st;
}

rc_status rc_key_read_file(const char *path, unsigned char secret[RC_KEYBYTES], char *why, size_t whylen)
{
    unsigned char ring[RC_KEYRING_MAX][RC_KEYBYTES];
    int n;
    rc_status st = rc_key_read_ring(path, ring, &n, why, whylen);
    if (st == RC_OK)
        memcpy(secret, ring[0], RC_KEYBYTES);
    sodium_memzero(ring, sizeof ring);
    return st;
}

rc_status rc_keygen_file(const char *path, char *msg, size_t msglen)
{
    char dummy[1];
    if (!msg) {
        msg = dummy;
        msglen = sizeof dummy;
    }
    if (!path || !*path) {
        snprintf(msg, msglen, "no key file path given");
        return RC_EINVAL;
    }
    if (sodium_init() < 0) {
        snprintf(msg, msglen, "libsodium failed to initialise");
        return RC_EIO;
    }
    unsigned char key[RC_KEYBYTES];
    char hex[RC_KEYBYTES * 2 + 2];
    randombytes_buf(key, sizeof key);
    sodium_bin2hex(hex, sizeof hex, key, sizeof key);
    sodium_memzero(key, sizeof key);
    size_t len = strlen(hex);
    hex[len++] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(msg, msglen, "cannot create key file %s: %s%s", path, strerror(e),
                 e == EEXIST ? " (refusing to overwrite an existing key)" : "");
        sodium_memzero(hex, sizeof hex);
        return RC_EIO;
    }
    /* O_CREAT's mode is filtered by the umask; make sure it is exactly 0600 */
    if (fchmod(fd, 0600) != 0 || write(fd, hex, len) != (ssize_t)len || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        sodium_memzero(hex, sizeof hex);
        snprintf(msg, msglen, "cannot write key file %s: %s", path, strerror(e));
        return RC_EIO;
    }
    sodium_memzero(hex, sizeof hex);
    if (close(fd) != 0) {
        snprintf(msg, msglen, "cannot write key file %s: %s", path, strerror(errno));
        unlink(path);
        return RC_EIO;
    }
    snprintf(msg, msglen, "wrote %s", path);
    return RC_OK;
}
