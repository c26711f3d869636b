/* Dropout, CPU reference (CUDA twin: dropout_cuda.cu). The mask of element e
 * is ds_philox_word(seed, stream, *step, element0 + e) < ds_dropout_threshold(p), so the
 * CUDA side reproduces it bit for bit and backward regenerates it instead of
 * storing it. */
#include "descent/philox.h"
#include "kernels_cpu.h"

/* Scale applied to kept elements in training. */
static float dropout_train_scale(float p, ds_dropout_form form) {
  return form == DS_DROPOUT_INVERTED ? 1.0f / (1.0f - p) : 1.0f;
}

/* out[n] = keep(element0 + i) ? inp[n] * scale : 0 (out may alias inp). One
 * Philox block serves the 4 elements of a group of the whole batch; a slice
 * may start inside a group (element0 % 4 != 0). */
static void dropout_mask_cpu(float *out, const float *inp, size_t n, uint32_t threshold, float scale,
                             uint64_t seed, uint32_t stream, uint64_t key, uint64_t element0) {
  ds_philox_ctr r = {{0u, 0u, 0u, 0u}};
  uint64_t group = UINT64_MAX;
  for (size_t i = 0; i < n; i++) {
    uint64_t e = element0 + i;
    if (e >> 2 != group) {
      group = e >> 2;
      r = ds_philox_block(seed, stream, key, group);
    }
    out[i] = r.v[e & 3u] < threshold ? inp[i] * scale : 0.0f;
  }
}

/* out[n] <- inp[n] (out may alias inp) */
void dropout_forward_cpu(float *out, const float *inp, size_t n, float p, ds_dropout_form form,
                         int training, uint64_t seed, uint32_t stream, uint64_t element0, const uint64_t *step) {
  if (!training || p <= 0.0f) { /* p = 0 keeps everything, whatever the words */
    float s = form == DS_DROPOUT_INVERTED ? 1.0f : 1.0f - p;
    for (size_t i = 0; i < n; i++) out[i] = inp[i] * s;
    return;
  }
  dropout_mask_cpu(out, inp, n, ds_dropout_threshold(p), dropout_train_scale(p, form), seed, stream, *step, element0);
}

/* dinp[n] <- dout[n] (dinp may alias dout) */
void dropout_backward_cpu(float *dinp, const float *dout, size_t n, float p, ds_dropout_form form,
                          uint64_t seed, uint32_t stream, uint64_t element0, const uint64_t *step) {
  if (p <= 0.0f) {
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i];
    return;
  }
  dropout_mask_cpu(dinp, dout, n, ds_dropout_threshold(p), dropout_train_scale(p, form), seed, stream, *step, element0);
}
