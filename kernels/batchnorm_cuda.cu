/* BatchNorm1d, CUDA (CPU twin: batchnorm_cpu.c), PyTorch semantics:
 *   training:  mean_c = sum_b x / B,  var_c = sum_b (x - mean)^2 / B (biased),
 *              y = gamma * (x - mean) * rstd + beta,  rstd = 1/sqrt(var + eps),
 *              running_mean = (1-m) running_mean + m mean,
 *              running_var  = (1-m) running_var  + m var * B/(B-1)  (unbiased)
 *   inference: y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta
 *
 * One launch per call, in the layout of batchnorm_math.cuh (shared with the
 * fused hidden-layer kernels): a block owns 32 features and all B rows of
 * them, reduces its columns in a fixed order in double (two-pass: mean, then
 * squared deviations), updates the running statistics, and then writes the
 * normalised outputs: statistics and elementwise pass fused. With equal
 * statistics the outputs are the CPU's bit for bit. */
#include "batchnorm_math.cuh"
#include "cuda_common.cuh"

/* out[B,C], mean[C], rstd[C], running_mean[C], running_var[C] <- inp[B,C], gamma[C], beta[C]
 * out may alias inp (each element is read before it is written, by the same thread). */
static __global__ void batchnorm_forward_kernel(float *out, float *mean, float *rstd, float *running_mean,
                                                float *running_var, const float *inp, const float *gamma,
                                                const float *beta, int B, int C, int training, float momentum,
                                                float eps) {
  __shared__ ds_bn_scratch red;
  int c = blockIdx.x * DS_BN_COLS + threadIdx.x;
  int col = c < C;
  float mu, rs;
  bn_column_statistics(&mu, &rs, mean, rstd, running_mean, running_var, inp, B, C, c, col, training, momentum,
                       eps, red);
  if (!col) return;
  float g = gamma[c], bt = beta[c];
  for (int b = threadIdx.y; b < B; b += DS_BN_ROWS) {
    size_t i = (size_t)b * C + c;
    out[i] = bn_normalise(inp[i], mu, rs, g, bt);
  }
}

/* dinp[B,C]; dgamma[C] +=, dbeta[C] += <- dout[B,C], inp[B,C], mean[C], rstd[C], gamma[C]
 * dx = rstd * (gamma*dy - k1 - xhat*k2),  k1 = gamma*sum(dy)/B,  k2 = gamma*sum(dy*xhat)/B.
 * dinp may alias dout (same reasoning as the forward). */
static __global__ void batchnorm_backward_kernel(float *dinp, float *dgamma, float *dbeta, const float *dout,
                                                 const float *inp, const float *mean, const float *rstd,
                                                 const float *gamma, int B, int C) {
  __shared__ ds_bn_scratch red;
  int c = blockIdx.x * DS_BN_COLS + threadIdx.x;
  int col = c < C;
  float mu = col ? mean[c] : 0.0f, rs = col ? rstd[c] : 0.0f, g = col ? gamma[c] : 0.0f;
  double sum_dy = 0.0, sum_dy_xhat = 0.0;
  if (col)
    for (int b = threadIdx.y; b < B; b += DS_BN_ROWS) {
      size_t i = (size_t)b * C + c;
      sum_dy += dout[i];
      sum_dy_xhat += (double)dout[i] * bn_xhat(inp[i], mu, rs);
    }
  float k1, k2;
  bn_backward_coefficients(&k1, &k2, dgamma, dbeta, sum_dy, sum_dy_xhat, c, col, g, B, red);
  if (!col) return;
  for (int b = threadIdx.y; b < B; b += DS_BN_ROWS) {
    size_t i = (size_t)b * C + c;
    dinp[i] = bn_dx(dout[i], bn_xhat(inp[i], mu, rs), rs, g, k1, k2);
  }
}

static void batchnorm_forward_launch(float *out, float *mean, float *rstd, float *running_mean,
                                     float *running_var, const float *inp, const float *gamma,
                                     const float *beta, int B, int C, int training, float momentum, float eps) {
  unsigned int blocks = (unsigned int)((C + DS_BN_COLS - 1) / DS_BN_COLS);
  batchnorm_forward_kernel<<<blocks, dim3(DS_BN_COLS, DS_BN_ROWS), 0, ds_cuda.stream>>>(
      out, mean, rstd, running_mean, running_var, inp, gamma, beta, B, C, training, momentum, eps);
  DS_LAUNCH_CHECK("batchnorm_forward_kernel");
}

static void batchnorm_backward_launch(float *dinp, float *dgamma, float *dbeta, const float *dout,
                                      const float *inp, const float *mean, const float *rstd,
                                      const float *gamma, int B, int C) {
  unsigned int blocks = (unsigned int)((C + DS_BN_COLS - 1) / DS_BN_COLS);
  batchnorm_backward_kernel<<<blocks, dim3(DS_BN_COLS, DS_BN_ROWS), 0, ds_cuda.stream>>>(
      dinp, dgamma, dbeta, dout, inp, mean, rstd, gamma, B, C);
  DS_LAUNCH_CHECK("batchnorm_backward_kernel");
}

/* out[B,C], mean[C], rstd[C], running_mean[C], running_var[C]
 *   <- inp[B,C], gamma[C], beta[C] */
extern "C" void batchnorm_forward_cuda(float *out, float *mean, float *rstd, float *running_mean,
                                       float *running_var, const float *inp, const float *gamma,
                                       const float *beta, int B, int C, int training, float momentum, float eps) {
  DS_CUDA_REQUIRE(B >= 1 && C >= 1, "batchnorm_forward_cuda", "bad shape B=%d C=%d", B, C);
  DS_CUDA_REQUIRE(out && running_mean && running_var && inp && gamma && beta, "batchnorm_forward_cuda", "NULL buffer");
  DS_CUDA_REQUIRE(!training || (mean && rstd), "batchnorm_forward_cuda", "training needs mean and rstd buffers");
  batchnorm_forward_launch(out, mean, rstd, running_mean, running_var, inp, gamma, beta, B, C, training,
                           momentum, eps);
}

/* dinp[B,C]; dgamma[C] +=, dbeta[C] +=
 *   <- dout[B,C], inp[B,C], mean[C], rstd[C], gamma[C] */
extern "C" void batchnorm_backward_cuda(float *dinp, float *dgamma, float *dbeta, const float *dout,
                                        const float *inp, const float *mean, const float *rstd,
                                        const float *gamma, int B, int C) {
  DS_CUDA_REQUIRE(B >= 1 && C >= 1, "batchnorm_backward_cuda", "bad shape B=%d C=%d", B, C);
  DS_CUDA_REQUIRE(dinp && dgamma && dbeta && dout && inp && mean && rstd && gamma, "batchnorm_backward_cuda",
                  "NULL buffer");
  batchnorm_backward_launch(dinp, dgamma, dbeta, dout, inp, mean, rstd, gamma, B, C);
}
