/* chainrule C kernels: fused dense-layer forward and backward, SGD update.
 *
 * The float64 and float32 kernels are the same text: dense_template.h, included twice below
 * with REAL, CR_NAME, EXP, TANH and the BLAS pointer set for each dtype.
 */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dense.h"

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
    return activation >= CR_SIGMOID && activation <= CR_SOFTMAX;
}

#define REAL double
#define CR_NAME(x) x##_f64
#define EXP exp
#define TANH tanh
#define GEMM_PTR cr_dgemm
#define GEMM_T cr_dgemm_t
#include "dense_template.h"
#undef REAL
#undef CR_NAME
#undef EXP
#undef TANH
#undef GEMM_PTR
#undef GEMM_T

#define REAL float
#define CR_NAME(x) x##_f32
#define EXP expf
#define TANH tanhf
#define GEMM_PTR cr_sgemm
#define GEMM_T cr_sgemm_t
#include "dense_template.h"
#undef REAL
#undef CR_NAME
#undef EXP
#undef TANH
#undef GEMM_PTR
#undef GEMM_T
