/* Linear layer, CUDA (CPU twin: linear_cpu.c).
 *
 * cuBLAS is column-major. A row-major matrix X[R,C] is, read column-major,
 * X^T with leading dimension C; so every GEMM here is written on those
 * transposed views, with no copies:
 *   forward   out^T[C_out,B]    = W^T-view[C_out,C_in] x inp^T[C_in,B]   (+ bias per row)
 *   dinp      dinp^T[C_in,B]    = W-view[C_in,C_out]   x dout^T[C_out,B]
 *   dweight   dW-view[C_in,C_out] += inp^T[C_in,B]     x dout[B,C_out]
 * (W-view is the column-major reading of weight[C_out,C_in]: C_in x C_out.)
 *
 * The forward is one cuBLASLt matmul with the BIAS epilogue (bias added
 * inside the GEMM). cuBLASLt's bias epilogue needs a 16-byte aligned bias; the
 * parameter buffer's views need not be, so otherwise (or if cuBLASLt accepts
 * none of the algorithms its heuristic offers) the forward does what the CPU
 * twin does: broadcast the bias into out, then GEMM with beta = 1.
 * ds_cuda_linear_paths() counts which path ran, so tests can insist on the
 * epilogue where it should run.
 *
 * The bias gradient is a small deterministic column-sum kernel, not the
 * BGRADB epilogue: BGRADB writes the bias gradient (no beta), and parameter
 * gradients here must accumulate across micro-batches.
 *
 * The activation is not fused into the GEMMs (RELU_BIAS / RELU_AUX_BIAS
 * forward, DRELU_BGRAD backward): it runs in the fused hidden-layer kernels
 * (hidden_cuda.cu) with BatchNorm and dropout, which need the elementwise pass
 * anyway (the dropout mask, the saved activation output), and DRELU_BGRAD
 * would overwrite the accumulated bias gradient as BGRADB does.
 *
 * Precision: FP32 (CUBLAS_COMPUTE_32F / CUBLAS_DEFAULT_MATH) unless
 * ds_cuda_set_tf32(1). Reproducibility: cuBLAS documents bit-wise identical
 * results run to run on GPUs of the same architecture and SM count with one
 * active stream (true here: one stream, atomics mode off, fixed workspaces).
 * cuBLASLt's split-K reductions keep that: the "in place" scheme adds the
 * partial products in the output in an order that counters in the workspace
 * fix, not with atomics. So no algorithm is excluded for determinism; what
 * matters is that a shape keeps its algorithm for the whole run (the plans
 * below are chosen once and cached). */
#include <string.h>

#include "cuda_common.cuh"

/* ---- cuBLASLt forward plans ------------------------------------------------- */

/* A plan is the matmul descriptor (with the bias epilogue and the bias
 * pointer), the three layouts and the algorithms the heuristic offers for one
 * (shape, precision, pointer alignment), best first; cached so that the
 * heuristic runs once per shape, not once per step. The forward runs the
 * first algorithm that cuBLASLt accepts and remembers it; when none does, the
 * bias-broadcast + Sgemm path computes the same thing. */
#define DS_LT_ALGOS 8
typedef struct {
  int used;
  int B, C_in, C_out, tf32;
  int align_w, align_in, align_out, align_bias;   /* bytes, power of two in [4, 256] */
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t w_layout, in_layout, out_layout;
  cublasLtMatmulAlgo_t algo[DS_LT_ALGOS];
  int n_algo;              /* algorithms offered by the heuristic */
  int next_algo;           /* the first one not yet refused: the one in use */
} lt_plan;

#define DS_LT_PLANS 32
static lt_plan plans[DS_LT_PLANS];
static int plan_next;

/* Which path each forward took (ds_cuda_linear_paths). */
static long forwards_lt, forwards_fallback;

extern "C" void ds_cuda_linear_paths(long *lt, long *fallback) {
  if (lt) *lt = forwards_lt;
  if (fallback) *fallback = forwards_fallback;
}

/* Largest power of two (at most 256, the heuristic's default assumption)
 * dividing the address: the heuristic must not pick kernels that need more. */
static uint32_t alignment_of(const void *p) {
  uintptr_t a = (uintptr_t)p;
  uint32_t al = 256;
  while (al > 4 && (a % al) != 0) al >>= 1;
  return al;
}

static void lt_plan_destroy(lt_plan *p) {
  if (!p->used) return;
  cublasCheck(cublasLtMatrixLayoutDestroy(p->w_layout));
  cublasCheck(cublasLtMatrixLayoutDestroy(p->in_layout));
  cublasCheck(cublasLtMatrixLayoutDestroy(p->out_layout));
  cublasCheck(cublasLtMatmulDescDestroy(p->desc));
  p->used = 0;
}

static void lt_plan_create(lt_plan *p, int B, int C_in, int C_out, int tf32, const float *bias,
                           uint32_t align_w, uint32_t align_in, uint32_t align_out) {
  memset(p, 0, sizeof *p);
  p->used = 1;
  p->B = B;
  p->C_in = C_in;
  p->C_out = C_out;
  p->tf32 = tf32;
  p->align_w = (int)align_w;
  p->align_in = (int)align_in;
  p->align_out = (int)align_out;
  p->align_bias = (int)alignment_of(bias);
  cublasComputeType_t compute = tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  cublasCheck(cublasLtMatmulDescCreate(&p->desc, compute, CUDA_R_32F));
  cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
  cudaDataType_t bias_type = CUDA_R_32F;
  cublasCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof trans_a));
  cublasCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof trans_b));
  cublasCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
  cublasCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type));
  /* the real bias pointer before asking: the heuristic then sees its alignment */
  cublasCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
  /* stored (pre-op) shapes: A = W-view C_in x C_out, B = inp^T C_in x B, C = D = out^T C_out x B */
  cublasCheck(cublasLtMatrixLayoutCreate(&p->w_layout, CUDA_R_32F, (uint64_t)C_in, (uint64_t)C_out, C_in));
  cublasCheck(cublasLtMatrixLayoutCreate(&p->in_layout, CUDA_R_32F, (uint64_t)C_in, (uint64_t)B, C_in));
  cublasCheck(cublasLtMatrixLayoutCreate(&p->out_layout, CUDA_R_32F, (uint64_t)C_out, (uint64_t)B, C_out));

  cublasLtMatmulPreference_t pref;
  cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
  uint64_t ws = ds_cuda.lt_workspace_bytes;
  cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_w, sizeof align_w));
  cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_in, sizeof align_in));
  cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_out, sizeof align_out));
  cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_out, sizeof align_out));
  cublasLtMatmulHeuristicResult_t results[DS_LT_ALGOS];
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(ds_cuda.lt, p->desc, p->w_layout, p->in_layout, p->out_layout,
                                                     p->out_layout, pref, DS_LT_ALGOS, results, &found);
  /* NOT_SUPPORTED (no algorithm) or anything else: the plain cuBLAS path computes the same thing */
  if (st == CUBLAS_STATUS_SUCCESS)
    for (int i = 0; i < found && i < DS_LT_ALGOS; i++)
      if (results[i].state == CUBLAS_STATUS_SUCCESS) p->algo[p->n_algo++] = results[i].algo;
  cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
}

/* At exit (unchecked: nothing can be reported from an atexit handler). */
void ds_cuda_linear_plans_free(void) {
  for (int i = 0; i < DS_LT_PLANS; i++) {
    lt_plan *p = &plans[i];
    if (!p->used) continue;
    (void)cublasLtMatrixLayoutDestroy(p->w_layout);
    (void)cublasLtMatrixLayoutDestroy(p->in_layout);
    (void)cublasLtMatrixLayoutDestroy(p->out_layout);
    (void)cublasLtMatmulDescDestroy(p->desc);
    p->used = 0;
  }
}

static lt_plan *lt_plan_get(int B, int C_in, int C_out, const float *weight, const float *inp, const float *out,
                            const float *bias) {
  int tf32 = ds_cuda_tf32();
  uint32_t aw = alignment_of(weight), ai = alignment_of(inp), ao = alignment_of(out), ab = alignment_of(bias);
  for (int i = 0; i < DS_LT_PLANS; i++) {
    lt_plan *p = &plans[i];
    if (p->used && p->B == B && p->C_in == C_in && p->C_out == C_out && p->tf32 == tf32 &&
        p->align_w == (int)aw && p->align_in == (int)ai && p->align_out == (int)ao && p->align_bias == (int)ab)
      return p;
  }
  lt_plan *p = &plans[plan_next];
  plan_next = (plan_next + 1) % DS_LT_PLANS;
  lt_plan_destroy(p);
  lt_plan_create(p, B, C_in, C_out, tf32, bias, aw, ai, ao);
  return p;
}

/* ---- kernels ------------------------------------------------------------------ */

/* out[B,C_out] = bias broadcast over rows (the fallback forward's first half) */
static __global__ void linear_bias_broadcast_kernel(float *out, const float *bias, int B, int C_out) {
  size_t n = (size_t)B * (size_t)C_out;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = bias[i % (size_t)C_out];
}

/* dbias[C_out] += sum_b dout[b,:]. A block owns 32 columns (threadIdx.x:
 * coalesced reads of a row segment); its 32 row lanes (threadIdx.y) stride
 * over the batch, then lane 0 adds the 32 partial sums in a fixed order:
 * deterministic, no atomics. */
#define DS_BG_COLS 32
#define DS_BG_ROWS 32
static __global__ void linear_bias_grad_kernel(float *dbias, const float *dout, int B, int C_out) {
  __shared__ float partial[DS_BG_ROWS][DS_BG_COLS + 1];
  int o = blockIdx.x * DS_BG_COLS + threadIdx.x;
  float s = 0.0f;
  if (o < C_out)
    for (int b = threadIdx.y; b < B; b += DS_BG_ROWS) s += dout[(size_t)b * C_out + o];
  partial[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && o < C_out) {
    float t = 0.0f;
    for (int r = 0; r < DS_BG_ROWS; r++) t += partial[r][threadIdx.x];
    dbias[o] += t;
  }
}

/* ---- launchers ----------------------------------------------------------------- */

/* The forward through cuBLASLt with the bias epilogue: the plan's algorithms
 * in turn until one is accepted (a refusal is a status, not a fault, and
 * happens before any work is queued). 0 when none is. */
static int linear_forward_lt(float *out, const float *inp, const float *weight, const float *bias, int B,
                             int C_in, int C_out) {
  lt_plan *p = lt_plan_get(B, C_in, C_out, weight, inp, out, bias);
  const float one = 1.0f, zero = 0.0f;
  cublasCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
  for (; p->next_algo < p->n_algo; p->next_algo++) {
    cublasStatus_t st = cublasLtMatmul(ds_cuda.lt, p->desc, &one, weight, p->w_layout, inp, p->in_layout, &zero, out,
                                       p->out_layout, out, p->out_layout, &p->algo[p->next_algo], ds_cuda.lt_workspace,
                                       ds_cuda.lt_workspace_bytes, ds_cuda.stream);
    if (st == CUBLAS_STATUS_SUCCESS) {
      ds_cuda_blas_issued("cublasLtMatmul (bias epilogue)", __FILE__, __LINE__);
      return 1;
    }
    if (st != CUBLAS_STATUS_NOT_SUPPORTED && st != CUBLAS_STATUS_INVALID_VALUE)
      ds_cublas_fail(st, "cublasLtMatmul (bias epilogue)", __FILE__, __LINE__);
  }
  return 0;
}

static void linear_forward_launch(float *out, const float *inp, const float *weight, const float *bias,
                                  int B, int C_in, int C_out) {
  if (alignment_of(bias) >= 16 && linear_forward_lt(out, inp, weight, bias, B, C_in, C_out)) {
    forwards_lt++;
    return;
  }
  forwards_fallback++;
  const float one = 1.0f;
  size_t n = (size_t)B * (size_t)C_out;
  linear_bias_broadcast_kernel<<<ds_cuda_grid(n, 256, 16), 256, 0, ds_cuda.stream>>>(out, bias, B, C_out);
  DS_LAUNCH_CHECK("linear_bias_broadcast_kernel");
  DS_BLAS(cublasSgemm(ds_cuda.blas, CUBLAS_OP_T, CUBLAS_OP_N, C_out, B, C_in, &one, weight, C_in, inp, C_in,
                      &one, out, C_out));
}

static void linear_backward_launch(float *dinp, float *dweight, float *dbias, const float *dout,
                                   const float *inp, const float *weight, int B, int C_in, int C_out) {
  const float one = 1.0f, zero = 0.0f;
  if (dinp) /* overwritten: beta = 0 */
    DS_BLAS(cublasSgemm(ds_cuda.blas, CUBLAS_OP_N, CUBLAS_OP_N, C_in, B, C_out, &one, weight, C_in, dout,
                        C_out, &zero, dinp, C_in));
  /* accumulated: beta = 1 */
  DS_BLAS(cublasSgemm(ds_cuda.blas, CUBLAS_OP_N, CUBLAS_OP_T, C_in, C_out, B, &one, inp, C_in, dout, C_out,
                      &one, dweight, C_in));
  unsigned int blocks = (unsigned int)((C_out + DS_BG_COLS - 1) / DS_BG_COLS);
  linear_bias_grad_kernel<<<blocks, dim3(DS_BG_COLS, DS_BG_ROWS), 0, ds_cuda.stream>>>(dbias, dout, B, C_out);
  DS_LAUNCH_CHECK("linear_bias_grad_kernel");
}

/* ---- ops ------------------------------------------------------------------------ */

/* out[B,C_out] = inp[B,C_in] @ weight[C_out,C_in]^T + bias[C_out] */
extern "C" void linear_forward_cuda(float *out, const float *inp, const float *weight, const float *bias,
                                    int B, int C_in, int C_out) {
  DS_CUDA_REQUIRE(B >= 0 && C_in >= 1 && C_out >= 1, "linear_forward_cuda", "bad shape B=%d C_in=%d C_out=%d",
                  B, C_in, C_out);
  DS_CUDA_REQUIRE(out && inp && weight && bias, "linear_forward_cuda", "NULL buffer");
  if (B == 0) return;
  linear_forward_launch(out, inp, weight, bias, B, C_in, C_out);
}

/* dinp[B,C_in] = dout[B,C_out] @ weight[C_out,C_in]     (when dinp != NULL)
 * dweight[C_out,C_in] += dout^T @ inp[B,C_in]
 * dbias[C_out] += sum_b dout[b,:] */
extern "C" void linear_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout,
                                     const float *inp, const float *weight, int B, int C_in, int C_out) {
  DS_CUDA_REQUIRE(B >= 0 && C_in >= 1 && C_out >= 1, "linear_backward_cuda", "bad shape B=%d C_in=%d C_out=%d",
                  B, C_in, C_out);
  DS_CUDA_REQUIRE(dweight && dbias && dout && inp && weight, "linear_backward_cuda", "NULL buffer");
  if (B == 0) return;
  linear_backward_launch(dinp, dweight, dbias, dout, inp, weight, B, C_in, C_out);
}
