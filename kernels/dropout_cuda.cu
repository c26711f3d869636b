/* Dropout, CUDA (CPU twin: dropout_cpu.c). Element e is kept when
 * ds_philox_word(seed, stream, *step, element0 + e) < ds_dropout_threshold(p): the same
 * header-only Philox4x32-10 (descent/philox.h, identical to cuRAND's
 * curand_Philox4x32_10, which tests/test_cuda_ops.cu checks), evaluated here,
 * so masks equal the CPU's bit for bit and backward regenerates the mask
 * instead of storing it.
 *
 * One thread per group of 4 elements: a Philox block yields exactly the 4
 * words of elements 4q..4q+3, and the group is one float4 load/store when the
 * buffers are 16-byte aligned (scalar otherwise, and for the tail). A slice
 * of a batch split across processes that starts inside a group of the whole
 * batch (element0 % 4 != 0) evaluates one block per element instead. */
#include "cuda_common.cuh"
#include "descent/philox.h"

/* Scale applied to kept elements in training. */
static float dropout_train_scale(float p, ds_dropout_form form) {
  return form == DS_DROPOUT_INVERTED ? 1.0f / (1.0f - p) : 1.0f;
}

/* out[n] = keep(e) ? inp[n] * scale : 0; out may alias inp. Serves the
 * training forward and the backward, which are the same map. */
static __global__ void dropout_mask_kernel(float *out, const float *inp, size_t n, uint32_t threshold,
                                           float scale, uint64_t seed, uint32_t stream, uint64_t element0,
                                           const uint64_t *step, int vec) {
  size_t groups = (n + 3) / 4;
  uint64_t key = *step; /* read at run time: graph replays see the host's latest value */
  if (element0 & 3u) { /* unaligned slice: one word per element */
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
      out[i] = ds_philox_word(seed, stream, key, element0 + i) < threshold ? inp[i] * scale : 0.0f;
    return;
  }
  for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < groups; q += (size_t)gridDim.x * blockDim.x) {
    ds_philox_ctr r = ds_philox_block(seed, stream, key, (element0 >> 2) + q);
    size_t base = 4 * q;
    if (vec && base + 4 <= n) {
      float4 x = reinterpret_cast<const float4 *>(inp)[q];
      float4 y;
      y.x = r.v[0] < threshold ? x.x * scale : 0.0f;
      y.y = r.v[1] < threshold ? x.y * scale : 0.0f;
      y.z = r.v[2] < threshold ? x.z * scale : 0.0f;
      y.w = r.v[3] < threshold ? x.w * scale : 0.0f;
      reinterpret_cast<float4 *>(out)[q] = y;
    } else {
#pragma unroll
      for (int j = 0; j < 4; j++) /* unrolled: r stays in registers */
        if (base + j < n) out[base + j] = r.v[j] < threshold ? inp[base + j] * scale : 0.0f;
    }
  }
}

/* out[n] = inp[n] * s (inference: s = 1 inverted, 1 - p scale-at-test; p = 0: 1) */
static __global__ void dropout_scale_kernel(float *out, const float *inp, size_t n, float s) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = inp[i] * s;
}

static void dropout_mask_launch(float *out, const float *inp, size_t n, float p, ds_dropout_form form,
                                uint64_t seed, uint32_t stream, uint64_t element0, const uint64_t *step) {
  size_t groups = (element0 & 3u) ? n : (n + 3) / 4;
  int vec = ds_cuda_aligned16(out, inp, NULL, NULL, NULL, NULL);
  dropout_mask_kernel<<<ds_cuda_grid(groups, 256, 16), 256, 0, ds_cuda.stream>>>(
      out, inp, n, ds_dropout_threshold(p), dropout_train_scale(p, form), seed, stream, element0, step, vec);
  DS_LAUNCH_CHECK("dropout_mask_kernel");
}

static void dropout_scale_launch(float *out, const float *inp, size_t n, float s) {
  dropout_scale_kernel<<<ds_cuda_grid(n, 256, 16), 256, 0, ds_cuda.stream>>>(out, inp, n, s);
  DS_LAUNCH_CHECK("dropout_scale_kernel");
}

/* out[n] <- inp[n] (out may alias inp) */
extern "C" void dropout_forward_cuda(float *out, const float *inp, size_t n, float p, ds_dropout_form form,
                                     int training, uint64_t seed, uint32_t stream, uint64_t element0,
                                     const uint64_t *step) {
  DS_CUDA_REQUIRE(p >= 0.0f && p < 1.0f, "dropout_forward_cuda", "p = %g outside [0,1)", (double)p);
  if (n == 0) return;
  DS_CUDA_REQUIRE(out && inp, "dropout_forward_cuda", "NULL buffer");
  if (!training || p <= 0.0f) { /* p = 0 keeps everything, whatever the words */
    float s = form == DS_DROPOUT_INVERTED ? 1.0f : 1.0f - p;
    dropout_scale_launch(out, inp, n, s);
    return;
  }
  DS_CUDA_REQUIRE(step, "dropout_forward_cuda", "NULL step (a training forward needs the key in device memory)");
  dropout_mask_launch(out, inp, n, p, form, seed, stream, element0, step);
}

/* dinp[n] <- dout[n] (dinp may alias dout) */
extern "C" void dropout_backward_cuda(float *dinp, const float *dout, size_t n, float p, ds_dropout_form form,
                                      uint64_t seed, uint32_t stream, uint64_t element0, const uint64_t *step) {
  DS_CUDA_REQUIRE(p >= 0.0f && p < 1.0f, "dropout_backward_cuda", "p = %g outside [0,1)", (double)p);
  if (n == 0) return;
  DS_CUDA_REQUIRE(dinp && dout, "dropout_backward_cuda", "NULL buffer");
  if (p <= 0.0f) { /* identity (a word of 0xffffffff must not drop anything) */
    dropout_scale_launch(dinp, dout, n, 1.0f);
    return;
  }
  DS_CUDA_REQUIRE(step, "dropout_backward_cuda", "NULL step");
  dropout_mask_launch(dinp, dout, n, p, form, seed, stream, element0, step);
}
