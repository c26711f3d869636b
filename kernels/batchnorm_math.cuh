/* BatchNorm1d on the device, in pieces shared by batchnorm_cuda.cu and the
 * fused hidden-layer kernels of hidden_cuda.cu (formulas: batchnorm_cuda.cu).
 *
 * The layout: a block owns DS_BN_COLS features (threadIdx.x, so a warp reads
 * 32 consecutive floats of a row) and all B rows of them (threadIdx.y strides
 * over the batch). Column sums are reduced in shared memory in a fixed order,
 * in double as the CPU reference does: deterministic, no atomics. Elementwise
 * arithmetic uses __f*_rn (no FMA contraction) in the CPU's operation order. */
#ifndef DS_BATCHNORM_MATH_CUH
#define DS_BATCHNORM_MATH_CUH

#define DS_BN_COLS 32
#define DS_BN_ROWS 16

typedef double ds_bn_scratch[DS_BN_ROWS][DS_BN_COLS + 1];

/* Sum of v over threadIdx.y for each column; valid in every thread of the
 * column. Every thread of the block must call it (it holds barriers). */
__device__ __forceinline__ double bn_column_sum(double v, ds_bn_scratch red) {
  __syncthreads(); /* red may still be read from the previous reduction */
  red[threadIdx.y][threadIdx.x] = v;
  __syncthreads();
  double s = 0.0;
  for (int r = 0; r < DS_BN_ROWS; r++) s += red[r][threadIdx.x];
  return s;
}

/* The normalisation of column c of inp[B,C] (col: c < C) into *mu, *rs.
 * training: two-pass batch mean and biased variance, saved to mean/rstd[c],
 * running statistics updated with momentum (unbiased variance);
 * inference: from the running statistics. Every thread must call it. */
__device__ __forceinline__ void bn_column_statistics(float *mu, float *rs, float *mean, float *rstd,
                                                     float *running_mean, float *running_var, const float *inp,
                                                     int B, int C, int c, int col, int training, float momentum,
                                                     float eps, ds_bn_scratch red) {
  *mu = 0.0f;
  *rs = 0.0f;
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
    *mu = (float)dmean;
    *rs = (float)(1.0 / sqrt(var + eps));
    if (col && threadIdx.y == 0) {
      mean[c] = *mu;
      rstd[c] = *rs;
      double unbiased = B > 1 ? ss / (B - 1) : var;
      /* __d*_rn: the CPU's separate multiply and add, not a DFMA */
      running_mean[c] = (float)__dadd_rn(__dmul_rn(1.0 - momentum, running_mean[c]), __dmul_rn(momentum, dmean));
      running_var[c] = (float)__dadd_rn(__dmul_rn(1.0 - momentum, running_var[c]), __dmul_rn(momentum, unbiased));
    }
  } else if (col) {
    *mu = running_mean[c];
    *rs = (float)(1.0 / sqrt((double)running_var[c] + eps));
  }
}

/* xhat = (x - mu) * rs */
__device__ __forceinline__ float bn_xhat(float x, float mu, float rs) { return __fmul_rn(__fsub_rn(x, mu), rs); }

/* y = gamma * xhat + beta */
__device__ __forceinline__ float bn_normalise(float x, float mu, float rs, float g, float bt) {
  return __fadd_rn(__fmul_rn(g, bn_xhat(x, mu, rs)), bt);
}

/* The backward's per-feature step: reduce each thread's partial sum(dy) and
 * sum(dy*xhat) over the column, accumulate dbeta[c] += sum(dy) and
 * dgamma[c] += sum(dy*xhat) (col: c < C), and return the coefficients of
 * bn_dx: k1 = gamma*sum(dy)/B, k2 = gamma*sum(dy*xhat)/B. Every thread must
 * call it (it holds barriers). */
__device__ __forceinline__ void bn_backward_coefficients(float *k1, float *k2, float *dgamma, float *dbeta,
                                                         double sum_dy, double sum_dy_xhat, int c, int col,
                                                         float g, int B, ds_bn_scratch red) {
  sum_dy = bn_column_sum(sum_dy, red);
  sum_dy_xhat = bn_column_sum(sum_dy_xhat, red);
  if (col && threadIdx.y == 0) {
    dbeta[c] += (float)sum_dy;
    dgamma[c] += (float)sum_dy_xhat;
  }
  *k1 = (float)(g * sum_dy / B);
  *k2 = (float)(g * sum_dy_xhat / B);
}

/* dx = rstd * (gamma*dy - k1 - xhat*k2),  k1 = gamma*sum(dy)/B,  k2 = gamma*sum(dy*xhat)/B */
__device__ __forceinline__ float bn_dx(float dy, float xhat, float rs, float g, float k1, float k2) {
  return __fmul_rn(rs, __fsub_rn(__fsub_rn(__fmul_rn(g, dy), k1), __fmul_rn(xhat, k2)));
}

#endif
