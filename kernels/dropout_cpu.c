/* Dropout, CPU reference (CUDA twin: dropout_cuda.cu), on all threads. The
 * mask of element e is ds_philox_word(seed, stream, *step, element0 + e) <
 * ds_dropout_threshold(p), so the CUDA side reproduces it bit for bit and
 * backward regenerates it instead of storing it. element0 is where these
 * elements start in the whole batch (a rank's slice under mpirun; 0 else). */
#include <stdatomic.h>

#include "elementwise_cpu.h"
#include "kernels_cpu.h"
#include "parallel_cpu.h"

/* The groups' counters differ in their first word only, so the loop over g
 * runs the 10 rounds of independent blocks side by side (vectorised). It is
 * integer arithmetic only, so a clone for wider vectors (picked at load time
 * on x86-64 by the CPU it runs on) gives the same words. */
#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute)
#if __has_attribute(target_clones)
__attribute__((target_clones("avx2", "default")))
#endif
#endif
static void philox_words_loop(uint32_t *words, uint64_t seed, uint32_t stream, uint64_t step, uint64_t group0,
                              size_t n_groups) {
  for (size_t g = 0; g < n_groups; g++) {
    ds_philox_ctr r = ds_philox_block(seed, stream, step, group0 + g);
    words[4 * g + 0] = r.v[0];
    words[4 * g + 1] = r.v[1];
    words[4 * g + 2] = r.v[2];
    words[4 * g + 3] = r.v[3];
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DS_PHILOX_AVX512 1

/* hi:lo = a * m for 16 unsigned 32-bit lanes: vpmuludq multiplies the even
 * lanes into 64 bits; the odd lanes are shifted down and multiplied too. */
__attribute__((target("avx512f"))) static inline void mulhilo16(__m512i a, __m512i m, __m512i *hi, __m512i *lo) {
  __m512i pe = _mm512_mul_epu32(a, m);
  __m512i po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po);
  *lo = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
}

/* ds_philox4x32_10 for 16 groups at once, one group per 32-bit lane of each
 * counter word, the words then interleaved as words[4g + j]; the loop above
 * for the last n_groups % 16. The compiler's vectorisation of that loop runs
 * about 3x slower: it multiplies in 64-bit lanes and scatters the words. */
__attribute__((target("avx512f"))) static void philox_words_avx512(uint32_t *words, uint64_t seed, uint32_t stream,
                                                                   uint64_t step, uint64_t group0, size_t n_groups) {
  const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53u), m1 = _mm512_set1_epi32((int)0xCD9E8D57u);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i lo_half = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), hi_half = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
  const __m512i first = _mm512_setr_epi64(0, 1, 2, 3, 8, 9, 10, 11), second = _mm512_setr_epi64(4, 5, 6, 7, 12, 13, 14, 15);
  size_t g = 0;
  for (; g + 16 <= n_groups; g += 16) {
    /* the group's low 32 bits, as ds_philox_block takes them */
    __m512i c0 = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)(group0 + g)), lane);
    __m512i c1 = _mm512_set1_epi32((int)stream), c2 = _mm512_set1_epi32((int)(uint32_t)step);
    __m512i c3 = _mm512_set1_epi32((int)(uint32_t)(step >> 32));
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
      if (r > 0) {
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
      }
      __m512i hi0, lo0, hi1, lo1;
      mulhilo16(c0, m0, &hi0, &lo0);
      mulhilo16(c2, m1, &hi1, &lo1);
      /* 0x96: a ^ b ^ c */
      c0 = _mm512_ternarylogic_epi32(hi1, c1, _mm512_set1_epi32((int)k0), 0x96);
      c2 = _mm512_ternarylogic_epi32(hi0, c3, _mm512_set1_epi32((int)k1), 0x96);
      c1 = lo1;
      c3 = lo0;
    }
    /* 4 x 16 -> 16 x 4: u_i holds groups i, i+4, i+8, i+12 (one per 128-bit block) */
    __m512i t0 = _mm512_unpacklo_epi32(c0, c1), t1 = _mm512_unpackhi_epi32(c0, c1);
    __m512i t2 = _mm512_unpacklo_epi32(c2, c3), t3 = _mm512_unpackhi_epi32(c2, c3);
    __m512i u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
    __m512i u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
    __m512i a = _mm512_permutex2var_epi64(u0, lo_half, u1); /* groups 0 1 4 5 */
    __m512i b = _mm512_permutex2var_epi64(u2, lo_half, u3); /* 2 3 6 7 */
    __m512i c = _mm512_permutex2var_epi64(u0, hi_half, u1); /* 8 9 12 13 */
    __m512i d = _mm512_permutex2var_epi64(u2, hi_half, u3); /* 10 11 14 15 */
    uint32_t *w = words + 4 * g;
    _mm512_storeu_si512(w, _mm512_permutex2var_epi64(a, first, b));
    _mm512_storeu_si512(w + 16, _mm512_permutex2var_epi64(a, second, b));
    _mm512_storeu_si512(w + 32, _mm512_permutex2var_epi64(c, first, d));
    _mm512_storeu_si512(w + 48, _mm512_permutex2var_epi64(c, second, d));
  }
  if (g < n_groups) philox_words_loop(words + 4 * g, seed, stream, step, group0 + g, n_groups - g);
}
#endif

void ds_philox_words_cpu(uint32_t *words, uint64_t seed, uint32_t stream, uint64_t step, uint64_t group0,
                         size_t n_groups) {
#ifdef DS_PHILOX_AVX512
  static _Atomic int avx512 = -1; /* the CPU's answer, asked once */
  int have = atomic_load_explicit(&avx512, memory_order_relaxed);
  if (have < 0) {
    __builtin_cpu_init();
    have = __builtin_cpu_supports("avx512f") != 0;
    atomic_store_explicit(&avx512, have, memory_order_relaxed);
  }
  if (have) {
    philox_words_avx512(words, seed, stream, step, group0, n_groups);
    return;
  }
#endif
  philox_words_loop(words, seed, stream, step, group0, n_groups);
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
