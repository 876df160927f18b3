/* The training engine of one dtype. train.c includes this file twice, with
 * REAL, CR_NAME(x), EXP, SQRT, LOG, REAL_MAX and REAL_EPS set for each dtype; the helpers of
 * dense_template.h of the same dtype (gemm_rm, use_blas, dot, sum, axpy, times_gprime,
 * times_gprime_from_a) are already defined.
 *
 * A batch of mb examples is held in rows: A_prev^T (mb, n_prev), Z^T and A^T (mb, n); the
 * course's products become
 *   Z^T = A_prev^T W^T            gemm('N', 'T')
 *   dW  = s dZ^T^T A_prev^T + l2 W gemm('T', 'N')   (dW (n, n_prev) as the course's)
 *   dA_prev^T = dZ^T W            gemm('N', 'N')
 * so a gathered batch is copied rows, and W, b, dW, db keep the course's shapes.
 */

/* ------------------------------------------------------------------------- workspace */

typedef struct {
    REAL **Z, **A, **D, **dZ, **dW, **db; /* per layer; D[l] NULL for the output layer */
    REAL **ZH, **bn;                      /* batch norm: Z_hat (s, n); 1/s, mean, var,
                                           * dgamma, dbeta (5 n) (NULL without) */
    REAL *X, *Y, *w;                      /* the gathered batch */
    double *maxima;                       /* 9 L maxima of the update's bound (gamma's
                                           * three at 6 L + 3 l) */
} CR_NAME(fit_ws);

/* The workspace's layout: a table of 6 L pointers, 6 L doubles, then X (s, n0), Y (s, nL),
 * w (s), then per layer Z, A, D, dZ (s, n), dW (n, n_prev), db (n), each on a 64-byte boundary from
 * base. Returns the bytes taken; with base, also sets the pointers of ws. */
static i64 CR_NAME(fit_layout)(const struct cr_fit_config *c, char *base, CR_NAME(fit_ws) *ws)
{
    const i64 L = c->n_layers, s = c->mini_batch_size;
    const long long *d = c->dims;
    i64 off = cr_round64(8 * L * (i64)sizeof(REAL *));
    if (base) {
        REAL **table = (REAL **)base;
        ws->Z = table;
        ws->A = table + L;
        ws->D = table + 2 * L;
        ws->dZ = table + 3 * L;
        ws->dW = table + 4 * L;
        ws->db = table + 5 * L;
        ws->ZH = table + 6 * L;
        ws->bn = table + 7 * L;
        ws->maxima = (double *)(base + off);
    }
    off += cr_round64(9 * L * (i64)sizeof(double));
#define CR_TAKE(ptr, count)                                                                   \
    do {                                                                                      \
        if (base) (ptr) = (REAL *)(base + off);                                               \
        off += cr_round64((i64)(count) * (i64)sizeof(REAL));                                  \
    } while (0)
    /* without base, CR_TAKE only counts (ws is not touched, and may be NULL) */
    CR_TAKE(ws->X, c->x_columns ? 0 : s * d[0]); /* the course's X is read where it lies */
    CR_TAKE(ws->Y, s * d[L]);
    CR_TAKE(ws->w, s);
    for (i64 l = 0; l < L; ++l) {
        const i64 n = d[l + 1], n_prev = d[l];
        CR_TAKE(ws->Z[l], s * n);
        CR_TAKE(ws->A[l], s * n);
        if (l + 1 < L) {
            CR_TAKE(ws->D[l], s * n);
        } else if (base) {
            ws->D[l] = NULL;
        }
        CR_TAKE(ws->dZ[l], s * n);
        CR_TAKE(ws->dW[l], n * n_prev);
        CR_TAKE(ws->db[l], n);
        if (c->batch_norm && c->batch_norm[l]) {
            CR_TAKE(ws->ZH[l], s * n);
            CR_TAKE(ws->bn[l], 5 * n);
        } else if (base) {
            ws->ZH[l] = NULL;
            ws->bn[l] = NULL;
        }
    }
#undef CR_TAKE
    return off;
}

/* ------------------------------------------------------------------------- products */

/* Row-major C = alpha op(A) op(B) + beta C, beta 0 (C not read) or 1, for the flags
 * ('N', 'T'), ('T', 'N'), ('N', 'N') and ('T', 'T') (layer 1 of the course's X): BLAS from
 * the threshold of cr_set_blas_threshold on (M N K multiply-adds), else C loops along rows. */
/* Small products in C loops, where one of M, N, K is much longer than the others (a batch
 * of mb examples through a narrow layer: the rows layout puts the examples in the strided
 * direction). The operands are packed, by blocks of CR_PACK along the longest dimension,
 * with that dimension contiguous, so the inner loops vectorise whatever the flags.
 * Returns 0 (nothing done) where the packed blocks would not fit the stack buffers. */
#define CR_PACK 64
#define CR_OP_AT(t, X, ld, r, c) ((t) == 'N' ? (X)[(r) * (ld) + (c)] : (X)[(c) * (ld) + (r)])
#define CR_FLIP(t) ((t) == 'N' ? 'T' : 'N')
/* gemm_small where M >= N: by blocks of rows of C, op(A)^T packed (K, block), each column of
 * C accumulated along the block; C[i, j] at C[i * c_row + j * c_col]. */
static inline void CR_NAME(gemm_small_rows)(char ta, char tb, i64 M, i64 N, i64 K, REAL alpha,
                                            const REAL *A, i64 lda, const REAL *B, i64 ldb,
                                            REAL beta, REAL *C, i64 c_row, i64 c_col,
                                            REAL *pack, REAL *acc)
{
    for (i64 i0 = 0; i0 < M; i0 += CR_PACK) {
        const i64 iw = M - i0 < CR_PACK ? M - i0 : CR_PACK;
        for (i64 k = 0; k < K; ++k)
            for (i64 ii = 0; ii < iw; ++ii)
                pack[k * CR_PACK + ii] = CR_OP_AT(ta, A, lda, i0 + ii, k);
        for (i64 j = 0; j < N; ++j) {
            for (i64 ii = 0; ii < iw; ++ii) acc[ii] = 0;
            for (i64 k = 0; k < K; ++k) {
                const REAL b = CR_OP_AT(tb, B, ldb, k, j);
                const REAL *p = pack + k * CR_PACK;
                for (i64 ii = 0; ii < iw; ++ii) acc[ii] += b * p[ii];
            }
            for (i64 ii = 0; ii < iw; ++ii) {
                const REAL v = alpha * acc[ii];
                REAL *c = C + (i0 + ii) * c_row + j * c_col;
                *c = beta != 0 ? *c + v : v;
            }
        }
    }
}

CR_CLONES static int CR_NAME(gemm_small)(char ta, char tb, i64 M, i64 N, i64 K, REAL alpha,
                                        const REAL *A, i64 lda, const REAL *B, i64 ldb,
                                        REAL beta, REAL *C, i64 ldc)
{
    REAL pack[4096], acc[1024];
    if (K >= M && K >= N && (M + N) * CR_PACK <= 4096 && M * N <= 1024) {
        /* C[i, j] = sum_k op(A)[i, k] op(B)[k, j]: rows of op(A), columns of op(B) packed */
        REAL *pa = pack, *pb = pack + M * CR_PACK;
        for (i64 q = 0; q < M * N; ++q) acc[q] = 0;
        for (i64 k0 = 0; k0 < K; k0 += CR_PACK) {
            const i64 kw = K - k0 < CR_PACK ? K - k0 : CR_PACK;
            for (i64 i = 0; i < M; ++i)
                for (i64 kk = 0; kk < kw; ++kk)
                    pa[i * CR_PACK + kk] = CR_OP_AT(ta, A, lda, i, k0 + kk);
            for (i64 j = 0; j < N; ++j)
                for (i64 kk = 0; kk < kw; ++kk)
                    pb[j * CR_PACK + kk] = CR_OP_AT(tb, B, ldb, k0 + kk, j);
            for (i64 i = 0; i < M; ++i)
                for (i64 j = 0; j < N; ++j)
                    acc[i * N + j] += CR_NAME(dot)(pa + i * CR_PACK, pb + j * CR_PACK, kw);
        }
        for (i64 i = 0; i < M; ++i)
            for (i64 j = 0; j < N; ++j) {
                const REAL v = alpha * acc[i * N + j];
                C[i * ldc + j] = beta != 0 ? C[i * ldc + j] + v : v;
            }
        return 1;
    }
    if (K * CR_PACK <= 4096) {
        /* C^T = op(B)^T op(A)^T is the same walk with the roles swapped: the flags flipped
         * (op_t(X)[r, c] is op_flip(t)(X)[c, r]) and C's strides exchanged */
        if (M >= N)
            CR_NAME(gemm_small_rows)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 1,
                                     pack, acc);
        else
            CR_NAME(gemm_small_rows)(CR_FLIP(tb), CR_FLIP(ta), N, M, K, alpha, B, ldb, A, lda,
                                     beta, C, 1, ldc, pack, acc);
        return 1;
    }
    return 0;
}
#undef CR_OP_AT
#undef CR_FLIP
#undef CR_PACK

CR_CLONES static void CR_NAME(gemm_rows)(char ta, char tb, i64 M, i64 N, i64 K, REAL alpha,
                                         const REAL *A, i64 lda, const REAL *B, i64 ldb,
                                         REAL beta, REAL *C, i64 ldc)
{
    if (CR_NAME(use_blas)(M, N, K)) {
        CR_NAME(gemm_rm)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (CR_NAME(gemm_small)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
    if (ta == 'N' && tb == 'T') {
        /* C[i, j] = alpha sum_k A[i, k] B[j, k]: dots of rows */
        for (i64 i = 0; i < M; ++i)
            for (i64 j = 0; j < N; ++j) {
                REAL v = alpha * CR_NAME(dot)(A + i * lda, B + j * ldb, K);
                C[i * ldc + j] = beta != 0 ? C[i * ldc + j] + v : v;
            }
        return;
    }
    if (tb == 'T') { /* ('T', 'T'): C[i, j] = alpha sum_k A[k, i] B[j, k] */
        for (i64 i = 0; i < M; ++i)
            for (i64 j = 0; j < N; ++j) {
                const REAL *bj = B + j * ldb;
                REAL acc = 0;
                for (i64 k = 0; k < K; ++k) acc += A[k * lda + i] * bj[k];
                C[i * ldc + j] = beta != 0 ? C[i * ldc + j] + alpha * acc : alpha * acc;
            }
        return;
    }
    for (i64 i = 0; i < M; ++i) {
        REAL *c = C + i * ldc;
        if (beta == 0)
            for (i64 j = 0; j < N; ++j) c[j] = 0;
        if (ta == 'T') /* C[i, :] += alpha sum_k A[k, i] B[k, :] */
            for (i64 k = 0; k < K; ++k) CR_NAME(axpy)(alpha * A[k * lda + i], B + k * ldb, c, N);
        else /* ('N', 'N'): C[i, :] += alpha sum_k A[i, k] B[k, :] */
            for (i64 k = 0; k < K; ++k) CR_NAME(axpy)(alpha * A[i * lda + k], B + k * ldb, c, N);
    }
}

/* gemm_rows on nt threads (train.c, "threads"): C split along M (rows) or N (columns),
 * whichever is larger, each part one gemm_rows call over the whole of K. */
static void CR_NAME(gemm_par)(int nt, char ta, char tb, i64 M, i64 N, i64 K, REAL alpha,
                              const REAL *A, i64 lda, const REAL *B, i64 ldb, REAL beta,
                              REAL *C, i64 ldc)
{
    nt = cr_threads_for(nt, (double)M * (double)N * (double)K, CR_PAR_MIN_MACS);
    if (nt == 1) {
        CR_NAME(gemm_rows)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    const int by_rows = M >= N;
#pragma omp parallel num_threads(nt)
    {
        i64 lo, hi;
        cr_part(by_rows ? M : N, omp_get_thread_num(), omp_get_num_threads(), by_rows ? 1 : 16,
                &lo, &hi);
        if (hi > lo && by_rows) /* rows lo..hi of op(A) and C */
            CR_NAME(gemm_rows)(ta, tb, hi - lo, N, K, alpha, ta == 'N' ? A + lo * lda : A + lo,
                               lda, B, ldb, beta, C + lo * ldc, ldc);
        else if (hi > lo) /* columns lo..hi of op(B) and C */
            CR_NAME(gemm_rows)(ta, tb, M, hi - lo, K, alpha, A, lda,
                               tb == 'N' ? B + lo : B + lo * ldb, ldb, beta, C + lo, ldc);
    }
}

/* ------------------------------------------------------------------------- dropout */

/* The scaled mask of one hidden layer for one batch: entry (unit i, position j) with
 * q = i mb + j goes to out[i * row_stride + j * col_stride] ((n, mb) for the course's
 * layout: row_stride mb, col_stride 1; the engine's rows: row_stride 1, col_stride n). */
static void CR_NAME(dropout_fill)(uint64_t key, uint32_t layer, uint32_t batch, double p,
                                  REAL *out, i64 n, i64 mb, i64 row_stride, i64 col_stride)
{
    const uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    const REAL scale = (REAL)1 / (REAL)p;
    const i64 size = n * mb;
    uint32_t words[4 * CR_PHILOX_LANES];
    i64 i = 0, j = 0; /* the unit and position of q */
    for (i64 q0 = 0; q0 < size; q0 += 4 * CR_PHILOX_LANES) {
        cr_philox_blocks((uint32_t)(q0 >> 2), layer, batch, k0, k1, words);
        const i64 q1 = size - q0 < 4 * CR_PHILOX_LANES ? size : q0 + 4 * CR_PHILOX_LANES;
        for (i64 q = q0; q < q1; ++q) {
            out[i * row_stride + j * col_stride] = cr_philox_keep(words[q - q0], p) ? scale : 0;
            if (++j == mb) {
                j = 0;
                ++i;
            }
        }
    }
}

int CR_NAME(cr_dropout_mask)(unsigned long long key, long long layer, long long batch,
                             double keep_prob, REAL *out, long long n, long long mb)
{
    if (!sizes_ok(n, mb, 1) || (double)n * (double)mb >= 17179869184.0) return CR_BAD_SIZE;
    if (layer < 0 || layer > UINT32_MAX || batch < 0 || batch > UINT32_MAX) return CR_BAD_SIZE;
    if (!(keep_prob > 0 && keep_prob <= 1)) return CR_BAD_PROBABILITY;
    if (!out) return CR_MISSING_BUFFER;
    CR_NAME(dropout_fill)(key, (uint32_t)layer, (uint32_t)batch, keep_prob, out, n, mb, mb, 1);
    return CR_OK;
}

/* ------------------------------------------------------------------------- forward */

/* Row-wise softmax of Z (mb, n) into A, shifted by the row max; e^(z - max) by the
 * vectorised exponential of dense.c (a few ulp from libm's; z - max <= 0). */
CR_CLONES static void CR_NAME(softmax_rows)(const REAL *Z, REAL *A, i64 n, i64 mb)
{
    /* by blocks of about 1024 entries: the shifted z - max row by row, then the exponential
     * over the block's entries in one loop (a row of 10 classes is no vector), then each
     * row's sum and scale; the same numbers as row by row */
    const i64 rows = n >= 1024 ? 1 : 1024 / n;
    for (i64 r0 = 0; r0 < mb; r0 += rows) {
        const i64 r1 = mb - r0 < rows ? mb : r0 + rows, size = (r1 - r0) * n;
        for (i64 r = r0; r < r1; ++r) {
            const REAL *z = Z + r * n;
            REAL *a = A + r * n;
            /* the max, and whether a NaN was seen (then the max is NaN): no branch in the
             * loop (a NaN test branching per entry cost half of the softmax) */
            REAL mx = z[0];
            int nan = z[0] != z[0];
            for (i64 i = 1; i < n; ++i) {
                mx = z[i] > mx ? z[i] : mx;
                nan |= z[i] != z[i];
            }
            mx = nan ? (REAL)NAN : mx;
            for (i64 i = 0; i < n; ++i) a[i] = z[i] - mx;
        }
        REAL *a = A + r0 * n;
        for (i64 k = 0; k < size; ++k) {
            double sc, q;
            cr_exp_parts((double)a[k], &sc, &q);
            a[k] = (REAL)(sc + sc * q);
        }
        for (i64 r = r0; r < r1; ++r) {
            REAL *ar = A + r * n;
            REAL total = 0;
            for (i64 i = 0; i < n; ++i) total += ar[i];
            const REAL inv = 1 / total; /* one division per example (an ulp from a / total) */
            for (i64 i = 0; i < n; ++i) ar[i] = ar[i] * inv;
        }
    }
}

/* Z[r, :] += b^T and A = g(Z) (* D, the scaled mask, when given), by blocks of rows: the
 * bias row by row, then g over the block's entries in one loop (elementwise, so the layout
 * does not matter: a narrow layer's rows of a few units still vectorise), while the block
 * is in cache. */
CR_CLONES static void CR_NAME(bias_activation_rows)(const REAL *b, int activation, REAL alpha,
                                                    const REAL *D, REAL *Z, REAL *A, i64 n,
                                                    i64 mb)
{
    const i64 rows = n >= 1024 ? 1 : 1024 / n;
    /* a narrow layer's bias tiled over a block's rows, so that the sum is one sweep that
     * vectorises (a row of 4 is no vector); the same sums */
    REAL tile[1024];
    const int tiled = n < 64;
    if (tiled) {
        for (i64 i = 0; i < n; ++i) tile[i] = b[i];
        for (i64 len = n; len < rows * n;) {
            const i64 more = len < rows * n - len ? len : rows * n - len;
            memcpy(tile + len, tile, (size_t)more * sizeof(REAL));
            len += more;
        }
    }
    for (i64 r0 = 0; r0 < mb; r0 += rows) {
        const i64 r1 = mb - r0 < rows ? mb : r0 + rows, size = (r1 - r0) * n;
        REAL *z = Z + r0 * n;
        REAL *a = A + r0 * n;
        if (tiled)
            for (i64 k = 0; k < size; ++k) z[k] += tile[k];
        else
            for (i64 r = 0; r < r1 - r0; ++r)
                for (i64 i = 0; i < n; ++i) z[r * n + i] += b[i];
#define CR_LOOP(G) for (i64 k = 0; k < size; ++k) { REAL v = z[k]; a[k] = (G); }
        CR_ACTIVATE(activation, alpha, CR_LOOP)
#undef CR_LOOP
        if (D) {
            const REAL *d = D + r0 * n;
            for (i64 k = 0; k < size; ++k) a[k] = a[k] * d[k];
        }
    }
    if (activation == CR_SOFTMAX) CR_NAME(softmax_rows)(Z, A, n, mb);
}

/* bias_activation_rows on nt threads, by rows of the batch. */
static void CR_NAME(bias_activation_par)(int nt, const REAL *b, int activation, REAL alpha,
                                         const REAL *D, REAL *Z, REAL *A, i64 n, i64 mb)
{
    nt = cr_threads_for(nt, (double)n * (double)mb, CR_PAR_MIN_ENTRIES);
    if (nt == 1) {
        CR_NAME(bias_activation_rows)(b, activation, alpha, D, Z, A, n, mb);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        i64 lo, hi;
        cr_part(mb, omp_get_thread_num(), omp_get_num_threads(), 1, &lo, &hi);
        if (hi > lo)
            CR_NAME(bias_activation_rows)(b, activation, alpha, D ? D + lo * n : NULL, Z + lo * n,
                                          A + lo * n, n, hi - lo);
    }
}

/* One layer's forward on nt threads: Z^T = A_prev^T W^T, then Z += b, A = g(Z) (* D). The
 * batch A_prev^T is op(A_prev) with ta ('N': rows (mb, n_prev); 'T': the course's columns
 * (n_prev, mb)) and leading dimension lda. Split by rows of the batch, each thread its rows
 * of both (one region), when the product splits by rows; else the product and the
 * activation each split their own way. */
static void CR_NAME(forward_par)(int nt, char ta, const REAL *A_prev, i64 lda, const REAL *W,
                                 const REAL *b, int activation, REAL alpha, const REAL *D,
                                 REAL *Z, REAL *A, i64 n, i64 n_prev, i64 mb, REAL *P)
{
    const int ng = cr_threads_for(nt, (double)mb * (double)n * (double)n_prev, CR_PAR_MIN_MACS);
    if (ng == 2 && P && n_prev >= 2 * (mb + n)) {
        /* A long inner dimension (the input layer of 784 pixels) on two threads: each takes
         * half of K for all of Z (the second into P, (mb, n)), so that each packs half of
         * op(A) and half of W; split by rows, each thread packed the whole of W for half the
         * rows (60000x784 fit, 2-core AMD EPYC, 2026-12-06: this layer's forward 1.4-1.55x
         * faster on two threads than on one split by rows, 1.75-1.8x split by K; the fit
         * 1.53 -> 1.6x). Then, by rows, Z += P and the bias and g. The sum's order differs
         * from one thread's (within the dtype's tolerance); more threads split by rows. */
#pragma omp parallel num_threads(2)
        {
            const int t = omp_get_thread_num();
            i64 lo, hi;
            cr_part(n_prev, t, omp_get_num_threads(), 16, &lo, &hi);
            if (hi > lo)
                CR_NAME(gemm_rows)(ta, 'T', mb, n, hi - lo, 1,
                                   ta == 'N' ? A_prev + lo : A_prev + lo * lda, lda, W + lo,
                                   n_prev, 0, t ? P : Z, n);
            else
                for (i64 q = 0; q < mb * n; ++q) (t ? P : Z)[q] = 0;
#pragma omp barrier
            cr_part(mb, t, omp_get_num_threads(), 1, &lo, &hi);
            if (hi > lo) {
                REAL *z = Z + lo * n;
                const REAL *p = P + lo * n;
                for (i64 q = 0; q < (hi - lo) * n; ++q) z[q] += p[q];
                CR_NAME(bias_activation_rows)(b, activation, alpha, D ? D + lo * n : NULL, z,
                                              A + lo * n, n, hi - lo);
            }
        }
        return;
    }
    if (ng == 1 || mb < n) {
        CR_NAME(gemm_par)(nt, ta, 'T', mb, n, n_prev, 1, A_prev, lda, W, n_prev, 0, Z, n);
        CR_NAME(bias_activation_par)(nt, b, activation, alpha, D, Z, A, n, mb);
        return;
    }
#pragma omp parallel num_threads(ng)
    {
        i64 lo, hi;
        cr_part(mb, omp_get_thread_num(), omp_get_num_threads(), 1, &lo, &hi);
        if (hi > lo) {
            CR_NAME(gemm_rows)(ta, 'T', hi - lo, n, n_prev, 1,
                               ta == 'N' ? A_prev + lo * lda : A_prev + lo, lda, W, n_prev, 0,
                               Z + lo * n, n);
            CR_NAME(bias_activation_rows)(b, activation, alpha, D ? D + lo * n : NULL,
                                          Z + lo * n, A + lo * n, n, hi - lo);
        }
    }
}

/* dst *= (mask) g'(Z) on nt threads, by ranges of the size entries: times_gprime with mask
 * D (dst = src), or times_gprime_from_a with A. */
static void CR_NAME(gprime_par)(int nt, int activation, REAL alpha, const REAL *Z,
                                const REAL *A, const REAL *D, REAL *dst, i64 size)
{
    nt = cr_threads_for(nt, (double)size, CR_PAR_MIN_ENTRIES);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        i64 lo, hi;
        cr_part(size, omp_get_thread_num(), omp_get_num_threads(), 16, &lo, &hi);
        if (hi > lo && D)
            CR_NAME(times_gprime)(activation, alpha, Z + lo, dst + lo, D + lo, dst + lo, hi - lo);
        else if (hi > lo)
            CR_NAME(times_gprime_from_a)(activation, alpha, Z + lo, A + lo, dst + lo, hi - lo);
    }
}

/* ------------------------------------------------------------------------- cost, dZ[L] */

static REAL CR_NAME(clip)(REAL a)
{
    const REAL lo = REAL_EPS, hi = 1 - REAL_EPS;
    return a < lo ? lo : (a > hi ? hi : a);
}

/* The loss of one example (a row of n outputs), as reference.example_losses, for binary
 * cross-entropy over several units and mean squared error (one unit's binary cross-entropy:
 * bce_sum; categorical cross-entropy: cce_sum). */
static double CR_NAME(example_loss)(int loss, const REAL *a, const REAL *y, i64 n)
{
    double total = 0;
    for (i64 i = 0; i < n; ++i) {
        if (loss == CR_BINARY_CROSSENTROPY) {
            /* a term whose coefficient is 0 adds 0 (the clipped logs are finite): one log per
             * example for 0/1 labels */
            REAL ac = CR_NAME(clip)(a[i]);
            if (y[i] != 0) total -= (double)y[i] * (double)LOG(ac);
            if (y[i] != 1) total -= (double)(1 - y[i]) * (double)LOG(1 - ac);
        } else {
            double e = (double)a[i] - (double)y[i];
            total += e * e / 2;
        }
    }
    return total;
}

/* sum_r w_r L_r (w NULL: 1) of binary cross-entropy on one output unit: the losses 64 at a
 * time by a loop that vectorises (cr_log_positive; the same terms as example_loss), added
 * in order. */
CR_CLONES static double CR_NAME(bce_sum)(const REAL *a, const REAL *y, const REAL *w, i64 mb)
{
    double total = 0, loss[64];
    for (i64 r0 = 0; r0 < mb; r0 += 64) {
        const i64 n = mb - r0 < 64 ? mb - r0 : 64;
        const REAL *ab = a + r0, *yb = y + r0;
        for (i64 r = 0; r < n; ++r) {
            const REAL ac = CR_NAME(clip)(ab[r]);
            loss[r] = -((double)yb[r] * cr_log_positive((double)ac)
                        + (double)(1 - yb[r]) * cr_log_positive((double)(1 - ac)));
        }
        if (w)
            for (i64 r = 0; r < n; ++r) total += (double)w[r0 + r] * loss[r];
        else
            for (i64 r = 0; r < n; ++r) total += loss[r];
    }
    return total;
}

/* sum_r w_r L_r (w NULL: 1) of categorical cross-entropy over rows of n classes: the terms
 * y log(clip(a)) of a block of entries by a loop that vectorises (cr_log_positive; the loss
 * of one example was a libm log and a branch per class: 2.4 us of digits' 21 us step with
 * the count of right answers), each row's sum in class order and the rows in order, as
 * reference.example_losses adds them (a class with y = 0 adds 0: its clipped log is
 * finite). A block holds whole rows, or a part of one row longer than the block. */
CR_CLONES static double CR_NAME(cce_sum)(const REAL *a, const REAL *y, const REAL *w, i64 mb,
                                         i64 n)
{
    enum { BLOCK = 1024 };
    double term[BLOCK], total = 0;
    const i64 rows = n >= BLOCK ? 1 : BLOCK / n;
    for (i64 r0 = 0; r0 < mb; r0 += rows) {
        const i64 r1 = mb - r0 < rows ? mb : r0 + rows;
        double loss_r = 0;
        /* the block's entries: rows r0 .. r1, or a row longer than a block by parts */
        for (i64 q0 = r0 * n, end = r1 * n; q0 < end; q0 += BLOCK) {
            const i64 q1 = end - q0 < BLOCK ? end : q0 + BLOCK;
            for (i64 q = q0; q < q1; ++q) {
                const double t = (double)y[q] * cr_log_positive((double)CR_NAME(clip)(a[q]));
                term[q - q0] = y[q] != 0 ? t : 0.0;
            }
            if (rows == 1) { /* one row: its parts in order */
                for (i64 q = q0; q < q1; ++q) loss_r -= term[q - q0];
                continue;
            }
            for (i64 r = r0; r < r1; ++r) { /* whole rows (the block is one part) */
                const double *tr = term + (r - r0) * n;
                double l = 0;
                for (i64 i = 0; i < n; ++i) l -= tr[i];
                total += w ? (double)w[r] * l : l;
            }
        }
        if (rows == 1) total += w ? (double)w[r0] * loss_r : loss_r;
    }
    return total;
}

/* Whether the row's prediction is right: (a > 0.5) == (y > 0.5) for one unit, else the
 * argmaxes (first maxima) agree. */
static int CR_NAME(correct)(const REAL *a, const REAL *y, i64 n)
{
    if (n == 1) return (a[0] > (REAL)0.5) == (y[0] > (REAL)0.5);
    /* selects, not branches: which class leads is data, and a mispredicted branch per
     * class was most of the cost of a 10-class batch's count */
    i64 ia = 0, iy = 0;
    REAL ma = a[0], my = y[0];
    for (i64 i = 1; i < n; ++i) {
        const int ga = a[i] > ma, gy = y[i] > my;
        ma = ga ? a[i] : ma;
        ia = ga ? i : ia;
        my = gy ? y[i] : my;
        iy = gy ? i : iy;
    }
    return ia == iy;
}

/* dZ[L] (mb, n) from A[L], Z[L], Y: A - Y for the output/loss pairs where that is the
 * derivative (reference.FUSED_OUTPUT_LOSS), else dA * g'(Z) with dA = cost_derivative. */
static void CR_NAME(output_delta_rows)(int output, REAL alpha, int loss, const REAL *A,
                                       const REAL *Z, const REAL *Y, REAL *dZ, i64 n, i64 mb)
{
    const i64 size = n * mb;
    if ((output == CR_SIGMOID && loss == CR_BINARY_CROSSENTROPY)
        || (output == CR_SOFTMAX && loss == CR_CATEGORICAL_CROSSENTROPY)
        || (output == CR_IDENTITY && loss == CR_MEAN_SQUARED_ERROR)) {
        for (i64 k = 0; k < size; ++k) dZ[k] = A[k] - Y[k];
        return;
    }
    for (i64 k = 0; k < size; ++k) {
        if (loss == CR_BINARY_CROSSENTROPY)
            dZ[k] = -(Y[k] / A[k] - (1 - Y[k]) / (1 - A[k]));
        else if (loss == CR_CATEGORICAL_CROSSENTROPY)
            dZ[k] = -(Y[k] / A[k]);
        else
            dZ[k] = A[k] - Y[k];
    }
    if (output != CR_SOFTMAX) {
        CR_NAME(times_gprime)(output, alpha, Z, dZ, NULL, dZ, size);
        return;
    }
    /* softmax: dZ = A (dA - sum_i A dA), per example (A = softmax(Z), unmasked) */
    for (i64 r = 0; r < mb; ++r) {
        const REAL *a = A + r * n;
        REAL *d = dZ + r * n;
        REAL dot = 0;
        for (i64 i = 0; i < n; ++i) dot += a[i] * d[i];
        for (i64 i = 0; i < n; ++i) d[i] = a[i] * (d[i] - dot);
    }
}

/* The columns lo..hi of dW = scale dZ^T^T A_prev^T + l2 W (rows lo..hi with by_rows), and
 * db[dlo..dhi] = scale sum_k dZ[k, :]; A_prev^T is op(A_prev) with tb and ldb (forward_par's
 * ta and lda). */
static void CR_NAME(gradients_part)(const REAL *dZ, char tb, const REAL *A_prev, i64 ldb,
                                    const REAL *W, REAL scale, REAL l2, REAL *dW, REAL *db,
                                    i64 n, i64 n_prev, i64 mb, int by_rows, i64 lo, i64 hi,
                                    i64 dlo, i64 dhi)
{
    if (hi > lo) {
        const i64 r0 = by_rows ? lo : 0, r1 = by_rows ? hi : n;
        const i64 c0 = by_rows ? 0 : lo, c1 = by_rows ? n_prev : hi;
        if (l2 != 0)
            for (i64 i = r0; i < r1; ++i)
                for (i64 j = c0; j < c1; ++j) dW[i * n_prev + j] = l2 * W[i * n_prev + j];
        CR_NAME(gemm_rows)('T', tb, r1 - r0, c1 - c0, mb, scale, dZ + r0, n,
                           tb == 'N' ? A_prev + c0 : A_prev + c0 * ldb, ldb, l2 != 0 ? 1 : 0,
                           dW + r0 * n_prev + c0, n_prev);
    }
    if (n == 1 && dlo == 0 && dhi == 1) { /* one unit: its dZ is contiguous */
        db[0] = scale * CR_NAME(sum)(dZ, mb);
    } else if (dhi > dlo) {
        for (i64 i = dlo; i < dhi; ++i) db[i] = 0;
        for (i64 r = 0; r < mb; ++r) {
            const REAL *d = dZ + r * n;
            for (i64 i = dlo; i < dhi; ++i) db[i] += d[i];
        }
        for (i64 i = dlo; i < dhi; ++i) db[i] = scale * db[i];
    }
}

/* A layer's dW and db on nt threads (one region): dW split along its rows or columns,
 * whichever are more, db along its rows. */
static void CR_NAME(gradients_par)(int nt, const REAL *dZ, char tb, const REAL *A_prev,
                                   i64 ldb, const REAL *W, REAL scale, REAL l2, REAL *dW,
                                   REAL *db, i64 n, i64 n_prev, i64 mb)
{
    nt = cr_threads_for(nt, (double)n * (double)n_prev * (double)mb, CR_PAR_MIN_MACS);
    const int by_rows = n >= n_prev;
    if (nt == 1) {
        CR_NAME(gradients_part)(dZ, tb, A_prev, ldb, W, scale, l2, dW, db, n, n_prev, mb, 1, 0,
                                n, 0, n);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        i64 lo, hi, dlo, dhi;
        cr_part(by_rows ? n : n_prev, t, T, by_rows ? 1 : 16, &lo, &hi);
        cr_part(n, t, T, 16, &dlo, &dhi);
        CR_NAME(gradients_part)(dZ, tb, A_prev, ldb, W, scale, l2, dW, db, n, n_prev, mb,
                                by_rows, lo, hi, dlo, dhi);
    }
}

/* dZ[l-1] = (dZ W) * (D) g'(Z[l-1]) on nt threads, by rows of the batch in one region when
 * the product splits by rows. */
static void CR_NAME(delta_par)(int nt, const REAL *dZ, const REAL *W, int activation,
                               REAL alpha, const REAL *Z_prev, const REAL *A_prev,
                               const REAL *D, REAL *dA, i64 n, i64 n_prev, i64 mb)
{
    const int ng = cr_threads_for(nt, (double)mb * (double)n * (double)n_prev, CR_PAR_MIN_MACS);
    if (ng == 1 || mb < n_prev) {
        CR_NAME(gemm_par)(nt, 'N', 'N', mb, n_prev, n, 1, dZ, n, W, n_prev, 0, dA, n_prev);
        CR_NAME(gprime_par)(nt, activation, alpha, Z_prev, A_prev, D, dA, n_prev * mb);
        return;
    }
#pragma omp parallel num_threads(ng)
    {
        i64 lo, hi;
        cr_part(mb, omp_get_thread_num(), omp_get_num_threads(), 1, &lo, &hi);
        if (hi > lo) {
            const i64 q = lo * n_prev, size = (hi - lo) * n_prev;
            CR_NAME(gemm_rows)('N', 'N', hi - lo, n_prev, n, 1, dZ + lo * n, n, W, n_prev, 0,
                               dA + q, n_prev);
            if (D)
                CR_NAME(times_gprime)(activation, alpha, Z_prev + q, dA + q, D + q, dA + q, size);
            else
                CR_NAME(times_gprime_from_a)(activation, alpha, Z_prev + q, A_prev + q, dA + q,
                                             size);
        }
    }
}

/* ------------------------------------------------------------------------- the update */

typedef struct {
    int kind; /* enum cr_optimizer */
    int inside; /* eps inside the square root */
    REAL lr, beta, one_beta, beta1, one_beta1, beta2, one_beta2, eps;
    REAL inv_c1, inv_c2; /* adam: 1 / (1 - beta1^t), 1 / (1 - beta2^t) */
} CR_NAME(opt);

/* One optimiser pass over a parameter P and its gradient g (and state v, s where the
 * optimiser has them).
 * commit = 0: the candidates only; returns bit 0 set if a new P entry would not be finite,
 * bit 1 for a new v entry, bit 2 for a new s entry (a non-finite gradient makes the new P
 * non-finite: it enters every candidate times a factor > 0).
 * commit = 1: writes the candidates (the same expressions, so the same numbers) and their
 * maxima into mx: max|P'|, max|v'|, max|s'| (NaN if an s' < 0); returns 0.
 * The arithmetic is optim.py's in the dtype and in its order, except that Adam multiplies
 * by 1 / (1 - beta1^t) and 1 / (1 - beta2^t) where optim.py divides (v_hat, s_hat): one
 * division per entry is left (the update's cost is in its divisions). */
CR_CLONES static int CR_NAME(opt_pass)(const CR_NAME(opt) *o, REAL *P, const REAL *g, REAL *v,
                                       REAL *s, i64 size, int commit, double *mx)
{
    const REAL lr = o->lr, eps = o->eps;
    int ok_p = 1, ok_v = 1, ok_s = 1;
    /* x - x == 0 exactly when x is finite; the &= reductions vectorise, and so do the
     * maxima as integer maxima of the IEEE bits (with the sign cleared: the order of |x|;
     * as they are: a number < 0 is above the bits of -0.0) */
    const CR_UINT abs_mask = ~(CR_UINT)0 >> 1;
    CR_UINT mp = 0, mv = 0, ms = 0, s_raw = 0;
#define CR_MAX_ABS(m, x)                                                                      \
    do {                                                                                      \
        REAL x_ = (x);                                                                        \
        CR_UINT b_;                                                                           \
        memcpy(&b_, &x_, sizeof b_);                                                          \
        b_ &= abs_mask;                                                                       \
        (m) = b_ > (m) ? b_ : (m);                                                            \
    } while (0)
#define CR_MAX_RAW(m, x)                                                                      \
    do {                                                                                      \
        REAL x_ = (x);                                                                        \
        CR_UINT b_;                                                                           \
        memcpy(&b_, &x_, sizeof b_);                                                          \
        (m) = b_ > (m) ? b_ : (m);                                                            \
    } while (0)
    switch (o->kind) {
    case CR_GD:
        if (commit) {
            for (i64 q = 0; q < size; ++q) {
                REAL p = P[q] - lr * g[q];
                P[q] = p;
                CR_MAX_ABS(mp, p);
            }
        } else {
            for (i64 q = 0; q < size; ++q) {
                REAL p = P[q] - lr * g[q];
                ok_p &= (p - p == 0);
            }
        }
        break;
    case CR_MOMENTUM: {
        const REAL beta = o->beta, one_beta = o->one_beta;
        if (commit) {
            for (i64 q = 0; q < size; ++q) {
                REAL vq = v[q] * beta + one_beta * g[q];
                REAL p = P[q] - lr * vq;
                v[q] = vq;
                P[q] = p;
                CR_MAX_ABS(mv, vq);
                CR_MAX_ABS(mp, p);
            }
        } else {
            for (i64 q = 0; q < size; ++q) {
                REAL vq = v[q] * beta + one_beta * g[q];
                REAL p = P[q] - lr * vq;
                ok_v &= (vq - vq == 0);
                ok_p &= (p - p == 0);
            }
        }
        break;
    }
    case CR_RMSPROP: {
        const REAL beta = o->beta, one_beta = o->one_beta;
#define CR_RMSPROP_CANDIDATES                                                                 \
        REAL sq = s[q] * beta + one_beta * (g[q] * g[q]);                                     \
        REAL denom = o->inside ? SQRT(sq + eps) : SQRT(sq) + eps;                             \
        REAL p = P[q] - lr * g[q] / denom
        if (commit) {
            for (i64 q = 0; q < size; ++q) {
                CR_RMSPROP_CANDIDATES;
                s[q] = sq;
                P[q] = p;
                CR_MAX_ABS(ms, sq);
                CR_MAX_RAW(s_raw, sq);
                CR_MAX_ABS(mp, p);
            }
        } else {
            for (i64 q = 0; q < size; ++q) {
                CR_RMSPROP_CANDIDATES;
                ok_s &= (sq - sq == 0);
                ok_p &= (p - p == 0);
            }
        }
#undef CR_RMSPROP_CANDIDATES
        break;
    }
    default: { /* CR_ADAM */
        const REAL beta1 = o->beta1, one_beta1 = o->one_beta1, beta2 = o->beta2,
                   one_beta2 = o->one_beta2, inv_c1 = o->inv_c1, inv_c2 = o->inv_c2;
#define CR_ADAM_CANDIDATES                                                                    \
        REAL vq = v[q] * beta1 + one_beta1 * g[q];                                            \
        REAL sq = s[q] * beta2 + one_beta2 * (g[q] * g[q]);                                   \
        REAL v_hat = vq * inv_c1, s_hat = sq * inv_c2;                                        \
        REAL denom = o->inside ? SQRT(s_hat + eps) : SQRT(s_hat) + eps;                       \
        REAL p = P[q] - lr * v_hat / denom
        if (commit) {
            for (i64 q = 0; q < size; ++q) {
                CR_ADAM_CANDIDATES;
                v[q] = vq;
                s[q] = sq;
                P[q] = p;
                CR_MAX_ABS(mv, vq);
                CR_MAX_ABS(ms, sq);
                CR_MAX_RAW(s_raw, sq);
                CR_MAX_ABS(mp, p);
            }
        } else {
            for (i64 q = 0; q < size; ++q) {
                CR_ADAM_CANDIDATES;
                ok_v &= (vq - vq == 0);
                ok_s &= (sq - sq == 0);
                ok_p &= (p - p == 0);
            }
        }
#undef CR_ADAM_CANDIDATES
        break;
    }
    }
#undef CR_MAX_ABS
#undef CR_MAX_RAW
    if (!commit) return (!ok_p) | ((!ok_v) << 1) | ((!ok_s) << 2);
    REAL m3[3];
    memcpy(m3, &mp, sizeof mp);
    memcpy(m3 + 1, &mv, sizeof mv);
    memcpy(m3 + 2, &ms, sizeof ms);
    mx[0] = (double)m3[0];
    mx[1] = (double)m3[1];
    mx[2] = s_raw > ~abs_mask ? (double)NAN : (double)m3[2];
    return 0;
}

/* The larger of two maxima of opt_pass / max_abs_nan, NaN if either is NaN. */
static double CR_NAME(max_or_nan)(double a, double b)
{
    if (a != a || b != b) return (double)NAN;
    return a > b ? a : b;
}

/* opt_pass on nt threads, by ranges of the size entries: the flags or'ed, the maxima
 * combined (exactly: the result does not depend on the threads). */
static int CR_NAME(opt_pass_par)(int nt, const CR_NAME(opt) *o, REAL *P, const REAL *g,
                                 REAL *v, REAL *s, i64 size, int commit, double *mx)
{
    /* an entry of RMSprop or Adam (a square root and a division) costs several of gd's */
    const double cost = o->kind == CR_GD ? 1 : o->kind == CR_MOMENTUM ? 2 : 8;
    nt = cr_threads_for(nt, (double)size * cost, CR_PAR_MIN_ENTRIES);
    if (nt == 1) return CR_NAME(opt_pass)(o, P, g, v, s, size, commit, mx);
    double part[CR_MAX_THREADS][3];
    int flags = 0;
    for (int t = 0; t < nt; ++t) part[t][0] = part[t][1] = part[t][2] = 0;
#pragma omp parallel num_threads(nt) reduction(| : flags)
    {
        const int t = omp_get_thread_num();
        i64 lo, hi;
        cr_part(size, t, omp_get_num_threads(), 16, &lo, &hi);
        if (hi > lo)
            flags |= CR_NAME(opt_pass)(o, P + lo, g + lo, v ? v + lo : NULL, s ? s + lo : NULL,
                                       hi - lo, commit, part[t]);
    }
    if (commit)
        for (int h = 0; h < 3; ++h) {
            double best = 0;
            for (int t = 0; t < nt; ++t) best = CR_NAME(max_or_nan)(best, part[t][h]);
            mx[h] = best;
        }
    return flags;
}

/* max_abs_nan on nt threads. */
static double CR_NAME(max_abs_nan_par)(int nt, const REAL *x, i64 size)
{
    nt = cr_threads_for(nt, (double)size, CR_PAR_MIN_ENTRIES);
    if (nt == 1) return CR_NAME(max_abs_nan)(x, size);
    double part[CR_MAX_THREADS];
    for (int t = 0; t < nt; ++t) part[t] = 0;
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num();
        i64 lo, hi;
        cr_part(size, t, omp_get_num_threads(), 16, &lo, &hi);
        if (hi > lo) part[t] = CR_NAME(max_abs_nan)(x + lo, hi - lo);
    }
    double best = 0;
    for (int t = 0; t < nt; ++t) best = CR_NAME(max_or_nan)(best, part[t]);
    return best;
}

/* max |x[k]| as a double: NaN if an x[k] is NaN or, with nonneg, below zero. */
CR_CLONES static double CR_NAME(max_abs_or_nan)(const REAL *x, i64 size, int nonneg)
{
    if (!x || size < 1) return 0;
    if (!nonneg) return CR_NAME(max_abs_nan)(x, size);
    /* on the raw bits, an entry with the sign bit set and a non-zero magnitude (a number
     * < 0, or a NaN with the sign set) is above the bits of -0.0; without those, the raw
     * maximum is the maximum of |x| (and a NaN is above infinity) */
    const CR_UINT sign = ~(~(CR_UINT)0 >> 1);
    CR_UINT best = 0;
    for (i64 k = 0; k < size; ++k) {
        CR_UINT bits;
        memcpy(&bits, x + k, sizeof bits);
        best = bits > best ? bits : best;
    }
    if (best > sign) return (double)NAN;
    best &= ~sign;
    REAL mx;
    memcpy(&mx, &best, sizeof best);
    return mx != mx ? (double)NAN : (double)mx;
}

/* Whether every candidate of opt_pass over (P, g, v, s) is certainly finite, from maxima:
 * mx = max|P|, max|v|, max|s| (NaN: not finite, or an s < 0) and the scanned max|g|;
 * |P'| <= max|P| + lr max|step| and the like, below a quarter of the dtype's maximum (a
 * margin for the rounding of the few operations of an entry). 0: the bound cannot tell,
 * and opt_pass checks every candidate. So the decision is the exact rule's, at the cost of
 * one scan of the gradient instead of a pass with Adam's square root and division (the
 * maxima of P, v, s come from the previous commit). */
static int CR_NAME(update_bound_ok)(int nt, const CR_NAME(opt) *o, const double *mx,
                                    const REAL *g, i64 size)
{
    /* |lr|: a rate < 0 is applied as given; an infinite or NaN rate fails every test */
    const double limit = (double)REAL_MAX / 4, lr = fabs((double)o->lr), eps = (double)o->eps;
    const double Mp = mx[0], Mv = mx[1], Ms = mx[2], Mg = CR_NAME(max_abs_nan_par)(nt, g, size);
    if (!(Mp < limit && Mg < limit && lr * Mg < limit)) return 0;
    const double denom_min = o->inside ? sqrt(eps) : eps;
    switch (o->kind) {
    case CR_GD:
        return Mp + lr * Mg < limit;
    case CR_MOMENTUM: {
        const double Mv1 = (double)o->beta * Mv + (double)o->one_beta * Mg;
        return Mv < limit && Mv1 < limit && lr * Mv1 < limit && Mp + lr * Mv1 < limit;
    }
    case CR_RMSPROP: {
        const double Ms1 = (double)o->beta * Ms + (double)o->one_beta * (Mg * Mg);
        return Ms < limit && Mg * Mg < limit && Ms1 < limit && denom_min > 0
               && Mp + lr * Mg / denom_min < limit;
    }
    default: { /* CR_ADAM */
        const double Mv1 = (double)o->beta1 * Mv + (double)o->one_beta1 * Mg;
        const double Ms1 = (double)o->beta2 * Ms + (double)o->one_beta2 * (Mg * Mg);
        const double v_hat = Mv1 * (double)o->inv_c1, step = lr * v_hat;
        return Mv < limit && Ms < limit && Mv1 < limit && Mg * Mg < limit && Ms1 < limit
               && v_hat < limit && Ms1 * (double)o->inv_c2 < limit && step < limit
               && denom_min > 0 && Mp + step / denom_min < limit;
    }
    }
}

/* What made a refused step unsafe, in the order of enum cr_nonfinite (the reference
 * engine's): only run on refusal, so it simply scans again. */
static void CR_NAME(diagnose)(const CR_NAME(opt) *o, const struct cr_fit_config *c, double J,
                              REAL **W, REAL **b, REAL **v_W, REAL **v_b, REAL **s_W,
                              REAL **s_b, const CR_NAME(fit_ws) *ws, struct cr_fit_result *res)
{
    const i64 L = c->n_layers;
    const long long *dims = c->dims;
    const int has_v = o->kind == CR_MOMENTUM || o->kind == CR_ADAM;
    const int has_s = o->kind == CR_RMSPROP || o->kind == CR_ADAM;
    res->what = CR_NONFINITE_COST;
    res->layer = 0;
    res->bias = 0;
    res->state = 0;
    if (!isfinite(J)) return;
    res->what = CR_NONFINITE_GRADIENT;
    for (i64 l = 0; l < L; ++l) {
        const i64 n = dims[l + 1], n_prev = dims[l];
        res->layer = l + 1;
        res->bias = 0;
        if (!CR_NAME(cr_all_finite)(ws->dW[l], n * n_prev)) return;
        res->bias = 1;
        if (!CR_NAME(cr_all_finite)(ws->db[l], n)) return;
    }
    /* bits of opt_pass per layer and W/b: 1 new P, 2 new v, 4 new s */
    int found = 0;
    for (int pass = 0; pass < 3 && !found; ++pass) {
        /* pass 0: s (dW1, dW2, ..., db1, ...); pass 1: v, in the same order (sorted names,
         * as the reference); pass 2: the parameters W1, b1, W2 ... */
        const int bit = pass == 0 ? 4 : (pass == 1 ? 2 : 1);
        if ((pass == 0 && !has_s) || (pass == 1 && !has_v)) continue;
        for (int kind = 0; kind < 2 && !found; ++kind) {
            for (i64 l = 0; l < L && !found; ++l) {
                const i64 n = dims[l + 1], n_prev = dims[l];
                /* the parameters interleave W and b per layer; the states list W first */
                for (int bias = 0; bias < 2 && !found; ++bias) {
                    if (pass == 2 ? (kind == 1) : (bias != kind)) continue;
                    int r = bias ? CR_NAME(opt_pass)(o, b[l], ws->db[l], has_v ? v_b[l] : NULL,
                                                     has_s ? s_b[l] : NULL, n, 0, NULL)
                                 : CR_NAME(opt_pass)(o, W[l], ws->dW[l], has_v ? v_W[l] : NULL,
                                                     has_s ? s_W[l] : NULL, n * n_prev, 0,
                                                     NULL);
                    if (r & bit) {
                        found = 1;
                        res->what = pass == 2 ? CR_NONFINITE_PARAMETER : CR_NONFINITE_STATE;
                        res->layer = l + 1;
                        res->bias = bias;
                        res->state = pass == 2 ? 0 : (pass == 0 ? 's' : 'v');
                    }
                }
            }
        }
    }
    if (!found) { /* not reached: opt_pass found something unsafe */
        res->what = CR_NONFINITE_PARAMETER;
        res->layer = 0;
    }
}

/* ------------------------------------------------------------------------- the engine */

/* Batch norm of Z^T (mb, n) over its rows (the examples), in place: Z_hat into ZH, Z^T =
 * gamma Z_hat (bias_activation then adds beta), and per unit 1/s, the mean and the biased
 * variance into st[0..n), st[n..2n), st[2n..3n); sums in double. */
static void CR_NAME(bn_forward)(REAL *Z, REAL *ZH, const REAL *gamma, REAL *st, i64 n, i64 mb,
                                double eps)
{
    for (i64 i = 0; i < n; ++i) {
        double acc = 0;
        for (i64 r = 0; r < mb; ++r) acc += (double)Z[r * n + i];
        const double mu = acc / (double)mb;
        acc = 0;
        for (i64 r = 0; r < mb; ++r) {
            const double d = (double)Z[r * n + i] - mu;
            acc += d * d;
        }
        const double var = acc / (double)mb, inv = 1 / sqrt(var + eps);
        const double g = (double)gamma[i];
        for (i64 r = 0; r < mb; ++r) {
            const double zh = ((double)Z[r * n + i] - mu) * inv;
            ZH[r * n + i] = (REAL)zh;
            Z[r * n + i] = (REAL)(g * zh);
        }
        st[i] = (REAL)inv;
        st[n + i] = (REAL)mu;
        st[2 * n + i] = (REAL)var;
    }
}

/* The compact backward in place (convention "L": dZ^T holds dZ_tilde per example):
 * dbeta = (1/mb) sum dZ_tilde, dgamma = (1/mb) sum dZ_tilde Z_hat into st[4n..), st[3n..),
 * dZ = (gamma / s)(dZ_tilde - dbeta - Z_hat dgamma). */
static void CR_NAME(bn_backward)(REAL *dZ, const REAL *ZH, const REAL *gamma, REAL *st, i64 n,
                                 i64 mb)
{
    for (i64 i = 0; i < n; ++i) {
        double sb = 0, sg = 0;
        for (i64 r = 0; r < mb; ++r) {
            sb += (double)dZ[r * n + i];
            sg += (double)dZ[r * n + i] * (double)ZH[r * n + i];
        }
        const double dbeta = sb / (double)mb, dgamma = sg / (double)mb;
        const double scale = (double)gamma[i] * (double)st[i];
        for (i64 r = 0; r < mb; ++r)
            dZ[r * n + i] = (REAL)(scale * ((double)dZ[r * n + i] - dbeta
                                            - (double)ZH[r * n + i] * dgamma));
        st[3 * n + i] = (REAL)dgamma;
        st[4 * n + i] = (REAL)dbeta;
    }
}

#ifndef CR_GATHER_AHEAD
#define CR_GATHER_AHEAD 4
#endif

CR_CLONES int CR_NAME(cr_fit_epochs)(const REAL *XT, const REAL *YT, const REAL *w,
                                     const long long *perms, const double *lrs,
                                     const unsigned long long *keys,
                                     const struct cr_fit_config *c, REAL **W, REAL **b,
                                     REAL **v_W, REAL **v_b, REAL **s_W, REAL **s_b,
                                     long long *t, double *cost_sum, double *weight_sum,
                                     long long *correct, struct cr_fit_result *result,
                                     void *work, long long work_bytes, long long m,
                                     long long n_epochs, long long k0, long long n_steps)
{
    int status = cr_fit_config_ok(c);
    if (status) return status;
    if (!XT || !YT || !lrs || !W || !b || !t || !cost_sum || !weight_sum || !result || !work)
        return CR_MISSING_BUFFER;
    const i64 L = c->n_layers, s = c->mini_batch_size, n0 = c->dims[0], nL = c->dims[L];
    if (m < 1 || n_epochs < 0 || n_steps < 0 || k0 < 0) return CR_BAD_SIZE;
    if (!sizes_ok(m, n0, 1) || !sizes_ok(m, nL, 1) || (perms && !sizes_ok(m, n_epochs + 1, 1)))
        return CR_BAD_SIZE;
    const i64 n_batches = (m + s - 1) / s;
    if (k0 >= n_batches || n_batches - 1 > UINT32_MAX) return CR_BAD_SIZE;
    const int dropout = cr_dropout_any(c);
    if (dropout && !keys) return CR_MISSING_BUFFER;
    const int cols = c->x_columns != 0; /* XT, YT are the course's X (n0, m), Y (nL, m) */
    if (cols && perms) return CR_BAD_LAYOUT;
    const int kind = c->optimizer;
    const int has_v = kind == CR_MOMENTUM || kind == CR_ADAM;
    const int has_s = kind == CR_RMSPROP || kind == CR_ADAM;
    if ((has_v && (!v_W || !v_b)) || (has_s && (!s_W || !s_b))) return CR_MISSING_BUFFER;
    for (i64 l = 0; l < L; ++l) {
        if (!W[l] || !b[l]) return CR_MISSING_BUFFER;
        if ((has_v && (!v_W[l] || !v_b[l])) || (has_s && (!s_W[l] || !s_b[l])))
            return CR_MISSING_BUFFER;
    }
    char *base = (char *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    if (work_bytes < (long long)(base - (char *)work) + CR_NAME(fit_layout)(c, NULL, NULL))
        return CR_SMALL_WORKSPACE;
    CR_NAME(fit_ws) ws;
    CR_NAME(fit_layout)(c, base, &ws);
    /* the maxima of the update's bound (then kept by every commit): per layer
     * max|W|, max|v_W|, max|s_W|, max|b|, max|v_b|, max|s_b| */
    for (i64 l = 0; l < L; ++l) {
        const i64 size[2] = {c->dims[l + 1] * c->dims[l], c->dims[l + 1]};
        REAL *P[2] = {W[l], b[l]};
        REAL *V[2] = {has_v ? v_W[l] : NULL, has_v ? v_b[l] : NULL};
        REAL *S[2] = {has_s ? s_W[l] : NULL, has_s ? s_b[l] : NULL};
        for (int h = 0; h < 2; ++h) {
            double *mx = ws.maxima + 6 * l + 3 * h;
            mx[0] = CR_NAME(max_abs_or_nan)(P[h], size[h], 0);
            mx[1] = CR_NAME(max_abs_or_nan)(V[h], size[h], 0);
            mx[2] = CR_NAME(max_abs_or_nan)(S[h], size[h], 1);
        }
        if (c->batch_norm && c->batch_norm[l]) {
            const i64 n = c->dims[l + 1];
            double *mx = ws.maxima + 6 * L + 3 * l;
            mx[0] = CR_NAME(max_abs_or_nan)((REAL *)c->bn_gamma[l], n, 0);
            mx[1] = CR_NAME(max_abs_or_nan)(has_v ? (REAL *)c->bn_v_gamma[l] : NULL, n, 0);
            mx[2] = CR_NAME(max_abs_or_nan)(has_s ? (REAL *)c->bn_s_gamma[l] : NULL, n, 1);
        }
    }
    const int any_bn = c->batch_norm != NULL;

    const long long *dims = c->dims;
    const int nt = c->n_threads > 1 ? c->n_threads : 1;
    const int output = c->activation[L - 1];
    const double lambd = c->lambd;
    CR_NAME(opt) o;
    o.kind = kind;
    const double beta = kind == CR_MOMENTUM ? c->hyper[0] : c->hyper[1];
    o.inside = c->hyper[3] != 0;
    o.beta = (REAL)beta;
    o.one_beta = (REAL)(1 - beta);
    o.beta1 = (REAL)c->hyper[0];
    o.one_beta1 = (REAL)(1 - c->hyper[0]);
    o.beta2 = (REAL)c->hyper[1];
    o.one_beta2 = (REAL)(1 - c->hyper[1]);
    o.eps = (REAL)c->hyper[2];

    result->steps = 0;
    result->refused = 0;
    result->what = CR_FINITE;
    result->layer = 0;
    result->bias = 0;
    result->state = 0;
    i64 e = 0, k = k0;
    const double deadline = c->max_seconds > 0 && cr_openmp() ? cr_now() + c->max_seconds : 0;
    while (result->steps < n_steps) {
        if (k == n_batches) {
            k = 0;
            ++e;
        }
        if (e >= n_epochs) break;

        /* ---- the batch: rows order[k s : k s + mb] */
        const i64 start = k * s, mb = m - start < s ? m - start : s;
        if (any_bn && mb < 2) { /* the caller's composition refuses it, with its words */
            result->refused = 1;
            break;
        }
        const REAL *X0 = XT + start * n0, *Yb = YT + start * nL, *wb = w ? w + start : NULL;
        /* the batch as op(X0) with ta0, ld0: its rows (mb, n0), or the course's columns */
        const char ta0 = cols ? 'T' : 'N';
        const i64 ld0 = cols ? m : n0;
        if (cols) {
            X0 = XT + start;
            Yb = YT + start; /* one output unit: Y (1, m) is its own transpose */
            if (nL > 1) {
                for (i64 r = 0; r < mb; ++r)
                    for (i64 i = 0; i < nL; ++i) ws.Y[r * nL + i] = YT[i * m + start + r];
                Yb = ws.Y;
            }
        }
        if (perms) {
            const long long *idx = perms + e * m + start;
            for (i64 r = 0; r < mb; ++r)
                if (idx[r] < 0 || idx[r] >= m) return CR_BAD_INDEX;
            const i64 row_bytes = n0 * (i64)sizeof(REAL);
            const int n_gather = cr_threads_for(nt, (double)mb * (double)n0, CR_PAR_MIN_ENTRIES);
            (void)n_gather; /* without OpenMP */
#pragma omp parallel for num_threads(n_gather) schedule(static) if (n_gather > 1)
            for (i64 r = 0; r < mb; ++r) {
                const long long q = idx[r];
#if defined(__GNUC__)
                /* the rows are scattered over XT: start reading a few rows ahead, so that
                 * several rows are on their way from memory at once */
                if (r + CR_GATHER_AHEAD < mb) {
                    const char *ahead = (const char *)(XT + idx[r + CR_GATHER_AHEAD] * n0);
                    for (i64 off = 0; off < row_bytes; off += 64) __builtin_prefetch(ahead + off);
                }
#endif
                memcpy(ws.X + r * n0, XT + q * n0, (size_t)n0 * sizeof(REAL));
                memcpy(ws.Y + r * nL, YT + q * nL, (size_t)nL * sizeof(REAL));
                if (w) ws.w[r] = w[q];
            }
            X0 = ws.X;
            Yb = ws.Y;
            wb = w ? ws.w : NULL;
        }
        double sw = (double)mb;
        if (wb) {
            sw = 0;
            for (i64 r = 0; r < mb; ++r) sw += (double)wb[r];
        }

        /* ---- forward, with the masks of this (epoch, batch) */
        for (i64 l = 0; l < L; ++l) {
            const i64 n = dims[l + 1], n_prev = dims[l];
            const REAL *A_prev = l ? ws.A[l - 1] : X0;
            REAL *D = NULL;
            if (dropout && l + 1 < L && c->keep_prob[l] < 1) {
                D = ws.D[l];
                CR_NAME(dropout_fill)((uint64_t)keys[e], (uint32_t)(l + 1), (uint32_t)k,
                                      c->keep_prob[l], D, n, mb, 1, n);
            }
            /* the course's X through BLAS: Z (n, mb) = W X as the course writes it (X packed
             * as BLAS packs it fastest; its transposed flags cost a slower copy of X), then
             * Z^T into the rows layout (n mb entries; dZ[0] is free until the backward) */
            const int course = l == 0 && cols && CR_NAME(use_blas)(mb, n, n_prev);
            if (course) {
                REAL *T = ws.dZ[0];
                CR_NAME(gemm_rm)('N', 'N', n, mb, n_prev, 1, W[0], n_prev, A_prev, ld0, 0, T, mb);
                for (i64 r = 0; r < mb; ++r)
                    for (i64 i = 0; i < n; ++i) ws.Z[0][r * n + i] = T[i * mb + r];
            } else if (ws.ZH[l]) {
                CR_NAME(gemm_par)(nt, l ? 'N' : ta0, 'T', mb, n, n_prev, 1, A_prev,
                                  l ? n_prev : ld0, W[l], n_prev, 0, ws.Z[l], n);
            }
            if (ws.ZH[l]) /* batch norm between the product and the activation */
                CR_NAME(bn_forward)(ws.Z[l], ws.ZH[l], (const REAL *)c->bn_gamma[l], ws.bn[l],
                                    n, mb, c->bn_epsilon);
            if (course || ws.ZH[l]) /* the product is done: the bias and g */
                CR_NAME(bias_activation_par)(nt, b[l], c->activation[l], (REAL)c->alpha[l], D,
                                             ws.Z[l], ws.A[l], n, mb);
            else /* the product and the bias and g, by rows of the batch */
                CR_NAME(forward_par)(nt, l ? 'N' : ta0, A_prev, l ? n_prev : ld0, W[l], b[l],
                                     c->activation[l], (REAL)c->alpha[l], D, ws.Z[l], ws.A[l],
                                     n, n_prev, mb, l ? NULL : ws.dZ[0]);
        }

        /* ---- the cost J_b = (1 / sum w) sum_k w_k L_k + lambd / (2 sum w) sum_l |W[l]|^2 */
        const REAL *AL = ws.A[L - 1];
        double total = 0;
        long long right = 0;
        if (nL == 1 && c->loss == CR_BINARY_CROSSENTROPY)
            total = CR_NAME(bce_sum)(AL, Yb, wb, mb);
        else if (c->loss == CR_CATEGORICAL_CROSSENTROPY)
            total = CR_NAME(cce_sum)(AL, Yb, wb, mb, nL);
        else
            for (i64 r = 0; r < mb; ++r) {
                double loss_r = CR_NAME(example_loss)(c->loss, AL + r * nL, Yb + r * nL, nL);
                total += wb ? (double)wb[r] * loss_r : loss_r;
            }
        if (correct)
            for (i64 r = 0; r < mb; ++r) right += CR_NAME(correct)(AL + r * nL, Yb + r * nL, nL);
        double J = total / sw;
        /* The cost is judged in the dtype, as the reference computes it: its sums (the
         * weighted losses, the squares of the L2 term) and J must fit (NaN fails too). */
        int cost_ok = fabs(total) <= (double)REAL_MAX;
        if (lambd != 0) {
            double squares = 0;
            for (i64 l = 0; l < L; ++l) {
                const REAL *Wl = W[l];
                const i64 size = dims[l + 1] * dims[l];
                REAL acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                double part = 0;
                i64 q = 0;
                /* blocks of 512 in the dtype, summed in double */
                for (; q + 512 <= size; q += 512) {
                    for (i64 u = q; u < q + 512; u += 8)
                        for (int h = 0; h < 8; ++h) acc[h] += Wl[u + h] * Wl[u + h];
                    for (int h = 0; h < 8; ++h) {
                        part += (double)acc[h];
                        acc[h] = 0;
                    }
                }
                for (; q < size; ++q) part += (double)Wl[q] * (double)Wl[q];
                squares += part;
            }
            J += lambd / (2 * sw) * squares;
            cost_ok = cost_ok && squares <= (double)REAL_MAX;
        }

        /* ---- backward: dZ[L], weighted w_k mb / sum w; dW = (1/mb) dZ A_prev^T +
         * (lambd / sum w) W; db = (1/mb) sum_k dZ; dZ[l-1] = (dZ W) * D * g'(Z[l-1]) */
        CR_NAME(output_delta_rows)(output, (REAL)c->alpha[L - 1], c->loss, AL, ws.Z[L - 1], Yb,
                                   ws.dZ[L - 1], nL, mb);
        if (wb) {
            const REAL ratio = (REAL)((double)mb / sw);
            for (i64 r = 0; r < mb; ++r) {
                const REAL f = wb[r] * ratio;
                REAL *d = ws.dZ[L - 1] + r * nL;
                for (i64 i = 0; i < nL; ++i) d[i] = d[i] * f;
            }
        }
        const REAL scale = (REAL)(1.0 / (double)mb), l2 = (REAL)(lambd / sw);
        for (i64 l = L - 1; l >= 0; --l) {
            const i64 n = dims[l + 1], n_prev = dims[l];
            const REAL *A_prev = l ? ws.A[l - 1] : X0;
            REAL *dZ = ws.dZ[l], *dW = ws.dW[l], *db = ws.db[l];
            if (ws.ZH[l])
                CR_NAME(bn_backward)(dZ, ws.ZH[l], (const REAL *)c->bn_gamma[l], ws.bn[l], n, mb);
            CR_NAME(gradients_par)(nt, dZ, l ? 'N' : ta0, A_prev, l ? n_prev : ld0, W[l], scale,
                                   l2, dW, db, n, n_prev, mb);
            if (ws.ZH[l]) /* b is beta: its gradient is dbeta */
                for (i64 i = 0; i < n; ++i) db[i] = ws.bn[l][4 * n + i];
            if (l == 0) break;
            const int masked = ws.D[l - 1] && dropout && c->keep_prob[l - 1] < 1;
            CR_NAME(delta_par)(nt, dZ, W[l], c->activation[l - 1], (REAL)c->alpha[l - 1],
                               ws.Z[l - 1], ws.A[l - 1], masked ? ws.D[l - 1] : NULL,
                               ws.dZ[l - 1], n, n_prev, mb);
        }

        /* ---- the update-safety rule: every candidate checked before anything is written */
        o.lr = (REAL)lrs[e];
        if (kind == CR_ADAM) {
            const double t1 = (double)(*t + 1);
            o.inv_c1 = (REAL)(1 / (1 - pow(c->hyper[0], t1)));
            o.inv_c2 = (REAL)(1 / (1 - pow(c->hyper[1], t1)));
        }
        int unsafe = !(cost_ok && fabs(J) <= (double)REAL_MAX);
        for (i64 l = 0; l < L && !unsafe; ++l) {
            const i64 n = dims[l + 1], n_prev = dims[l];
            REAL *vW = has_v ? v_W[l] : NULL, *sW = has_s ? s_W[l] : NULL;
            REAL *vb = has_v ? v_b[l] : NULL, *sb = has_s ? s_b[l] : NULL;
            if (!CR_NAME(update_bound_ok)(nt, &o, ws.maxima + 6 * l, ws.dW[l], n * n_prev))
                unsafe = CR_NAME(opt_pass_par)(nt, &o, W[l], ws.dW[l], vW, sW, n * n_prev, 0,
                                               NULL);
            if (!unsafe && !CR_NAME(update_bound_ok)(nt, &o, ws.maxima + 6 * l + 3, ws.db[l], n))
                unsafe = CR_NAME(opt_pass_par)(nt, &o, b[l], ws.db[l], vb, sb, n, 0, NULL);
            if (!unsafe && ws.ZH[l]) {
                /* gamma: only what the bounds prove finite (else the composition decides) */
                const REAL *dg = ws.bn[l] + 3 * n;
                int finite = 1;
                for (i64 i = 0; i < n; ++i) finite &= isfinite(dg[i]) != 0;
                if (!finite || !CR_NAME(update_bound_ok)(nt, &o, ws.maxima + 6 * L + 3 * l, dg, n))
                    unsafe = 1;
            }
        }
        if (unsafe && any_bn) { /* the caller's composition applies or refuses this step */
            result->refused = 1;
            break;
        }
        if (unsafe) {
            result->refused = 1;
            const double J_seen = cost_ok && fabs(J) <= (double)REAL_MAX ? J : INFINITY;
            CR_NAME(diagnose)(&o, c, J_seen, W, b, v_W, v_b, s_W, s_b, &ws, result);
            break;
        }
        for (i64 l = 0; l < L; ++l) {
            const i64 n = dims[l + 1], n_prev = dims[l];
            CR_NAME(opt_pass_par)(nt, &o, W[l], ws.dW[l], has_v ? v_W[l] : NULL,
                                  has_s ? s_W[l] : NULL, n * n_prev, 1, ws.maxima + 6 * l);
            CR_NAME(opt_pass_par)(nt, &o, b[l], ws.db[l], has_v ? v_b[l] : NULL,
                                  has_s ? s_b[l] : NULL, n, 1, ws.maxima + 6 * l + 3);
            if (ws.ZH[l]) {
                REAL *st = ws.bn[l], *mean = (REAL *)c->bn_mean[l], *var = (REAL *)c->bn_var[l];
                CR_NAME(opt_pass_par)(nt, &o, (REAL *)c->bn_gamma[l], st + 3 * n,
                                      has_v ? (REAL *)c->bn_v_gamma[l] : NULL,
                                      has_s ? (REAL *)c->bn_s_gamma[l] : NULL, n, 1,
                                      ws.maxima + 6 * L + 3 * l);
                /* the running averages, once per applied step */
                const double beta_r = c->bn_momentum;
                const double unbias = c->bn_unbiased ? (double)mb / (double)(mb - 1) : 1.0;
                for (i64 i = 0; i < n; ++i) {
                    mean[i] = (REAL)(beta_r * (double)mean[i] + (1 - beta_r) * (double)st[n + i]);
                    var[i] = (REAL)(beta_r * (double)var[i]
                                    + (1 - beta_r) * ((double)st[2 * n + i] * unbias));
                }
            }
        }
        if (kind == CR_ADAM) ++*t;
        cost_sum[e] += J * sw;
        weight_sum[e] += sw;
        if (correct) correct[e] += right;
        ++result->steps;
        ++k;
        if (deadline > 0 && cr_now() >= deadline) break;
    }
    if (k == n_batches && !result->refused) {
        k = 0;
        ++e;
    }
    result->epoch = e;
    result->batch = k;
    return CR_OK;
}

/* The template's parameters, undefined so it can be included again for another dtype. */
#undef REAL
#undef CR_NAME
#undef EXP
#undef SQRT
#undef LOG
#undef REAL_MAX
#undef REAL_EPS
#undef CR_UINT
