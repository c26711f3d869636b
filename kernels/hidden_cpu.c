/* A hidden layer after its linear map (BatchNorm -> activation -> dropout),
 * CPU reference (CUDA twin: hidden_cuda.cu, one fused kernel each way).
 *
 * Fused here too, on all threads: each thread owns a range of columns (up to
 * DS_BN_BLOCK at a time), takes their BatchNorm statistics, then writes
 * a = act(BN(z)) and o = dropout(a) in one pass over the rows. Backward: the
 * dropout mask and act' are written into each row of dout just before the
 * BatchNorm sums read it, then dz follows in a second pass. The floats are
 * exactly those of batchnorm_forward, activation_forward and dropout_forward
 * in sequence: the same formulas (elementwise_cpu.h, batchnorm_cpu.h), the
 * same order of every sum.
 *
 * The dropout words come in Philox groups of 4 elements; with C % 4 == 0 a
 * group never crosses a row or a block, so the mask is applied inside the
 * block pass. Otherwise dropout runs as its own pass (dropout_cpu.c). */
#include "batchnorm_cpu.h"
#include "elementwise_cpu.h"
#include "kernels_cpu.h"
#include "parallel_cpu.h"

typedef struct {
  float *a, *o, *mean, *rstd, *running_mean, *running_var, *dz, *dgamma, *dbeta, *dout;
  const float *z, *gamma, *beta, *ca, *saved_mean, *saved_rstd;
  int B, C, training, inline_dropout;
  const ds_hidden_spec *spec;
  uint64_t key;
} hidden_job;

/* One row of w elements: h = BN(x) (when mu is non-NULL: gamma*((x-mu)*rs)+beta)
 * or x, a = act(h), and o = dropout(a) when words is non-NULL. The buffers
 * never overlap (restrict: the compiler vectorises without run-time checks);
 * each option gets its own loop. */
static inline __attribute__((always_inline)) void fwd_row_act(
    ds_activation act, float slope, float *restrict a, float *restrict o, const float *restrict x,
    const float *restrict mu, const float *restrict rs, const float *restrict g, const float *restrict be,
    const uint32_t *restrict words, int w, uint32_t threshold, float scale) {
  if (mu && words)
    for (int k = 0; k < w; k++) {
      a[k] = ds_act_forward(act, g[k] * ((x[k] - mu[k]) * rs[k]) + be[k], slope);
      o[k] = ds_keep(words[k], threshold, a[k], scale);
    }
  else if (mu)
    for (int k = 0; k < w; k++) a[k] = ds_act_forward(act, g[k] * ((x[k] - mu[k]) * rs[k]) + be[k], slope);
  else if (words)
    for (int k = 0; k < w; k++) {
      a[k] = ds_act_forward(act, x[k], slope);
      o[k] = ds_keep(words[k], threshold, a[k], scale);
    }
  else
    for (int k = 0; k < w; k++) a[k] = ds_act_forward(act, x[k], slope);
}

DS_CPU_CLONES static void fwd_row(ds_activation act, float slope, float *a, float *o, const float *x, const float *mu,
                    const float *rs, const float *g, const float *be, const uint32_t *words, int w,
                    uint32_t threshold, float scale) {
  switch (act) {
    case DS_ACT_RELU: fwd_row_act(DS_ACT_RELU, slope, a, o, x, mu, rs, g, be, words, w, threshold, scale); break;
    case DS_ACT_LEAKY_RELU:
      fwd_row_act(DS_ACT_LEAKY_RELU, slope, a, o, x, mu, rs, g, be, words, w, threshold, scale);
      break;
    case DS_ACT_TANH: fwd_row_act(DS_ACT_TANH, slope, a, o, x, mu, rs, g, be, words, w, threshold, scale); break;
    default: fwd_row_act(DS_ACT_SIGMOID, slope, a, o, x, mu, rs, g, be, words, w, threshold, scale); break;
  }
}

static void forward_bn_part(void *p, int part, int parts) {
  const hidden_job *j = p;
  const ds_hidden_spec *s = j->spec;
  size_t cb, ce;
  ds_cpu_split((size_t)j->C, part, parts, 16, &cb, &ce);
  float mu[DS_BN_BLOCK], rs[DS_BN_BLOCK];
  uint32_t words[DS_BN_BLOCK];
  uint32_t threshold = ds_dropout_threshold(s->p);
  float scale = ds_dropout_train_scale(s->p, s->form);
  for (int c0 = (int)cb; c0 < (int)ce; c0 += DS_BN_BLOCK) {
    int c1 = (int)ce - c0 < DS_BN_BLOCK ? (int)ce : c0 + DS_BN_BLOCK, w = c1 - c0;
    batchnorm_block_stats_cpu(mu, rs, j->mean, j->rstd, j->running_mean, j->running_var, j->z, j->B, j->C, c0, c1,
                              j->training, s->bn_momentum, s->bn_eps);
    for (int r = 0; r < j->B; r++) {
      size_t row = (size_t)r * j->C + c0;
      if (j->inline_dropout) ds_philox_words_cpu(words, s->seed, s->stream, j->key, (s->element0 + row) >> 2, (size_t)w >> 2);
      fwd_row(s->act, s->slope, j->a + row, j->o ? j->o + row : NULL, j->z + row, mu, rs, j->gamma + c0,
              j->beta + c0, j->inline_dropout ? words : NULL, w, threshold, scale);
    }
  }
}

static void forward_plain_part(void *p, int part, int parts) {
  const hidden_job *j = p;
  const ds_hidden_spec *s = j->spec;
  size_t n = (size_t)j->B * (size_t)j->C, b, e;
  ds_cpu_split(n, part, parts, 4 * DS_PHILOX_CHUNK, &b, &e);
  uint32_t words[4 * DS_PHILOX_CHUNK];
  uint32_t threshold = ds_dropout_threshold(s->p);
  float scale = ds_dropout_train_scale(s->p, s->form);
  for (size_t base = b; base < e; base += 4 * DS_PHILOX_CHUNK) {
    int w = (int)(e - base < 4 * DS_PHILOX_CHUNK ? e - base : 4 * DS_PHILOX_CHUNK);
    if (j->inline_dropout) ds_philox_words_cpu(words, s->seed, s->stream, j->key, (s->element0 + base) >> 2, ((size_t)w + 3) >> 2);
    fwd_row(s->act, s->slope, j->a + base, j->o ? j->o + base : NULL, j->z + base, NULL, NULL, NULL, NULL,
            j->inline_dropout ? words : NULL, w, threshold, scale);
  }
}

/* a[B,C], o[B,C] (optional), mean/rstd[C] (BN training), running_mean/var[C] (BN)
 *   <- z[B,C], gamma/beta[C] (BN) */
void hidden_forward_cpu(float *a, float *o, float *mean, float *rstd, float *running_mean, float *running_var,
                        const float *z, const float *gamma, const float *beta, int B, int C, int training,
                        const ds_hidden_spec *spec, const uint64_t *step) {
  size_t n = (size_t)B * (size_t)C;
  int masked = o && training && spec->p > 0.0f;
  hidden_job j = {.a = a, .o = o, .mean = mean, .rstd = rstd, .running_mean = running_mean,
                  .running_var = running_var, .z = z, .gamma = gamma, .beta = beta, .B = B, .C = C,
                  .training = training, .spec = spec, .key = masked ? *step : 0};
  if (spec->batchnorm) {
    j.inline_dropout = masked && C % 4 == 0 && spec->element0 % 4 == 0;
    ds_cpu_parallel(forward_bn_part, &j, (j.inline_dropout ? 12 : 4) * n);
  } else {
    j.inline_dropout = masked && spec->element0 % 4 == 0;
    ds_cpu_parallel(forward_plain_part, &j, (masked ? 9 : 1) * n);
  }
  if (o && !j.inline_dropout)
    dropout_forward_cpu(o, a, n, spec->p, spec->form, training, spec->seed, spec->stream, spec->element0, step);
}

/* dh = dropout_backward(dout) * act'(y) for one row of w elements; words NULL:
 * no dropout. In place (dh == dout) or into a buffer that does not overlap
 * dout: two loops, each free of run-time overlap checks. */
static inline __attribute__((always_inline)) void bwd_row_act(ds_activation act, float slope, float *dh,
                                                              float *dout, const float *restrict y,
                                                              const uint32_t *restrict words, int w,
                                                              uint32_t threshold, float scale) {
  if (dh == dout) {
    float *restrict d = dh;
    if (words)
      for (int k = 0; k < w; k++) d[k] = ds_keep(words[k], threshold, d[k], scale) * ds_act_derivative(act, y[k], slope);
    else
      for (int k = 0; k < w; k++) d[k] = d[k] * ds_act_derivative(act, y[k], slope);
  } else {
    float *restrict d = dh;
    const float *restrict din = dout;
    if (words)
      for (int k = 0; k < w; k++) d[k] = ds_keep(words[k], threshold, din[k], scale) * ds_act_derivative(act, y[k], slope);
    else
      for (int k = 0; k < w; k++) d[k] = din[k] * ds_act_derivative(act, y[k], slope);
  }
}

DS_CPU_CLONES static void grad_row(ds_activation act, float slope, float *dh, float *dout, const float *y,
                     const uint32_t *words, int w, uint32_t threshold, float scale) {
  switch (act) {
    case DS_ACT_RELU: bwd_row_act(DS_ACT_RELU, slope, dh, dout, y, words, w, threshold, scale); break;
    case DS_ACT_LEAKY_RELU: bwd_row_act(DS_ACT_LEAKY_RELU, slope, dh, dout, y, words, w, threshold, scale); break;
    case DS_ACT_TANH: bwd_row_act(DS_ACT_TANH, slope, dh, dout, y, words, w, threshold, scale); break;
    default: bwd_row_act(DS_ACT_SIGMOID, slope, dh, dout, y, words, w, threshold, scale); break;
  }
}

/* Row r of a block [c0, c1): dout <- dropout_backward(dout) * act'(a), in
 * place, just before the BatchNorm backward reads the row. */
typedef struct {
  const hidden_job *j;
  uint32_t threshold;
  float scale;
} grad_ctx;

static void grad_prepare(void *p, int r, int c0, int c1) {
  const grad_ctx *g = p;
  const hidden_job *j = g->j;
  const ds_hidden_spec *s = j->spec;
  uint32_t words[DS_BN_BLOCK];
  size_t row = (size_t)r * j->C + c0;
  int w = c1 - c0;
  if (j->inline_dropout) ds_philox_words_cpu(words, s->seed, s->stream, j->key, (s->element0 + row) >> 2, (size_t)w >> 2);
  grad_row(s->act, s->slope, j->dout + row, j->dout + row, j->ca + row, j->inline_dropout ? words : NULL, w,
           g->threshold, g->scale);
}

static void backward_bn_part(void *p, int part, int parts) {
  const hidden_job *j = p;
  const ds_hidden_spec *s = j->spec;
  size_t cb, ce;
  ds_cpu_split((size_t)j->C, part, parts, 16, &cb, &ce);
  grad_ctx g = {j, ds_dropout_threshold(s->p), ds_dropout_train_scale(s->p, s->form)};
  for (int c0 = (int)cb; c0 < (int)ce; c0 += DS_BN_BLOCK) {
    int c1 = (int)ce - c0 < DS_BN_BLOCK ? (int)ce : c0 + DS_BN_BLOCK;
    batchnorm_block_backward_cpu(j->dz, j->dgamma, j->dbeta, j->dout, j->z, j->saved_mean, j->saved_rstd, j->gamma,
                                 j->B, j->C, c0, c1, grad_prepare, &g);
  }
}

static void backward_plain_part(void *p, int part, int parts) {
  const hidden_job *j = p;
  const ds_hidden_spec *s = j->spec;
  size_t n = (size_t)j->B * (size_t)j->C, b, e;
  ds_cpu_split(n, part, parts, 4 * DS_PHILOX_CHUNK, &b, &e);
  uint32_t words[4 * DS_PHILOX_CHUNK];
  uint32_t threshold = ds_dropout_threshold(s->p);
  float scale = ds_dropout_train_scale(s->p, s->form);
  for (size_t base = b; base < e; base += 4 * DS_PHILOX_CHUNK) {
    int w = (int)(e - base < 4 * DS_PHILOX_CHUNK ? e - base : 4 * DS_PHILOX_CHUNK);
    if (j->inline_dropout) ds_philox_words_cpu(words, s->seed, s->stream, j->key, (s->element0 + base) >> 2, ((size_t)w + 3) >> 2);
    grad_row(s->act, s->slope, j->dz + base, j->dout + base, j->ca + base, j->inline_dropout ? words : NULL, w,
             threshold, scale);
  }
}

/* dz[B,C]; dgamma/dbeta[C] += (BN) <- dout[B,C] (overwritten), a[B,C], z[B,C], mean/rstd/gamma[C] (BN) */
void hidden_backward_cpu(float *dz, float *dgamma, float *dbeta, float *dout, const float *a, const float *z,
                         const float *mean, const float *rstd, const float *gamma, int B, int C, int has_dropout,
                         const ds_hidden_spec *spec, const uint64_t *step) {
  size_t n = (size_t)B * (size_t)C;
  int masked = has_dropout && spec->p > 0.0f;
  hidden_job j = {.dz = dz, .dgamma = dgamma, .dbeta = dbeta, .dout = dout, .ca = a, .z = z, .saved_mean = mean,
                  .saved_rstd = rstd, .gamma = gamma, .B = B, .C = C, .spec = spec, .key = masked ? *step : 0};
  j.inline_dropout = masked && (!spec->batchnorm || C % 4 == 0) && spec->element0 % 4 == 0;
  /* dropout with p = 0 is the identity: nothing to do */
  if (masked && !j.inline_dropout)
    dropout_backward_cpu(dout, dout, n, spec->p, spec->form, spec->seed, spec->stream, spec->element0, step);
  if (spec->batchnorm)
    ds_cpu_parallel(backward_bn_part, &j, (j.inline_dropout ? 12 : 4) * n);
  else
    ds_cpu_parallel(backward_plain_part, &j, (j.inline_dropout ? 9 : 1) * n);
}
