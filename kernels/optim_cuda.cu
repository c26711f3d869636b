/* Optimizer step over the flat buffers, CUDA (CPU twin: optim_cpu.c).
 *
 * The whole model is updated by ONE kernel launch, whatever the optimizer or
 * its options: a grid-stride loop over the flat parameter, gradient and state
 * buffers, float4 loads and stores (scalar for the last n % 4 elements, and
 * for buffers that are not 16-byte aligned), each element going through
 * ds_optim_element from optim_math.h, the very code the CPU runs. The
 * configuration is passed by value (fixed for a run); the per-step scalars
 * (lr after schedule, bias corrections, t) are read from device memory when
 * the kernel runs, so a captured CUDA graph replays with the current step's.
 *
 * Clip-by-norm adds one launch before it: a deterministic reduction of the
 * sum of squares (double, fixed order) whose last block writes the norm and
 * the clip coefficient to device memory, where the update kernel reads them:
 * no host round trip. */
#include <math.h>

#include "cuda_common.cuh"
#include "optim_math.h"

#define DS_OPT_THREADS 256
#define DS_NORM_THREADS 256
#define DS_NORM_MAX_BLOCKS 1024

static __device__ double norm_partials[DS_NORM_MAX_BLOCKS];
static __device__ unsigned int norm_blocks_done;
static __device__ double norm_value;       /* last global norm (ds_cuda_last_grad_norm) */
static __device__ float norm_clip_coef;    /* min(1, clip_norm / (norm + 1e-6)) */

/* norm_value = ||clip_value(grad[n])||_2, norm_clip_coef from it. Each thread
 * sums squares in double over a grid-stride slice, blocks reduce with a fixed
 * tree, the last block (integer atomic ticket) adds the block partials in
 * block order. */
static __global__ void grad_norm_kernel(const float *grad, size_t n, float clip_value, float clip_norm) {
  double ss = 0.0;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    double g = ds_clip_value(grad[i], clip_value);
    ss += g * g;
  }
  ss = ds_block_sum(ss);
  __shared__ int is_last;
  if (threadIdx.x == 0) {
    norm_partials[blockIdx.x] = ss;
    __threadfence();
    is_last = atomicAdd(&norm_blocks_done, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!is_last) return;
  double total = 0.0;
  for (unsigned int i = threadIdx.x; i < gridDim.x; i += blockDim.x) total += __ldcg(&norm_partials[i]);
  total = ds_block_sum(total);
  if (threadIdx.x == 0) {
    double norm = sqrt(total);
    double coef = clip_norm / (norm + 1e-6); /* the CPU's expression, in double */
    norm_value = norm;
    norm_clip_coef = coef < 1.0 ? (float)coef : 1.0f;
    norm_blocks_done = 0;
  }
}

/* Four consecutive elements of a (possibly absent) buffer, as one float4. */
__device__ __forceinline__ void load4(const float *ptr, size_t q, float *a) {
  if (!ptr) return;
  float4 t = reinterpret_cast<const float4 *>(ptr)[q];
  a[0] = t.x;
  a[1] = t.y;
  a[2] = t.z;
  a[3] = t.w;
}

__device__ __forceinline__ void store4(float *ptr, size_t q, const float *a) {
  if (ptr) reinterpret_cast<float4 *>(ptr)[q] = make_float4(a[0], a[1], a[2], a[3]);
}

/* param[n], state[n] <- grad[n]; elements [0, decay_end) are decayed.
 * The per-thread arrays are indexed by the unrolled j only, so they live in
 * registers; an absent state buffer leaves its array at 0, untouched by the
 * update (ds_optim_element reads only the roles its configuration has). */
static __global__ void optim_step_kernel(ds_optim_buffers buf, size_t n, size_t decay_end, ds_optim_config cfg,
                                         const ds_optim_scalars *sp, int use_clip_norm, int vec) {
  ds_optim_scalars s = *sp;
  float clip_coef = use_clip_norm ? norm_clip_coef : 1.0f;
  size_t stride = (size_t)gridDim.x * blockDim.x;
  size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  size_t n4 = vec ? n / 4 : 0;
  for (size_t q = tid; q < n4; q += stride) {
    float p[4], g[4], m[4] = {0, 0, 0, 0}, v[4] = {0, 0, 0, 0}, vmax[4] = {0, 0, 0, 0}, gavg[4] = {0, 0, 0, 0};
    load4(buf.param, q, p);
    load4(buf.grad, q, g);
    load4(buf.m, q, m);
    load4(buf.v, q, v);
    load4(buf.vmax, q, vmax);
    load4(buf.gavg, q, gavg);
#pragma unroll
    for (int j = 0; j < 4; j++)
      ds_optim_element((size_t)j, &cfg, &s, clip_coef, 4 * q + j < decay_end, p, g, m, v, vmax, gavg);
    store4(buf.param, q, p);
    store4(buf.m, q, m);
    store4(buf.v, q, v);
    store4(buf.vmax, q, vmax);
    store4(buf.gavg, q, gavg);
  }
  for (size_t i = 4 * n4 + tid; i < n; i += stride) /* tail, or everything when unaligned */
    ds_optim_element(i, &cfg, &s, clip_coef, i < decay_end, buf.param, buf.grad, buf.m, buf.v, buf.vmax, buf.gavg);
}

static void grad_norm_launch(const float *grad, size_t n, float clip_value, float clip_norm) {
  unsigned int blocks = ds_cuda_grid(n, DS_NORM_THREADS, 4);
  if (blocks > DS_NORM_MAX_BLOCKS) blocks = DS_NORM_MAX_BLOCKS;
  grad_norm_kernel<<<blocks, DS_NORM_THREADS, 0, ds_cuda.stream>>>(grad, n, clip_value, clip_norm);
  DS_LAUNCH_CHECK("grad_norm_kernel");
}

static void optim_step_launch(const ds_optim_buffers *buf, size_t n, size_t decay_end, const ds_optim_config *cfg,
                              const ds_optim_scalars *s) {
  int vec = ds_cuda_aligned16(buf->param, buf->grad, buf->m, buf->v, buf->vmax, buf->gavg);
  size_t items = vec ? (n + 3) / 4 : n;
  /* 2M parameters: 512K float4 items -> 2048 blocks of 256, ~2 waves of a 132-SM H100 */
  unsigned int blocks = ds_cuda_grid(items, DS_OPT_THREADS, 16);
  optim_step_kernel<<<blocks, DS_OPT_THREADS, 0, ds_cuda.stream>>>(*buf, n, decay_end, *cfg, s,
                                                                   cfg->clip_norm > 0.0f, vec);
  DS_LAUNCH_CHECK("optim_step_kernel");
}

/* param[n], state[n] <- grad[n]; elements [0, n_decay) are decayed; s: device memory */
extern "C" void optim_step_cuda(const ds_optim_buffers *buf, size_t n, size_t n_decay,
                                const ds_optim_config *cfg, const ds_optim_scalars *s) {
  DS_CUDA_REQUIRE(buf && cfg && s, "optim_step_cuda", "NULL argument");
  if (n == 0) return;
  DS_CUDA_REQUIRE(buf->param && buf->grad, "optim_step_cuda", "NULL parameter or gradient buffer");
  ds_optim_roles roles = ds_optim_state_roles(cfg);
  DS_CUDA_REQUIRE((!roles.m || buf->m) && (!roles.v || buf->v) && (!roles.vmax || buf->vmax) &&
                      (!roles.gavg || buf->gavg),
                  "optim_step_cuda", "a state buffer the %s configuration needs is NULL", ds_optim_name(cfg->kind));
  size_t decay_end = cfg->decay_all ? n : (n_decay < n ? n_decay : n);
  /* the non-finite check asked for with the update (descent/optim.h): its own
     scan kernel first, as the trainer launched it before */
  if (buf->nonfinite) monitor_nonfinite_cuda(buf->nonfinite, buf->grad, n, buf->update);
  if (cfg->clip_norm > 0.0f) grad_norm_launch(buf->grad, n, cfg->clip_value, cfg->clip_norm);
  optim_step_launch(buf, n, decay_end, cfg, s);
}

extern "C" double ds_cuda_last_grad_norm(void) {
  ds_cuda_refuse_while_capturing("ds_cuda_last_grad_norm");
  double norm = 0.0;
  cudaCheck(cudaMemcpyFromSymbolAsync(&norm, norm_value, sizeof norm, 0, cudaMemcpyDeviceToHost, ds_cuda.stream));
  cudaCheck(cudaStreamSynchronize(ds_cuda.stream));
  return norm;
}
