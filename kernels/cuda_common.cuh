/* Shared by the *_cuda.cu files: the backend's device context, checked calls
 * (every CUDA and cuBLAS status is checked; a failure prints one line
 * with file:line, the call, the library's message and a hint, then exits 1),
 * the launch check that follows every kernel launch, and grid maths.
 *
 * Each op is written in three layers: a host function with the CPU twin's
 * name and arguments that checks its arguments, a launcher that does the grid
 * maths, and a `static __global__` kernel. */
#ifndef DS_CUDA_COMMON_CUH
#define DS_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "backend_cuda.h"
#include "descent/common.h"

/* The device context: one device, one stream, per process. Filled by
 * ds_backend_cuda() (backend_cuda.cu); ops only read it. */
typedef struct {
  int ready;                  /* ds_backend_cuda() succeeded */
  int device;
  int sm_count;               /* streaming multiprocessors (grid sizing) */
  cudaStream_t stream;        /* every op, copy and memset goes here, in order */
  cublasHandle_t blas;        /* bound to `stream`, with its own workspace */
  cublasLtHandle_t lt;
  void *lt_workspace;         /* cuBLASLt workspace, lt_workspace_bytes */
  size_t lt_workspace_bytes;
  int capturing;              /* between ds_cuda_graph_begin and _end */
  int sync_each_launch;       /* DESCENT_CUDA_SYNC=1: synchronise after every launch */
  long launches;              /* see ds_cuda_launch_count() */
  const char *last_launch;    /* the work issued last (named in fault reports) */
} ds_cuda_context;

extern ds_cuda_context ds_cuda;

/* ---- checked calls ----------------------------------------------------- */
/* One line on stderr: "descent: CUDA error at kernels/x.cu:12 in <call>: <msg>; hint: ...",
 * then exit 1 (DS_EXIT_RUNTIME). */
void ds_cuda_fail(cudaError_t err, const char *call, const char *file, int line);
void ds_cublas_fail(cublasStatus_t st, const char *call, const char *file, int line);
/* After every kernel launch: counts it, turns a launch error (bad grid, too
 * many resources, no kernel image for this GPU) into the one-line message,
 * and with DESCENT_CUDA_SYNC=1 also waits so that a fault inside the kernel
 * is reported at its own launch rather than at a later call. */
void ds_cuda_launched(const char *kernel, const char *file, int line);
/* A cuBLAS/cuBLASLt call was issued: count it (and sync-check like a launch). */
void ds_cuda_blas_issued(const char *call, const char *file, int line);
/* Exit 1 naming `what` when a graph capture is in progress (host-side calls
 * such as downloads and synchronisation cannot be captured). */
void ds_cuda_refuse_while_capturing(const char *what);
/* Destroy the cached cuBLASLt plans (linear_cuda.cu; at exit). */
void ds_cuda_linear_plans_free(void);

#define cudaCheck(call)                                                  \
  do {                                                                   \
    cudaError_t ds_err_ = (call);                                        \
    if (ds_err_ != cudaSuccess) ds_cuda_fail(ds_err_, #call, __FILE__, __LINE__); \
  } while (0)

#define cublasCheck(call)                                                \
  do {                                                                   \
    cublasStatus_t ds_st_ = (call);                                      \
    if (ds_st_ != CUBLAS_STATUS_SUCCESS) ds_cublas_fail(ds_st_, #call, __FILE__, __LINE__); \
  } while (0)

/* Put right after every <<<...>>>: DS_LAUNCH_CHECK("softmax_xent_kernel"); */
#define DS_LAUNCH_CHECK(kernel) ds_cuda_launched((kernel), __FILE__, __LINE__)
/* Wrap every cuBLAS / cuBLASLt compute call: checks its status and counts it. */
#define DS_BLAS(call)                                                    \
  do {                                                                   \
    cublasCheck(call);                                                   \
    ds_cuda_blas_issued(#call, __FILE__, __LINE__);                      \
  } while (0)

/* An op was called with arguments that cannot be right (a descent bug, not a
 * user error): one line naming the op, exit 1. */
#define DS_CUDA_REQUIRE(cond, op, ...)                                   \
  do {                                                                   \
    if (!(cond)) ds_fatal(DS_EXIT_RUNTIME, op ": " __VA_ARGS__);          \
  } while (0)

/* ---- grid maths ---------------------------------------------------------- */
/* Blocks for a grid-stride loop over `work` items with `threads` per block:
 * one item per thread while that fits in `per_sm` resident-or-queued blocks
 * per SM, fewer (each thread looping) beyond. Never 0. */
static inline unsigned int ds_cuda_grid(size_t work, int threads, int per_sm) {
  size_t want = (work + (size_t)threads - 1) / (size_t)threads;
  size_t cap = (size_t)(ds_cuda.sm_count > 0 ? ds_cuda.sm_count : 1) * (size_t)per_sm;
  if (want > cap) want = cap;
  return want ? (unsigned int)want : 1u;
}

/* Whether every pointer is aligned for float4 (16-byte) access; NULL counts as aligned. */
static inline int ds_cuda_aligned16(const void *a, const void *b, const void *c, const void *d,
                                    const void *e, const void *f) {
  uintptr_t bits = (uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d | (uintptr_t)e |
                   (uintptr_t)f;
  return (bits & 15u) == 0;
}

/* ---- device helpers ------------------------------------------------------ */
/* Deterministic block-wide sum of one double per thread (fixed shuffle tree,
 * then the warps' results in warp order). blockDim.x must be a multiple of 32,
 * at most 1024; every thread of the block must call it; the result is valid
 * in every thread. */
__device__ __forceinline__ double ds_block_sum(double v) {
  __shared__ double warp_sums[32];
  __shared__ double total;
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads(); /* warp_sums/total may still be read from a previous call */
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    int n_warps = (int)(blockDim.x >> 5);
    double s = lane < n_warps ? warp_sums[lane] : 0.0;
    for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
    if (lane == 0) total = s;
  }
  __syncthreads();
  return total;
}

#endif
