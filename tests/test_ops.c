/* test_ops.c - rc_reduce_local and friends against a serial reference.
 *
 * The reference is written independently of lib/ops.c on purpose: it works
 * on 64-bit bit patterns with explicit masking (32-bit products in 64 bits,
 * 64-bit products by 32-bit halves), computes float results in double and
 * rounds once, and decides MINLOC/MAXLOC winners by a three-way compare, so
 * a bug shared by both sides would have to be made twice in different code.
 * The type rules (which op is defined on which datatype) are restated here
 * from redcoll.h rather than taken from the library.
 *
 * Inputs come from a fixed-seed splitmix64 (not rc_rng, which has its own
 * test) biased towards zeros, extremes and small repeated values, so logical
 * ops, overflow and MINLOC ties are all hit.  Buffer lengths straddle the
 * library's vector blocks, start at shifted offsets, and are followed by
 * guard elements that must stay untouched.
 */
#include "redcoll.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* the master's merge (lib/internal.h; the static library has it) */
rc_status rc_reduce_into_left(void *acc, const void *in, size_t count, rc_datatype dt, rc_op op);

/* ------------------------------------------------------------------ */
/* Names and the type rules, restated from redcoll.h                    */

static const char *const dt_names[RC_DATATYPE_COUNT_] = {
    "BYTE", "INT32", "INT64", "UINT32", "UINT64", "FLOAT", "DOUBLE",
    "INT32_LOC", "INT64_LOC", "UINT64_LOC", "FLOAT_LOC", "DOUBLE_LOC",
};
static const char *const op_names[RC_OP_COUNT_] = {
    "SUM", "PROD", "MIN", "MAX", "LAND", "LOR", "LXOR",
    "BAND", "BOR", "BXOR", "MINLOC", "MAXLOC",
};

/* Local, so this test needs nothing from the library but lib/ops.c. */
static const char *st_name(rc_status st)
{
    switch (st) {
    case RC_OK: return "RC_OK";
    case RC_EINVAL: return "RC_EINVAL";
    case RC_ETYPE: return "RC_ETYPE";
    default: return "another rc_status";
    }
}

static size_t elem_size(rc_datatype dt)
{
    static const size_t sizes[RC_DATATYPE_COUNT_] = {
        1, 4, 8, 4, 8, 4, 8, 16, 16, 16, 16, 16,
    };
    return sizes[dt];
}

static int is_integer(rc_datatype dt)
{
    return dt == RC_INT32 || dt == RC_INT64 || dt == RC_UINT32 || dt == RC_UINT64;
}

static int is_real(rc_datatype dt)
{
    return dt == RC_FLOAT || dt == RC_DOUBLE;
}

static int is_loc(rc_datatype dt)
{
    return dt >= RC_INT32_LOC && dt <= RC_DOUBLE_LOC;
}

static int op_defined(rc_datatype dt, rc_op_kind op)
{
    switch (op) {
    case RC_SUM: case RC_PROD: case RC_MIN: case RC_MAX:
        return is_integer(dt) || is_real(dt);
    case RC_LAND: case RC_LOR: case RC_LXOR:
    case RC_BAND: case RC_BOR: case RC_BXOR:
        return is_integer(dt);
    case RC_MINLOC: case RC_MAXLOC:
        return is_loc(dt);
    case RC_OP_COUNT_:
        break;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Fixed-seed generator (splitmix64)                                     */

static uint64_t prng_state = UINT64_C(0x243f6a8885a308d3);

static uint64_t next_u64(void)
{
    uint64_t z = (prng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static unsigned below(unsigned n)
{
    return (unsigned)(next_u64() % n);
}

static double unit(void)
{
    return (double)(next_u64() >> 11) * 0x1p-53;
}

static uint64_t mask_of(int width)
{
    return width == 64 ? UINT64_MAX : (UINT64_C(1) << width) - 1;
}

/* A width-bit pattern: zeros, small values of either sign, extremes, or
 * anything. */
static uint64_t gen_int_bits(int width)
{
    const uint64_t m = mask_of(width);
    switch (below(8)) {
    case 0: case 1:
        return 0;
    case 2:
        return ((uint64_t)below(9) - 4) & m;  /* -4..4, wrapped */
    case 3: {
        const uint64_t ext[4] = { UINT64_C(1) << (width - 1),  /* INT_MIN */
                                  m >> 1,                      /* INT_MAX */
                                  m, 1 };                      /* -1 / UINT_MAX */
        return ext[below(4)];
    }
    default:
        return next_u64() & m;
    }
}

/* Float or double values: specials, small integers (ties), or reals small
 * enough that no float product overflows. */
static double gen_real(void)
{
    switch (below(16)) {
    case 0: {
        const double sp[8] = { NAN, -NAN, INFINITY, -INFINITY, 0.0, -0.0, 1.0, -1.0 };
        return sp[below(8)];
    }
    case 1: case 2: case 3: case 4:
        return (double)below(7) - 3.0;
    default: {
        const double scale[4] = { 1.0, 1e-3, 1e3, 1e6 };
        return (unit() - 0.5) * scale[below(4)];
    }
    }
}

static double gen_loc_real(void)
{
    const double v[10] = { -1.0, 0.0, -0.0, 1.0, 2.0, 2.0, INFINITY, -INFINITY, NAN, 1.5 };
    return v[below(10)];
}

static int64_t gen_loc_index(void)
{
    /* Mostly a few locs, so equal (val, loc) pairs and ties both occur. */
    return below(4) ? (int64_t)below(4) : (int64_t)(next_u64() >> 1) - INT64_C(0x3fffffffffffffff);
}

static void gen_elem(rc_datatype dt, unsigned char *p)
{
    switch (dt) {
    case RC_BYTE: {
        const unsigned char v = (unsigned char)next_u64();
        memcpy(p, &v, 1);
        break;
    }
    case RC_INT32: case RC_UINT32: {
        const uint32_t v = (uint32_t)gen_int_bits(32);
        memcpy(p, &v, 4);
        break;
    }
    case RC_INT64: case RC_UINT64: {
        const uint64_t v = gen_int_bits(64);
        memcpy(p, &v, 8);
        break;
    }
    case RC_FLOAT: {
        const float v = (float)gen_real();
        memcpy(p, &v, 4);
        break;
    }
    case RC_DOUBLE: {
        const double v = gen_real();
        memcpy(p, &v, 8);
        break;
    }
    case RC_INT32_LOC: {
        rc_int32_loc v;
        const uint32_t bits = below(3) ? below(4) : (uint32_t)gen_int_bits(32);
        memcpy(&v.val, &bits, 4);
        v.pad_ = (int32_t)below(1000);
        v.loc = gen_loc_index();
        memcpy(p, &v, sizeof v);
        break;
    }
    case RC_INT64_LOC: {
        rc_int64_loc v;
        const uint64_t bits = below(3) ? below(4) : gen_int_bits(64);
        memcpy(&v.val, &bits, 8);
        v.loc = gen_loc_index();
        memcpy(p, &v, sizeof v);
        break;
    }
    case RC_UINT64_LOC: {
        rc_uint64_loc v;
        v.val = below(3) ? below(4) : gen_int_bits(64);
        v.loc = gen_loc_index();
        memcpy(p, &v, sizeof v);
        break;
    }
    case RC_FLOAT_LOC: {
        rc_float_loc v;
        v.val = (float)gen_loc_real();
        v.pad_ = (int32_t)below(1000);
        v.loc = gen_loc_index();
        memcpy(p, &v, sizeof v);
        break;
    }
    case RC_DOUBLE_LOC: {
        rc_double_loc v;
        v.val = gen_loc_real();
        v.loc = gen_loc_index();
        memcpy(p, &v, sizeof v);
        break;
    }
    case RC_DATATYPE_COUNT_:
        break;
    }
}

/* ------------------------------------------------------------------ */
/* Reference                                                              */

/* Value of a width-bit two's-complement pattern, without relying on an
 * implementation-defined unsigned-to-signed conversion. */
static int64_t to_signed(uint64_t bits, int width)
{
    const uint64_t m = mask_of(width);
    if (bits & (UINT64_C(1) << (width - 1)))
        return -(int64_t)(~bits & m) - 1;  /* ~bits & m < 2^(width-1) */
    return (int64_t)bits;
}

/* x * y mod 2^64 from 32-bit halves (no 64x64 multiply instruction). */
static uint64_t mul_mod64(uint64_t x, uint64_t y)
{
    const uint64_t xl = x & 0xffffffffu, xh = x >> 32;
    const uint64_t yl = y & 0xffffffffu, yh = y >> 32;
    const uint64_t mid = (xl * yh + xh * yl) & 0xffffffffu;
    return xl * yl + (mid << 32);
}

/* Result bits of x (op) y for width-bit integers, x from in, y from inout. */
static uint64_t ref_int(rc_op_kind op, uint64_t x, uint64_t y, int width, int sgn)
{
    const uint64_t m = mask_of(width);
    const int64_t sx = to_signed(x, width), sy = to_signed(y, width);
    switch (op) {
    case RC_SUM:
        if (width == 32)
            return sgn ? (uint64_t)(sx + sy) & m : (x + y) & m;
        return x + y;
    case RC_PROD:
        if (width == 32)
            return sgn ? (uint64_t)(sx * sy) & m : (x * y) & m;
        return mul_mod64(x, y);
    case RC_MIN:
        if (sgn)
            return sx <= sy ? x : y;
        return x <= y ? x : y;
    case RC_MAX:
        if (sgn)
            return sx >= sy ? x : y;
        return x >= y ? x : y;
    case RC_LAND: return (x != 0 && y != 0) ? 1 : 0;
    case RC_LOR: return (x != 0 || y != 0) ? 1 : 0;
    case RC_LXOR: return ((x != 0) != (y != 0)) ? 1 : 0;
    case RC_BAND: return x & y;
    case RC_BOR: return x | y;
    case RC_BXOR: return x ^ y;
    default: return 0;
    }
}

/* Documented semantics: MIN/MAX propagate NaN (in's when both are); on
 * equal values (-0 vs +0 included) inout is kept.  SUM/PROD of floats are
 * computed in double and rounded once, which is the correctly rounded
 * float result because double has more than 2*24+2 bits. */
static double ref_real(rc_op_kind op, double x, double y, int is_float)
{
    switch (op) {
    case RC_SUM: return is_float ? (double)(float)(x + y) : x + y;
    case RC_PROD: return is_float ? (double)(float)(x * y) : x * y;
    case RC_MIN:
    case RC_MAX:
        if (isnan(x))
            return x;
        if (isnan(y))
            return y;
        if (x == y)
            return y;
        return (op == RC_MIN) == (x < y) ? x : y;
    default: return 0;
    }
}

/* A loc element reduced to what the MINLOC rule looks at. */
typedef struct locview {
    int nan;
    int sgn;          /* compare s (signed) rather than u or d */
    int real;         /* compare d */
    int64_t s;
    uint64_t u;
    double d;
    int64_t loc;
} locview;

static locview read_loc(rc_datatype dt, const unsigned char *p)
{
    locview v;
    memset(&v, 0, sizeof v);
    switch (dt) {
    case RC_INT32_LOC: {
        rc_int32_loc e;
        memcpy(&e, p, sizeof e);
        v.sgn = 1, v.s = e.val, v.loc = e.loc;
        break;
    }
    case RC_INT64_LOC: {
        rc_int64_loc e;
        memcpy(&e, p, sizeof e);
        v.sgn = 1, v.s = e.val, v.loc = e.loc;
        break;
    }
    case RC_UINT64_LOC: {
        rc_uint64_loc e;
        memcpy(&e, p, sizeof e);
        v.u = e.val, v.loc = e.loc;
        break;
    }
    case RC_FLOAT_LOC: {
        rc_float_loc e;
        memcpy(&e, p, sizeof e);
        v.real = 1, v.d = e.val, v.nan = isnan(e.val), v.loc = e.loc;
        break;
    }
    case RC_DOUBLE_LOC: {
        rc_double_loc e;
        memcpy(&e, p, sizeof e);
        v.real = 1, v.d = e.val, v.nan = isnan(e.val), v.loc = e.loc;
        break;
    }
    default:
        break;
    }
    return v;
}

static int cmp3(const locview *a, const locview *b)
{
    if (a->real)
        return (a->d > b->d) - (a->d < b->d);
    if (a->sgn)
        return (a->s > b->s) - (a->s < b->s);
    return (a->u > b->u) - (a->u < b->u);
}

/* Does in's element a replace inout's b?  A NaN val counts as the most
 * extreme value for both MINLOC and MAXLOC; equal vals -> lower loc; equal
 * vals and locs -> inout is kept. */
static int loc_in_wins(rc_op_kind op, const locview *a, const locview *b)
{
    if (a->nan || b->nan) {
        if (a->nan && b->nan)
            return a->loc < b->loc;
        return a->nan;
    }
    const int c = cmp3(a, b);
    if (c == 0)
        return a->loc < b->loc;
    return op == RC_MINLOC ? c < 0 : c > 0;
}

/* out = a (op) b for one element; a from in, b from inout. */
static void ref_elem(rc_datatype dt, rc_op_kind op, const unsigned char *a,
                     const unsigned char *b, unsigned char *out)
{
    switch (dt) {
    case RC_INT32: case RC_UINT32: {
        uint32_t x, y, r;
        memcpy(&x, a, 4);
        memcpy(&y, b, 4);
        r = (uint32_t)ref_int(op, x, y, 32, dt == RC_INT32);
        memcpy(out, &r, 4);
        break;
    }
    case RC_INT64: case RC_UINT64: {
        uint64_t x, y, r;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        r = ref_int(op, x, y, 64, dt == RC_INT64);
        memcpy(out, &r, 8);
        break;
    }
    case RC_FLOAT: {
        float x, y, r;
        memcpy(&x, a, 4);
        memcpy(&y, b, 4);
        r = (float)ref_real(op, x, y, 1);
        memcpy(out, &r, 4);
        break;
    }
    case RC_DOUBLE: {
        double x, y, r;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        r = ref_real(op, x, y, 0);
        memcpy(out, &r, 8);
        break;
    }
    default: {
        const locview va = read_loc(dt, a), vb = read_loc(dt, b);
        memcpy(out, loc_in_wins(op, &va, &vb) ? a : b, elem_size(dt));
        break;
    }
    }
}

/* Bit-exact, except that any NaN matches any NaN for float SUM/PROD (the
 * hardware may pick either operand's payload, and vector code may swap
 * operands of a commutative add). */
static int same_elem(rc_datatype dt, rc_op_kind op, const unsigned char *got,
                     const unsigned char *want)
{
    if (op == RC_SUM || op == RC_PROD) {
        if (dt == RC_FLOAT) {
            float g, w;
            memcpy(&g, got, 4);
            memcpy(&w, want, 4);
            if (isnan(g) && isnan(w))
                return 1;
        } else if (dt == RC_DOUBLE) {
            double g, w;
            memcpy(&g, got, 8);
            memcpy(&w, want, 8);
            if (isnan(g) && isnan(w))
                return 1;
        }
    }
    return memcmp(got, want, elem_size(dt)) == 0;
}

static void hex(char *buf, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(buf + 2 * i, "%02x", p[i]);
}

/* ------------------------------------------------------------------ */
/* Random sweep: every datatype x every op x several lengths           */

#define GUARD 3

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "test_ops: out of memory\n");
        exit(2);
    }
    return p;
}

static void sweep_one(rc_datatype dt, rc_op_kind op, size_t count,
                      size_t in_off, size_t io_off)
{
    const size_t sz = elem_size(dt);
    const size_t n_in = in_off + count + GUARD, n_io = io_off + count + GUARD;
    unsigned char *in = xmalloc(n_in * sz), *io = xmalloc(n_io * sz);
    unsigned char *in0 = xmalloc(n_in * sz), *io0 = xmalloc(n_io * sz);
    unsigned char want[16];
    char hg[40], hw[40], ha[40], hb[40];

    for (size_t i = 0; i < n_in; i++)
        gen_elem(dt, in + i * sz);
    for (size_t i = 0; i < n_io; i++)
        gen_elem(dt, io + i * sz);
    memcpy(in0, in, n_in * sz);
    memcpy(io0, io, n_io * sz);

    const rc_status st = rc_reduce_local(in + in_off * sz, io + io_off * sz,
                                         count, dt, rc_op_builtin(op));
    if (!op_defined(dt, op)) {
        CHECK(st == RC_ETYPE, "%s on %s, count %zu: got %s, want RC_ETYPE",
              op_names[op], dt_names[dt], count, st_name(st));
        CHECK(memcmp(io, io0, n_io * sz) == 0,
              "%s on %s: rejected call wrote to inout", op_names[op], dt_names[dt]);
    } else {
        CHECK(st == RC_OK, "%s on %s, count %zu: got %s, want RC_OK",
              op_names[op], dt_names[dt], count, st_name(st));
        for (size_t i = 0; i < count; i++) {
            const unsigned char *a = in0 + (in_off + i) * sz;
            const unsigned char *b = io0 + (io_off + i) * sz;
            const unsigned char *got = io + (io_off + i) * sz;
            ref_elem(dt, op, a, b, want);
            const int ok = same_elem(dt, op, got, want);
            if (!ok) {
                hex(hg, got, sz), hex(hw, want, sz), hex(ha, a, sz), hex(hb, b, sz);
            }
            CHECK(ok, "%s on %s, count %zu, element %zu: in %s inout %s -> got %s, want %s",
                  op_names[op], dt_names[dt], count, i, ok ? "" : ha, ok ? "" : hb,
                  ok ? "" : hg, ok ? "" : hw);
        }
        /* Elements before and after the range, and all of in, untouched. */
        CHECK(memcmp(io, io0, io_off * sz) == 0
                  && memcmp(io + (io_off + count) * sz, io0 + (io_off + count) * sz,
                            GUARD * sz) == 0,
              "%s on %s, count %zu: wrote outside inout[0..count)",
              op_names[op], dt_names[dt], count);
    }
    CHECK(memcmp(in, in0, n_in * sz) == 0, "%s on %s, count %zu: modified in",
          op_names[op], dt_names[dt], count);

    /* The master's form: the result over the left operand (the lower
       ranks), the same elements as rc_reduce_local's inout. */
    unsigned char *acc = xmalloc(n_in * sz);
    memcpy(acc, in0, n_in * sz);
    memcpy(io, io0, n_io * sz);
    const rc_status sl = rc_reduce_into_left(acc + in_off * sz, io + io_off * sz, count, dt, rc_op_builtin(op));
    CHECK(sl == st, "%s on %s, count %zu: into_left gave %s, rc_reduce_local %s", op_names[op], dt_names[dt],
          count, st_name(sl), st_name(st));
    if (st == RC_OK) {
        memcpy(io, io0, n_io * sz);
        CHECK(rc_reduce_local(in0 + in_off * sz, io + io_off * sz, count, dt, rc_op_builtin(op)) == RC_OK,
              "%s on %s: rc_reduce_local failed the second time", op_names[op], dt_names[dt]);
        for (size_t i = 0; i < count; i++) {
            const int ok = same_elem(dt, op, acc + (in_off + i) * sz, io + (io_off + i) * sz);
            CHECK(ok, "%s on %s, count %zu, element %zu: into_left differs from rc_reduce_local", op_names[op],
                  dt_names[dt], count, i);
        }
        CHECK(memcmp(acc, in0, in_off * sz) == 0 &&
                  memcmp(acc + (in_off + count) * sz, in0 + (in_off + count) * sz, GUARD * sz) == 0,
              "%s on %s, count %zu: into_left wrote outside acc[0..count)", op_names[op], dt_names[dt], count);
    } else {
        CHECK(memcmp(acc, in0, n_in * sz) == 0, "%s on %s: rejected into_left wrote to acc", op_names[op],
              dt_names[dt]);
    }
    free(acc);
    free(in), free(io), free(in0), free(io0);
}

static void user_noop(const void *in, void *inout, size_t count, rc_datatype dt, void *user)
{
    (void)in, (void)inout, (void)count, (void)dt, (void)user;
}

static void test_sweep(void)
{
    /* Around the library's 32-element blocks and typical vector widths. */
    static const size_t counts[] = { 0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32,
                                     33, 47, 63, 64, 65, 96, 127, 200, 1021 };
    for (int dt = 0; dt < RC_DATATYPE_COUNT_; dt++)
        for (int op = 0; op < RC_OP_COUNT_; op++)
            for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
                sweep_one((rc_datatype)dt, (rc_op_kind)op, counts[c], 0, 0);
                sweep_one((rc_datatype)dt, (rc_op_kind)op, counts[c], 1, 2);
            }
    /* a user function keeps MPI's (in, inout) contract: not this form */
    double a[2] = {1, 2}, b[2] = {3, 4};
    CHECK(rc_reduce_into_left(a, b, 2, RC_DOUBLE, rc_op_user(user_noop, NULL, 1)) == RC_EINVAL && a[0] == 1,
          "into_left took a user op");
}

/* ------------------------------------------------------------------ */
/* Datatype sizes, op constructors, argument errors                       */

static void test_sizes(void)
{
    CHECK(rc_datatype_size(RC_BYTE) == 1, "size BYTE");
    CHECK(rc_datatype_size(RC_INT32) == sizeof(int32_t), "size INT32");
    CHECK(rc_datatype_size(RC_INT64) == sizeof(int64_t), "size INT64");
    CHECK(rc_datatype_size(RC_UINT32) == sizeof(uint32_t), "size UINT32");
    CHECK(rc_datatype_size(RC_UINT64) == sizeof(uint64_t), "size UINT64");
    CHECK(rc_datatype_size(RC_FLOAT) == sizeof(float), "size FLOAT");
    CHECK(rc_datatype_size(RC_DOUBLE) == sizeof(double), "size DOUBLE");
    CHECK(rc_datatype_size(RC_INT32_LOC) == sizeof(rc_int32_loc), "size INT32_LOC");
    CHECK(rc_datatype_size(RC_INT64_LOC) == sizeof(rc_int64_loc), "size INT64_LOC");
    CHECK(rc_datatype_size(RC_UINT64_LOC) == sizeof(rc_uint64_loc), "size UINT64_LOC");
    CHECK(rc_datatype_size(RC_FLOAT_LOC) == sizeof(rc_float_loc), "size FLOAT_LOC");
    CHECK(rc_datatype_size(RC_DOUBLE_LOC) == sizeof(rc_double_loc), "size DOUBLE_LOC");
    for (int dt = 0; dt < RC_DATATYPE_COUNT_; dt++)
        CHECK(rc_datatype_size((rc_datatype)dt) == elem_size((rc_datatype)dt),
              "size %s", dt_names[dt]);
    CHECK(rc_datatype_size(RC_DATATYPE_COUNT_) == 0, "size of RC_DATATYPE_COUNT_");
    CHECK(rc_datatype_size((rc_datatype)-1) == 0, "size of -1");
    CHECK(rc_datatype_size((rc_datatype)1000) == 0, "size of 1000");
}

static void dummy_fn(const void *in, void *inout, size_t count, rc_datatype dt,
                     void *user)
{
    (void)in, (void)inout, (void)count, (void)dt, (void)user;
}

static void test_constructors(void)
{
    int cookie = 0;
    for (int k = 0; k < RC_OP_COUNT_; k++) {
        const rc_op op = rc_op_builtin((rc_op_kind)k);
        CHECK(op.kind == (rc_op_kind)k && op.fn == NULL && op.user == NULL
                  && op.commute != 0,
              "rc_op_builtin(%s) fields", op_names[k]);
    }
    rc_op u = rc_op_user(dummy_fn, &cookie, 0);
    CHECK(u.fn == dummy_fn && u.user == &cookie && u.commute == 0,
          "rc_op_user fields (non-commutative)");
    u = rc_op_user(dummy_fn, NULL, 7);
    CHECK(u.fn == dummy_fn && u.user == NULL && u.commute != 0,
          "rc_op_user fields (commutative)");
}

static void test_einval(void)
{
    double a[4] = { 1, 2, 3, 4 }, b[4] = { 5, 6, 7, 8 };
    const double b0[4] = { 5, 6, 7, 8 };
    const rc_op sum = rc_op_builtin(RC_SUM);
    rc_status st;

    st = rc_reduce_local(a, b, 4, RC_DATATYPE_COUNT_, sum);
    CHECK(st == RC_EINVAL, "dt RC_DATATYPE_COUNT_: %s", st_name(st));
    st = rc_reduce_local(a, b, 4, (rc_datatype)-1, sum);
    CHECK(st == RC_EINVAL, "dt -1: %s", st_name(st));
    st = rc_reduce_local(a, b, 0, (rc_datatype)99, sum);
    CHECK(st == RC_EINVAL, "dt 99, count 0: %s", st_name(st));
    st = rc_reduce_local(a, b, 4, RC_DOUBLE, rc_op_builtin(RC_OP_COUNT_));
    CHECK(st == RC_EINVAL, "op RC_OP_COUNT_: %s", st_name(st));
    st = rc_reduce_local(a, b, 4, RC_DOUBLE, rc_op_builtin((rc_op_kind)-1));
    CHECK(st == RC_EINVAL, "op -1: %s", st_name(st));
    st = rc_reduce_local(a, b, 0, RC_DOUBLE, rc_op_builtin((rc_op_kind)1000));
    CHECK(st == RC_EINVAL, "op 1000, count 0: %s", st_name(st));
    /* A user op without a function is not a built-in in disguise. */
    st = rc_reduce_local(a, b, 4, RC_DOUBLE, rc_op_user(NULL, NULL, 1));
    CHECK(st == RC_EINVAL, "rc_op_user(NULL): %s", st_name(st));

    st = rc_reduce_local(NULL, b, 4, RC_DOUBLE, sum);
    CHECK(st == RC_EINVAL, "NULL in: %s", st_name(st));
    st = rc_reduce_local(a, NULL, 4, RC_DOUBLE, sum);
    CHECK(st == RC_EINVAL, "NULL inout: %s", st_name(st));
    st = rc_reduce_local(NULL, NULL, 1, RC_INT32, rc_op_user(dummy_fn, NULL, 1));
    CHECK(st == RC_EINVAL, "NULL buffers, user op: %s", st_name(st));
    /* Argument errors come before type errors. */
    st = rc_reduce_local(NULL, b, 4, RC_DOUBLE, rc_op_builtin(RC_BAND));
    CHECK(st == RC_EINVAL, "NULL in, BAND on DOUBLE: %s", st_name(st));
    /* NULL is fine when there is nothing to read. */
    st = rc_reduce_local(NULL, NULL, 0, RC_DOUBLE, sum);
    CHECK(st == RC_OK, "NULL buffers, count 0: %s", st_name(st));
    /* ...but the type rule still applies to an empty reduce. */
    st = rc_reduce_local(NULL, NULL, 0, RC_DOUBLE, rc_op_builtin(RC_BXOR));
    CHECK(st == RC_ETYPE, "BXOR on DOUBLE, count 0: %s", st_name(st));

    /* A count whose byte length overflows size_t: rejected before any
     * access (a and b are far too small; ASan would notice a touch). */
    st = rc_reduce_local(a, b, SIZE_MAX, RC_DOUBLE, sum);
    CHECK(st == RC_EINVAL, "count SIZE_MAX: %s", st_name(st));
    st = rc_reduce_local(a, b, SIZE_MAX / 8 + 1, RC_DOUBLE, sum);
    CHECK(st == RC_EINVAL, "count SIZE_MAX/8+1: %s", st_name(st));

    /* Overlapping buffers are rejected; adjacent ones are fine. */
    double v[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    st = rc_reduce_local(v, v, 4, RC_DOUBLE, sum);
    CHECK(st == RC_EINVAL, "in == inout: %s", st_name(st));
    st = rc_reduce_local(v, v + 3, 4, RC_DOUBLE, sum);
    CHECK(st == RC_EINVAL, "inout overlaps the end of in: %s", st_name(st));
    st = rc_reduce_local(v + 3, v, 4, RC_DOUBLE, sum);
    CHECK(st == RC_EINVAL, "in overlaps the end of inout: %s", st_name(st));
    st = rc_reduce_local(v, v, 2, RC_DOUBLE, rc_op_user(dummy_fn, NULL, 1));
    CHECK(st == RC_EINVAL, "in == inout, user op: %s", st_name(st));
    st = rc_reduce_local(v, v + 4, 4, RC_DOUBLE, sum);
    CHECK(st == RC_OK && v[4] == 6 && v[5] == 8 && v[6] == 10 && v[7] == 12,
          "adjacent buffers: %s", st_name(st));
    st = rc_reduce_local(v + 4, v, 4, RC_DOUBLE, sum);
    CHECK(st == RC_OK && v[0] == 7 && v[1] == 10 && v[2] == 13 && v[3] == 16,
          "adjacent buffers, in after inout: %s", st_name(st));
    st = rc_reduce_local(v, v, 0, RC_DOUBLE, sum);
    CHECK(st == RC_OK, "in == inout, count 0: %s", st_name(st));

    CHECK(memcmp(b, b0, sizeof b) == 0, "a rejected call modified inout");
}

/* ------------------------------------------------------------------ */
/* Wrap-around of signed (and unsigned) SUM and PROD                     */

static void test_wrap(void)
{
    /* Cycled over 70 elements so the vector and the scalar loops both run. */
    enum { N = 70 };
    static const int32_t s32[][4] = {  /* in, inout, SUM, PROD */
        { INT32_MAX, 1, INT32_MIN, INT32_MAX },
        { INT32_MIN, INT32_MIN, 0, 0 },
        { INT32_MIN, -1, INT32_MAX, INT32_MIN },
        { INT32_MAX, INT32_MAX, -2, 1 },
        { 65536, 65536, 131072, 0 },
        { -1, INT32_MIN, INT32_MAX, INT32_MIN },
        { 46341, 46341, 92682, -2147479015 },
    };
    static const int64_t s64[][4] = {
        { INT64_MAX, 1, INT64_MIN, INT64_MAX },
        { INT64_MIN, INT64_MIN, 0, 0 },
        { INT64_MIN, -1, INT64_MAX, INT64_MIN },
        { INT64_MAX, 2, INT64_MIN + 1, -2 },
        { INT64_C(4294967296), INT64_C(4294967296), INT64_C(8589934592), 0 },
        { INT64_C(3037000500), INT64_C(3037000500), INT64_C(6074001000),
          -INT64_C(9223372036709301616) },
    };
    static const uint32_t u32[][4] = {
        { UINT32_MAX, 1, 0, UINT32_MAX },
        { UINT32_MAX, UINT32_MAX, UINT32_MAX - 1, 1 },
        { 65536, 65536, 131072, 0 },
    };
    static const uint64_t u64[][4] = {
        { UINT64_MAX, 1, 0, UINT64_MAX },
        { UINT64_MAX, UINT64_MAX, UINT64_MAX - 1, 1 },
        { UINT64_C(1) << 32, UINT64_C(1) << 32, UINT64_C(1) << 33, 0 },
    };
#define WRAP_CASE(T, DT, table)                                                   \
    do {                                                                          \
        const size_t rows = sizeof table / sizeof table[0];                       \
        for (int which = 0; which < 2; which++) {                                 \
            T in[N], io[N];                                                       \
            for (size_t i = 0; i < N; i++) {                                      \
                in[i] = table[i % rows][0];                                       \
                io[i] = table[i % rows][1];                                       \
            }                                                                     \
            const rc_status st = rc_reduce_local(in, io, N, DT,                   \
                                                 rc_op_builtin(which ? RC_PROD : RC_SUM)); \
            CHECK(st == RC_OK, "wrap %s: %s", #DT, st_name(st));              \
            for (size_t i = 0; i < N; i++)                                        \
                CHECK(io[i] == table[i % rows][2 + which],                        \
                      "wrap %s %s row %zu: got %lld, want %lld", #DT,             \
                      which ? "PROD" : "SUM", i % rows, (long long)io[i],         \
                      (long long)table[i % rows][2 + which]);                     \
        }                                                                         \
    } while (0)
    WRAP_CASE(int32_t, RC_INT32, s32);
    WRAP_CASE(int64_t, RC_INT64, s64);
    WRAP_CASE(uint32_t, RC_UINT32, u32);
    WRAP_CASE(uint64_t, RC_UINT64, u64);
#undef WRAP_CASE
}

/* ------------------------------------------------------------------ */
/* MINLOC/MAXLOC ties and NaN, float MIN/MAX NaN and zeros              */

/* One element, which must succeed. */
static void reduce1(const void *in, void *inout, rc_datatype dt, rc_op op, int line)
{
    const rc_status st = rc_reduce_local(in, inout, 1, dt, op);
    check_(st == RC_OK, line, "%s on %s: %s", op_names[op.kind], dt_names[dt], st_name(st));
}

static void test_loc_ties(void)
{
    /* {in val, in loc, inout val, inout loc, want loc} for both ops. */
    static const int64_t tie[][5] = {
        { 5, 7, 5, 3, 3 },   /* equal vals: lower loc, from inout */
        { 5, 3, 5, 7, 3 },   /* equal vals: lower loc, from in */
        { 5, 4, 5, 4, 4 },
        { -2, 9, -2, -9, -9 },
    };
    for (int op = RC_MINLOC; op <= RC_MAXLOC; op++) {
        const rc_op o = rc_op_builtin((rc_op_kind)op);
        for (size_t t = 0; t < sizeof tie / sizeof tie[0]; t++) {
            rc_int32_loc a32 = { (int32_t)tie[t][0], 0, tie[t][1] };
            rc_int32_loc b32 = { (int32_t)tie[t][2], 0, tie[t][3] };
            rc_int64_loc a64 = { tie[t][0], tie[t][1] }, b64 = { tie[t][2], tie[t][3] };
            rc_uint64_loc au = { (uint64_t)(tie[t][0] + 10), tie[t][1] };
            rc_uint64_loc bu = { (uint64_t)(tie[t][2] + 10), tie[t][3] };
            rc_float_loc af = { (float)tie[t][0], 0, tie[t][1] };
            rc_float_loc bf = { (float)tie[t][2], 0, tie[t][3] };
            rc_double_loc ad = { (double)tie[t][0], tie[t][1] };
            rc_double_loc bd = { (double)tie[t][2], tie[t][3] };
            int ok = rc_reduce_local(&a32, &b32, 1, RC_INT32_LOC, o) == RC_OK
                && rc_reduce_local(&a64, &b64, 1, RC_INT64_LOC, o) == RC_OK
                && rc_reduce_local(&au, &bu, 1, RC_UINT64_LOC, o) == RC_OK
                && rc_reduce_local(&af, &bf, 1, RC_FLOAT_LOC, o) == RC_OK
                && rc_reduce_local(&ad, &bd, 1, RC_DOUBLE_LOC, o) == RC_OK;
            CHECK(ok, "%s tie %zu: call failed", op_names[op], t);
            CHECK(b32.loc == tie[t][4] && b32.val == tie[t][0], "%s INT32_LOC tie %zu: loc %lld",
                  op_names[op], t, (long long)b32.loc);
            CHECK(b64.loc == tie[t][4] && b64.val == tie[t][0], "%s INT64_LOC tie %zu: loc %lld",
                  op_names[op], t, (long long)b64.loc);
            CHECK(bu.loc == tie[t][4], "%s UINT64_LOC tie %zu: loc %lld",
                  op_names[op], t, (long long)bu.loc);
            CHECK(bf.loc == tie[t][4], "%s FLOAT_LOC tie %zu: loc %lld",
                  op_names[op], t, (long long)bf.loc);
            CHECK(bd.loc == tie[t][4], "%s DOUBLE_LOC tie %zu: loc %lld",
                  op_names[op], t, (long long)bd.loc);
        }
        /* Strict winners, both orders. */
        rc_int64_loc x = { 1, 50 }, y = { 2, 10 };
        reduce1(&x, &y, RC_INT64_LOC, o, __LINE__);
        CHECK(op == RC_MINLOC ? (y.val == 1 && y.loc == 50) : (y.val == 2 && y.loc == 10),
              "%s strict, in smaller", op_names[op]);
        rc_int64_loc x2 = { 2, 10 }, y2 = { 1, 50 };
        reduce1(&x2, &y2, RC_INT64_LOC, o, __LINE__);
        CHECK(op == RC_MINLOC ? (y2.val == 1 && y2.loc == 50) : (y2.val == 2 && y2.loc == 10),
              "%s strict, in larger", op_names[op]);

        /* -0.0 ties +0.0: the whole lower-loc element wins, sign included. */
        rc_double_loc pz = { 0.0, 4 }, nz = { -0.0, 2 };
        reduce1(&pz, &nz, RC_DOUBLE_LOC, o, __LINE__);
        CHECK(nz.loc == 2 && signbit(nz.val), "%s -0 (loc 2) vs +0 (loc 4), in=+0", op_names[op]);
        rc_double_loc nz2 = { -0.0, 2 }, pz2 = { 0.0, 4 };
        reduce1(&nz2, &pz2, RC_DOUBLE_LOC, o, __LINE__);
        CHECK(pz2.loc == 2 && signbit(pz2.val), "%s -0 (loc 2) vs +0 (loc 4), in=-0", op_names[op]);

        /* A NaN beats numbers, from either side; two NaNs: lower loc. */
        rc_float_loc fn = { NAN, 0, 9 }, f1 = { 1.0f, 0, 2 };
        reduce1(&fn, &f1, RC_FLOAT_LOC, o, __LINE__);
        CHECK(isnan(f1.val) && f1.loc == 9, "%s NaN in in", op_names[op]);
        rc_double_loc d1 = { -INFINITY, 1 }, dn = { NAN, 9 };
        reduce1(&d1, &dn, RC_DOUBLE_LOC, o, __LINE__);
        CHECK(isnan(dn.val) && dn.loc == 9, "%s NaN in inout", op_names[op]);
        rc_double_loc n3 = { NAN, 3 }, n8 = { -NAN, 8 };
        reduce1(&n3, &n8, RC_DOUBLE_LOC, o, __LINE__);
        CHECK(isnan(n8.val) && !signbit(n8.val) && n8.loc == 3, "%s two NaNs", op_names[op]);
    }
}

static void test_real_minmax(void)
{
    const rc_op mn = rc_op_builtin(RC_MIN), mx = rc_op_builtin(RC_MAX);
    /* NaN propagates from either side; vector and scalar paths. */
    double a[40], b[40];
    float fa[40], fb[40];
    for (int i = 0; i < 40; i++) {
        a[i] = (i % 2) ? NAN : 1.0, b[i] = (i % 2) ? 1.0 : NAN;
        fa[i] = (float)a[i], fb[i] = (float)b[i];
    }
    CHECK(rc_reduce_local(a, b, 40, RC_DOUBLE, mn) == RC_OK, "MIN NaN call");
    CHECK(rc_reduce_local(fa, fb, 40, RC_FLOAT, mx) == RC_OK, "MAX NaN call");
    for (int i = 0; i < 40; i++) {
        CHECK(isnan(b[i]), "DOUBLE MIN with a NaN, element %d: got %g", i, b[i]);
        CHECK(isnan(fb[i]), "FLOAT MAX with a NaN, element %d: got %g", i, (double)fb[i]);
    }
    /* Equal values (-0 vs +0): inout is kept. */
    double z[2] = { -0.0, 0.0 }, w[2] = { 0.0, -0.0 };
    CHECK(rc_reduce_local(z, w, 2, RC_DOUBLE, mn) == RC_OK, "MIN zeros call");
    CHECK(!signbit(w[0]) && signbit(w[1]), "MIN of -0/+0 keeps inout");
    /* Infinities order normally. */
    double i1[2] = { -INFINITY, INFINITY }, i2[2] = { 3.0, 3.0 };
    CHECK(rc_reduce_local(i1, i2, 2, RC_DOUBLE, mx) == RC_OK, "MAX inf call");
    CHECK(i2[0] == 3.0 && i2[1] == INFINITY, "MAX with infinities");
}

/* ------------------------------------------------------------------ */
/* User operations                                                       */

typedef struct probe {
    int calls;
    size_t count;
    rc_datatype dt;
    const void *in;
    void *inout;
} probe;

/* Non-commutative: the result is in, so it shows which argument is which. */
static void keep_left(const void *in, void *inout, size_t count, rc_datatype dt,
                      void *user)
{
    probe *p = user;
    p->calls++, p->count = count, p->dt = dt, p->in = in, p->inout = inout;
    memcpy(inout, in, count * rc_datatype_size(dt));
}

/* 2x2 row-major matrices of doubles, four per group: inout = in x inout. */
static void matmul2(const void *in, void *inout, size_t count, rc_datatype dt,
                    void *user)
{
    int *bad = user;
    if (dt != RC_DOUBLE || count % 4 != 0) {
        (*bad)++;
        return;
    }
    const double *x = in;
    double *y = inout;
    for (size_t k = 0; k < count; k += 4) {
        const double a = x[k], b = x[k + 1], c = x[k + 2], d = x[k + 3];
        const double e = y[k], f = y[k + 1], g = y[k + 2], h = y[k + 3];
        y[k] = a * e + b * g;
        y[k + 1] = a * f + b * h;
        y[k + 2] = c * e + d * g;
        y[k + 3] = c * f + d * h;
    }
}

static void test_user_ops(void)
{
    probe p;
    memset(&p, 0, sizeof p);
    int32_t in[5] = { 1, 2, 3, 4, 5 }, io[5] = { 10, 20, 30, 40, 50 };
    rc_status st = rc_reduce_local(in, io, 5, RC_INT32, rc_op_user(keep_left, &p, 0));
    CHECK(st == RC_OK, "keep_left: %s", st_name(st));
    CHECK(p.calls == 1 && p.count == 5 && p.dt == RC_INT32 && p.in == in && p.inout == io,
          "keep_left saw calls %d count %zu dt %d", p.calls, p.count, (int)p.dt);
    CHECK(io[0] == 1 && io[4] == 5, "keep_left: inout[i] = in[i] (op) inout[i] keeps in");

    /* Any datatype with a size works, even opaque bytes. */
    unsigned char bi[3] = { 7, 8, 9 }, bo[3] = { 0, 0, 0 };
    st = rc_reduce_local(bi, bo, 3, RC_BYTE, rc_op_user(keep_left, &p, 0));
    CHECK(st == RC_OK && p.calls == 2 && p.dt == RC_BYTE && bo[2] == 9,
          "user op on RC_BYTE: %s", st_name(st));
    rc_float_loc li = { 1.0f, 0, 1 }, lo = { 2.0f, 0, 2 };
    st = rc_reduce_local(&li, &lo, 1, RC_FLOAT_LOC, rc_op_user(keep_left, &p, 0));
    CHECK(st == RC_OK && p.calls == 3 && lo.loc == 1, "user op on RC_FLOAT_LOC: %s",
          st_name(st));

    /* Empty reduce: OK, function not called. */
    st = rc_reduce_local(in, io, 0, RC_INT32, rc_op_user(keep_left, &p, 0));
    CHECK(st == RC_OK && p.calls == 3, "user op, count 0: %s, calls %d",
          st_name(st), p.calls);
    /* Unknown datatype: rejected even for user ops. */
    st = rc_reduce_local(in, io, 1, RC_DATATYPE_COUNT_, rc_op_user(keep_left, &p, 0));
    CHECK(st == RC_EINVAL && p.calls == 3, "user op, bad dt: %s", st_name(st));

    /* A = [1 1; 0 1], B = [1 0; 1 1]: in=A, inout=B gives A*B = [2 1; 1 1]
     * (B*A would be [1 1; 1 2]). */
    int bad = 0;
    const rc_op mm = rc_op_user(matmul2, &bad, 0);
    double A[4] = { 1, 1, 0, 1 }, B[4] = { 1, 0, 1, 1 };
    st = rc_reduce_local(A, B, 4, RC_DOUBLE, mm);
    CHECK(st == RC_OK && bad == 0 && B[0] == 2 && B[1] == 1 && B[2] == 1 && B[3] == 1,
          "matmul in=A inout=B: got [%g %g; %g %g], want [2 1; 1 1]", B[0], B[1], B[2], B[3]);

    /* Fold over ranks the way a reduce does (in = lower ranks so far,
     * inout = next rank): gives M0*M1*...*M7, checked in exact integers. */
    enum { RANKS = 8, MATS = 5 };
    double m[RANKS][4 * MATS];
    int64_t want[MATS][4];
    for (int r = 0; r < RANKS; r++)
        for (int k = 0; k < 4 * MATS; k++)
            m[r][k] = (double)below(5) - 2.0;
    for (int j = 0; j < MATS; j++) {
        int64_t acc[4] = { 1, 0, 0, 1 };
        for (int r = 0; r < RANKS; r++) {
            const double *q = &m[r][4 * j];
            const int64_t e = (int64_t)q[0], f = (int64_t)q[1], g = (int64_t)q[2],
                          h = (int64_t)q[3];
            const int64_t t0 = acc[0] * e + acc[1] * g, t1 = acc[0] * f + acc[1] * h;
            const int64_t t2 = acc[2] * e + acc[3] * g, t3 = acc[2] * f + acc[3] * h;
            acc[0] = t0, acc[1] = t1, acc[2] = t2, acc[3] = t3;
        }
        memcpy(want[j], acc, sizeof acc);
    }
    double acc[4 * MATS], next[4 * MATS];
    memcpy(acc, m[0], sizeof acc);
    for (int r = 1; r < RANKS; r++) {
        memcpy(next, m[r], sizeof next);
        st = rc_reduce_local(acc, next, 4 * MATS, RC_DOUBLE, mm);
        CHECK(st == RC_OK, "matmul fold rank %d: %s", r, st_name(st));
        memcpy(acc, next, sizeof acc);
    }
    CHECK(bad == 0, "matmul saw a wrong dt or count");
    for (int j = 0; j < MATS; j++)
        for (int k = 0; k < 4; k++)
            CHECK(acc[4 * j + k] == (double)want[j][k],
                  "matmul fold matrix %d entry %d: got %g, want %lld", j, k,
                  acc[4 * j + k], (long long)want[j][k]);
}

int main(void)
{
    test_sizes();
    test_constructors();
    test_einval();
    test_wrap();
    test_loc_ties();
    test_real_minmax();
    test_user_ops();
    test_sweep();

    return unit_done("test_ops");
}
