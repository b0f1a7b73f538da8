/* ops.c - element-wise reduce operations (MPI_Op) behind rc_reduce_local.
 *
 * The master folds every task's output into the reduce buffer through these
 * loops, so they are the hot path of rc_job_reduce.  Each (datatype, op) pair
 * is its own loop over restrict-qualified arrays with a branch-free body,
 * blocked so that gcc -O2 vectorizes it too (see RC_BLOCK_), not only -O3.
 * A table maps (datatype, op) to its loop; its NULL entries are exactly the
 * combinations that answer RC_ETYPE, so the type rules live in one place.
 *
 * Signed SUM, PROD, logical and bitwise ops reuse the unsigned loops: unsigned
 * arithmetic wraps modulo 2^n, which is two's-complement wrap-around bit for
 * bit, so signed overflow (undefined behaviour, caught by UBSan) cannot happen,
 * and C11 6.5p7 lets an int32_t be read and written through a uint32_t lvalue.
 * Only MIN/MAX need signed loops.
 *
 * Floating point: every result element is one IEEE operation on two operands,
 * never reassociated, so every worker gets the same bits.  No loop multiplies
 * then adds, so -ffp-contract=off has nothing to fuse here; -ffast-math or
 * -ffinite-math-only would break the NaN rules below and must not be used.
 *
 * Argument errors (RC_EINVAL, RC_ETYPE) do not depend on count: a bad call
 * fails the same way on an empty buffer, so it is caught in small tests.
 */
#include "internal.h"

#include <stdint.h>

size_t rc_datatype_size(rc_datatype dt)
{
    /* No default: -Wswitch then flags a datatype added to the enum but not
     * here.  Out-of-range values fall through to 0. */
    switch (dt) {
    case RC_BYTE: return 1;
    case RC_INT32: return sizeof(int32_t);
    case RC_INT64: return sizeof(int64_t);
    case RC_UINT32: return sizeof(uint32_t);
    case RC_UINT64: return sizeof(uint64_t);
    case RC_FLOAT: return sizeof(float);
    case RC_DOUBLE: return sizeof(double);
    case RC_INT32_LOC: return sizeof(rc_int32_loc);
    case RC_INT64_LOC: return sizeof(rc_int64_loc);
    case RC_UINT64_LOC: return sizeof(rc_uint64_loc);
    case RC_FLOAT_LOC: return sizeof(rc_float_loc);
    case RC_DOUBLE_LOC: return sizeof(rc_double_loc);
    case RC_DATATYPE_COUNT_: break;
    }
    return 0;
}

rc_op rc_op_builtin(rc_op_kind kind)
{
    rc_op op;
    op.kind = kind;
    op.fn = NULL;
    op.user = NULL;
    op.commute = 1;
    return op;
}

rc_op rc_op_user(rc_user_fn fn, void *user, int commute)
{
    rc_op op;
    /* An out-of-range kind, so a user op whose fn is NULL (or later cleared)
     * is rejected as RC_EINVAL instead of silently becoming a built-in. */
    op.kind = RC_OP_COUNT_;
    op.fn = fn;
    op.user = user;
    op.commute = commute != 0;
    return op;
}

/* One loop per (type, op).  The parameters carry restrict (the loops are
 * reached through the table, so they must share one void-pointer
 * signature); the typed pointers derived from them inherit it. */
typedef void (*rc_kernel_)(const void *restrict in, void *restrict inout, size_t n);
/* The same operation with the result written over the left operand: the
 * master folds each task's output into the reduce buffer this way, which
 * holds the lower ranks, the left operand of the MPI order. */
typedef void (*rc_kernel_l_)(void *restrict acc, const void *restrict in, size_t n);

/* Elements per block of the blocked loops below.  gcc 12's -O2 (very-cheap
 * cost model) vectorizes only loops whose trip count is a known multiple of
 * the vector length, so a plain `for (i < n)` stays scalar; a fixed-length
 * inner loop over blocks of RC_BLOCK_ elements vectorizes for every vector
 * width up to AVX-512 (16 x 32 bits), and the remaining < RC_BLOCK_ elements
 * run scalar.  The order of the work does not matter: elements are
 * independent. */
#define RC_BLOCK_ 32

/* name: inout[i] = EXPR, with a = in[i] and b = inout[i];
 * name##_l: acc[i] = EXPR, with a = acc[i] and b = in[i] - the same
 * operands in the same places, so the same bits, stored on the left. */
#define RC_ELEMWISE_BODY_(T, A, B, OUT, EXPR)                               \
    size_t i = 0;                                                         \
    for (; n - i >= RC_BLOCK_; i += RC_BLOCK_) {                          \
        for (size_t j = 0; j < RC_BLOCK_; j++) {                          \
            const T a = A[i + j];                                         \
            const T b = B[i + j];                                         \
            OUT[i + j] = (T)(EXPR);                                       \
        }                                                                 \
    }                                                                     \
    for (; i < n; i++) {                                                  \
        const T a = A[i];                                                 \
        const T b = B[i];                                                 \
        OUT[i] = (T)(EXPR);                                               \
    }
/* Both forms of one loop: RIGHT sees in and io, LEFT sees acc and in. */
#define RC_KERNEL_PAIR_(name, T, RIGHT, LEFT)                               \
    static void name(const void *restrict in_, void *restrict inout_,     \
                     size_t n)                                            \
    {                                                                     \
        const T *in = in_;                                                \
        T *io = inout_;                                                   \
        RIGHT                                                             \
    }                                                                     \
    static void name##_l(void *restrict acc_, const void *restrict in_,   \
                         size_t n)                                        \
    {                                                                     \
        T *acc = acc_;                                                    \
        const T *in = in_;                                                \
        LEFT                                                              \
    }
#define RC_ELEMWISE_(name, T, EXPR)                                         \
    RC_KERNEL_PAIR_(name, T, RC_ELEMWISE_BODY_(T, in, io, io, EXPR),      \
                    RC_ELEMWISE_BODY_(T, acc, in, acc, EXPR))

/* 1u * a * b: the product is computed in at least unsigned int, so it cannot
 * become a signed int multiply by integer promotion on a platform whose int
 * is wider than 32 bits.  Logical ops use & | ^ on 0/1 truth values rather
 * than && ||: same result, no short-circuit branch in the loop body. */
#define RC_INTEGER_OPS_(tag, T)                                             \
    RC_ELEMWISE_(tag##_sum, T, a + b)                                     \
    RC_ELEMWISE_(tag##_prod, T, 1u * a * b)                               \
    RC_ELEMWISE_(tag##_land, T, (a != 0) & (b != 0))                      \
    RC_ELEMWISE_(tag##_lor, T, (a != 0) | (b != 0))                       \
    RC_ELEMWISE_(tag##_lxor, T, (a != 0) ^ (b != 0))                      \
    RC_ELEMWISE_(tag##_band, T, a & b)                                    \
    RC_ELEMWISE_(tag##_bor, T, a | b)                                     \
    RC_ELEMWISE_(tag##_bxor, T, a ^ b)

/* On equal values inout is kept (the values are identical anyway). */
#define RC_MINMAX_OPS_(tag, T)                                              \
    RC_ELEMWISE_(tag##_min, T, a < b ? a : b)                             \
    RC_ELEMWISE_(tag##_max, T, a > b ? a : b)

RC_INTEGER_OPS_(u32, uint32_t)
RC_INTEGER_OPS_(u64, uint64_t)
RC_MINMAX_OPS_(u32, uint32_t)
RC_MINMAX_OPS_(u64, uint64_t)
RC_MINMAX_OPS_(i32, int32_t)
RC_MINMAX_OPS_(i64, int64_t)

/* Floating MIN/MAX propagate NaN: if either operand is a NaN the result is a
 * NaN (in's when both are).  A bare `a < b ? a : b` would keep or drop a NaN
 * depending on which side it sits, i.e. on which rank produced it, so a
 * reduce over data containing a NaN could silently return a number.  This is
 * IEEE 754-2019 minimum/maximum except for zeros: -0 and +0 compare equal and
 * inout is kept, so min(-0, +0) depends on operand order (deterministic,
 * since redcoll always combines in rank order).  Unlike fmin/fmax (which
 * drop NaNs) this is a compare and a select, which vectorizes. */
#define RC_FLOAT_OPS_(tag, T)                                               \
    RC_ELEMWISE_(tag##_sum, T, a + b)                                     \
    RC_ELEMWISE_(tag##_prod, T, a * b)                                    \
    RC_ELEMWISE_(tag##_min, T, ((a < b) | (a != a)) ? a : b)              \
    RC_ELEMWISE_(tag##_max, T, ((a > b) | (a != a)) ? a : b)

RC_FLOAT_OPS_(f32, float)
RC_FLOAT_OPS_(f64, double)

/* MINLOC/MAXLOC: in[i] replaces inout[i] when it wins.  It wins on a strictly
 * better val, or on an equal val with a strictly lower loc (MPI's tie rule,
 * for both MINLOC and MAXLOC).  The winner is copied whole, so on a tie of
 * -0.0 and +0.0 the val bits also come from the lower loc.  For floats a NaN
 * val beats every number and two NaNs tie, so a reduce containing NaNs
 * returns the NaN with the lowest loc whatever the rank order, instead of
 * keeping or dropping it depending on where it sits.
 * RC_NEVER_NAN_ keeps integer types out of the x != x test. */
#define RC_IS_NAN_(x) ((x) != (x))
#define RC_NEVER_NAN_(x) 0

#define RC_LOC_WINS_(a, b, BETTER, ISNAN)                                   \
    (ISNAN(a.val) ? (!ISNAN(b.val) || a.loc < b.loc)                      \
     : !ISNAN(b.val) && ((a.val BETTER b.val)                             \
                         || (a.val == b.val && a.loc < b.loc)))
#define RC_LOC_OP_(name, T, BETTER, ISNAN)                                  \
    RC_KERNEL_PAIR_(name, T,                                              \
        for (size_t i = 0; i < n; i++) {                                  \
            const T a = in[i];                                            \
            const T b = io[i];                                            \
            if (RC_LOC_WINS_(a, b, BETTER, ISNAN))                        \
                io[i] = a;                                                \
        },                                                                \
        for (size_t i = 0; i < n; i++) {                                  \
            const T a = acc[i];                                           \
            const T b = in[i];                                            \
            if (!RC_LOC_WINS_(a, b, BETTER, ISNAN))                       \
                acc[i] = b;                                               \
        })

#define RC_LOC_OPS_(tag, T, ISNAN)                                          \
    RC_LOC_OP_(tag##_minloc, T, <, ISNAN)                                 \
    RC_LOC_OP_(tag##_maxloc, T, >, ISNAN)

RC_LOC_OPS_(i32loc, rc_int32_loc, RC_NEVER_NAN_)
RC_LOC_OPS_(i64loc, rc_int64_loc, RC_NEVER_NAN_)
RC_LOC_OPS_(u64loc, rc_uint64_loc, RC_NEVER_NAN_)
RC_LOC_OPS_(f32loc, rc_float_loc, RC_IS_NAN_)
RC_LOC_OPS_(f64loc, rc_double_loc, RC_IS_NAN_)

typedef struct rc_kpair_ {
    rc_kernel_ r;    /* into the right operand (rc_reduce_local) */
    rc_kernel_l_ l;  /* into the left one (rc_reduce_into_left) */
} rc_kpair_;
#define RC_K_(f) { f, f##_l }

/* Signed rows point at unsigned loops wherever the bits agree (see top). */
#define RC_INTEGER_ROW_(tag, stag)                                          \
    {                                                                     \
        [RC_SUM] = RC_K_(tag##_sum), [RC_PROD] = RC_K_(tag##_prod),       \
        [RC_MIN] = RC_K_(stag##_min), [RC_MAX] = RC_K_(stag##_max),       \
        [RC_LAND] = RC_K_(tag##_land), [RC_LOR] = RC_K_(tag##_lor),       \
        [RC_LXOR] = RC_K_(tag##_lxor), [RC_BAND] = RC_K_(tag##_band),     \
        [RC_BOR] = RC_K_(tag##_bor), [RC_BXOR] = RC_K_(tag##_bxor),       \
    }
#define RC_FLOAT_ROW_(tag)                                                  \
    {                                                                     \
        [RC_SUM] = RC_K_(tag##_sum), [RC_PROD] = RC_K_(tag##_prod),       \
        [RC_MIN] = RC_K_(tag##_min), [RC_MAX] = RC_K_(tag##_max),         \
    }
#define RC_LOC_ROW_(tag)                                                    \
    { [RC_MINLOC] = RC_K_(tag##_minloc), [RC_MAXLOC] = RC_K_(tag##_maxloc) }

/* RC_BYTE has no row: opaque bytes have no arithmetic. */
static const rc_kpair_ rc_kernels_[RC_DATATYPE_COUNT_][RC_OP_COUNT_] = {
    [RC_INT32] = RC_INTEGER_ROW_(u32, i32),
    [RC_INT64] = RC_INTEGER_ROW_(u64, i64),
    [RC_UINT32] = RC_INTEGER_ROW_(u32, u32),
    [RC_UINT64] = RC_INTEGER_ROW_(u64, u64),
    [RC_FLOAT] = RC_FLOAT_ROW_(f32),
    [RC_DOUBLE] = RC_FLOAT_ROW_(f64),
    [RC_INT32_LOC] = RC_LOC_ROW_(i32loc),
    [RC_INT64_LOC] = RC_LOC_ROW_(i64loc),
    [RC_UINT64_LOC] = RC_LOC_ROW_(u64loc),
    [RC_FLOAT_LOC] = RC_LOC_ROW_(f32loc),
    [RC_DOUBLE_LOC] = RC_LOC_ROW_(f64loc),
};

/* Do [a, a+len) and [b, b+len) share a byte?  Compared as integers because
 * relational operators on pointers into different objects are undefined. */
static int rc_overlap_(const void *a, const void *b, size_t len)
{
    const uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x < y ? y - x < len : x - y < len;
}

/* The checks both entry points share; *k the built-in's loops (NULL for a
 * user op). */
static rc_status rc_reduce_check_(const void *x, const void *y, size_t count, rc_datatype dt, rc_op op,
                                  const rc_kpair_ **k)
{
    const size_t size = rc_datatype_size(dt);
    if (size == 0)
        return RC_EINVAL;
    /* Through unsigned long so a negative enum value is out of range too,
     * whatever integer type the compiler picked for the enum. */
    if (op.fn == NULL && (unsigned long)op.kind >= (unsigned long)RC_OP_COUNT_)
        return RC_EINVAL;
    if (count > 0 && (x == NULL || y == NULL))
        return RC_EINVAL;
    /* A byte length that does not fit in size_t cannot be a real buffer. */
    if (count > SIZE_MAX / size)
        return RC_EINVAL;
    /* The loops are compiled under restrict and may be vectorized, so
     * overlapping buffers (in == inout included) would give garbage, not
     * an in-place reduce; MPI_Reduce_local forbids aliasing as well. */
    if (count > 0 && rc_overlap_(x, y, count * size))
        return RC_EINVAL;
    *k = NULL;
    if (op.fn != NULL)
        return RC_OK;
    if (rc_kernels_[dt][op.kind].r == NULL)
        return RC_ETYPE;
    *k = &rc_kernels_[dt][op.kind];
    return RC_OK;
}

rc_status rc_reduce_local(const void *in, void *inout, size_t count,
                          rc_datatype dt, rc_op op)
{
    const rc_kpair_ *k;
    rc_status st = rc_reduce_check_(in, inout, count, dt, op, &k);
    if (st != RC_OK || count == 0) /* user functions never see count 0 */
        return st;
    if (k)
        k->r(in, inout, count);
    else
        op.fn(in, inout, count, dt, op.user);
    return RC_OK;
}

/* acc = acc op in, acc the left operand: what rc_reduce_local(acc, in)
 * leaves in `in`, bit for bit, without the copy back.  Built-in ops only: a
 * user function's contract is MPI's (in, inout). */
rc_status rc_reduce_into_left(void *acc, const void *in, size_t count, rc_datatype dt, rc_op op)
{
    const rc_kpair_ *k;
    if (op.fn != NULL)
        return RC_EINVAL;
    rc_status st = rc_reduce_check_(acc, in, count, dt, op, &k);
    if (st == RC_OK && count > 0)
        k->l(acc, in, count);
    return st;
}
