/* pi_kernel.c - Monte Carlo pi: count random points of the unit square that
 * fall inside the quarter circle x*x + y*y < 1.
 *
 * Stream definition (changing any of this changes every result, and the
 * golden value in tests/test_rng.c):
 *  - a task's nsamples are cut into blocks of PI_BLOCK samples, the last one
 *    possibly partial; block b is seeded by rc_rng_seed(&r, seed, task, b);
 *  - inside a block, PI_LANES independent xoshiro256+ generators ("lanes")
 *    run side by side; lane l's state s0,s1,s2,s3 is the next four
 *    rc_rng_u64(&r) draws (lanes in order 0..PI_LANES-1);
 *  - sample i of the block is drawn by lane i % PI_LANES at its step
 *    i / PI_LANES: x from that lane's next output, y from the one after;
 *  - a 64-bit output v becomes x = (v >> 11) * 2^-53, a double in [0, 1);
 *  - the sample is a hit when x*x + y*y < 1.0 (strict).
 *
 * Reproducibility: blocks are the unit of both seeding and parallel work,
 * and hits are integers, so the count is the same for any thread count.
 * Every floating-point step is exact or one correctly rounded IEEE double
 * operation: the 53-bit integer converts exactly, the power-of-two scale is
 * exact, and x*x, y*y and their sum are each rounded once.  The project
 * compiles with -ffp-contract=off so x*x + y*y is never fused into an FMA
 * (one rounding instead of two, which would move hits near the circle
 * depending on the CPU path); keep it that way.  Under that rule the
 * generic, AVX2 and AVX-512 paths below give the same bits (tests/test_rng.c
 * runs each path the CPU has and compares).
 *
 * Speed: the lane loops are fixed-length loops over structure-of-arrays
 * state, which gcc and clang vectorize at -O2.  On x86-64 the block function
 * is compiled three times (generic SSE2, AVX2, AVX-512) and chosen at run
 * time with __builtin_cpu_supports; REDCOLL_PI_ISA=generic|avx2|avx512 in
 * the environment forces a path (a path the CPU lacks falls back to the
 * best one it has).
 */
#include "pi_kernel.h"
#include "redcoll.h"

#include <stdlib.h>
#include <string.h>

#ifdef __clang__
/* clang honours the standard pragma (gcc ignores it and warns); belt and
 * braces on top of -ffp-contract=off */
#pragma STDC FP_CONTRACT OFF
#endif

/* Lanes per block generator.  Part of the stream definition. */
#define PI_LANES 16

#if PI_BLOCK % PI_LANES != 0
#error "PI_BLOCK must be a multiple of PI_LANES"
#endif

#if defined(__GNUC__)
#define PI_INLINE static inline __attribute__((always_inline))
#else
#define PI_INLINE static inline
#endif

/* gcc: -fpeel-loops (on at -O3) lets gcc keep the lane state in registers
 * after vectorizing (1.5x on AVX-512 at -O2), and fp-contract=off is
 * restated so even a build without the project flags never fuses x*x + y*y.
 * clang needs neither (it honours the STDC pragma above). */
#if defined(__GNUC__) && !defined(__clang__)
#define PI_OPT __attribute__((optimize("peel-loops", "fp-contract=off")))
#else
#define PI_OPT
#endif

/* (m) * 2^-53 for m < 2^53, exactly, without a 64-bit integer to double
 * conversion (SSE2 and AVX2 have none, so compilers would scalarize it):
 * each 32-bit half of m goes into the mantissa of a double with a fixed
 * exponent and that exponent's leading one is subtracted again.  Every step
 * is exact, so the result equals (double)m * 0x1.0p-53 bit for bit. */
PI_INLINE double u53_scaled_magic(uint64_t m)
{
    union { uint64_t u; double d; } lo, hi;
    lo.u = (m & UINT64_C(0xffffffff)) | UINT64_C(0x3fe0000000000000); /* 2^-1 + lo*2^-53 */
    hi.u = (m >> 32) | UINT64_C(0x41e0000000000000);                  /* 2^31 + hi*2^-21 */
    return (hi.d - 0x1.0p31) + (lo.d - 0x1.0p-1);
}

/* The same value by direct conversion (vectorizes with AVX-512DQ). */
PI_INLINE double u53_scaled_cvt(uint64_t m)
{
    return (double)(int64_t)m * 0x1.0p-53;
}

/* (d < 1.0) as 0 or 1, for d >= +0.0 and not NaN (d = x*x + y*y is): the
 * bit patterns of non-negative doubles order like the values, so d < 1.0
 * exactly when bits(d) - bits(1.0) wraps below zero.  Integer-only, which
 * vectorizes everywhere (gcc 12 will not vectorize a double compare into a
 * 64-bit 0/1 with plain SSE2). */
PI_INLINE uint64_t pi_less_than_one(double d)
{
    union { double d; uint64_t u; } v;
    v.d = d;
    return (v.u - UINT64_C(0x3ff0000000000000)) >> 63;
}

/* One xoshiro256+ output of lane l (s0 + s3), then advance the lane. */
#define PI_XOSHIRO_PLUS(l, out)                      \
    do {                                             \
        const uint64_t t_ = s1[l] << 17;             \
        (out) = s0[l] + s3[l];                       \
        s2[l] ^= s0[l];                              \
        s3[l] ^= s1[l];                              \
        s1[l] ^= s2[l];                              \
        s0[l] ^= s3[l];                              \
        s2[l] ^= t_;                                 \
        s3[l] = (s3[l] << 45) | (s3[l] >> 19);       \
    } while (0)

/* Is lane l's next sample a hit?  (0 or 1) */
#define PI_LANE_HIT(l, cvt, hit)                                  \
    do {                                                          \
        uint64_t a_, b_;                                          \
        PI_XOSHIRO_PLUS(l, a_);                                   \
        PI_XOSHIRO_PLUS(l, b_);                                   \
        const double x_ = cvt ? u53_scaled_cvt(a_ >> 11)          \
                              : u53_scaled_magic(a_ >> 11);       \
        const double y_ = cvt ? u53_scaled_cvt(b_ >> 11)          \
                              : u53_scaled_magic(b_ >> 11);       \
        const double xx_ = x_ * x_;                               \
        const double yy_ = y_ * y_;                               \
        (hit) = pi_less_than_one(xx_ + yy_);                      \
    } while (0)

/* Hits among the n <= PI_BLOCK samples of block `block`.  `cvt` is a
 * compile-time constant after inlining: which (equal) conversion to use. */
PI_OPT PI_INLINE uint64_t pi_block_body(uint64_t seed, uint64_t task, uint64_t block,
                                 uint64_t n, const int cvt)
{
    uint64_t s0[PI_LANES], s1[PI_LANES], s2[PI_LANES], s3[PI_LANES];
    uint64_t cnt[PI_LANES];
    rc_rng r;

    rc_rng_seed(&r, seed, task, block);
    for (int l = 0; l < PI_LANES; l++) {
        s0[l] = rc_rng_u64(&r);
        s1[l] = rc_rng_u64(&r);
        s2[l] = rc_rng_u64(&r);
        s3[l] = rc_rng_u64(&r);
        cnt[l] = 0;
        /* an all-zero lane (probability 2^-256) would stay zero forever */
        if ((s0[l] | s1[l] | s2[l] | s3[l]) == 0)
            s0[l] = 1;
    }

    const uint64_t steps = n / PI_LANES;
    for (uint64_t i = 0; i < steps; i++) {
        for (int l = 0; l < PI_LANES; l++) {
            uint64_t hit;
            PI_LANE_HIT(l, cvt, hit);
            cnt[l] += hit;
        }
    }
    const unsigned rem = (unsigned)(n % PI_LANES);
    if (rem != 0) {
        /* partial last step: every lane steps, the first `rem` count */
        for (int l = 0; l < PI_LANES; l++) {
            uint64_t hit;
            PI_LANE_HIT(l, cvt, hit);
            cnt[l] += hit & (uint64_t)((unsigned)l < rem);
        }
    }
    uint64_t hits = 0;
    for (int l = 0; l < PI_LANES; l++)
        hits += cnt[l];
    return hits;
}

typedef uint64_t (*pi_block_fn)(uint64_t, uint64_t, uint64_t, uint64_t);

PI_OPT static uint64_t pi_block_generic(uint64_t seed, uint64_t task, uint64_t block, uint64_t n)
{
    return pi_block_body(seed, task, block, n, 0);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(PI_NO_MULTIVERSION)
#define PI_X86_PATHS 1
__attribute__((target("avx2")))
PI_OPT static uint64_t pi_block_avx2(uint64_t seed, uint64_t task, uint64_t block, uint64_t n)
{
    return pi_block_body(seed, task, block, n, 0);
}

__attribute__((target("avx2,avx512f,avx512dq,avx512vl,avx512bw")))
PI_OPT static uint64_t pi_block_avx512(uint64_t seed, uint64_t task, uint64_t block, uint64_t n)
{
    return pi_block_body(seed, task, block, n, 1);
}
#endif

/* The block function for this CPU (and REDCOLL_PI_ISA, if set). */
static pi_block_fn pi_pick_block_fn(void)
{
#ifdef PI_X86_PATHS
    const char *want = getenv("REDCOLL_PI_ISA");
    int has_avx2, has_avx512;
    __builtin_cpu_init();
    has_avx2 = __builtin_cpu_supports("avx2");
    has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f") &&
                 __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("avx512vl") &&
                 __builtin_cpu_supports("avx512bw");
    if (want != NULL && strcmp(want, "generic") == 0)
        return pi_block_generic;
    if (want != NULL && strcmp(want, "avx2") == 0 && has_avx2)
        return pi_block_avx2;
    if (has_avx512)
        return pi_block_avx512;
    if (has_avx2)
        return pi_block_avx2;
#endif
    return pi_block_generic;
}

uint64_t pi_count_hits(uint64_t seed, uint64_t task, uint64_t nsamples, int threads)
{
    const uint64_t nblocks = nsamples / PI_BLOCK + (nsamples % PI_BLOCK != 0);
    const pi_block_fn block_fn = pi_pick_block_fn();
    uint64_t hits = 0;

    if (threads < 1)
        threads = 1;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) reduction(+:hits) schedule(static)
#endif
    for (uint64_t b = 0; b < nblocks; b++) {
        const uint64_t left = nsamples - b * (uint64_t)PI_BLOCK;
        hits += block_fn(seed, task, b, left < PI_BLOCK ? left : PI_BLOCK);
    }
#ifndef _OPENMP
    (void)threads;
#endif
    return hits;
}

uint64_t pi_task_samples(uint64_t total, uint64_t ntasks, uint64_t t)
{
    if (ntasks == 0 || t >= ntasks)
        return 0;
    return total / ntasks + (t < total % ntasks ? 1 : 0);
}
