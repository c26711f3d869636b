/* BatchNorm1d, CPU reference (CUDA twin: batchnorm_cuda.cu), PyTorch semantics:
 *   training:  mean_c = sum_b x / B,  var_c = sum_b (x - mean)^2 / B (biased),
 *              y = gamma * (x - mean) * rstd + beta,  rstd = 1/sqrt(var + eps),
 *              running_mean = (1-m) running_mean + m mean,
 *              running_var  = (1-m) running_var  + m var * B/(B-1)  (unbiased)
 *   inference: y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta
 * Statistics are accumulated in double: the reference should be the most
 * accurate thing in the room. */
#include <math.h>

#include "kernels_cpu.h"

/* out[B,C], mean[C], rstd[C], running_mean[C], running_var[C]
 *   <- inp[B,C], gamma[C], beta[C] */
void batchnorm_forward_cpu(float *out, float *mean, float *rstd, float *running_mean,
                           float *running_var, const float *inp, const float *gamma,
                           const float *beta, int B, int C, int training, float momentum, float eps) {
  for (int c = 0; c < C; c++) {
    float mu, rs;
    if (training) {
      double sum = 0.0;
      for (int b = 0; b < B; b++) sum += inp[(size_t)b * C + c];
      double dmean = sum / B;
      double ss = 0.0;
      for (int b = 0; b < B; b++) {
        double d = inp[(size_t)b * C + c] - dmean;
        ss += d * d;
      }
      double var = ss / B;
      mu = (float)dmean;
      rs = (float)(1.0 / sqrt(var + eps));
      mean[c] = mu;
      rstd[c] = rs;
      double unbiased = B > 1 ? ss / (B - 1) : var;
      running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * dmean);
      running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
    } else {
      mu = running_mean[c];
      rs = (float)(1.0 / sqrt((double)running_var[c] + eps));
    }
    for (int b = 0; b < B; b++) {
      size_t i = (size_t)b * C + c;
      out[i] = gamma[c] * ((inp[i] - mu) * rs) + beta[c];
    }
  }
}

/* dinp[B,C]; dgamma[C] +=, dbeta[C] +=
 *   <- dout[B,C], inp[B,C], mean[C], rstd[C], gamma[C]
 * dx = rstd/B * (B*dxhat - sum(dxhat) - xhat * sum(dxhat*xhat)),  dxhat = dy*gamma */
void batchnorm_backward_cpu(float *dinp, float *dgamma, float *dbeta, const float *dout,
                            const float *inp, const float *mean, const float *rstd,
                            const float *gamma, int B, int C) {
  for (int c = 0; c < C; c++) {
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int b = 0; b < B; b++) {
      size_t i = (size_t)b * C + c;
      float xhat = (inp[i] - mean[c]) * rstd[c];
      sum_dy += dout[i];
      sum_dy_xhat += (double)dout[i] * xhat;
    }
    dbeta[c] += (float)sum_dy;
    dgamma[c] += (float)sum_dy_xhat;
    /* sums of dxhat = gamma * sums of dy */
    float k1 = (float)(gamma[c] * sum_dy / B);
    float k2 = (float)(gamma[c] * sum_dy_xhat / B);
    for (int b = 0; b < B; b++) {
      size_t i = (size_t)b * C + c;
      float xhat = (inp[i] - mean[c]) * rstd[c];
      dinp[i] = rstd[c] * (gamma[c] * dout[i] - k1 - xhat * k2);
    }
  }
}
