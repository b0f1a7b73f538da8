/* fuzz_common.h - the fixed key and queue shared by the fuzz targets and the seed generator.
 *
 * Why: a fuzzer cannot forge a MAC, so the only inputs that reach the code
 * after MAC verification are seeds made with the key the target holds.  The
 * generator (gen_corpus.c) and every target that decodes envelopes must agree
 * on that key and on the queue name the MAC covers; keeping both here means a
 * regenerated corpus always matches the targets.  The key is public test data,
 * never used anywhere but in these tests.  The targets hold a key ring (a
 * current and an older key, as during a rotation), so both the current-key
 * and the older-key lookups are exercised.
 */
#ifndef RC_FUZZ_COMMON_H
#define RC_FUZZ_COMMON_H

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

#define FUZZ_QUEUE "fuzz"
#define FUZZ_OTHER_QUEUE "fuzz2" /* a message MACed for FUZZ_QUEUE must fail here */

/* The current secret: bytes 0x00..0x1f; the older one still in the ring
   (key rotation): bytes 0x20..0x3f. */
static inline void fuzz_secret(unsigned char s[RC_KEYBYTES], unsigned first)
{
    for (unsigned i = 0; i < RC_KEYBYTES; i++)
        s[i] = (unsigned char)(first + i);
}

/* The ring the targets hold: the current key plus one older key; aborts if
   libsodium cannot start. */
static inline void fuzz_keys(rc_keys *k)
{
    unsigned char s[RC_KEYBYTES];
    fuzz_secret(s, 0x00);
    if (sodium_init() < 0 || rc_keys_derive(k, s) != RC_OK) {
        fprintf(stderr, "fuzz: cannot derive the test key\n");
        abort();
    }
    fuzz_secret(s, 0x20);
    if (rc_keys_add_old(k, s) != RC_OK) {
        fprintf(stderr, "fuzz: cannot add the older test key\n");
        abort();
    }
}

/* The older key alone, as the current key of a process not yet rotated. */
static inline void fuzz_old_keys(rc_keys *k)
{
    unsigned char s[RC_KEYBYTES];
    fuzz_secret(s, 0x20);
    if (sodium_init() < 0 || rc_keys_derive(k, s) != RC_OK)
        abort();
}

/* An invariant of the code under test does not hold: report and crash, so
 * libFuzzer saves the input. */
#define FUZZ_CHECK(cond, ...)                                                        \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
            abort();                                                                 \
        }                                                                            \
    } while (0)

#endif
