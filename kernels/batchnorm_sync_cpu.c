/* BatchNorm of a batch split across processes (--sync-bn), CPU reference
 * (CUDA twin: batchnorm_sync_cuda.cu; contract: descent/backend.h,
 * batchnorm_sums). batchnorm_forward/backward_cpu in phases, so that the
 * per-feature sums can be all-reduced between them (host/dist): the formulas,
 * the double sums and the float roundings are batchnorm_cpu.c's, so one
 * process (count = B) gives its results bit for bit and N processes give them
 * up to the order in which the partial sums are added. */
#include <math.h>

#include "kernels_cpu.h"

/* pass 0: sums[c] = sum_b inp[b,c];  pass 1: sums[C+c] = sum_b (inp[b,c] - sums[c]/count)^2
 *   <- inp[B,C] */
void batchnorm_sums_cpu(double *sums, const float *inp, int B, int C, int pass, int count) {
  for (int c = 0; c < C; c++) {
    double s = 0.0;
    if (pass == 0) {
      for (int b = 0; b < B; b++) s += inp[(size_t)b * C + c];
      sums[c] = s;
    } else {
      double dmean = sums[c] / count;
      for (int b = 0; b < B; b++) {
        double d = inp[(size_t)b * C + c] - dmean;
        s += d * d;
      }
      sums[C + c] = s;
    }
  }
}

/* out[B,C], mean[C], rstd[C], running_mean[C], running_var[C]
 *   <- inp[B,C], gamma[C], beta[C], sums[2C] of the whole batch of `count` rows */
void batchnorm_forward_synced_cpu(float *out, float *mean, float *rstd, float *running_mean, float *running_var,
                                  const float *inp, const float *gamma, const float *beta, const double *sums,
                                  int B, int C, int count, float momentum, float eps) {
  for (int c = 0; c < C; c++) {
    double dmean = sums[c] / count, ss = sums[C + c];
    double var = ss / count;
    float mu = (float)dmean, rs = (float)(1.0 / sqrt(var + eps));
    mean[c] = mu;
    rstd[c] = rs;
    double unbiased = count > 1 ? ss / (count - 1) : var;
    running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * dmean);
    running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
    for (int b = 0; b < B; b++) {
      size_t i = (size_t)b * C + c;
      out[i] = gamma[c] * ((inp[i] - mu) * rs) + beta[c];
    }
  }
}

/* sums[c] = sum_b dout, sums[C+c] = sum_b dout * xhat; dbeta[C] +=, dgamma[C] +=
 *   <- dout[B,C], inp[B,C], mean[C], rstd[C] */
void batchnorm_backward_sums_cpu(double *sums, float *dgamma, float *dbeta, const float *dout, const float *inp,
                                 const float *mean, const float *rstd, int B, int C) {
  for (int c = 0; c < C; c++) {
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int b = 0; b < B; b++) {
      size_t i = (size_t)b * C + c;
      float xhat = (inp[i] - mean[c]) * rstd[c];
      sum_dy += dout[i];
      sum_dy_xhat += (double)dout[i] * xhat;
    }
    sums[c] = sum_dy;
    sums[C + c] = sum_dy_xhat;
    dbeta[c] += (float)sum_dy;
    dgamma[c] += (float)sum_dy_xhat;
  }
}

/* dinp[B,C] <- dout[B,C], inp[B,C], mean/rstd/gamma[C], sums[2C] of the whole batch of `count` rows */
void batchnorm_backward_synced_cpu(float *dinp, const float *dout, const float *inp, const float *mean,
                                   const float *rstd, const float *gamma, const double *sums, int B, int C,
                                   int count) {
  for (int c = 0; c < C; c++) {
    float k1 = (float)(gamma[c] * sums[c] / count);
    float k2 = (float)(gamma[c] * sums[C + c] / count);
    for (int b = 0; b < B; b++) {
      size_t i = (size_t)b * C + c;
      float xhat = (inp[i] - mean[c]) * rstd[c];
      dinp[i] = rstd[c] * (gamma[c] * dout[i] - k1 - xhat * k2);
    }
  }
}
