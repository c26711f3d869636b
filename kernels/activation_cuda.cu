/* Activations, CUDA (CPU twin: activation_cpu.c).
 * Backward uses the saved output y:  relu' = y > 0,  leaky' = y > 0 ? 1 : slope,
 * tanh' = 1 - y^2,  sigmoid' = y (1 - y). The element formulas live in
 * activation_math.cuh (shared with the fused hidden-layer kernels): relu,
 * leaky relu and every backward give the CPU's floats bit for bit. */
#include "activation_math.cuh"
#include "cuda_common.cuh"

/* out[n] = act(inp[n]) */
static __global__ void activation_forward_kernel(float *out, const float *inp, size_t n,
                                                 ds_activation act, float slope) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = ds_act_forward(inp[i], act, slope);
}

/* dinp[n] = dout[n] * act'(from out[n]); dinp may alias dout */
static __global__ void activation_backward_kernel(float *dinp, const float *dout, const float *out, size_t n,
                                                  ds_activation act, float slope) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dinp[i] = __fmul_rn(dout[i], ds_act_derivative(out[i], act, slope));
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
