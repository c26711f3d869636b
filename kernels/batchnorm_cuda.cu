/* BatchNorm1d, CUDA (CPU twin: batchnorm_cpu.c), PyTorch semantics:
 *   training:  mean_c = sum_b x / B,  var_c = sum_b (x - mean)^2 / B (biased),
 *              y = gamma * (x - mean) * rstd + beta,  rstd = 1/sqrt(var + eps),
 *              running_mean = (1-m) running_mean + m mean,
 *              running_var  = (1-m) running_var  + m var * B/(B-1)  (unbiased)
 *   inference: y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta
 *
 * One launch per call. A block owns 32 features (threadIdx.x, so a warp reads
 * 32 consecutive floats of a row) and all B rows of them (threadIdx.y strides
 * over the batch). It reduces its columns in shared memory in a fixed order
 * (deterministic, no atomics), in double as the CPU reference does, two-pass
 * (mean, then squared deviations), updates the running statistics, and then
 * writes the normalised outputs: statistics and elementwise pass fused.
 * Elementwise arithmetic uses __f*_rn (no FMA contraction) in the CPU's
 * operation order, so with equal statistics the outputs are the CPU's bit for
 * bit. */
#include "cuda_common.cuh"

#define DS_BN_COLS 32
#define DS_BN_ROWS 16

/* Sum of v over threadIdx.y for each column; valid in every thread of the column. */
__device__ __forceinline__ double bn_column_sum(double v, double (*red)[DS_BN_COLS + 1]) {
  __syncthreads(); /* red may still be read from the previous reduction */
  red[threadIdx.y][threadIdx.x] = v;
  __syncthreads();
  double s = 0.0;
  for (int r = 0; r < DS_BN_ROWS; r++) s += red[r][threadIdx.x];
  return s;
}

/* out[B,C], mean[C], rstd[C], running_mean[C], running_var[C] <- inp[B,C], gamma[C], beta[C]
 * out may alias inp (each element is read before it is written, by the same thread). */
static __global__ void batchnorm_forward_kernel(float *out, float *mean, float *rstd, float *running_mean,
                                                float *running_var, const float *inp, const float *gamma,
                                                const float *beta, int B, int C, int training, float momentum,
                                                float eps) {
  __shared__ double red[DS_BN_ROWS][DS_BN_COLS + 1];
  int c = blockIdx.x * DS_BN_COLS + threadIdx.x;
  int col = c < C;
  float mu = 0.0f, rs = 0.0f;
  if (training) {
    double sum = 0.0;
    if (col)
      for (int b = threadIdx.y; b < B; b += DS_BN_ROWS) sum += inp[(size_t)b * C + c];
    double dmean = bn_column_sum(sum, red) / B;
    double ss = 0.0;
    if (col)
      for (int b = threadIdx.y; b < B; b += DS_BN_ROWS) {
        double d = inp[(size_t)b * C + c] - dmean;
        ss += d * d;
      }
    ss = bn_column_sum(ss, red);
    double var = ss / B;
    mu = (float)dmean;
    rs = (float)(1.0 / sqrt(var + eps));
    if (col && threadIdx.y == 0) {
      mean[c] = mu;
      rstd[c] = rs;
      double unbiased = B > 1 ? ss / (B - 1) : var;
      /* __d*_rn: the CPU's separate multiply and add, not a DFMA */
      running_mean[c] = (float)__dadd_rn(__dmul_rn(1.0 - momentum, running_mean[c]), __dmul_rn(momentum, dmean));
      running_var[c] = (float)__dadd_rn(__dmul_rn(1.0 - momentum, running_var[c]), __dmul_rn(momentum, unbiased));
    }
  } else if (col) {
    mu = running_mean[c];
    rs = (float)(1.0 / sqrt((double)running_var[c] + eps));
  }
  if (!col) return;
  float g = gamma[c], bt = beta[c];
  for (int b = threadIdx.y; b < B; b += DS_BN_ROWS) {
    size_t i = (size_t)b * C + c;
    out[i] = __fadd_rn(__fmul_rn(g, __fmul_rn(__fsub_rn(inp[i], mu), rs)), bt);
  }
}

/* dinp[B,C]; dgamma[C] +=, dbeta[C] += <- dout[B,C], inp[B,C], mean[C], rstd[C], gamma[C]
 * dx = rstd * (gamma*dy - k1 - xhat*k2),  k1 = gamma*sum(dy)/B,  k2 = gamma*sum(dy*xhat)/B.
 * dinp may alias dout (same reasoning as the forward). */
static __global__ void batchnorm_backward_kernel(float *dinp, float *dgamma, float *dbeta, const float *dout,
                                                 const float *inp, const float *mean, const float *rstd,
                                                 const float *gamma, int B, int C) {
  __shared__ double red[DS_BN_ROWS][DS_BN_COLS + 1];
  int c = blockIdx.x * DS_BN_COLS + threadIdx.x;
  int col = c < C;
  float mu = col ? mean[c] : 0.0f, rs = col ? rstd[c] : 0.0f, g = col ? gamma[c] : 0.0f;
  double sum_dy = 0.0, sum_dy_xhat = 0.0;
  if (col)
    for (int b = threadIdx.y; b < B; b += DS_BN_ROWS) {
      size_t i = (size_t)b * C + c;
      float xhat = __fmul_rn(__fsub_rn(inp[i], mu), rs);
      sum_dy += dout[i];
      sum_dy_xhat += (double)dout[i] * xhat;
    }
  sum_dy = bn_column_sum(sum_dy, red);
  sum_dy_xhat = bn_column_sum(sum_dy_xhat, red);
  if (!col) return;
  if (threadIdx.y == 0) {
    dbeta[c] += (float)sum_dy;
    dgamma[c] += (float)sum_dy_xhat;
  }
  float k1 = (float)(g * sum_dy / B);
  float k2 = (float)(g * sum_dy_xhat / B);
  for (int b = threadIdx.y; b < B; b += DS_BN_ROWS) {
    size_t i = (size_t)b * C + c;
    float xhat = __fmul_rn(__fsub_rn(inp[i], mu), rs);
    dinp[i] = __fmul_rn(rs, __fsub_rn(__fsub_rn(__fmul_rn(g, dout[i]), k1), __fmul_rn(xhat, k2)));
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
