/* The activations element by element, on the device: used by the activation
 * kernels (activation_cuda.cu) and the fused hidden-layer kernels
 * (hidden_cuda.cu), so that both compute the same floats. The formulas are
 * the CPU's (activation_cpu.c); products use __fmul_rn/__fsub_rn so that nvcc
 * does not contract them into FMAs, which makes relu, leaky relu and every
 * derivative equal to the CPU's bit for bit (tanhf/expf differ from glibc's by
 * an ulp or two). */
#ifndef DS_ACTIVATION_MATH_CUH
#define DS_ACTIVATION_MATH_CUH

#include "descent/backend.h"

/* y = act(x) */
__device__ __forceinline__ float ds_act_forward(float x, ds_activation act, float slope) {
  switch (act) {
    case DS_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case DS_ACT_LEAKY_RELU: return x > 0.0f ? x : __fmul_rn(slope, x);
    case DS_ACT_TANH: return tanhf(x);
    default: return 1.0f / (1.0f + expf(-x));
  }
}

/* act'(x) from the saved output y:  relu' = y > 0,  leaky' = y > 0 ? 1 : slope,
 * tanh' = 1 - y^2,  sigmoid' = y (1 - y) */
__device__ __forceinline__ float ds_act_derivative(float y, ds_activation act, float slope) {
  switch (act) {
    case DS_ACT_RELU: return y > 0.0f ? 1.0f : 0.0f;
    case DS_ACT_LEAKY_RELU: return y > 0.0f ? 1.0f : slope;
    case DS_ACT_TANH: return __fsub_rn(1.0f, __fmul_rn(y, y));
    default: return __fmul_rn(y, __fsub_rn(1.0f, y));
  }
}

#endif
