/* A hidden layer after its linear map (BatchNorm -> activation -> dropout),
 * CPU reference (CUDA twin: hidden_cuda.cu, one fused kernel each way).
 * The reference is the three ops in sequence, so that the fused CUDA kernels
 * are checked against exactly what the separate ops compute; `a` holds h
 * (the BatchNorm output) until the activation overwrites it in place. */
#include "kernels_cpu.h"

/* a[B,C], o[B,C] (optional), mean/rstd[C] (BN training), running_mean/var[C] (BN)
 *   <- z[B,C], gamma/beta[C] (BN) */
void hidden_forward_cpu(float *a, float *o, float *mean, float *rstd, float *running_mean, float *running_var,
                        const float *z, const float *gamma, const float *beta, int B, int C, int training,
                        const ds_hidden_spec *spec, const uint64_t *step) {
  size_t n = (size_t)B * (size_t)C;
  const float *h = z;
  if (spec->batchnorm) {
    batchnorm_forward_cpu(a, mean, rstd, running_mean, running_var, z, gamma, beta, B, C, training,
                          spec->bn_momentum, spec->bn_eps);
    h = a;
  }
  activation_forward_cpu(a, h, n, spec->act, spec->slope);
  if (o) dropout_forward_cpu(o, a, n, spec->p, spec->form, training, spec->seed, spec->stream, spec->element0, step);
}

/* dz[B,C]; dgamma/dbeta[C] += (BN) <- dout[B,C] (overwritten), a[B,C], z[B,C], mean/rstd/gamma[C] (BN) */
void hidden_backward_cpu(float *dz, float *dgamma, float *dbeta, float *dout, const float *a, const float *z,
                         const float *mean, const float *rstd, const float *gamma, int B, int C, int has_dropout,
                         const ds_hidden_spec *spec, const uint64_t *step) {
  size_t n = (size_t)B * (size_t)C;
  if (has_dropout) dropout_backward_cpu(dout, dout, n, spec->p, spec->form, spec->seed, spec->stream, spec->element0, step);
  if (!spec->batchnorm) {
    activation_backward_cpu(dz, dout, a, n, spec->act, spec->slope);
    return;
  }
  activation_backward_cpu(dout, dout, a, n, spec->act, spec->slope);
  batchnorm_backward_cpu(dz, dgamma, dbeta, dout, z, mean, rstd, gamma, B, C);
}
