/* Per-element pieces shared by the CPU ops that fuse them (activation_cpu.c,
 * dropout_cpu.c, batchnorm_cpu.c, hidden_cpu.c): one definition of each
 * formula, so the fused hidden layer computes exactly the floats of the
 * separate ops. Internal to kernels/. */
#ifndef DS_ELEMENTWISE_CPU_H
#define DS_ELEMENTWISE_CPU_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "descent/backend.h"
#include "descent/philox.h"

/* x when cond, else +0.0f, by masking x's bits (no branch, no select). */
static inline float ds_mask_float(int cond, float x) {
  uint32_t bits;
  memcpy(&bits, &x, sizeof bits);
  bits &= -(uint32_t)(cond != 0);
  memcpy(&x, &bits, sizeof x);
  return x;
}

/* a when cond, else b, by masking their bits (no branch). */
static inline float ds_select_float(int cond, float a, float b) {
  uint32_t ba, bb, m = -(uint32_t)(cond != 0);
  memcpy(&ba, &a, sizeof ba);
  memcpy(&bb, &b, sizeof bb);
  ba = (ba & m) | (bb & ~m);
  memcpy(&a, &ba, sizeof a);
  return a;
}

/* act(x); `act` is a constant at each call site so the switch folds away. */
static inline float ds_act_forward(ds_activation act, float x, float slope) {
  float neg = slope * x; /* computed unconditionally, then selected: see ds_keep */
  switch (act) {
    case DS_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case DS_ACT_LEAKY_RELU: return x > 0.0f ? x : neg;
    case DS_ACT_TANH: return tanhf(x);
    default: return 1.0f / (1.0f + expf(-x));
  }
}

/* act'(.) from the saved output y:  relu' = y > 0,  leaky' = y > 0 ? 1 : slope,
 * tanh' = 1 - y^2,  sigmoid' = y (1 - y) */
static inline float ds_act_derivative(ds_activation act, float y, float slope) {
  switch (act) {
    /* 1.0f or +0.0f by masking the bits of 1.0f: the compiler turns both
     * y > 0 ? 1 : 0 and (float)(y > 0), once multiplied, into a branch
     * (x * 1 = x, x * 0 kept) that stops the masked loops from vectorising */
    case DS_ACT_RELU: return ds_mask_float(y > 0.0f, 1.0f);
    /* the bits of 1 or of slope, branch-free for the same reason */
    case DS_ACT_LEAKY_RELU: return ds_select_float(y > 0.0f, 1.0f, slope);
    case DS_ACT_TANH: return 1.0f - y * y;
    default: return y * (1.0f - y);
  }
}

/* Dropout of one element: x * scale when its word is below the threshold,
 * else +0. The product is formed first and its bits masked: the compiler
 * will not vectorise a multiply under a condition (it could raise a flag) nor
 * an integer test choosing floats; the float is the same either way. */
static inline float ds_keep(uint32_t word, uint32_t threshold, float x, float scale) {
  return ds_mask_float(word < threshold, x * scale);
}

/* Scale applied to kept elements in training. */
static inline float ds_dropout_train_scale(float p, ds_dropout_form form) {
  return form == DS_DROPOUT_INVERTED ? 1.0f / (1.0f - p) : 1.0f;
}

/* words[4*g + j] = ds_philox_word(seed, stream, step, 4*(group0 + g) + j)
 * for g in [0, n_groups): the dropout words of 4*n_groups elements. */
void ds_philox_words_cpu(uint32_t *words, uint64_t seed, uint32_t stream, uint64_t step, uint64_t group0,
                         size_t n_groups);

/* The number of Philox groups ds_philox_words_cpu is asked for at most by
 * the CPU ops (their stack buffers hold 4x this many words). */
#define DS_PHILOX_CHUNK 64

/* Whether x[begin, end) holds a NaN or Inf: a float is non-finite exactly
 * when its exponent bits are all 1, and then exponent + 1 carries into the
 * sign bit. Two floats per 64-bit word (the low half cannot carry into the
 * high one: its sum stays <= 0x80000000) and four independent ORs keep the
 * common, all-finite case at memory speed without relying on vectorisation. */
static inline int ds_any_nonfinite(const float *x, size_t begin, size_t end) {
  const uint64_t mask = 0x7f8000007f800000ull, one = 0x0080000000800000ull;
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = begin;
  for (; i + 8 <= end; i += 8) {
    uint64_t w[4];
    memcpy(w, x + i, sizeof w);
    a |= (w[0] & mask) + one;
    b |= (w[1] & mask) + one;
    c |= (w[2] & mask) + one;
    d |= (w[3] & mask) + one;
  }
  uint64_t bad = a | b | c | d;
  for (; i < end; i++) {
    uint32_t u;
    memcpy(&u, x + i, sizeof u);
    bad |= (uint64_t)((u & 0x7f800000u) + 0x00800000u);
  }
  return (bad & 0x8000000080000000ull) != 0;
}

/* The blocks the non-finite scans test at a time (monitor_nonfinite_cpu and
 * the optimizer step's fused check): a block that fails is then searched. */
#define DS_NONFINITE_BLOCK 4096

#endif
