/* chainrule C kernels: declarations shared by dense.c (#include) and cffi's cdef().
 *
 * Layout: every matrix is C-contiguous (row-major), examples are columns:
 * A_prev (n_prev, m), W (n, n_prev), b (n, 1), Z and A (n, m).
 * Arguments come in the order inputs, outputs, sizes; every function returns 0 on success.
 * No function allocates memory the caller sees; the caller allocates every output.
 *
 * The matrix products go to a Fortran BLAS ?gemm whose address the caller hands over with
 * cr_set_blas (SciPy's cython_blas, MKL, NumPy's OpenBLAS); without one, or for products
 * smaller than the threshold of cr_set_blas_threshold, plain C loops compute them.
 */
typedef void (*cr_dgemm_t)(const char *transa, const char *transb, const void *m, const void *n,
                           const void *k, const double *alpha, const double *a, const void *lda,
                           const double *b, const void *ldb, const double *beta, double *c,
                           const void *ldc);
typedef void (*cr_sgemm_t)(const char *transa, const char *transb, const void *m, const void *n,
                           const void *k, const float *alpha, const float *a, const void *lda,
                           const float *b, const void *ldb, const float *beta, float *c,
                           const void *ldc);

enum cr_activation {
    CR_SIGMOID = 0,
    CR_RELU = 1,
    CR_TANH = 2,
    CR_LEAKY_RELU = 3,
    CR_IDENTITY = 4,
    CR_SOFTMAX = 5,
    CR_N_ACTIVATIONS /* the number of codes: a new one goes before it */
};

enum cr_status {
    CR_OK = 0,
    CR_BAD_SIZE = 1,
    CR_BAD_ACTIVATION = 2,
    CR_NO_DERIVATIVE = 3,
    CR_MISSING_BUFFER = 4
};

/* BLAS: int_bytes is 4 (LP64: int arguments) or 8 (ILP64: 64-bit integer arguments).
 * Either pointer may be NULL (C loops for that dtype). */
int cr_set_blas(cr_dgemm_t dgemm, cr_sgemm_t sgemm, int int_bytes);
/* Products with n * n_prev * m below threshold use the C loops (0: always BLAS). */
int cr_set_blas_threshold(long long threshold);
long long cr_get_blas_threshold(void);

/* Z = W A_prev + b; A = g(Z). */
int cr_dense_forward_f64(const double *A_prev, const double *W, const double *b, int activation,
                         double alpha, double *Z, double *A, long long n, long long n_prev,
                         long long m);
int cr_dense_forward_f32(const float *A_prev, const float *W, const float *b, int activation,
                         float alpha, float *Z, float *A, long long n, long long n_prev,
                         long long m);

/* dW = s dZ A_prev^T + l2 W; db = s sum_k dZ;
 * dA_prev = (W^T dZ) * mask_prev (mask_prev may be NULL); dZ_prev = dA_prev * g'(Z_prev).
 * dZ_prev NULL (input layer): Z_prev is not read and W^T dZ is skipped unless dA_prev is given.
 * dA_prev NULL: not written. dW NULL: dW is not computed. */
/* The same with A_prev = X a view: rows lda apart (x_rows 0: (n_prev, m), a column block of
 * a wider array), or X given as m rows of n_prev entries lda apart (x_rows 1: X_rows^T). */
int cr_dense_forward_view_f64(const double *X, long long lda, int x_rows, const double *W,
                              const double *b, int activation, double alpha, double *Z,
                              double *A, long long n, long long n_prev, long long m);
int cr_dense_forward_view_f32(const float *X, long long lda, int x_rows, const float *W,
                              const float *b, int activation, float alpha, float *Z, float *A,
                              long long n, long long n_prev, long long m);

int cr_dense_backward_f64(const double *dZ, const double *A_prev, const double *W,
                          const double *Z_prev, const double *mask_prev, int activation_prev,
                          double alpha_prev, double s, double l2, double *dZ_prev, double *dW,
                          double *db, double *dA_prev, long long n, long long n_prev,
                          long long m);
int cr_dense_backward_f32(const float *dZ, const float *A_prev, const float *W,
                          const float *Z_prev, const float *mask_prev, int activation_prev,
                          float alpha_prev, float s, float l2, float *dZ_prev, float *dW,
                          float *db, float *dA_prev, long long n, long long n_prev, long long m);

/* max_k |x[k]| as a double; +inf if any x[k] is not finite (or size < 1). */
double cr_max_abs_f64(const double *x, long long size);
double cr_max_abs_f32(const float *x, long long size);

/* param -= learning_rate * grad, elementwise (param is both input and output). */
int cr_sgd_update_f64(double *param, const double *grad, double learning_rate, long long size);
int cr_sgd_update_f32(float *param, const float *grad, float learning_rate, long long size);

/* 1 if every x[i] is finite, else 0 (the return value is the answer, not a status). */
int cr_all_finite_f64(const double *x, long long size);
int cr_all_finite_f32(const float *x, long long size);

