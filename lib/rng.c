/* rng.c - reproducible random streams: xoshiro256** keyed by
 * (seed, stream, substream).
 *
 * Why counter-style seeding.  A job's randomness must not depend on how the
 * work happens to be spread out: the same job gives the same bits whether it
 * runs on one worker or fifty, with one OpenMP thread or sixteen, and when a
 * task is re-run after its worker died.  So streams are never handed out per
 * worker or per thread (that would tie the numbers to the pool size and the
 * scheduling); they are named by *what* is computed: the job's seed, the
 * task (rank) as `stream`, and a block of work inside the task as
 * `substream`.  Whoever runs block b of task t builds the generator from
 * (seed, t, b) alone and gets the same sequence.  Kernels cut their work
 * into fixed-size blocks (never "one chunk per thread") and combine the
 * per-block results in block order or exactly (integers), so the thread
 * count cannot change the result.
 *
 * Deriving the state.  The three words, each xored with its own constant
 * (so (s, a, b) and (s, b, a) are different inputs), plus a fourth constant
 * word, go through an ARX permutation of the 256-bit state (12 rounds of the
 * BLAKE2b G function) and then the SplitMix64/murmur3-style finalizer on each
 * word.  Both steps are bijections, so distinct (seed, stream, substream)
 * always give distinct initial states, and every input bit affects every
 * state bit.  The one input that would map to the forbidden all-zero state
 * (probability 2^-256) is replaced by a fixed non-zero state.
 */
#include "redcoll.h"

/* Fractional parts of sqrt of the first primes (the BLAKE2b / SHA-512 IV):
 * "nothing up my sleeve" constants, one per state word. */
#define RC_RNG_K0 UINT64_C(0x6a09e667f3bcc908)
#define RC_RNG_K1 UINT64_C(0xbb67ae8584caa73b)
#define RC_RNG_K2 UINT64_C(0x3c6ef372fe94f82b)
#define RC_RNG_K3 UINT64_C(0xa54ff53a5f1d36f1)

static inline uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* SplitMix64 finalizer (Stafford's Mix13): a bijection with full avalanche. */
static inline uint64_t fmix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* BLAKE2b's G without message words: an invertible ARX map of 4 words. */
static inline void arx_g(uint64_t *a, uint64_t *b, uint64_t *c, uint64_t *d)
{
    *a += *b; *d = rotl64(*d ^ *a, 32);
    *c += *d; *b = rotl64(*b ^ *c, 40);   /* rotr 24 */
    *a += *b; *d = rotl64(*d ^ *a, 48);   /* rotr 16 */
    *c += *d; *b = rotl64(*b ^ *c, 1);    /* rotr 63 */
}

void rc_rng_seed(rc_rng *rng, uint64_t seed, uint64_t stream, uint64_t substream)
{
    uint64_t a = seed ^ RC_RNG_K0;
    uint64_t b = stream ^ RC_RNG_K1;
    uint64_t c = substream ^ RC_RNG_K2;
    uint64_t d = RC_RNG_K3;
    for (int r = 0; r < 12; r++) {
        arx_g(&a, &b, &c, &d);
        /* rotate the word roles so each round starts from a different word;
         * a fixed word permutation keeps the map a bijection */
        uint64_t t = a;
        a = b; b = c; c = d; d = t;
    }
    rng->s[0] = fmix64(a);
    rng->s[1] = fmix64(b);
    rng->s[2] = fmix64(c);
    rng->s[3] = fmix64(d);
    if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0)
        rng->s[0] = RC_RNG_K0;  /* xoshiro must never start from all zeros */
}

/* xoshiro256** 1.0 (Blackman & Vigna), period 2^256 - 1. */
uint64_t rc_rng_u64(rc_rng *rng)
{
    uint64_t *s = rng->s;
    const uint64_t result = rotl64(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

double rc_rng_double(rc_rng *rng)
{
    /* top 53 bits; exact conversion, exact scaling: the same bits on every
     * CPU and compiler */
    return (double)(rc_rng_u64(rng) >> 11) * 0x1.0p-53;
}
