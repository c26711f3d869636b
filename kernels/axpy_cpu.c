/* axpy, CPU reference (CUDA twin: axpy_cuda.cu), on all threads. Used to form
 * look-ahead weights w - mu*v for the lookahead form of Nesterov momentum. */
#include "kernels_cpu.h"
#include "parallel_cpu.h"

typedef struct {
  float *out;
  const float *a, *b;
  float alpha;
  size_t n;
} axpy_job;

static void axpy_part(void *p, int part, int parts) {
  const axpy_job *j = p;
  size_t b, e;
  ds_cpu_split(j->n, part, parts, 16, &b, &e);
  float *out = j->out, alpha = j->alpha;
  const float *a = j->a, *x = j->b;
  for (size_t i = b; i < e; i++) out[i] = a[i] + alpha * x[i];
}

/* out[n] = a[n] + alpha * b[n] */
void axpy_cpu(float *out, const float *a, float alpha, const float *b, size_t n) {
  axpy_job j = {out, a, b, alpha, n};
  ds_cpu_parallel(axpy_part, &j, n);
}
