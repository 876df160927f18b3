/* chainrule C training engine: declarations shared by train.c (through dense.c) and cdef().
 *
 * One call of cr_fit_epochs runs a chunk of mini-batch training steps (possibly crossing
 * epoch ends): the gather of each batch from examples-contiguous data, inverted dropout with
 * Philox4x32-10 masks, forward, the weighted cost with L2, backward, the update-safety rule
 * and the update of gd / momentum / rmsprop / adam, with the formulas of chainrule's
 * training step (FitRun) and optim.py (issue 12).
 *
 * Layout: the data are examples-contiguous, XT (m, n0) and YT (m, nL), C-contiguous (the
 * transpose of the course's X (n0, m)). Internally the activations of a batch are rows,
 * Z^T = A_prev^T W^T + b^T (mb, n), through transposed GEMM flags; W (n, n_prev), b (n, 1)
 * and the optimiser state keep the course's shapes.
 */

enum cr_loss {
    CR_BINARY_CROSSENTROPY = 0,
    CR_CATEGORICAL_CROSSENTROPY = 1,
    CR_MEAN_SQUARED_ERROR = 2
};

enum cr_optimizer {
    CR_GD = 0,
    CR_MOMENTUM = 1,
    CR_RMSPROP = 2,
    CR_ADAM = 3
};

/* Statuses beyond enum cr_status (argument errors: the Python wrapper checks them first). */
enum cr_train_status {
    CR_BAD_INDEX = 5,
    CR_BAD_LOSS = 6,
    CR_BAD_OPTIMIZER = 7,
    CR_BAD_PROBABILITY = 8,
    CR_SMALL_WORKSPACE = 9,
    CR_BAD_LAYOUT = 10
};

/* What made a step unsafe (cr_fit_result.what), the first found in this order (the
 * reference engine's): the cost, the gradients (dW1, db1, dW2, ...), the new optimiser
 * state (s before v; per prefix dW1, dW2, ..., then db1, db2, ...), the new parameters
 * (W1, b1, W2, ...). */
enum cr_nonfinite {
    CR_FINITE = 0,
    CR_NONFINITE_COST = 1,
    CR_NONFINITE_GRADIENT = 2,
    CR_NONFINITE_PARAMETER = 3,
    CR_NONFINITE_STATE = 4
};

/* The network and the training options of a fit (fixed for a plan). */
struct cr_fit_config {
    long long n_layers;           /* L */
    const long long *dims;        /* L + 1 sizes n0 .. nL */
    const int *activation;        /* L codes of enum cr_activation (softmax: output only) */
    const double *alpha;          /* L leaky-ReLU slopes */
    int loss;                     /* enum cr_loss */
    const double *keep_prob;      /* L - 1 keep probabilities in (0, 1], or NULL: no dropout */
    long long mini_batch_size;    /* s >= 1 */
    double lambd;                 /* L2 strength >= 0 */
    int optimizer;                /* enum cr_optimizer */
    double hyper[4];              /* the plan's vector (beta1, beta2, epsilon, eps inside the
                                   * root: 1 sqrt(s + eps), 0 sqrt(s) + eps), as optim.py's
                                   * Optimizer.hyperparameters: momentum's beta is beta1,
                                   * RMSprop's beta2 */
    int n_threads;                /* threads of the engine's parallel parts (<= 1: one); the
                                   * BLAS it calls must then run single-threaded */
    double max_seconds;           /* > 0: return after the first step that ends this long
                                   * after the call began (with OpenMP; else not checked) */
    int x_columns;                /* 1: XT, YT are the course's X (n0, m) and Y (nL, m),
                                   * C-contiguous, read where they lie (no gather buffer;
                                   * perms must be NULL, else CR_BAD_LAYOUT): Network.step's
                                   * layout. 0: the examples as rows (above) */
    /* Batch norm (NULL batch_norm: none). A layer with batch_norm[l] != 0 (a hidden one) is
     * linear, batch norm, activation, dropout: its b[l] is its beta; bn_gamma[l] its gamma
     * (n, 1), bn_v_gamma[l] / bn_s_gamma[l] gamma's optimiser state (where the optimiser has
     * it), bn_mean[l] / bn_var[l] the running averages (updated once per applied step),
     * all arrays of the call's dtype, NULL for a layer without. A step whose update the
     * bounds cannot prove finite, or with anything not finite, or a batch of one, is
     * refused (refused = 1, what = CR_FINITE for the batch of one): the caller runs it on
     * the composition, which applies or refuses it. */
    const int *batch_norm;
    double bn_momentum;           /* the course's beta of the running averages */
    double bn_epsilon;            /* inside the square root */
    int bn_unbiased;              /* 1: the running variance takes mb/(mb-1) sigma^2 */
    void **bn_gamma, **bn_v_gamma, **bn_s_gamma, **bn_mean, **bn_var;
};

/* Where a chunk ended. */
struct cr_fit_result {
    long long steps;   /* steps applied */
    int refused;       /* 1: stopped at a step that was not applied (epoch, batch) */
    long long epoch;   /* the next step's epoch (index into the chunk's arrays), batch index */
    long long batch;   /*   within it: the refused step, or where the next call continues */
    int what;          /* enum cr_nonfinite: what was not finite in the refused step */
    long long layer;   /* its layer (1-based), 0 for the cost */
    int bias;          /* 1: it was b (db, or the state of b), 0: W */
    int state;         /* for CR_NONFINITE_STATE: 's' or 'v' (the optimiser's s or v) */
};

/* 1 if the engine was compiled with OpenMP (n_threads > 1 can run in parallel), else 0. */
int cr_openmp(void);

/* Up to these many multiply-adds (a product) or entries (an element-wise pass) a part of a
 * step runs on one thread (defaults 262144 and 32768); CR_BAD_SIZE for a negative or NaN. */
int cr_set_parallel_thresholds(double macs, double entries);
void cr_get_parallel_thresholds(double *macs, double *entries);

/* Philox4x32-10 (Salmon et al. 2011, Random123's philox4x32 with 10 rounds). */
int cr_philox4x32_10(const unsigned int *counter, const unsigned int *key, unsigned int *out);

/* The scaled dropout mask of hidden layer `layer`, batch `batch` of an epoch with 64-bit key
 * `key`: out (n, mb) in the course's layout, entry (i, j) with q = i mb + j from the Philox
 * counter (q >> 2, layer, batch, 0), key (low, high 32 bits of key), word q & 3:
 * keep when (word >> 8) 2^-24 < keep_prob; out = keep / keep_prob (in the dtype). */
int cr_dropout_mask_f64(unsigned long long key, long long layer, long long batch,
                        double keep_prob, double *out, long long n, long long mb);
int cr_dropout_mask_f32(unsigned long long key, long long layer, long long batch,
                        double keep_prob, float *out, long long n, long long mb);

/* Bytes of the workspace cr_fit_epochs needs for config and a dtype of real_bytes (8: f64,
 * 4: f32) bytes; -1 for an invalid config. It holds the gathered batch, the activations,
 * masks and gradients of one batch of mini_batch_size examples: no allocation per step. */
long long cr_fit_workspace_bytes(const struct cr_fit_config *config, int real_bytes);

/* n_steps training steps (fewer when config->max_seconds ran out) from batch k0 of epoch 0
 * of the chunk, over epochs 0 .. n_epochs-1: epoch e uses perms + e m (NULL: identity),
 * learning rate lrs[e] (any value: a rate that makes a new parameter non-finite refuses the
 * step), dropout key keys[e].
 * Batch k of an epoch = examples order[k s : (k+1) s] (the last one smaller).
 * w (m,) example weights or NULL. W[l], b[l] (l = 0 .. L-1) updated in place; v_W, v_b
 * (momentum, adam) and s_W, s_b (rmsprop, adam) the optimiser state in the shapes of W, b
 * (NULL where the optimiser has none); *t adam's step count (t + 1 in the bias correction of
 * the next step; incremented by every applied adam step). Per epoch e of the chunk:
 * cost_sum[e] += J_b sum(w_b), weight_sum[e] += sum(w_b) (mb without weights) and, if
 * correct is not NULL, correct[e] += the batch's correct predictions (one output unit:
 * (A > 0.5) == (Y > 0.5); several: the argmaxes agree).
 * A step is applied only if its cost, every gradient, every new parameter and every new
 * optimiser-state entry are finite; otherwise nothing of it is written, and the call returns
 * with result->refused = 1 at that step (a call that returns a non-zero status has found a bad
 * argument; only an index of perms outside [0, m) is found after steps were applied).
 * work: cr_fit_workspace_bytes(config, sizeof(REAL)) bytes, any alignment. */
int cr_fit_epochs_f64(const double *XT, const double *YT, const double *w,
                      const long long *perms, const double *lrs, const unsigned long long *keys,
                      const struct cr_fit_config *config, double **W, double **b,
                      double **v_W, double **v_b, double **s_W, double **s_b, long long *t,
                      double *cost_sum, double *weight_sum, long long *correct,
                      struct cr_fit_result *result, void *work, long long work_bytes,
                      long long m, long long n_epochs, long long k0, long long n_steps);
int cr_fit_epochs_f32(const float *XT, const float *YT, const float *w,
                      const long long *perms, const double *lrs, const unsigned long long *keys,
                      const struct cr_fit_config *config, float **W, float **b,
                      float **v_W, float **v_b, float **s_W, float **s_b, long long *t,
                      double *cost_sum, double *weight_sum, long long *correct,
                      struct cr_fit_result *result, void *work, long long work_bytes,
                      long long m, long long n_epochs, long long k0, long long n_steps);
