/* Optimizer step over the flat buffers, CPU reference (CUDA twin: optim_cuda.cu),
 * on all threads: each thread updates its own range of elements. */
#include <math.h>

#include "elementwise_cpu.h"
#include "kernels_cpu.h"
#include "optim_math.h"
#include "parallel_cpu.h"

typedef struct {
  const float *grad;
  float clip_value;
} norm_job;

static void norm_block(void *p, size_t begin, size_t end, double *out) {
  const norm_job *j = p;
  double ss = 0.0;
  for (size_t i = begin; i < end; i++) {
    double g = ds_clip_value(j->grad[i], j->clip_value);
    ss += g * g;
  }
  out[0] = ss;
}

/* Global L2 norm of the value-clipped gradient, summed in double in fixed
 * blocks (ds_cpu_block_sums: the same bits on any number of threads). */
static double grad_norm_cpu(const float *grad, size_t n, float clip_value) {
  norm_job j = {grad, clip_value};
  double ss;
  ds_cpu_block_sums(norm_block, &j, n, 1, &ss);
  return sqrt(ss);
}

/* Elements [begin, end) with the optimizer kind and the decay switch fixed at
 * compile time: local copies of the configuration (whose `kind` is a
 * constant) and of the scalars, and restrict buffers, let the compiler drop
 * the per-element switch, unswitch the option branches and vectorise every
 * loop (the scalars must not be re-read after each store to a float buffer).
 * The arithmetic is ds_optim_element's, unchanged. */
#define DS_OPTIM_RANGE(KIND, DECAY)                                                                        \
  DS_CPU_CLONES static void optim_range_##KIND##_##DECAY(size_t begin, size_t end, const ds_optim_config *cfg,           \
                                           const ds_optim_scalars *s, float clip_coef,                     \
                                           float *restrict param, const float *restrict grad,              \
                                           float *restrict m, float *restrict v, float *restrict vmax,     \
                                           float *restrict gavg) {                                         \
    ds_optim_config c = *cfg;                                                                              \
    ds_optim_scalars sc = *s;                                                                              \
    c.kind = KIND;                                                                                         \
    for (size_t i = begin; i < end; i++)                                                                   \
      ds_optim_element(i, &c, &sc, clip_coef, DECAY, param, grad, m, v, vmax, gavg);                       \
  }
DS_OPTIM_RANGE(DS_OPT_SGD, 0)
DS_OPTIM_RANGE(DS_OPT_SGD, 1)
DS_OPTIM_RANGE(DS_OPT_ADAGRAD, 0)
DS_OPTIM_RANGE(DS_OPT_ADAGRAD, 1)
DS_OPTIM_RANGE(DS_OPT_RMSPROP, 0)
DS_OPTIM_RANGE(DS_OPT_RMSPROP, 1)
DS_OPTIM_RANGE(DS_OPT_ADAM, 0)
DS_OPTIM_RANGE(DS_OPT_ADAM, 1)
DS_OPTIM_RANGE(DS_OPT_ADAMW, 0)
DS_OPTIM_RANGE(DS_OPT_ADAMW, 1)

typedef void (*optim_range_fn)(size_t, size_t, const ds_optim_config *, const ds_optim_scalars *, float,
                               float *restrict, const float *restrict, float *restrict, float *restrict,
                               float *restrict, float *restrict);

static const optim_range_fn ranges[5][2] = {
  {optim_range_DS_OPT_SGD_0, optim_range_DS_OPT_SGD_1},
  {optim_range_DS_OPT_ADAGRAD_0, optim_range_DS_OPT_ADAGRAD_1},
  {optim_range_DS_OPT_RMSPROP_0, optim_range_DS_OPT_RMSPROP_1},
  {optim_range_DS_OPT_ADAM_0, optim_range_DS_OPT_ADAM_1},
  {optim_range_DS_OPT_ADAMW_0, optim_range_DS_OPT_ADAMW_1},
};

typedef struct {
  const ds_optim_buffers *buf;
  const ds_optim_config *cfg;
  const ds_optim_scalars *s;
  size_t n, decay_end;
  float clip_coef;
  size_t first_bad[DS_POOL_PARTS_MAX]; /* buf->nonfinite: per part, its first failing block, or n */
} optim_job;

/* Elements [b, e), decayed below j->decay_end. */
static void optim_range(const optim_job *j, size_t b, size_t e) {
  const ds_optim_buffers *bf = j->buf;
  size_t mid = j->decay_end < b ? b : (j->decay_end > e ? e : j->decay_end);
  const optim_range_fn *r = ranges[j->cfg->kind];
  if (mid > b) r[1](b, mid, j->cfg, j->s, j->clip_coef, bf->param, bf->grad, bf->m, bf->v, bf->vmax, bf->gavg);
  if (e > mid) r[0](mid, e, j->cfg, j->s, j->clip_coef, bf->param, bf->grad, bf->m, bf->v, bf->vmax, bf->gavg);
}

/* This thread's elements [b, e) (cache-line aligned). With the non-finite
 * check, block by block: the scan brings the block's gradient into L1 and
 * the update reads it from there, so the gradient crosses the memory bus
 * once. */
static void optim_part(void *p, int part, int parts) {
  optim_job *j = p;
  size_t b, e;
  if (!j->buf->nonfinite) {
    ds_cpu_split(j->n, part, parts, 16, &b, &e);
    optim_range(j, b, e);
    return;
  }
  ds_cpu_split(j->n, part, parts, DS_NONFINITE_BLOCK, &b, &e);
  j->first_bad[part] = j->n;
  for (size_t b0 = b; b0 < e; b0 += DS_NONFINITE_BLOCK) {
    size_t b1 = e - b0 < DS_NONFINITE_BLOCK ? e : b0 + DS_NONFINITE_BLOCK;
    if (j->first_bad[part] == j->n && ds_any_nonfinite(j->buf->grad, b0, b1)) j->first_bad[part] = b0;
    optim_range(j, b0, b1);
  }
}

/* param[n], state[n] <- grad[n]; elements [0, n_decay) are decayed.
 * buf->nonfinite: the first NaN/Inf of grad recorded as monitor_nonfinite_cpu
 * would (the update still runs: stop mode ends training at the next check). */
void optim_step_cpu(const ds_optim_buffers *buf, size_t n, size_t n_decay,
                    const ds_optim_config *cfg, const ds_optim_scalars *s) {
  float clip_coef = 1.0f;
  if (cfg->clip_norm > 0.0f) {
    double norm = grad_norm_cpu(buf->grad, n, cfg->clip_value);
    double coef = cfg->clip_norm / (norm + 1e-6);
    clip_coef = coef < 1.0 ? (float)coef : 1.0f;
  }
  int check = buf->nonfinite && buf->nonfinite[0] < 0; /* the first record sticks */
  ds_optim_buffers b = *buf;
  if (!check) b.nonfinite = NULL;
  optim_job j = {&b, cfg, s, n, cfg->decay_all ? n : (n_decay < n ? n_decay : n), clip_coef, {0}};
  for (int q = 0; check && q < DS_POOL_PARTS_MAX; q++) j.first_bad[q] = n;
  ds_cpu_parallel(optim_part, &j, 4 * n);
  if (check) monitor_nonfinite_record_cpu(b.nonfinite, b.grad, n, j.first_bad, b.update);
}
