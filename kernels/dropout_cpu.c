/* Dropout, CPU reference (CUDA twin: dropout_cuda.cu). The mask of element e
 * is ds_philox_word(seed, stream, step, e) < ds_dropout_threshold(p), so the
 * CUDA side reproduces it bit for bit and backward regenerates it instead of
 * storing it. */
#include "descent/philox.h"
#include "kernels_cpu.h"

/* Scale applied to kept elements in training. */
static float dropout_train_scale(float p, ds_dropout_form form) {
  return form == DS_DROPOUT_INVERTED ? 1.0f / (1.0f - p) : 1.0f;
}

/* out[n] <- inp[n] (out may alias inp) */
void dropout_forward_cpu(float *out, const float *inp, size_t n, float p, ds_dropout_form form,
                         int training, uint64_t seed, uint32_t stream, uint64_t step) {
  if (!training) {
    float s = form == DS_DROPOUT_INVERTED ? 1.0f : 1.0f - p;
    for (size_t i = 0; i < n; i++) out[i] = inp[i] * s;
    return;
  }
  uint32_t threshold = ds_dropout_threshold(p);
  float scale = dropout_train_scale(p, form);
  for (size_t i = 0; i < n; i++) {
    uint32_t w = ds_philox_word(seed, stream, step, i);
    out[i] = w < threshold ? inp[i] * scale : 0.0f;
  }
}

/* dinp[n] <- dout[n] (dinp may alias dout) */
void dropout_backward_cpu(float *dinp, const float *dout, size_t n, float p, ds_dropout_form form,
                          uint64_t seed, uint32_t stream, uint64_t step) {
  uint32_t threshold = ds_dropout_threshold(p);
  float scale = dropout_train_scale(p, form);
  for (size_t i = 0; i < n; i++) {
    uint32_t w = ds_philox_word(seed, stream, step, i);
    dinp[i] = w < threshold ? dout[i] * scale : 0.0f;
  }
}
