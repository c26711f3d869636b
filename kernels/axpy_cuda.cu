/* axpy, CUDA (CPU twin: axpy_cpu.c). Used to form look-ahead weights
 * w - mu*v for the lookahead form of Nesterov momentum. __fmul_rn/__fadd_rn
 * keep nvcc from fusing into an FMA, so the result is the CPU's bit for bit. */
#include "cuda_common.cuh"

/* out[n] = a[n] + alpha * b[n]; out may alias a or b */
static __global__ void axpy_kernel(float *out, const float *a, float alpha, const float *b, size_t n) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = __fadd_rn(a[i], __fmul_rn(alpha, b[i]));
}

static void axpy_launch(float *out, const float *a, float alpha, const float *b, size_t n) {
  axpy_kernel<<<ds_cuda_grid(n, 256, 16), 256, 0, ds_cuda.stream>>>(out, a, alpha, b, n);
  DS_LAUNCH_CHECK("axpy_kernel");
}

/* out[n] = a[n] + alpha * b[n] */
extern "C" void axpy_cuda(float *out, const float *a, float alpha, const float *b, size_t n) {
  if (n == 0) return;
  DS_CUDA_REQUIRE(out && a && b, "axpy_cuda", "NULL buffer");
  axpy_launch(out, a, alpha, b, n);
}
