/* BatchNorm1d, CPU reference (CUDA twin: batchnorm_cuda.cu), PyTorch semantics:
 *   training:  mean_c = sum_b x / B,  var_c = sum_b (x - mean)^2 / B (biased),
 *              y = gamma * (x - mean) * rstd + beta,  rstd = 1/sqrt(var + eps),
 *              running_mean = (1-m) running_mean + m mean,
 *              running_var  = (1-m) running_var  + m var * B/(B-1)  (unbiased)
 *   inference: y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta
 * Statistics are accumulated in double: the reference should be the most
 * accurate thing in the room. Each pool thread owns a range of columns and
 * walks it in blocks of DS_BN_BLOCK columns (batchnorm_cpu.h). */
#include "batchnorm_cpu.h"

#include <math.h>

#include "kernels_cpu.h"
#include "parallel_cpu.h"

DS_CPU_CLONES void batchnorm_block_stats_cpu(float *mu, float *rs, float *mean, float *rstd, float *running_mean,
                               float *running_var, const float *inp, int B, int C, int c0, int c1, int training,
                               float momentum, float eps) {
  int w = c1 - c0;
  if (!training) {
    for (int k = 0; k < w; k++) {
      mu[k] = running_mean[c0 + k];
      rs[k] = (float)(1.0 / sqrt((double)running_var[c0 + k] + eps));
    }
    return;
  }
  double sum[DS_BN_BLOCK] = {0}, dmean[DS_BN_BLOCK], ss[DS_BN_BLOCK] = {0};
  for (int b = 0; b < B; b++) {
    const float *x = inp + (size_t)b * C + c0;
    for (int k = 0; k < w; k++) sum[k] += x[k];
  }
  for (int k = 0; k < w; k++) dmean[k] = sum[k] / B;
  for (int b = 0; b < B; b++) {
    const float *x = inp + (size_t)b * C + c0;
    for (int k = 0; k < w; k++) {
      double d = x[k] - dmean[k];
      ss[k] += d * d;
    }
  }
  for (int k = 0; k < w; k++) {
    int c = c0 + k;
    double var = ss[k] / B;
    mu[k] = (float)dmean[k];
    rs[k] = (float)(1.0 / sqrt(var + eps));
    mean[c] = mu[k];
    rstd[c] = rs[k];
    double unbiased = B > 1 ? ss[k] / (B - 1) : var;
    running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * dmean[k]);
    running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
  }
}

/* dx = rstd/B * (B*dxhat - sum(dxhat) - xhat * sum(dxhat*xhat)),  dxhat = dy*gamma */
DS_CPU_CLONES void batchnorm_block_backward_cpu(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *inp,
                                  const float *mean, const float *rstd, const float *gamma, int B, int C, int c0,
                                  int c1, ds_bn_row_fn prepare, void *ctx) {
  int w = c1 - c0;
  double sum_dy[DS_BN_BLOCK] = {0}, sum_dy_xhat[DS_BN_BLOCK] = {0};
  const float *mu = mean + c0, *rs = rstd + c0, *g = gamma + c0;
  for (int b = 0; b < B; b++) {
    if (prepare) prepare(ctx, b, c0, c1);
    size_t row = (size_t)b * C + c0;
    const float *x = inp + row, *dy = dout + row;
    for (int k = 0; k < w; k++) {
      float xhat = (x[k] - mu[k]) * rs[k];
      sum_dy[k] += dy[k];
      sum_dy_xhat[k] += (double)dy[k] * xhat;
    }
  }
  float k1[DS_BN_BLOCK], k2[DS_BN_BLOCK];
  for (int k = 0; k < w; k++) {
    dbeta[c0 + k] += (float)sum_dy[k];
    dgamma[c0 + k] += (float)sum_dy_xhat[k];
    /* sums of dxhat = gamma * sums of dy */
    k1[k] = (float)(g[k] * sum_dy[k] / B);
    k2[k] = (float)(g[k] * sum_dy_xhat[k] / B);
  }
  for (int b = 0; b < B; b++) {
    size_t row = (size_t)b * C + c0;
    const float *x = inp + row, *dy = dout + row;
    float *dx = dinp + row;
    for (int k = 0; k < w; k++) {
      float xhat = (x[k] - mu[k]) * rs[k];
      dx[k] = rs[k] * (g[k] * dy[k] - k1[k] - xhat * k2[k]);
    }
  }
}

typedef struct {
  float *out, *mean, *rstd, *running_mean, *running_var, *dgamma, *dbeta;
  const float *inp, *gamma, *beta, *dout, *saved_mean, *saved_rstd;
  int B, C, training;
  float momentum, eps;
} bn_job;

static void forward_part(void *p, int part, int parts) {
  const bn_job *j = p;
  size_t b, e;
  ds_cpu_split((size_t)j->C, part, parts, 16, &b, &e);
  float mu[DS_BN_BLOCK], rs[DS_BN_BLOCK];
  for (int c0 = (int)b; c0 < (int)e; c0 += DS_BN_BLOCK) {
    int c1 = (int)e - c0 < DS_BN_BLOCK ? (int)e : c0 + DS_BN_BLOCK, w = c1 - c0;
    batchnorm_block_stats_cpu(mu, rs, j->mean, j->rstd, j->running_mean, j->running_var, j->inp, j->B, j->C, c0,
                              c1, j->training, j->momentum, j->eps);
    const float *g = j->gamma + c0, *be = j->beta + c0;
    for (int r = 0; r < j->B; r++) {
      size_t row = (size_t)r * j->C + c0;
      const float *x = j->inp + row;
      float *y = j->out + row;
      for (int k = 0; k < w; k++) y[k] = g[k] * ((x[k] - mu[k]) * rs[k]) + be[k];
    }
  }
}

static void backward_part(void *p, int part, int parts) {
  const bn_job *j = p;
  size_t b, e;
  ds_cpu_split((size_t)j->C, part, parts, 16, &b, &e);
  for (int c0 = (int)b; c0 < (int)e; c0 += DS_BN_BLOCK) {
    int c1 = (int)e - c0 < DS_BN_BLOCK ? (int)e : c0 + DS_BN_BLOCK;
    batchnorm_block_backward_cpu(j->out, j->dgamma, j->dbeta, j->dout, j->inp, j->saved_mean, j->saved_rstd,
                                 j->gamma, j->B, j->C, c0, c1, NULL, NULL);
  }
}

/* out[B,C], mean[C], rstd[C], running_mean[C], running_var[C]
 *   <- inp[B,C], gamma[C], beta[C] */
void batchnorm_forward_cpu(float *out, float *mean, float *rstd, float *running_mean,
                           float *running_var, const float *inp, const float *gamma,
                           const float *beta, int B, int C, int training, float momentum, float eps) {
  bn_job j = {.out = out, .mean = mean, .rstd = rstd, .running_mean = running_mean, .running_var = running_var,
              .inp = inp, .gamma = gamma, .beta = beta, .B = B, .C = C, .training = training,
              .momentum = momentum, .eps = eps};
  ds_cpu_parallel(forward_part, &j, 3 * (size_t)B * (size_t)C);
}

/* dinp[B,C]; dgamma[C] +=, dbeta[C] +=
 *   <- dout[B,C], inp[B,C], mean[C], rstd[C], gamma[C] */
void batchnorm_backward_cpu(float *dinp, float *dgamma, float *dbeta, const float *dout,
                            const float *inp, const float *mean, const float *rstd,
                            const float *gamma, int B, int C) {
  bn_job j = {.out = dinp, .dgamma = dgamma, .dbeta = dbeta, .dout = dout, .inp = inp, .saved_mean = mean,
              .saved_rstd = rstd, .gamma = gamma, .B = B, .C = C};
  ds_cpu_parallel(backward_part, &j, 2 * (size_t)B * (size_t)C);
}
