/* Dropout, CPU reference (CUDA twin: dropout_cuda.cu), on all threads. The
 * mask of element e is ds_philox_word(seed, stream, *step, element0 + e) <
 * ds_dropout_threshold(p), so the CUDA side reproduces it bit for bit and
 * backward regenerates it instead of storing it. element0 is where these
 * elements start in the whole batch (a rank's slice under mpirun; 0 else). */
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
  uint64_t seed, key, element0;
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
    ds_philox_words_cpu(words, j->seed, j->stream, j->key, (j->element0 + base) >> 2, (end - base + 3) >> 2);
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

/* A slice that starts inside a Philox group (element0 % 4 != 0, a rank's
 * rows under mpirun with C % 4 != 0): one thread, element by element. */
static void masked_unaligned(const dropout_job *j) {
  uint32_t threshold = ds_dropout_threshold(j->p);
  float scale = ds_dropout_train_scale(j->p, j->form);
  ds_philox_ctr r = {{0u, 0u, 0u, 0u}};
  uint64_t group = UINT64_MAX;
  for (size_t i = 0; i < j->n; i++) {
    uint64_t e = j->element0 + i;
    if (e >> 2 != group) {
      group = e >> 2;
      r = ds_philox_block(j->seed, j->stream, j->key, group);
    }
    j->out[i] = ds_keep(r.v[e & 3u], threshold, j->inp[i], scale);
  }
}

static void masked(dropout_job *j) {
  if (j->element0 % 4 != 0) masked_unaligned(j);
  else ds_cpu_parallel(masked_part, j, 8 * j->n); /* Philox: ~8x the work of a copy */
}

/* out[n] <- inp[n] (out may alias inp) */
void dropout_forward_cpu(float *out, const float *inp, size_t n, float p, ds_dropout_form form,
                         int training, uint64_t seed, uint32_t stream, uint64_t element0, const uint64_t *step) {
  dropout_job j = {.out = out, .inp = inp, .n = n, .p = p, .form = form, .training = training, .seed = seed,
                   .stream = stream, .element0 = element0};
  if (!training || p <= 0.0f) { /* p = 0 keeps everything, whatever the words */
    ds_cpu_parallel(scaled_part, &j, n);
    return;
  }
  j.key = *step;
  masked(&j);
}

/* dinp[n] <- dout[n] (dinp may alias dout) */
void dropout_backward_cpu(float *dinp, const float *dout, size_t n, float p, ds_dropout_form form,
                          uint64_t seed, uint32_t stream, uint64_t element0, const uint64_t *step) {
  dropout_job j = {.out = dinp, .inp = dout, .n = n, .p = p, .form = form, .training = 1, .seed = seed,
                   .stream = stream, .element0 = element0};
  if (p <= 0.0f) {
    if (dinp != dout) ds_cpu_copy(dinp, dout, n * sizeof(float));
    return;
  }
  j.key = *step;
  masked(&j);
}
