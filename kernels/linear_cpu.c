/* Linear layer, CPU reference (CUDA twin: linear_cuda.cu). */
#include "kernels_cpu.h"
#include "gemm_cpu.h"

/* out[B,C_out] = inp[B,C_in] @ weight[C_out,C_in]^T + bias[C_out] */
void linear_forward_cpu(float *out, const float *inp, const float *weight, const float *bias,
                        int B, int C_in, int C_out) {
  for (int b = 0; b < B; b++)
    for (int o = 0; o < C_out; o++) out[(size_t)b * C_out + o] = bias[o];
  gemm_cpu(0, 1, B, C_out, C_in, 1.0f, inp, C_in, weight, C_in, 1.0f, out, C_out);
}

/* dinp[B,C_in] = dout[B,C_out] @ weight[C_out,C_in]     (when dinp != NULL)
 * dweight[C_out,C_in] += dout^T @ inp[B,C_in]
 * dbias[C_out] += sum_b dout[b,:] */
void linear_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int B, int C_in, int C_out) {
  if (dinp) gemm_cpu(0, 0, B, C_in, C_out, 1.0f, dout, C_out, weight, C_in, 0.0f, dinp, C_in);
  gemm_cpu(1, 0, C_out, C_in, B, 1.0f, dout, C_out, inp, C_in, 1.0f, dweight, C_in);
  for (int b = 0; b < B; b++)
    for (int o = 0; o < C_out; o++) dbias[o] += dout[(size_t)b * C_out + o];
}
