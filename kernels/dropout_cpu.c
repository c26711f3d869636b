/* Dropout, CPU reference (CUDA twin: dropout_cuda.cu), on all threads. The
 * mask of element e is ds_philox_word(seed, stream, *step, e) <
 * ds_dropout_threshold(p), so the CUDA side reproduces it bit for bit and
 * backward regenerates it instead of storing it. */
#include "elementwise_cpu.h"
#include "kernels_cpu.h"
#include "parallel_cpu.h"

/* The groups' counters differ in their first word only, so the loop over g
 * runs the 10 rounds of independent blocks side by side (vectorised). It is
 * integer arithmetic only, so a clone for wider vectors (picked at load time
 * on x86-64 by the CPU it runs on) gives the same words. */
#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute)
#if __has_attribute(target_clones)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
void ds_philox_words_cpu(uint32_t *words, uint64_t seed, uint32_t stream, uint64_t step, uint64_t group0,
                         size_t n_groups) {
  for (size_t g = 0; g < n_groups; g++) {
    ds_philox_ctr r = ds_philox_block(seed, stream, step, group0 + g);
    words[4 * g + 0] = r.v[0];
    words[4 * g + 1] = r.v[1];
    words[4 * g + 2] = r.v[2];
    words[4 * g + 3] = r.v[3];
  }
}

typedef struct {
  float *out;
  const float *inp;
  size_t n;
  float p;
  ds_dropout_form form;
  int training;
  uint64_t seed, key;
  uint32_t stream;
} dropout_job;

/* out[i] = word(i) < threshold ? inp[i] * scale : 0 over this part's groups */
static void masked_part(void *arg, int part, int parts) {
  const dropout_job *j = arg;
  size_t b, e;
  ds_cpu_split(j->n, part, parts, 4 * DS_PHILOX_CHUNK, &b, &e);
  uint32_t threshold = ds_dropout_threshold(j->p);
  float scale = ds_dropout_train_scale(j->p, j->form);
  uint32_t words[4 * DS_PHILOX_CHUNK];
  for (size_t base = b; base < e; base += 4 * DS_PHILOX_CHUNK) {
    size_t end = e - base < 4 * DS_PHILOX_CHUNK ? e : base + 4 * DS_PHILOX_CHUNK;
    ds_philox_words_cpu(words, j->seed, j->stream, j->key, base >> 2, (end - base + 3) >> 2);
    if (j->out == j->inp) { /* in place: one pointer, so no overlap check stops the vector loop */
      float *restrict x = j->out + base;
      for (size_t i = 0; i < end - base; i++) x[i] = ds_keep(words[i], threshold, x[i], scale);
    } else {
      float *restrict y = j->out + base;
      const float *restrict x = j->inp + base;
      for (size_t i = 0; i < end - base; i++) y[i] = ds_keep(words[i], threshold, x[i], scale);
    }
  }
}

/* out[i] = inp[i] * s over this part (test time, or p = 0) */
static void scaled_part(void *arg, int part, int parts) {
  const dropout_job *j = arg;
  size_t b, e;
  ds_cpu_split(j->n, part, parts, 16, &b, &e);
  float s = j->form == DS_DROPOUT_INVERTED ? 1.0f : 1.0f - j->p;
  for (size_t i = b; i < e; i++) j->out[i] = j->inp[i] * s;
}

/* out[n] <- inp[n] (out may alias inp) */
void dropout_forward_cpu(float *out, const float *inp, size_t n, float p, ds_dropout_form form,
                         int training, uint64_t seed, uint32_t stream, const uint64_t *step) {
  dropout_job j = {.out = out, .inp = inp, .n = n, .p = p, .form = form, .training = training, .seed = seed,
                   .stream = stream};
  if (!training || p <= 0.0f) { /* p = 0 keeps everything, whatever the words */
    ds_cpu_parallel(scaled_part, &j, n);
    return;
  }
  j.key = *step;
  ds_cpu_parallel(masked_part, &j, 8 * n); /* Philox: ~8x the work of a copy */
}

/* dinp[n] <- dout[n] (dinp may alias dout) */
void dropout_backward_cpu(float *dinp, const float *dout, size_t n, float p, ds_dropout_form form,
                          uint64_t seed, uint32_t stream, const uint64_t *step) {
  dropout_job j = {.out = dinp, .inp = dout, .n = n, .p = p, .form = form, .training = 1, .seed = seed,
                   .stream = stream};
  if (p <= 0.0f) {
    if (dinp != dout) ds_cpu_copy(dinp, dout, n * sizeof(float));
    return;
  }
  j.key = *step;
  ds_cpu_parallel(masked_part, &j, 8 * n);
}
