/* chainrule C training engine (train.h): the dtype-independent part, then train_template.h
 * for float64 and float32.
 *
 * dense.c includes this file at its end, so that the engine is one translation unit with
 * the kernels it reuses: the row-major GEMM through the Fortran ?gemm pointer of cr_set_blas
 * (and its C-loop threshold), the vectorised sigmoid/tanh, dot/sum/axpy, the g' loops and
 * the finiteness checks of dense_template.h.
 */
#include "train.h"
#include "philox.h"

/* ------------------------------------------------------------------------- threads
 * With OpenMP (build_ffi.py adds -fopenmp where the compiler has it) the engine splits each
 * mini-batch step over config->n_threads threads: the gather and the forward/backward
 * products by rows of the batch (or by columns of dW), the activations by rows, the update by
 * ranges of each parameter. Every part calls the single-threaded kernels on its share, so the
 * BLAS must run one thread per call meanwhile (the Python side limits it). A region runs on
 * one thread up to CR_PAR_MIN_MACS multiply-adds (products) or CR_PAR_MIN_ENTRIES entries
 * (element-wise passes; Adam's and RMSprop's count 8 an entry, momentum's 2): there the fork
 * and join (about a microsecond) and the split's smaller products outweigh the half of the
 * work saved. Measured on a 2-core AMD EPYC (AVX-512), 2026-12-02: 262144 and 32768 gave the
 * 60000x784 fit its best two-thread time (1.4-1.5x one thread; 65536/8192 and 1e6/1e5 within
 * noise of it), and keep the 64x64x64 products of the digits fit on one thread, where two
 * lost. Another machine may place the cut-offs elsewhere; ThreadChoice (Python) measures
 * whole calls, so a machine where the split loses runs on one thread. Maxima and the finiteness flags combine exactly, so the update's decision
 * and its numbers do not depend on the threads; a split product may round differently from
 * the whole one (within the dtype's tolerance). */
#ifdef _OPENMP
#include <omp.h>
int cr_openmp(void) { return 1; }
static double cr_now(void) { return omp_get_wtime(); } /* seconds, monotonic */
#else
static int omp_get_thread_num(void) { return 0; }
static int omp_get_num_threads(void) { return 1; }
int cr_openmp(void) { return 0; }
static double cr_now(void) { return 0; } /* no clock: max_seconds is not checked */
#endif

/* The cut-offs (cr_set_parallel_thresholds; the tests set 0 to split every region). */
static double cr_par_min_macs = 262144.0, cr_par_min_entries = 32768.0;
#define CR_PAR_MIN_MACS cr_par_min_macs
#define CR_PAR_MIN_ENTRIES cr_par_min_entries
#define CR_MAX_THREADS 256

int cr_set_parallel_thresholds(double macs, double entries)
{
    if (!(macs >= 0) || !(entries >= 0)) return CR_BAD_SIZE;
    cr_par_min_macs = macs;
    cr_par_min_entries = entries;
    return CR_OK;
}

void cr_get_parallel_thresholds(double *macs, double *entries)
{
    if (macs) *macs = cr_par_min_macs;
    if (entries) *entries = cr_par_min_entries;
}

/* The threads for a region of `work` units: nt from the config (at most CR_MAX_THREADS), or
 * 1 up to min_work. */
static int cr_threads_for(int nt, double work, double min_work)
{
#ifdef _OPENMP
    if (nt <= 1 || work <= min_work) return 1;
    return nt > CR_MAX_THREADS ? CR_MAX_THREADS : nt;
#else
    (void)nt, (void)work, (void)min_work;
    return 1;
#endif
}

/* Part t of T of [0, n): contiguous, in whole blocks of `align` (the last part takes the
 * rest), so that the parts of a vector start on a cache line. */
static void cr_part(i64 n, int t, int T, i64 align, i64 *lo, i64 *hi)
{
    const i64 blocks = (n + align - 1) / align;
    i64 a = blocks * t / T * align, b = blocks * (t + 1) / T * align;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
}

int cr_philox4x32_10(const unsigned int *counter, const unsigned int *key, unsigned int *out)
{
    if (!counter || !key || !out) return CR_MISSING_BUFFER;
    uint32_t c[4] = {counter[0], counter[1], counter[2], counter[3]}, k[2] = {key[0], key[1]};
    uint32_t o[4];
    cr_philox4x32_10_one(c, k, o);
    for (int w = 0; w < 4; ++w) out[w] = o[w];
    return CR_OK;
}

static i64 cr_round64(i64 bytes) { return (bytes + 63) & ~(i64)63; }

/* The config's sizes and codes: CR_OK or the status of the first problem. */
static int cr_fit_config_ok(const struct cr_fit_config *c)
{
    if (!c || !c->dims || !c->activation || !c->alpha) return CR_MISSING_BUFFER;
    const i64 L = c->n_layers, s = c->mini_batch_size;
    if (L < 1 || L > 100000 || s < 1) return CR_BAD_SIZE;
    for (i64 l = 0; l < L; ++l) {
        if (!sizes_ok(c->dims[l + 1], c->dims[l], s)) return CR_BAD_SIZE;
        /* every mask counter q >> 2 fits 32 bits */
        if ((double)c->dims[l + 1] * (double)s >= 17179869184.0) return CR_BAD_SIZE;
        if (!activation_ok(c->activation[l])) return CR_BAD_ACTIVATION;
        if (c->activation[l] == CR_SOFTMAX && l + 1 < L) return CR_NO_DERIVATIVE;
        if (!isfinite(c->alpha[l])) return CR_BAD_ACTIVATION;
    }
    if (c->loss < CR_BINARY_CROSSENTROPY || c->loss > CR_MEAN_SQUARED_ERROR) return CR_BAD_LOSS;
    if (c->optimizer < CR_GD || c->optimizer > CR_ADAM) return CR_BAD_OPTIMIZER;
    if (!(c->lambd >= 0 && c->lambd <= DBL_MAX)) return CR_BAD_SIZE;
    if (!(c->hyper[0] >= 0 && c->hyper[0] < 1) || !(c->hyper[1] >= 0 && c->hyper[1] < 1)
        || !(c->hyper[2] >= 0 && c->hyper[2] <= DBL_MAX))
        return CR_BAD_OPTIMIZER;
    if (c->keep_prob)
        for (i64 l = 0; l + 1 < L; ++l)
            if (!(c->keep_prob[l] > 0 && c->keep_prob[l] <= 1)) return CR_BAD_PROBABILITY;
    /* the whole workspace is addressable (each buffer is, by sizes_ok) */
    double total = 0;
    for (i64 l = 0; l <= L; ++l)
        total += (double)c->dims[l] * ((double)s * 5 + (l ? (double)c->dims[l - 1] + 1 : 0));
    if (total * 8 + 64.0 * (8 * (double)L + 8) >= (double)PTRDIFF_MAX / 2) return CR_BAD_SIZE;
    return CR_OK;
}

static int cr_dropout_any(const struct cr_fit_config *c)
{
    if (!c->keep_prob) return 0;
    for (i64 l = 0; l + 1 < c->n_layers; ++l)
        if (c->keep_prob[l] < 1) return 1;
    return 0;
}

#define REAL double
#define CR_NAME(x) x##_f64
#define EXP exp
#define SQRT sqrt
#define LOG log
#define REAL_MAX DBL_MAX
#define REAL_EPS DBL_EPSILON
#define CR_UINT uint64_t
#include "train_template.h"  /* undefines its parameters */

#define REAL float
#define CR_NAME(x) x##_f32
#define EXP expf
#define SQRT sqrtf
#define LOG logf
#define REAL_MAX FLT_MAX
#define REAL_EPS FLT_EPSILON
#define CR_UINT uint32_t
#include "train_template.h"  /* undefines its parameters */

long long cr_fit_workspace_bytes(const struct cr_fit_config *config, int real_bytes)
{
    if (cr_fit_config_ok(config) != CR_OK) return -1;
    if (real_bytes == 8) return fit_layout_f64(config, NULL, NULL) + 64;
    if (real_bytes == 4) return fit_layout_f32(config, NULL, NULL) + 64;
    return -1;
}
