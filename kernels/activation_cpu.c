/* Activations, CPU reference (CUDA twin: activation_cuda.cu).
 * Backward uses the saved output y:  relu' = y > 0,  leaky' = y > 0 ? 1 : slope,
 * tanh' = 1 - y^2,  sigmoid' = y (1 - y). */
#include <math.h>

#include "kernels_cpu.h"

/* out[n] = act(inp[n]) */
void activation_forward_cpu(float *out, const float *inp, size_t n, ds_activation act, float slope) {
  for (size_t i = 0; i < n; i++) {
    float x = inp[i];
    float y;
    switch (act) {
      case DS_ACT_RELU: y = x > 0.0f ? x : 0.0f; break;
      case DS_ACT_LEAKY_RELU: y = x > 0.0f ? x : slope * x; break;
      case DS_ACT_TANH: y = tanhf(x); break;
      default: y = 1.0f / (1.0f + expf(-x)); break;
    }
    out[i] = y;
  }
}

/* dinp[n] = dout[n] * act'(from out[n]) */
void activation_backward_cpu(float *dinp, const float *dout, const float *out, size_t n,
                             ds_activation act, float slope) {
  for (size_t i = 0; i < n; i++) {
    float y = out[i];
    float d;
    switch (act) {
      case DS_ACT_RELU: d = y > 0.0f ? 1.0f : 0.0f; break;
      case DS_ACT_LEAKY_RELU: d = y > 0.0f ? 1.0f : slope; break;
      case DS_ACT_TANH: d = 1.0f - y * y; break;
      default: d = y * (1.0f - y); break;
    }
    dinp[i] = dout[i] * d;
  }
}
