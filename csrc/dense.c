#include "dense.h"

/* param -= learning_rate * grad, elementwise. */
int cr_sgd_update_f64(double *param, const double *grad, double learning_rate, long long size)
{
    if (size < 0) return 1;
    for (long long i = 0; i < size; ++i) param[i] -= learning_rate * grad[i];
    return 0;
}

int cr_sgd_update_f32(float *param, const float *grad, float learning_rate, long long size)
{
    if (size < 0) return 1;
    for (long long i = 0; i < size; ++i) param[i] -= learning_rate * grad[i];
    return 0;
}
