/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
 * SC'11), the counter-based generator of Random123 and of cuRAND's
 * curand_Philox4x32_10. Header-only so that the CPU reference and the CUDA
 * kernels compile the very same arithmetic: a draw is a pure function of
 * (key, counter), so any element of any step can be reproduced on either
 * backend, bit for bit, without carrying generator state.
 *
 * How descent keys its streams (see DS_STREAM_*):
 *   key     = { seed & 0xffffffff, seed >> 32 }
 *   counter = { element / 4, stream, step & 0xffffffff, step >> 32 }
 *   word    = output[element % 4]
 * (element / 4 is taken modulo 2^32: streams repeat beyond 2^34 elements, far
 * past any tensor here) where `stream` names the consumer: dropout of layer l is DS_STREAM_DROPOUT + l,
 * initialisation of parameter tensor i is DS_STREAM_INIT + i, the sampler
 * uses DS_STREAM_SAMPLER.
 *
 * Every function is a pure inline function of its arguments (host and
 * device code): thread-safe, no state, no errors. */
#ifndef DESCENT_PHILOX_H
#define DESCENT_PHILOX_H

#include <stdint.h>

#if defined(__CUDACC__)
#define DS_HD __host__ __device__ __forceinline__
#else
#define DS_HD static inline
#endif

#define DS_STREAM_DROPOUT 0x00000000u  /* + layer index (0 = input dropout) */
#define DS_STREAM_INIT 0x00010000u     /* + parameter tensor index */
#define DS_STREAM_SAMPLER 0x00020000u
#define DS_STREAM_SEARCH 0x00040000u   /* descent sweep --search random: + nothing; step = point, element = axis */

typedef struct { uint32_t v[4]; } ds_philox_ctr;
typedef struct { uint32_t v[2]; } ds_philox_key;

DS_HD uint32_t ds_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi) {
  uint64_t p = (uint64_t)a * (uint64_t)b;
  *hi = (uint32_t)(p >> 32);
  return (uint32_t)p;
}

/* One full Philox4x32-10 block: 10 rounds, key bumped between rounds. */
DS_HD ds_philox_ctr ds_philox4x32_10(ds_philox_ctr c, ds_philox_key k) {
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k.v[0] += 0x9E3779B9u;
      k.v[1] += 0xBB67AE85u;
    }
    uint32_t hi0, hi1;
    uint32_t lo0 = ds_mulhilo32(0xD2511F53u, c.v[0], &hi0);
    uint32_t lo1 = ds_mulhilo32(0xCD9E8D57u, c.v[2], &hi1);
    ds_philox_ctr n;
    n.v[0] = hi1 ^ c.v[1] ^ k.v[0];
    n.v[1] = lo1;
    n.v[2] = hi0 ^ c.v[3] ^ k.v[1];
    n.v[3] = lo0;
    c = n;
  }
  return c;
}

/* The four words of elements 4*group .. 4*group+3 of (seed, stream, step). */
DS_HD ds_philox_ctr ds_philox_block(uint64_t seed, uint32_t stream, uint64_t step, uint64_t group) {
  ds_philox_ctr c = {{(uint32_t)group, stream, (uint32_t)step, (uint32_t)(step >> 32)}};
  ds_philox_key k = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
  return ds_philox4x32_10(c, k);
}

/* The 32-bit word that belongs to `element` of (seed, stream, step). */
DS_HD uint32_t ds_philox_word(uint64_t seed, uint32_t stream, uint64_t step, uint64_t element) {
  return ds_philox_block(seed, stream, step, element >> 2).v[element & 3u];
}

/* Keep threshold for dropout probability p: an element is kept when its word
 * is < threshold. Integer comparison, so both backends decide identically.
 * p <= 0 must be handled by the caller as "keep all" (a word of 0xffffffff
 * would otherwise be dropped once in 2^32). */
DS_HD uint32_t ds_dropout_threshold(float p) {
  double keep = 1.0 - (double)p;
  if (keep >= 1.0) return 0xFFFFFFFFu;
  return (uint32_t)(keep * 4294967296.0);
}

#endif
