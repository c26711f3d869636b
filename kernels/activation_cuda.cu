/* Activations, CUDA (CPU twin: activation_cpu.c).
 * Backward uses the saved output y:  relu' = y > 0,  leaky' = y > 0 ? 1 : slope,
 * tanh' = 1 - y^2,  sigmoid' = y (1 - y).
 * The products are written with __fmul_rn/__fsub_rn so that nvcc does not fuse
 * them into FMAs: relu, leaky relu and every backward then give the CPU's
 * floats bit for bit (tanhf/expf in the forward differ from glibc's by an ulp
 * or two). */
#include "cuda_common.cuh"

/* out[n] = act(inp[n]) */
static __global__ void activation_forward_kernel(float *out, const float *inp, size_t n,
                                                 ds_activation act, float slope) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    float x = inp[i];
    float y;
    switch (act) {
      case DS_ACT_RELU: y = x > 0.0f ? x : 0.0f; break;
      case DS_ACT_LEAKY_RELU: y = x > 0.0f ? x : __fmul_rn(slope, x); break;
      case DS_ACT_TANH: y = tanhf(x); break;
      default: y = 1.0f / (1.0f + expf(-x)); break;
    }
    out[i] = y;
  }
}

/* dinp[n] = dout[n] * act'(from out[n]); dinp may alias dout */
static __global__ void activation_backward_kernel(float *dinp, const float *dout, const float *out, size_t n,
                                                  ds_activation act, float slope) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    float y = out[i];
    float d;
    switch (act) {
      case DS_ACT_RELU: d = y > 0.0f ? 1.0f : 0.0f; break;
      case DS_ACT_LEAKY_RELU: d = y > 0.0f ? 1.0f : slope; break;
      case DS_ACT_TANH: d = __fsub_rn(1.0f, __fmul_rn(y, y)); break;
      default: d = __fmul_rn(y, __fsub_rn(1.0f, y)); break;
    }
    dinp[i] = __fmul_rn(dout[i], d);
  }
}

static void activation_forward_launch(float *out, const float *inp, size_t n, ds_activation act, float slope) {
  activation_forward_kernel<<<ds_cuda_grid(n, 256, 16), 256, 0, ds_cuda.stream>>>(out, inp, n, act, slope);
  DS_LAUNCH_CHECK("activation_forward_kernel");
}

static void activation_backward_launch(float *dinp, const float *dout, const float *out, size_t n,
                                       ds_activation act, float slope) {
  activation_backward_kernel<<<ds_cuda_grid(n, 256, 16), 256, 0, ds_cuda.stream>>>(dinp, dout, out, n, act, slope);
  DS_LAUNCH_CHECK("activation_backward_kernel");
}

/* out[n] = act(inp[n]) */
extern "C" void activation_forward_cuda(float *out, const float *inp, size_t n, ds_activation act, float slope) {
  DS_CUDA_REQUIRE(act >= DS_ACT_RELU && act <= DS_ACT_SIGMOID, "activation_forward_cuda", "unknown activation %d", (int)act);
  if (n == 0) return;
  DS_CUDA_REQUIRE(out && inp, "activation_forward_cuda", "NULL buffer");
  activation_forward_launch(out, inp, n, act, slope);
}

/* dinp[n] = dout[n] * act'(from out[n]) */
extern "C" void activation_backward_cuda(float *dinp, const float *dout, const float *out, size_t n,
                                         ds_activation act, float slope) {
  DS_CUDA_REQUIRE(act >= DS_ACT_RELU && act <= DS_ACT_SIGMOID, "activation_backward_cuda", "unknown activation %d", (int)act);
  if (n == 0) return;
  DS_CUDA_REQUIRE(dinp && dout && out, "activation_backward_cuda", "NULL buffer");
  activation_backward_launch(dinp, dout, out, n, act, slope);
}
