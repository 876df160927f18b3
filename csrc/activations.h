/* The one activation switch of the C kernels: g, g'(z) and g'(a) of every elementwise
 * activation of enum cr_activation (dense.h), as macros that the kernels of both layouts
 * expand (dense_template.h: the layer ops and the whole step, examples as columns;
 * train_template.h: the engine, examples as rows). A new activation is a code in dense.h
 * and one case in each macro here.
 *
 * Each macro takes the loop to run, LOOP(EXPR), and runs it once with the case's EXPR: the
 * switch is outside the loop, so that the compiler vectorises each case's body. Inside
 * EXPR, v is the pre-activation z (CR_ACTIVATE), z its value (CR_GPRIME), a = g(z) and z
 * (CR_GPRIME_FROM_A); alpha is the leaky-ReLU slope; REAL is the kernels' dtype.
 */
#ifndef CR_ACTIVATIONS_H
#define CR_ACTIVATIONS_H

/* A = g(Z): softmax (output only) runs the loop as the identity and is normalised after. */
#define CR_ACTIVATE(activation, alpha, LOOP)                                                  \
    switch (activation) {                                                                     \
    case CR_SIGMOID: LOOP((REAL)cr_sigmoid(v)); break;                                        \
    /* v < 0 ? 0 : v keeps a NaN, as np.maximum does */                                       \
    case CR_RELU: LOOP(v < 0 ? 0 : v); break;                                                 \
    case CR_TANH: LOOP((REAL)cr_tanh(v)); break;                                              \
    case CR_LEAKY_RELU: LOOP(v > 0 ? v : v * (alpha)); break;                                 \
    default: LOOP(v); break; /* CR_IDENTITY, CR_SOFTMAX */                                    \
    }

/* g'(Z), from Z (softmax has none: the callers refuse it). */
#define CR_GPRIME(activation, alpha, LOOP)                                                    \
    switch (activation) {                                                                     \
    case CR_SIGMOID: LOOP(((REAL)cr_sigmoid(z)) * (1 - (REAL)cr_sigmoid(z))); break;          \
    /* g'(0) = 0, as the course's dZ[Z <= 0] = 0; a product, so inf * 0 gives NaN as NumPy */ \
    case CR_RELU: LOOP((REAL)(z > 0)); break;                                                 \
    case CR_TANH: LOOP(1 - ((REAL)cr_tanh(z)) * (REAL)cr_tanh(z)); break;                     \
    case CR_LEAKY_RELU: LOOP(z > 0 ? (REAL)1 : (alpha)); break;                               \
    default: LOOP(((void)z, (REAL)1)); break; /* CR_IDENTITY */                               \
    }

/* g'(Z) from A = g(Z) where that is cheaper (sigmoid: a (1 - a), tanh: 1 - a^2; the same
 * numbers as from Z, without the exponential); ReLU and leaky ReLU read z. */
#define CR_GPRIME_FROM_A(activation, alpha, LOOP)                                             \
    switch (activation) {                                                                     \
    case CR_SIGMOID: LOOP(a * (1 - a)); break;                                                \
    case CR_TANH: LOOP(1 - a * a); break;                                                     \
    case CR_RELU: LOOP((REAL)(z > 0)); break;                                                 \
    case CR_LEAKY_RELU: LOOP(z > 0 ? (REAL)1 : (alpha)); break;                               \
    default: break; /* CR_IDENTITY: g' = 1 */                                                 \
    }

#endif
