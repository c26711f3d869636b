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

/* param[n], state[n] <- grad[n]; elements [0, n_decay) are decayed */
void optim_step_cpu(const ds_optim_buffers *buf, size_t n, size_t n_decay,
                    const ds_optim_config *cfg, const ds_optim_scalars *s) {
  float clip_coef = 1.0f;
  if (cfg->clip_norm > 0.0f) {
    double norm = grad_norm_cpu(buf->grad, n, cfg->clip_value);
    double coef = cfg->clip_norm / (norm + 1e-6);
    clip_coef = coef < 1.0 ? (float)coef : 1.0f;
  }
  size_t decay_end = cfg->decay_all ? n : n_decay;
  for (size_t i = 0; i < n; i++)
    ds_optim_element(i, cfg, s, clip_coef, i < decay_end, buf->param, buf->grad, buf->m, buf->v,
                     buf->vmax, buf->gavg);
}
