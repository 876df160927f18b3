/* chainrule C kernels: declarations shared by dense.c (#include) and cffi's cdef(). */
int cr_sgd_update_f64(double *param, const double *grad, double learning_rate, long long size);
int cr_sgd_update_f32(float *param, const float *grad, float learning_rate, long long size);
