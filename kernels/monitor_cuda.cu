/* Monitoring reductions, CUDA (CPU twin: monitor_cpu.c; contracts in descent/backend.h).
 * These run only at log points (and, for the non-finite scan, once per update),
 * so they favour simplicity: block sums in double, then one double atomicAdd
 * per block. The summation order across blocks is therefore not fixed; the
 * values are monitoring statistics, not training state, and never feed back. */
#include "backend_cuda.h"
#include "cuda_common.cuh"

/* out[4] += {sum, sum of squares, dead columns, saturated}; x: [B, C] */
static __global__ void monitor_stats_kernel(double *out, const float *x, int B, int C, float lo, float hi) {
  double sum = 0.0, ss = 0.0, dead = 0.0, sat = 0.0;
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += gridDim.x * blockDim.x) {
    int alive = 0;
    for (int b = 0; b < B; b++) {
      float v = x[(size_t)b * C + c];
      sum += v;
      ss += (double)v * (double)v;
      sat += (v <= lo || v >= hi) ? 1.0 : 0.0;
      alive |= !(v <= 0.0f); /* NaN counts as alive, as on the CPU */
    }
    dead += alive ? 0.0 : 1.0;
  }
  double r0 = ds_block_sum(sum), r1 = ds_block_sum(ss), r2 = ds_block_sum(dead), r3 = ds_block_sum(sat);
  if (threadIdx.x == 0) {
    atomicAdd(&out[0], r0);
    atomicAdd(&out[1], r1);
    atomicAdd(&out[2], r2);
    atomicAdd(&out[3], r3);
  }
}

extern "C" void monitor_stats_cuda(double *out, const float *x, int B, int C, float lo, float hi) {
  if (B <= 0 || C <= 0) return;
  DS_CUDA_REQUIRE(out && x, "monitor_stats_cuda", "NULL buffer");
  monitor_stats_kernel<<<ds_cuda_grid((size_t)C, 256, 4), 256, 0, ds_cuda.stream>>>(out, x, B, C, lo, hi);
  DS_LAUNCH_CHECK("monitor_stats_kernel");
}

/* out[0] += sum (x - y)^2 (y NULL: sum x^2) over n elements */
static __global__ void monitor_sumsq_kernel(double *out, const float *x, const float *y, size_t n) {
  double ss = 0.0;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    double d = (double)x[i] - (y ? (double)y[i] : 0.0);
    ss += d * d;
  }
  double total = ds_block_sum(ss);
  if (threadIdx.x == 0) atomicAdd(out, total);
}

extern "C" void monitor_sumsq_cuda(double *out, const float *x, const float *y, size_t n) {
  if (n == 0) return;
  DS_CUDA_REQUIRE(out && x, "monitor_sumsq_cuda", "NULL buffer");
  monitor_sumsq_kernel<<<ds_cuda_grid(n, 256, 4), 256, 0, ds_cuda.stream>>>(out, x, y, n);
  DS_LAUNCH_CHECK("monitor_sumsq_kernel");
}

/* rec[3] = {step, first index, 1 NaN / 2 Inf}, written once (sticky). An empty
 * record holds rec[1] = -1 = ULLONG_MAX as unsigned, so atomicMin needs no scratch. */
static __global__ void monitor_nonfinite_scan_kernel(int64_t *rec, const float *x, size_t n) {
  if (rec[0] >= 0) return;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    if (!isfinite(x[i])) {
      atomicMin((unsigned long long *)&rec[1], (unsigned long long)i);
      return;
    }
}

static __global__ void monitor_nonfinite_stamp_kernel(int64_t *rec, const float *x, int64_t step) {
  if (rec[0] >= 0 || rec[1] < 0) return;
  rec[0] = step;
  rec[2] = isnan(x[rec[1]]) ? 1 : 2;
}

/* rec[3] <- x[n]: the first non-finite element of the update `step` */
extern "C" void monitor_nonfinite_cuda(int64_t *rec, const float *x, size_t n, int64_t step) {
  if (n == 0) return;
  DS_CUDA_REQUIRE(rec && x, "monitor_nonfinite_cuda", "NULL buffer");
  monitor_nonfinite_scan_kernel<<<ds_cuda_grid(n, 256, 8), 256, 0, ds_cuda.stream>>>(rec, x, n);
  DS_LAUNCH_CHECK("monitor_nonfinite_scan_kernel");
  monitor_nonfinite_stamp_kernel<<<1, 1, 0, ds_cuda.stream>>>(rec, x, step);
  DS_LAUNCH_CHECK("monitor_nonfinite_stamp_kernel");
}
