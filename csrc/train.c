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
    if (!(c->beta >= 0 && c->beta < 1) || !(c->beta1 >= 0 && c->beta1 < 1)
        || !(c->beta2 >= 0 && c->beta2 < 1) || !(c->epsilon >= 0 && c->epsilon <= DBL_MAX))
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
