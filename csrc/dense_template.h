/* The kernels of one dtype. dense.c includes this file twice, with
 * REAL (double or float), CR_NAME(x) (x_f64 or x_f32), EXP, TANH, GEMM_PTR and GEMM_T.
 *
 * Every loop over an activation has the switch outside it, so that the compiler can vectorise
 * the loop body. Products: W A_prev (forward), dZ A_prev^T and W^T dZ (backward).
 */

#ifndef CR_TEMPLATE_ONCE
#define CR_TEMPLATE_ONCE
/* dst[k] = src[k] (* mask[k]) * GP, GP an expression of z = Z[k]. */
#define CR_GPRIME_LOOP(GP)                                                                    \
    do {                                                                                      \
        if (mask) {                                                                           \
            for (i64 k = 0; k < size; ++k) { REAL z = Z[k]; dst[k] = src[k] * mask[k] * (GP); } \
        } else {                                                                              \
            for (i64 k = 0; k < size; ++k) { REAL z = Z[k]; dst[k] = src[k] * (GP); }         \
        }                                                                                     \
    } while (0)
#endif

/* Row-major C = alpha op(A) op(B) + beta C through a column-major (Fortran) BLAS:
 * the column-major view of a row-major matrix is its transpose, so C^T = op(B)^T op(A)^T
 * is the same call with the operands swapped and the same transpose flags. */
static void CR_NAME(gemm_rm)(char ta, char tb, i64 M, i64 N, i64 K, REAL alpha, const REAL *A,
                             i64 lda, const REAL *B, i64 ldb, REAL beta, REAL *C, i64 ldc)
{
    if (cr_blas_int_bytes == 8) {
        int64_t m_ = N, n_ = M, k_ = K, la = ldb, lb = lda, lc = ldc;
        GEMM_PTR(&tb, &ta, &m_, &n_, &k_, &alpha, B, &la, A, &lb, &beta, C, &lc);
    } else {
        int m_ = (int)N, n_ = (int)M, k_ = (int)K, la = (int)ldb, lb = (int)lda, lc = (int)ldc;
        GEMM_PTR(&tb, &ta, &m_, &n_, &k_, &alpha, B, &la, A, &lb, &beta, C, &lc);
    }
}

static int CR_NAME(use_blas)(i64 n, i64 n_prev, i64 m)
{
    if (GEMM_PTR == NULL || !fits_blas_int(n, n_prev, m)) return 0;
    /* n * n_prev * m may overflow: compare by division */
    if (cr_blas_threshold == 0) return 1;
    return (double)n * (double)n_prev * (double)m >= (double)cr_blas_threshold;
}

/* sum_k x[k] y[k] with eight partial sums (vectorisable, and more accurate than one). */
static REAL CR_NAME(dot)(const REAL *x, const REAL *y, i64 size)
{
    REAL acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    i64 k = 0;
    for (; k + 8 <= size; k += 8)
        for (int u = 0; u < 8; ++u) acc[u] += x[k + u] * y[k + u];
    REAL total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; k < size; ++k) total += x[k] * y[k];
    return total;
}

static REAL CR_NAME(sum)(const REAL *x, i64 size)
{
    REAL acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    i64 k = 0;
    for (; k + 8 <= size; k += 8)
        for (int u = 0; u < 8; ++u) acc[u] += x[k + u];
    REAL total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; k < size; ++k) total += x[k];
    return total;
}

/* y[k] += a x[k] */
static void CR_NAME(axpy)(REAL a, const REAL *x, REAL *y, i64 size)
{
    for (i64 k = 0; k < size; ++k) y[k] += a * x[k];
}

/* ------------------------------------------------------------------------- forward */

/* Column-wise softmax of Z (n, m) into A, shifted by the column max, in blocks of columns so
 * that every pass runs along rows; e^(z - max) by the vectorised exponential above (a few
 * ulp from libm's, as the training engine's softmax_rows: libm's scalar exp was two thirds
 * of a 10-class softmax, 3.6 ns an entry). */
CR_CLONES static void CR_NAME(softmax_columns)(const REAL *Z, REAL *A, i64 n, i64 m)
{
    enum { BLOCK = 256 };
    REAL mx[BLOCK], total[BLOCK];
    int nan[BLOCK];
    for (i64 k0 = 0; k0 < m; k0 += BLOCK) {
        const i64 width = m - k0 < BLOCK ? m - k0 : BLOCK;
        for (i64 k = 0; k < width; ++k) {
            mx[k] = Z[k0 + k];
            nan[k] = Z[k0 + k] != Z[k0 + k];
            total[k] = 0;
        }
        for (i64 i = 1; i < n; ++i) {
            const REAL *z = Z + i * m + k0;
            for (i64 k = 0; k < width; ++k) {
                mx[k] = z[k] > mx[k] ? z[k] : mx[k];
                nan[k] |= z[k] != z[k];
            }
        }
        /* a NaN sticks, as in NumPy's max */
        for (i64 k = 0; k < width; ++k) mx[k] = nan[k] ? (REAL)NAN : mx[k];
        for (i64 i = 0; i < n; ++i) {
            const REAL *z = Z + i * m + k0;
            REAL *a = A + i * m + k0;
            for (i64 k = 0; k < width; ++k) {
                double sc, q;
                cr_exp_parts((double)(z[k] - mx[k]), &sc, &q);
                a[k] = (REAL)(sc + sc * q);
                total[k] += a[k];
            }
        }
        for (i64 i = 0; i < n; ++i) {
            REAL *a = A + i * m + k0;
            for (i64 k = 0; k < width; ++k) a[k] = a[k] / total[k];
        }
    }
}

/* Z += b (broadcast along rows) and A = g(Z), in one sweep. */
CR_CLONES static void CR_NAME(bias_activation)(const REAL *b, int activation, REAL alpha,
                                               REAL *Z, REAL *A, i64 n, i64 m)
{
    for (i64 i = 0; i < n; ++i) {
        const REAL bi = b[i];
        REAL *z = Z + i * m;
        REAL *a = A + i * m;
#define CR_LOOP(G) for (i64 k = 0; k < m; ++k) { REAL v = z[k] + bi; z[k] = v; a[k] = (G); }
        CR_ACTIVATE(activation, alpha, CR_LOOP)
#undef CR_LOOP
    }
    if (activation == CR_SOFTMAX) CR_NAME(softmax_columns)(Z, A, n, m);
}

CR_CLONES int CR_NAME(cr_dense_forward)(const REAL *A_prev, const REAL *W, const REAL *b, int activation,
                              REAL alpha, REAL *Z, REAL *A, i64 n, i64 n_prev, i64 m)
{
    if (!sizes_ok(n, n_prev, m)) return CR_BAD_SIZE;
    if (!A_prev || !W || !b || !Z || !A) return CR_MISSING_BUFFER;
    if (!activation_ok(activation)) return CR_BAD_ACTIVATION;
    if (CR_NAME(use_blas)(n, n_prev, m)) {
        CR_NAME(gemm_rm)('N', 'N', n, m, n_prev, 1, W, n_prev, A_prev, m, 0, Z, m);
    } else {
        for (i64 i = 0; i < n; ++i) {
            REAL *z = Z + i * m;
            for (i64 k = 0; k < m; ++k) z[k] = 0;
            for (i64 j = 0; j < n_prev; ++j) CR_NAME(axpy)(W[i * n_prev + j], A_prev + j * m, z, m);
        }
    }
    CR_NAME(bias_activation)(b, activation, alpha, Z, A, n, m);
    return CR_OK;
}

/* The forward of a layer whose input is a view: A_prev = X (n_prev, m) with rows lda apart
 * (x_rows = 0: a column block of a C-ordered X), or X given as its transpose, m rows of
 * n_prev entries lda apart (x_rows = 1: examples as rows, X_rows.T, the layout of
 * scikit-learn's data). The product reads X where it lies (BLAS's transpose flag and leading
 * dimension): predict/score of an examples-as-rows data set take no copy of it. */
CR_CLONES int CR_NAME(cr_dense_forward_view)(const REAL *X, i64 lda, int x_rows, const REAL *W,
                                             const REAL *b, int activation, REAL alpha, REAL *Z,
                                             REAL *A, i64 n, i64 n_prev, i64 m)
{
    if (!sizes_ok(n, n_prev, m)) return CR_BAD_SIZE;
    if (!X || !W || !b || !Z || !A) return CR_MISSING_BUFFER;
    if (!activation_ok(activation)) return CR_BAD_ACTIVATION;
    if (lda < (x_rows ? n_prev : m) || !fits_blas_int(lda, 1, 1)) return CR_BAD_SIZE;
    if (CR_NAME(use_blas)(n, n_prev, m)) {
        if (x_rows)
            CR_NAME(gemm_rm)('N', 'T', n, m, n_prev, 1, W, n_prev, X, lda, 0, Z, m);
        else
            CR_NAME(gemm_rm)('N', 'N', n, m, n_prev, 1, W, n_prev, X, lda, 0, Z, m);
    } else if (x_rows) {
        for (i64 i = 0; i < n; ++i)
            for (i64 k = 0; k < m; ++k) Z[i * m + k] = CR_NAME(dot)(W + i * n_prev, X + k * lda, n_prev);
    } else {
        for (i64 i = 0; i < n; ++i) {
            REAL *z = Z + i * m;
            for (i64 k = 0; k < m; ++k) z[k] = 0;
            for (i64 j = 0; j < n_prev; ++j) CR_NAME(axpy)(W[i * n_prev + j], X + j * lda, z, m);
        }
    }
    CR_NAME(bias_activation)(b, activation, alpha, Z, A, n, m);
    return CR_OK;
}

/* ------------------------------------------------------------------------- backward */

/* dst = src (* mask) * g'(Z), elementwise over size entries; dst may be src. */
CR_CLONES static void CR_NAME(times_gprime)(int activation, REAL alpha, const REAL *Z,
                                            const REAL *src, const REAL *mask, REAL *dst,
                                            i64 size)
{
    CR_GPRIME(activation, alpha, CR_GPRIME_LOOP)
}

CR_CLONES int CR_NAME(cr_dense_backward)(const REAL *dZ, const REAL *A_prev, const REAL *W,
                               const REAL *Z_prev, const REAL *mask_prev, int activation_prev,
                               REAL alpha_prev, REAL s, REAL l2, REAL *dZ_prev, REAL *dW,
                               REAL *db, REAL *dA_prev, i64 n, i64 n_prev, i64 m)
{
    if (!sizes_ok(n, n_prev, m)) return CR_BAD_SIZE;
    if (!dZ || !A_prev || !W || !db) return CR_MISSING_BUFFER;
    if (dZ_prev) {
        if (!Z_prev) return CR_MISSING_BUFFER;
        if (!activation_ok(activation_prev)) return CR_BAD_ACTIVATION;
        if (activation_prev == CR_SOFTMAX) return CR_NO_DERIVATIVE;
    }
    const int blas = CR_NAME(use_blas)(n, n_prev, m);

    /* dW = s dZ A_prev^T + l2 W */
    if (!dW) {
        /* not wanted: the caller needs only db and what flows back */
    } else if (blas) {
        REAL beta = 0;
        if (l2 != 0) {
            for (i64 q = 0; q < n * n_prev; ++q) dW[q] = l2 * W[q];
            beta = 1;
        }
        CR_NAME(gemm_rm)('N', 'T', n, n_prev, m, s, dZ, m, A_prev, m, beta, dW, n_prev);
    } else {
        for (i64 i = 0; i < n; ++i)
            for (i64 j = 0; j < n_prev; ++j)
                dW[i * n_prev + j] = s * CR_NAME(dot)(dZ + i * m, A_prev + j * m, m)
                                     + l2 * W[i * n_prev + j];
    }

    /* db = s sum_k dZ */
    for (i64 i = 0; i < n; ++i) db[i] = s * CR_NAME(sum)(dZ + i * m, m);

    if (!dZ_prev && !dA_prev) return CR_OK; /* the input layer: W^T dZ skipped */

    /* W^T dZ, into dA_prev when it is wanted, else straight into dZ_prev */
    REAL *out = dA_prev ? dA_prev : dZ_prev;
    if (blas) {
        CR_NAME(gemm_rm)('T', 'N', n_prev, m, n, 1, W, n_prev, dZ, m, 0, out, m);
    } else {
        for (i64 j = 0; j < n_prev; ++j) {
            REAL *o = out + j * m;
            for (i64 k = 0; k < m; ++k) o[k] = 0;
            for (i64 i = 0; i < n; ++i) CR_NAME(axpy)(W[i * n_prev + j], dZ + i * m, o, m);
        }
    }
    const i64 size = n_prev * m;
    if (dA_prev) {
        if (mask_prev)
            for (i64 k = 0; k < size; ++k) dA_prev[k] *= mask_prev[k];
        if (dZ_prev) CR_NAME(times_gprime)(activation_prev, alpha_prev, Z_prev, dA_prev, NULL,
                                           dZ_prev, size);
    } else {
        CR_NAME(times_gprime)(activation_prev, alpha_prev, Z_prev, dZ_prev, mask_prev, dZ_prev,
                              size);
    }
    return CR_OK;
}

/* max_k |x[k]| into *mx and whether some x[k] is NaN (return value). On the IEEE bits with
 * the sign cleared, the order of the unsigned integers is the order of |x| and every NaN is
 * above infinity, so the loop is an integer maximum, which vectorises (a floating-point
 * maximum with NaN checks does not). */
CR_CLONES static int CR_NAME(max_abs_lanes)(const REAL *x, i64 size, REAL *mx)
{
    const CR_UINT abs_mask = ~(CR_UINT)0 >> 1;
    const REAL inf = (REAL)INFINITY;
    CR_UINT inf_bits;
    memcpy(&inf_bits, &inf, sizeof inf_bits);
    CR_UINT best = 0;
    for (i64 k = 0; k < size; ++k) {
        CR_UINT bits;
        memcpy(&bits, x + k, sizeof bits);
        bits &= abs_mask;
        best = bits > best ? bits : best;
    }
    memcpy(mx, &best, sizeof best);
    return best > inf_bits;
}

CR_CLONES double CR_NAME(cr_max_abs)(const REAL *x, i64 size)
{
    if (size < 1 || !x) return INFINITY;
    REAL mx;
    int nan = CR_NAME(max_abs_lanes)(x, size, &mx);
    return nan || mx > REAL_MAX ? INFINITY : (double)mx;
}

CR_CLONES int CR_NAME(cr_sgd_update)(REAL *param, const REAL *grad, REAL learning_rate, i64 size)
{
    if (size < 0) return CR_BAD_SIZE;
    if (size > 0 && (!param || !grad)) return CR_MISSING_BUFFER;
    for (i64 q = 0; q < size; ++q) param[q] -= learning_rate * grad[q];
    return CR_OK;
}

CR_CLONES int CR_NAME(cr_all_finite)(const REAL *x, i64 size)
{
    /* x - x is 0 for a finite x and NaN for an infinity or a NaN; blocks let it stop early */
    for (i64 k0 = 0; k0 < size; k0 += 4096) {
        i64 k1 = size - k0 < 4096 ? size : k0 + 4096;
        int ok = 1;
        for (i64 k = k0; k < k1; ++k) ok &= (x[k] - x[k] == 0);
        if (!ok) return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------- the engine's helpers */

/* max_k |x[k]| as a double, NaN if any x[k] is NaN: what float(np.abs(x).max()) gives. */
static double CR_NAME(max_abs_nan)(const REAL *x, i64 size)
{
    REAL mx;
    int nan = CR_NAME(max_abs_lanes)(x, size, &mx);
    return nan ? (double)NAN : (double)mx;
}

/* dst *= g'(Z) for an elementwise activation, g' taken from A = g(Z) where that is cheaper
 * (activations.h: CR_GPRIME_FROM_A). */
CR_CLONES static void CR_NAME(times_gprime_from_a)(int activation, REAL alpha, const REAL *Z,
                                                   const REAL *A, REAL *dst, i64 size)
{
#define CR_LOOP(GP) for (i64 k = 0; k < size; ++k) { REAL a = A[k], z = Z[k]; (void)a; (void)z; dst[k] = dst[k] * (GP); }
    CR_GPRIME_FROM_A(activation, alpha, CR_LOOP)
#undef CR_LOOP
}

/* The template's parameters, undefined so it can be included again for another dtype. */
#undef REAL
#undef CR_NAME
#undef EXP
#undef TANH
#undef REAL_MAX
#undef CR_UINT
#undef GEMM_PTR
#undef GEMM_T
