/* BatchNorm of a batch split across processes (--sync-bn), CUDA (CPU twin:
 * batchnorm_sync_cpu.c; contract: descent/backend.h, batchnorm_sums).
 * batchnorm_cuda.cu's column layout and pieces (batchnorm_math.cuh): a block
 * owns DS_BN_COLS features and all B rows, sums in double in a fixed order
 * (no atomics), elementwise arithmetic in the CPU's operation order. The
 * all-reduce of the sums between the phases is the caller's (host/dist: NCCL
 * on this stream, inside a captured graph too). */
#include "batchnorm_math.cuh"
#include "cuda_common.cuh"

/* pass 0: sums[c] = sum_b inp;  pass 1: sums[C+c] = sum_b (inp - sums[c]/count)^2 */
static __global__ void batchnorm_sums_kernel(double *sums, const float *inp, int B, int C, int pass, int count) {
  __shared__ ds_bn_scratch red;
  int c = blockIdx.x * DS_BN_COLS + threadIdx.x;
  int col = c < C;
  double dmean = pass == 1 && col ? sums[c] / count : 0.0;
  double s = 0.0;
  if (col)
    for (int b = threadIdx.y; b < B; b += DS_BN_ROWS) {
      double x = inp[(size_t)b * C + c];
      if (pass == 0) s += x;
      else {
        double d = x - dmean;
        s += d * d;
      }
    }
  s = bn_column_sum(s, red);
  if (col && threadIdx.y == 0) sums[pass == 0 ? c : C + c] = s;
}

/* out[B,C], mean/rstd[C], running_mean/var[C] <- inp[B,C], gamma/beta[C], sums[2C] */
static __global__ void batchnorm_forward_synced_kernel(float *out, float *mean, float *rstd, float *running_mean,
                                                       float *running_var, const float *inp, const float *gamma,
                                                       const float *beta, const double *sums, int B, int C,
                                                       int count, float momentum, float eps) {
  int c = blockIdx.x * DS_BN_COLS + threadIdx.x;
  if (c >= C) return;
  double dmean = sums[c] / count, ss = sums[C + c];
  double var = ss / count;
  float mu = (float)dmean, rs = (float)(1.0 / sqrt(var + eps));
  if (threadIdx.y == 0) {
    mean[c] = mu;
    rstd[c] = rs;
    double unbiased = count > 1 ? ss / (count - 1) : var;
    running_mean[c] = (float)__dadd_rn(__dmul_rn(1.0 - momentum, running_mean[c]), __dmul_rn(momentum, dmean));
    running_var[c] = (float)__dadd_rn(__dmul_rn(1.0 - momentum, running_var[c]), __dmul_rn(momentum, unbiased));
  }
  float g = gamma[c], bt = beta[c];
  for (int b = threadIdx.y; b < B; b += DS_BN_ROWS) {
    size_t i = (size_t)b * C + c;
    out[i] = bn_normalise(inp[i], mu, rs, g, bt);
  }
}

/* sums[2C] = local sum dy, sum dy*xhat; dbeta/dgamma[C] += them <- dout, inp[B,C], mean/rstd[C] */
static __global__ void batchnorm_backward_sums_kernel(double *sums, float *dgamma, float *dbeta, const float *dout,
                                                      const float *inp, const float *mean, const float *rstd, int B,
                                                      int C) {
  __shared__ ds_bn_scratch red;
  int c = blockIdx.x * DS_BN_COLS + threadIdx.x;
  int col = c < C;
  float mu = col ? mean[c] : 0.0f, rs = col ? rstd[c] : 0.0f;
  double sum_dy = 0.0, sum_dy_xhat = 0.0;
  if (col)
    for (int b = threadIdx.y; b < B; b += DS_BN_ROWS) {
      size_t i = (size_t)b * C + c;
      sum_dy += dout[i];
      sum_dy_xhat += (double)dout[i] * bn_xhat(inp[i], mu, rs);
    }
  sum_dy = bn_column_sum(sum_dy, red);
  sum_dy_xhat = bn_column_sum(sum_dy_xhat, red);
  if (col && threadIdx.y == 0) {
    sums[c] = sum_dy;
    sums[C + c] = sum_dy_xhat;
    dbeta[c] += (float)sum_dy;
    dgamma[c] += (float)sum_dy_xhat;
  }
}

/* dinp[B,C] <- dout, inp[B,C], mean/rstd/gamma[C], sums[2C] of the whole batch */
static __global__ void batchnorm_backward_synced_kernel(float *dinp, const float *dout, const float *inp,
                                                        const float *mean, const float *rstd, const float *gamma,
                                                        const double *sums, int B, int C, int count) {
  int c = blockIdx.x * DS_BN_COLS + threadIdx.x;
  if (c >= C) return;
  float mu = mean[c], rs = rstd[c], g = gamma[c];
  float k1 = (float)(g * sums[c] / count), k2 = (float)(g * sums[C + c] / count);
  for (int b = threadIdx.y; b < B; b += DS_BN_ROWS) {
    size_t i = (size_t)b * C + c;
    dinp[i] = bn_dx(dout[i], bn_xhat(inp[i], mu, rs), rs, g, k1, k2);
  }
}

static unsigned int column_blocks(int C) { return (unsigned int)((C + DS_BN_COLS - 1) / DS_BN_COLS); }

extern "C" void batchnorm_sums_cuda(double *sums, const float *inp, int B, int C, int pass, int count) {
  DS_CUDA_REQUIRE(B >= 1 && C >= 1 && count >= 1 && (pass == 0 || pass == 1), "batchnorm_sums_cuda",
                  "bad shape B=%d C=%d count=%d pass=%d", B, C, count, pass);
  DS_CUDA_REQUIRE(sums && inp, "batchnorm_sums_cuda", "NULL buffer");
  batchnorm_sums_kernel<<<column_blocks(C), dim3(DS_BN_COLS, DS_BN_ROWS), 0, ds_cuda.stream>>>(sums, inp, B, C, pass,
                                                                                               count);
  DS_LAUNCH_CHECK("batchnorm_sums_kernel");
}

extern "C" void batchnorm_forward_synced_cuda(float *out, float *mean, float *rstd, float *running_mean,
                                              float *running_var, const float *inp, const float *gamma,
                                              const float *beta, const double *sums, int B, int C, int count,
                                              float momentum, float eps) {
  DS_CUDA_REQUIRE(B >= 1 && C >= 1 && count > 1, "batchnorm_forward_synced_cuda", "bad shape B=%d C=%d count=%d", B,
                  C, count);
  DS_CUDA_REQUIRE(out && mean && rstd && running_mean && running_var && inp && gamma && beta && sums,
                  "batchnorm_forward_synced_cuda", "NULL buffer");
  batchnorm_forward_synced_kernel<<<column_blocks(C), dim3(DS_BN_COLS, DS_BN_ROWS), 0, ds_cuda.stream>>>(
      out, mean, rstd, running_mean, running_var, inp, gamma, beta, sums, B, C, count, momentum, eps);
  DS_LAUNCH_CHECK("batchnorm_forward_synced_kernel");
}

extern "C" void batchnorm_backward_sums_cuda(double *sums, float *dgamma, float *dbeta, const float *dout,
                                             const float *inp, const float *mean, const float *rstd, int B, int C) {
  DS_CUDA_REQUIRE(B >= 1 && C >= 1, "batchnorm_backward_sums_cuda", "bad shape B=%d C=%d", B, C);
  DS_CUDA_REQUIRE(sums && dgamma && dbeta && dout && inp && mean && rstd, "batchnorm_backward_sums_cuda",
                  "NULL buffer");
  batchnorm_backward_sums_kernel<<<column_blocks(C), dim3(DS_BN_COLS, DS_BN_ROWS), 0, ds_cuda.stream>>>(
      sums, dgamma, dbeta, dout, inp, mean, rstd, B, C);
  DS_LAUNCH_CHECK("batchnorm_backward_sums_kernel");
}

extern "C" void batchnorm_backward_synced_cuda(float *dinp, const float *dout, const float *inp, const float *mean,
                                               const float *rstd, const float *gamma, const double *sums, int B,
                                               int C, int count) {
  DS_CUDA_REQUIRE(B >= 1 && C >= 1 && count >= 1, "batchnorm_backward_synced_cuda", "bad shape B=%d C=%d count=%d", B,
                  C, count);
  DS_CUDA_REQUIRE(dinp && dout && inp && mean && rstd && gamma && sums && dinp != dout,
                  "batchnorm_backward_synced_cuda", "NULL or aliased buffer");
  batchnorm_backward_synced_kernel<<<column_blocks(C), dim3(DS_BN_COLS, DS_BN_ROWS), 0, ds_cuda.stream>>>(
      dinp, dout, inp, mean, rstd, gamma, sums, B, C, count);
  DS_LAUNCH_CHECK("batchnorm_backward_synced_kernel");
}
