/* Batch gather, CPU reference (CUDA twin: gather_cuda.cu), rows on all threads. */
#include "kernels_cpu.h"
#include "parallel_cpu.h"

typedef struct {
  float *x;
  int32_t *y;
  const uint8_t *images, *labels;
  const int32_t *indices;
  int B, D;
  float scale, shift;
} gather_job;

static void gather_part(void *p, int part, int parts) {
  const gather_job *j = p;
  size_t b0, b1;
  ds_cpu_split((size_t)j->B, part, parts, 1, &b0, &b1);
  for (size_t b = b0; b < b1; b++) {
    const uint8_t *src = j->images + (size_t)j->indices[b] * j->D;
    float *dst = j->x + b * j->D;
    for (int d = 0; d < j->D; d++) dst[d] = (float)src[d] * j->scale + j->shift;
    j->y[b] = j->labels[j->indices[b]];
  }
}

/* x[B,D], y[B] <- images[N,D] (bytes), labels[N], indices[B] */
void gather_forward_cpu(float *x, int32_t *y, const uint8_t *images, const uint8_t *labels,
                        const int32_t *indices, int B, int D, float scale, float shift) {
  gather_job j = {x, y, images, labels, indices, B, D, scale, shift};
  ds_cpu_parallel(gather_part, &j, (size_t)B * (size_t)D);
}
