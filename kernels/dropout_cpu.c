/* Dropout, CPU reference (CUDA twin: dropout_cuda.cu). The mask of element e
 * is ds_philox_word(seed, stream, *step, e) < ds_dropout_threshold(p), so the
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
                         int training, uint64_t seed, uint32_t stream, const uint64_t *step) {
  if (!training || p <= 0.0f) { /* p = 0 keeps everything, whatever the words */
    float s = form == DS_DROPOUT_INVERTED ? 1.0f : 1.0f - p;
    for (size_t i = 0; i < n; i++) out[i] = inp[i] * s;
    return;
  }
  uint64_t key = *step;
  uint32_t threshold = ds_dropout_threshold(p);
  float scale = dropout_train_scale(p, form);
  for (size_t base = 0; base < n; base += 4) { /* one Philox block serves 4 elements */
    ds_philox_ctr r = ds_philox_block(seed, stream, key, base >> 2);
    for (size_t j = 0; j < 4 && base + j < n; j++) {
      size_t i = base + j;
      out[i] = r.v[j] < threshold ? inp[i] * scale : 0.0f;
    }
  }
}

/* dinp[n] <- dout[n] (dinp may alias dout) */
void dropout_backward_cpu(float *dinp, const float *dout, size_t n, float p, ds_dropout_form form,
                          uint64_t seed, uint32_t stream, const uint64_t *step) {
  if (p <= 0.0f) {
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i];
    return;
  }
  uint64_t key = *step;
  uint32_t threshold = ds_dropout_threshold(p);
  float scale = dropout_train_scale(p, form);
  for (size_t base = 0; base < n; base += 4) {
    ds_philox_ctr r = ds_philox_block(seed, stream, key, base >> 2);
    for (size_t j = 0; j < 4 && base + j < n; j++) {
      size_t i = base + j;
      dinp[i] = r.v[j] < threshold ? dout[i] * scale : 0.0f;
    }
  }
}
