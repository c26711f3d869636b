/* Linear layer, CPU reference (CUDA twin: linear_cuda.cu). Each pool thread
 * owns a block of the output (gemm_cpu_split): forward writes the bias into
 * its block and runs its GEMM over it while the block is in its cache;
 * backward sums the bias gradient of its own output columns. */
#include "kernels_cpu.h"
#include "gemm_cpu.h"
#include "parallel_cpu.h"

typedef struct {
  float *out, *dweight, *dbias;
  const float *inp, *weight, *bias, *dout;
  int B, C_in, C_out;
} linear_job;

static void forward_part(void *p, int part, int parts) {
  const linear_job *j = p;
  int m0, m1, n0, n1;
  gemm_cpu_split(j->B, j->C_out, part, parts, &m0, &m1, &n0, &n1);
  for (int b = m0; b < m1; b++) {
    float *o = j->out + (size_t)b * j->C_out;
    for (int c = n0; c < n1; c++) o[c] = j->bias[c];
  }
  gemm_cpu_block(0, 1, j->C_in, 1.0f, j->inp, j->C_in, j->weight, j->C_in, 1.0f, j->out, j->C_out, m0, m1, n0, n1);
}

/* out[B,C_out] = inp[B,C_in] @ weight[C_out,C_in]^T + bias[C_out] */
void linear_forward_cpu(float *out, const float *inp, const float *weight, const float *bias,
                        int B, int C_in, int C_out) {
  linear_job j = {.out = out, .inp = inp, .weight = weight, .bias = bias, .B = B, .C_in = C_in, .C_out = C_out};
  ds_cpu_parallel(forward_part, &j, (size_t)B * (size_t)C_out * (size_t)C_in / 16);
}

/* dweight rows (output units) of this part, and the bias gradient of the
 * part's own share of the output units, summed over b in order. */
static void weight_grad_part(void *p, int part, int parts) {
  const linear_job *j = p;
  int m0, m1, n0, n1;
  gemm_cpu_split(j->C_out, j->C_in, part, parts, &m0, &m1, &n0, &n1);
  gemm_cpu_block(1, 0, j->B, 1.0f, j->dout, j->C_out, j->inp, j->C_in, 1.0f, j->dweight, j->C_in, m0, m1, n0, n1);
  size_t o0, o1;
  ds_cpu_split((size_t)j->C_out, part, parts, 16, &o0, &o1);
  for (int b = 0; b < j->B; b++) {
    const float *d = j->dout + (size_t)b * j->C_out;
    for (size_t o = o0; o < o1; o++) j->dbias[o] += d[o];
  }
}

/* dinp[B,C_in] = dout[B,C_out] @ weight[C_out,C_in]     (when dinp != NULL)
 * dweight[C_out,C_in] += dout^T @ inp[B,C_in]
 * dbias[C_out] += sum_b dout[b,:] */
void linear_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int B, int C_in, int C_out) {
  if (dinp) gemm_cpu(0, 0, B, C_in, C_out, 1.0f, dout, C_out, weight, C_in, 0.0f, dinp, C_in);
  linear_job j = {.dweight = dweight, .dbias = dbias, .inp = inp, .dout = dout, .B = B, .C_in = C_in, .C_out = C_out};
  ds_cpu_parallel(weight_grad_part, &j, (size_t)B * (size_t)C_out * (size_t)C_in / 16);
}
