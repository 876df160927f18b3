/* chainrule C kernels: fused dense-layer forward and backward, SGD update.
 *
 * The float64 and float32 kernels are the same text: dense_template.h, included twice below
 * with REAL, CR_NAME, EXP, TANH and the BLAS pointer set for each dtype.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dense.h"
#include "activations.h"

typedef long long i64;

/* The exported kernels are compiled once per instruction set and the best one the CPU has is
 * picked at load time (GCC's target_clones, an ifunc), so a portable build still runs AVX2 /
 * AVX-512 loops. Elsewhere: one baseline version. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(CR_NO_CLONES)
#define CR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CR_CLONES
#endif

static cr_dgemm_t cr_dgemm = NULL;
static cr_sgemm_t cr_sgemm = NULL;
static int cr_blas_int_bytes = 4;
/* Below this many multiply-adds (n * n_prev * m) the C loops beat a BLAS call: the call's
 * fixed cost (argument checks, packing, waking threads) dominates. The Python wrapper sets
 * the measured value; this default is only used by direct C callers. */
static i64 cr_blas_threshold = 4096;

int cr_set_blas(cr_dgemm_t dgemm, cr_sgemm_t sgemm, int int_bytes)
{
    if (int_bytes != 4 && int_bytes != 8) return CR_BAD_SIZE;
    cr_dgemm = dgemm;
    cr_sgemm = sgemm;
    cr_blas_int_bytes = int_bytes;
    return CR_OK;
}

int cr_set_blas_threshold(long long threshold)
{
    if (threshold < 0) return CR_BAD_SIZE;
    cr_blas_threshold = threshold;
    return CR_OK;
}

long long cr_get_blas_threshold(void) { return cr_blas_threshold; }

/* Sizes a BLAS call can take: every dimension fits the BLAS integer. */
static int fits_blas_int(i64 a, i64 b, i64 c)
{
    if (cr_blas_int_bytes == 8) return 1;
    return a <= INT_MAX && b <= INT_MAX && c <= INT_MAX;
}

static int sizes_ok(i64 n, i64 n_prev, i64 m)
{
    if (n < 1 || n_prev < 1 || m < 1) return 0;
    /* every product of two sizes must be addressable */
    if (n > PTRDIFF_MAX / n_prev || n > PTRDIFF_MAX / m || n_prev > PTRDIFF_MAX / m) return 0;
    return 1;
}

static int activation_ok(int activation)
{
    return activation >= 0 && activation < CR_N_ACTIVATIONS;
}

/* ------------------------------------------------------------------------- vector math
 * exp, sigmoid and tanh from +, *, /, floor, compares and bit operations only, so that the
 * loops calling them vectorise (libm's exp and tanh are scalar calls: 5-10 ns an element,
 * about 1 ns here). The same method as the numba backend's core/vmath.py, in double for
 * both dtypes: e^y = 2^n e^r, n = round(y / ln 2), |r| <= ln(2)/2 (Cody-Waite: ln 2 in a high
 * part exact in products with n and a low part), e^r - 1 by its Taylor series to r^13, 2^n
 * from its IEEE bits. Only y <= 0 is needed (exp(-|z|)); y < -708 is raised to -708 (results
 * below e^-708 ~ 3e-308 come out as about 3e-308, an absolute error below 3.3e-308). NaN
 * passes through. Accuracy: a few ulp (the tests compare with NumPy). */

/* e^y = s (1 + q), s = 2^n and q = e^r - 1, for y <= 0. */
static inline void cr_exp_parts(double y, double *s, double *q)
{
    y = y < -708.0 ? -708.0 : y;
    double n = floor(y * 1.4426950408889634 + 0.5);
    n = n != n ? 0.0 : n; /* NaN: keep the bit operations defined; q carries the NaN */
    double r = (y - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    *q = r + r * (r * p);
    /* n + 1023 is in [2, 1023]: added to 1.5 * 2^52 it is the low bits of the mantissa,
     * and shifted by 52 the exponent field of 2^n */
    double t = n + (1023.0 + 6755399441055744.0);
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits <<= 52;
    memcpy(s, &bits, sizeof bits);
}

/* 1 / (1 + e^-z), from e = e^-|z| so that the exponential never overflows. */
static inline double cr_sigmoid(double z)
{
    double s, q;
    cr_exp_parts(-fabs(z), &s, &q);
    double e = s + s * q;
    double h = 1.0 / (1.0 + e);
    return z >= 0 ? h : e * h;
}

/* tanh(z) = -expm1(-2|z|) / (2 + expm1(-2|z|)) with the sign of z. */
static inline double cr_tanh(double z)
{
    double a = fabs(z);
    a = a > 20.0 ? 20.0 : a; /* tanh(20) rounds to 1 in float64 */
    double s, q;
    cr_exp_parts(-2.0 * a, &s, &q);
    double em = s * q + (s - 1.0);
    return copysign(-em / (2.0 + em), z);
}

/* log(a) for a normal a > 0 (the cost's clipped probabilities), NaN passing through: the
 * method of core/vmath.py's log_positive. a = 2^e m from the IEEE bits with m in
 * [sqrt(1/2), sqrt(2)); log(m) = 2 atanh(s) = 2 (s + s^3/3 + ... + s^21/21), s = (m-1)/(m+1),
 * |s| <= 0.172 (the next term is below 2^-55 relative); log(a) = e ln 2 + log(m), ln 2 split
 * as in cr_exp_parts. A few ulp, like exp above; libm's log is a scalar call (about 8 ns
 * an element here, a third of a planar step's engine time). */
static inline double cr_log_positive(double x)
{
    uint64_t bits, eb;
    memcpy(&bits, &x, sizeof bits);
    /* the biased exponent k as a double without an integer conversion (none vectorises
     * before AVX-512DQ): the bits of 2^52 + k, minus 2^52 */
    eb = (bits >> 52) | 0x4330000000000000ULL;
    double e;
    memcpy(&e, &eb, sizeof e);
    e -= 4503599627370496.0 + 1023.0;
    bits = (bits & 0x000FFFFFFFFFFFFFULL) | 0x3FF0000000000000ULL;
    double m;
    memcpy(&m, &bits, sizeof m);
    const int big = m > 1.4142135623730951;
    m = big ? m * 0.5 : m;
    e = big ? e + 1.0 : e;
    const double f = m - 1.0, s = f / (2.0 + f), z = s * s;
    double p = 1.0 / 21.0;
    p = p * z + 1.0 / 19.0;
    p = p * z + 1.0 / 17.0;
    p = p * z + 1.0 / 15.0;
    p = p * z + 1.0 / 13.0;
    p = p * z + 1.0 / 11.0;
    p = p * z + 1.0 / 9.0;
    p = p * z + 1.0 / 7.0;
    p = p * z + 1.0 / 5.0;
    p = p * z + 1.0 / 3.0;
    const double log_m = 2.0 * s + 2.0 * s * (z * p);
    const double log_a = e * 6.93147180369123816490e-01 + (e * 1.90821492927058770002e-10 + log_m);
    return x == x ? log_a : x;
}

#define REAL double
#define CR_NAME(x) x##_f64
#define EXP exp
#define TANH tanh
#define REAL_MAX DBL_MAX
#define CR_UINT uint64_t
#define GEMM_PTR cr_dgemm
#define GEMM_T cr_dgemm_t
#include "dense_template.h"  /* undefines its parameters */

#define REAL float
#define CR_NAME(x) x##_f32
#define EXP expf
#define TANH tanhf
#define REAL_MAX FLT_MAX
#define CR_UINT uint32_t
#define GEMM_PTR cr_sgemm
#define GEMM_T cr_sgemm_t
#include "dense_template.h"  /* undefines its parameters */

/* The training engine (train.h): in this translation unit, so that it calls the static
 * kernels above. */
#include "train.c"
