/* Batch gather, CUDA (CPU twin: gather_cpu.c). The dataset lives on the GPU as
 * bytes; only the B indices cross the bus each step. */
#include "cuda_common.cuh"

/* x[B,D] = images[indices[b], :] * scale + shift;  y[B] = labels[indices[b]]
 * Grid: y over rows (grid-stride), x over the D bytes of a row (coalesced). */
static __global__ void gather_forward_kernel(float *x, int32_t *y, const uint8_t *images,
                                             const uint8_t *labels, const int32_t *indices, int B,
                                             int D, float scale, float shift) {
  for (int b = blockIdx.y; b < B; b += gridDim.y) {
    int32_t idx = indices[b];
    const uint8_t *src = images + (size_t)idx * (size_t)D;
    float *dst = x + (size_t)b * (size_t)D;
    for (int d = blockIdx.x * blockDim.x + threadIdx.x; d < D; d += gridDim.x * blockDim.x)
      /* __fmul_rn/__fadd_rn: no FMA contraction, so the value is the CPU's bit for bit */
      dst[d] = __fadd_rn(__fmul_rn((float)src[d], scale), shift);
    if (blockIdx.x == 0 && threadIdx.x == 0) y[b] = labels[idx];
  }
}

static void gather_forward_launch(float *x, int32_t *y, const uint8_t *images, const uint8_t *labels,
                                  const int32_t *indices, int B, int D, float scale, float shift) {
  const int threads = 256;
  unsigned int blocks_x = (unsigned int)((D + threads - 1) / threads);
  if (blocks_x > 64) blocks_x = 64;
  unsigned int blocks_y = B < 65535 ? (unsigned int)B : 65535u; /* gridDim.y limit */
  gather_forward_kernel<<<dim3(blocks_x, blocks_y), threads, 0, ds_cuda.stream>>>(
      x, y, images, labels, indices, B, D, scale, shift);
  DS_LAUNCH_CHECK("gather_forward_kernel");
}

/* x[B,D], y[B] <- images[N,D] (bytes), labels[N], indices[B] */
extern "C" void gather_forward_cuda(float *x, int32_t *y, const uint8_t *images, const uint8_t *labels,
                                    const int32_t *indices, int B, int D, float scale, float shift) {
  DS_CUDA_REQUIRE(B >= 0 && D >= 1, "gather_forward_cuda", "bad shape B=%d D=%d", B, D);
  DS_CUDA_REQUIRE(x && y && images && labels && indices, "gather_forward_cuda", "NULL buffer");
  if (B == 0) return;
  gather_forward_launch(x, y, images, labels, indices, B, D, scale, shift);
}
