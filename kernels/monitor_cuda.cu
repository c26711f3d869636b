/* Monitoring reductions, CUDA (CPU twin: monitor_cpu.c; contracts in descent/backend.h).
 * These run at log points (and, for the non-finite scan, once per update).
 * Deterministic like every reduction of the backend: each block reduces in a
 * fixed tree (double), writes its partials, and the last block to finish (an
 * integer atomic ticket) adds the partials in block order, so the statistics
 * are bit-identical run to run (--deterministic logs compare equal). */
#include "backend_cuda.h"
#include "cuda_common.cuh"

#define DS_MON_THREADS 256
#define DS_MON_MAX_BLOCKS 1024
#define DS_MON_MAX_VALUES 4

/* One reduction at a time runs on the backend's single stream, so the
 * monitoring kernels share the partials and the ticket. */
static __device__ double mon_partials[DS_MON_MAX_VALUES][DS_MON_MAX_BLOCKS];
static __device__ unsigned int mon_blocks_done;

/* out[k] += the sum over the grid of every thread's v[k], k < K: fixed block
 * trees, then the block partials in block order. Every thread must call it. */
template <int K>
__device__ void mon_grid_sum(double *out, double v[K]) {
  __shared__ int is_last;
#pragma unroll
  for (int k = 0; k < K; k++) v[k] = ds_block_sum(v[k]);
  if (threadIdx.x == 0) {
#pragma unroll
    for (int k = 0; k < K; k++) mon_partials[k][blockIdx.x] = v[k];
    __threadfence(); /* the partials are visible device-wide before the ticket */
    is_last = atomicAdd(&mon_blocks_done, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!is_last) return;
#pragma unroll
  for (int k = 0; k < K; k++) {
    double t = 0.0;
    for (unsigned int i = threadIdx.x; i < gridDim.x; i += blockDim.x) t += __ldcg(&mon_partials[k][i]);
    t = ds_block_sum(t);
    if (threadIdx.x == 0) out[k] += t;
  }
  if (threadIdx.x == 0) mon_blocks_done = 0; /* ready for the next launch */
}

static unsigned int mon_grid(size_t work) {
  unsigned int blocks = ds_cuda_grid(work, DS_MON_THREADS, 4);
  return blocks > DS_MON_MAX_BLOCKS ? DS_MON_MAX_BLOCKS : blocks;
}

/* out[4] += {sum, sum of squares, dead columns, saturated}; x: [B, C].
 * A thread owns a column (coalesced across the warp) and walks its rows. */
static __global__ void monitor_stats_kernel(double *out, const float *x, int B, int C, float lo, float hi) {
  double v[4] = {0.0, 0.0, 0.0, 0.0}; /* sum, ss, dead, saturated */
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += gridDim.x * blockDim.x) {
    int alive = 0;
    for (int b = 0; b < B; b++) {
      float e = x[(size_t)b * C + c];
      v[0] += e;
      v[1] += (double)e * (double)e;
      v[3] += (e <= lo || e >= hi) ? 1.0 : 0.0;
      alive |= !(e <= 0.0f); /* NaN counts as alive, as on the CPU */
    }
    v[2] += alive ? 0.0 : 1.0;
  }
  mon_grid_sum<4>(out, v);
}

extern "C" void monitor_stats_cuda(double *out, const float *x, int B, int C, float lo, float hi) {
  if (B <= 0 || C <= 0) return;
  DS_CUDA_REQUIRE(out && x, "monitor_stats_cuda", "NULL buffer");
  monitor_stats_kernel<<<mon_grid((size_t)C), DS_MON_THREADS, 0, ds_cuda.stream>>>(out, x, B, C, lo, hi);
  DS_LAUNCH_CHECK("monitor_stats_kernel");
}

/* out[0] += sum (x - y)^2 (y NULL: sum x^2) over n elements */
static __global__ void monitor_sumsq_kernel(double *out, const float *x, const float *y, size_t n) {
  double v[1] = {0.0};
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    double d = (double)x[i] - (y ? (double)y[i] : 0.0);
    v[0] += d * d;
  }
  mon_grid_sum<1>(out, v);
}

extern "C" void monitor_sumsq_cuda(double *out, const float *x, const float *y, size_t n) {
  if (n == 0) return;
  DS_CUDA_REQUIRE(out && x, "monitor_sumsq_cuda", "NULL buffer");
  monitor_sumsq_kernel<<<mon_grid(n), DS_MON_THREADS, 0, ds_cuda.stream>>>(out, x, y, n);
  DS_LAUNCH_CHECK("monitor_sumsq_kernel");
}

/* rec[3] = {*step, first index, 1 NaN / 2 Inf}, written once (sticky). An empty
 * record holds rec[1] = -1 = ULLONG_MAX as unsigned, so atomicMin needs no scratch. */
static __global__ void monitor_nonfinite_scan_kernel(int64_t *rec, const float *x, size_t n) {
  if (rec[0] >= 0) return;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    if (!isfinite(x[i])) {
      atomicMin((unsigned long long *)&rec[1], (unsigned long long)i);
      return;
    }
}

static __global__ void monitor_nonfinite_stamp_kernel(int64_t *rec, const float *x, const int64_t *step) {
  if (rec[0] >= 0 || rec[1] < 0) return;
  rec[0] = *step;
  rec[2] = isnan(x[rec[1]]) ? 1 : 2;
}

/* rec[3] <- x[n]: the first non-finite element of the update *step */
extern "C" void monitor_nonfinite_cuda(int64_t *rec, const float *x, size_t n, const int64_t *step) {
  if (n == 0) return;
  DS_CUDA_REQUIRE(rec && x && step, "monitor_nonfinite_cuda", "NULL buffer");
  monitor_nonfinite_scan_kernel<<<ds_cuda_grid(n, 256, 8), 256, 0, ds_cuda.stream>>>(rec, x, n);
  DS_LAUNCH_CHECK("monitor_nonfinite_scan_kernel");
  monitor_nonfinite_stamp_kernel<<<1, 1, 0, ds_cuda.stream>>>(rec, x, step);
  DS_LAUNCH_CHECK("monitor_nonfinite_stamp_kernel");
}
