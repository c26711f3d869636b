/* Batch gather, CPU reference (CUDA twin: gather_cuda.cu). */
#include "kernels_cpu.h"

/* x[B,D], y[B] <- images[N,D] (bytes), labels[N], indices[B] */
void gather_forward_cpu(float *x, int32_t *y, const uint8_t *images, const uint8_t *labels,
                        const int32_t *indices, int B, int D, float scale, float shift) {
  for (int b = 0; b < B; b++) {
    const uint8_t *src = images + (size_t)indices[b] * D;
    float *dst = x + (size_t)b * D;
    for (int d = 0; d < D; d++) dst[d] = (float)src[d] * scale + shift;
    y[b] = labels[indices[b]];
  }
}
