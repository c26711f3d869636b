/* Optimizer step over the flat buffers, CPU reference (CUDA twin: optim_cuda.cu). */
#include <math.h>

#include "kernels_cpu.h"
#include "optim_math.h"

/* Global L2 norm of the value-clipped gradient, summed in double in index
 * order (deterministic). */
static double grad_norm_cpu(const float *grad, size_t n, float clip_value) {
  double ss = 0.0;
  for (size_t i = 0; i < n; i++) {
    double g = ds_clip_value(grad[i], clip_value);
    ss += g * g;
  }
  return sqrt(ss);
}

/* Elements [begin, end) with the optimizer kind and the decay switch fixed at
 * compile time: a local copy of the configuration whose `kind` is a constant
 * lets the compiler drop the per-element switch and vectorise the loop. The
 * arithmetic is ds_optim_element's, unchanged. */
#define DS_OPTIM_RANGE(KIND, DECAY)                                                              \
  static void optim_range_##KIND##_##DECAY(size_t begin, size_t end, const ds_optim_config *cfg, \
                                           const ds_optim_scalars *s, float clip_coef,           \
                                           const ds_optim_buffers *buf) {                        \
    ds_optim_config c = *cfg;                                                                    \
    c.kind = KIND;                                                                               \
    float *param = buf->param, *m = buf->m, *v = buf->v, *vmax = buf->vmax, *gavg = buf->gavg;   \
    const float *grad = buf->grad;                                                               \
    for (size_t i = begin; i < end; i++)                                                         \
      ds_optim_element(i, &c, s, clip_coef, DECAY, param, grad, m, v, vmax, gavg);               \
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

typedef void (*optim_range_fn)(size_t, size_t, const ds_optim_config *, const ds_optim_scalars *,
                               float, const ds_optim_buffers *);

/* param[n], state[n] <- grad[n]; elements [0, n_decay) are decayed */
void optim_step_cpu(const ds_optim_buffers *buf, size_t n, size_t n_decay,
                    const ds_optim_config *cfg, const ds_optim_scalars *s) {
  static const optim_range_fn ranges[5][2] = {
    {optim_range_DS_OPT_SGD_0, optim_range_DS_OPT_SGD_1},
    {optim_range_DS_OPT_ADAGRAD_0, optim_range_DS_OPT_ADAGRAD_1},
    {optim_range_DS_OPT_RMSPROP_0, optim_range_DS_OPT_RMSPROP_1},
    {optim_range_DS_OPT_ADAM_0, optim_range_DS_OPT_ADAM_1},
    {optim_range_DS_OPT_ADAMW_0, optim_range_DS_OPT_ADAMW_1},
  };
  float clip_coef = 1.0f;
  if (cfg->clip_norm > 0.0f) {
    double norm = grad_norm_cpu(buf->grad, n, cfg->clip_value);
    double coef = cfg->clip_norm / (norm + 1e-6);
    clip_coef = coef < 1.0 ? (float)coef : 1.0f;
  }
  size_t decay_end = cfg->decay_all ? n : (n_decay < n ? n_decay : n);
  ranges[cfg->kind][1](0, decay_end, cfg, s, clip_coef, buf);
  ranges[cfg->kind][0](decay_end, n, cfg, s, clip_coef, buf);
}
