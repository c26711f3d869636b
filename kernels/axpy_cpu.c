/* axpy, CPU reference (CUDA twin: axpy_cuda.cu). Used to form look-ahead
 * weights w - mu*v for the lookahead form of Nesterov momentum. */
#include "kernels_cpu.h"

/* out[n] = a[n] + alpha * b[n] */
void axpy_cpu(float *out, const float *a, float alpha, const float *b, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = a[i] + alpha * b[i];
}
