/* The CPU reference ops. Each is documented (formula, shapes) in
 * descent/backend.h and at its definition; the CUDA twins in *_cuda.cu have
 * the same stems, argument order and local names. */
#ifndef DS_KERNELS_CPU_H
#define DS_KERNELS_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "descent/backend.h"

void gather_forward_cpu(float *x, int32_t *y, const uint8_t *images, const uint8_t *labels,
                        const int32_t *indices, int B, int D, float scale, float shift);
void linear_forward_cpu(float *out, const float *inp, const float *weight, const float *bias,
                        int B, int C_in, int C_out);
void linear_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int B, int C_in, int C_out);
void activation_forward_cpu(float *out, const float *inp, size_t n, ds_activation act, float slope);
void activation_backward_cpu(float *dinp, const float *dout, const float *out, size_t n,
                             ds_activation act, float slope);
void batchnorm_forward_cpu(float *out, float *mean, float *rstd, float *running_mean,
                           float *running_var, const float *inp, const float *gamma,
                           const float *beta, int B, int C, int training, float momentum, float eps);
void batchnorm_backward_cpu(float *dinp, float *dgamma, float *dbeta, const float *dout,
                            const float *inp, const float *mean, const float *rstd,
                            const float *gamma, int B, int C);
void dropout_forward_cpu(float *out, const float *inp, size_t n, float p, ds_dropout_form form,
                         int training, uint64_t seed, uint32_t stream, uint64_t element0, const uint64_t *step);
void dropout_backward_cpu(float *dinp, const float *dout, size_t n, float p, ds_dropout_form form,
                          uint64_t seed, uint32_t stream, uint64_t element0, const uint64_t *step);
void hidden_forward_cpu(float *a, float *o, float *mean, float *rstd, float *running_mean, float *running_var,
                        const float *z, const float *gamma, const float *beta, int B, int C, int training,
                        const ds_hidden_spec *spec, const uint64_t *step);
void hidden_backward_cpu(float *dz, float *dgamma, float *dbeta, float *dout, const float *a, const float *z,
                         const float *mean, const float *rstd, const float *gamma, int B, int C, int has_dropout,
                         const ds_hidden_spec *spec, const uint64_t *step);
void batchnorm_sums_cpu(double *sums, const float *inp, int B, int C, int pass, int count);
void batchnorm_forward_synced_cpu(float *out, float *mean, float *rstd, float *running_mean, float *running_var,
                                  const float *inp, const float *gamma, const float *beta, const double *sums,
                                  int B, int C, int count, float momentum, float eps);
void batchnorm_backward_sums_cpu(double *sums, float *dgamma, float *dbeta, const float *dout, const float *inp,
                                 const float *mean, const float *rstd, int B, int C);
void batchnorm_backward_synced_cpu(float *dinp, const float *dout, const float *inp, const float *mean,
                                   const float *rstd, const float *gamma, const double *sums, int B, int C,
                                   int count);
void softmax_xent_cpu(float *dlogits, double *acc, const float *logits, const int32_t *labels,
                      int B, int C, float grad_scale);
void optim_step_cpu(const ds_optim_buffers *buf, size_t n, size_t n_decay,
                    const ds_optim_config *cfg, const ds_optim_scalars *s);
void axpy_cpu(float *out, const float *a, float alpha, const float *b, size_t n);
void monitor_stats_cpu(double *out, const float *x, int B, int C, float lo, float hi);
void monitor_sumsq_cpu(double *out, const float *x, const float *y, size_t n);
void monitor_nonfinite_cpu(int64_t *rec, const float *x, size_t n, const int64_t *step);
/* monitor_nonfinite_cpu's record once the parts have scanned x[n]:
 * first_bad[DS_POOL_PARTS_MAX] holds each part's first failing block of
 * DS_NONFINITE_BLOCK elements, or n (parts that did not run too); the first
 * such block is searched for the element (nothing recorded when none). */
void monitor_nonfinite_record_cpu(int64_t *rec, const float *x, size_t n, const size_t *first_bad,
                                  const int64_t *step);

#endif
