/* Monitoring reductions, CPU reference (the CUDA twins are specified in
 * descent/backend.h), on all threads. Sums run in double over fixed blocks
 * added in order (ds_cpu_block_sums), so the CPU result is deterministic,
 * whatever the thread count; they are read only at log points. */
#include <math.h>
#include <string.h>

#include "elementwise_cpu.h"
#include "kernels_cpu.h"
#include "parallel_cpu.h"

typedef struct {
  const float *x, *y;
  float lo, hi;
} mon_job;

static void stats_block(void *p, size_t begin, size_t end, double *out) {
  const mon_job *j = p;
  double sum = 0.0, ss = 0.0, saturated = 0.0;
  for (size_t i = begin; i < end; i++) {
    double v = j->x[i];
    sum += v;
    ss += v * v;
    saturated += (j->x[i] <= j->lo || j->x[i] >= j->hi);
  }
  out[0] += sum;
  out[1] += ss;
  out[2] += saturated;
}

static void sumsq_block(void *p, size_t begin, size_t end, double *out) {
  const mon_job *j = p;
  double ss = 0.0;
  if (j->y) {
    for (size_t i = begin; i < end; i++) {
      double d = (double)j->x[i] - (double)j->y[i];
      ss += d * d;
    }
  } else {
    for (size_t i = begin; i < end; i++) ss += (double)j->x[i] * (double)j->x[i];
  }
  out[0] += ss;
}

/* out[4] += {sum x, sum x^2, #columns with x <= 0 in every row, #elements <= lo or >= hi}
 * x: [B, C] row-major */
void monitor_stats_cpu(double *out, const float *x, int B, int C, float lo, float hi) {
  mon_job j = {x, NULL, lo, hi};
  double r[3];
  ds_cpu_block_sums(stats_block, &j, (size_t)B * (size_t)C, 3, r);
  double sum = r[0], ss = r[1], saturated = r[2];
  double dead = 0.0;
  for (int c = 0; c < C; c++) {
    int b = 0;
    while (b < B && x[(size_t)b * C + c] <= 0.0f) b++; /* NaN stops the walk: not dead */
    dead += (b == B);
  }
  out[0] += sum;
  out[1] += ss;
  out[2] += dead;
  out[3] += saturated;
}

/* out[0] += sum_i (x[i] - y[i])^2;  x: [n], y: [n] or NULL (zeros) */
void monitor_sumsq_cpu(double *out, const float *x, const float *y, size_t n) {
  mon_job j = {x, y, 0.0f, 0.0f};
  double ss;
  ds_cpu_block_sums(sumsq_block, &j, n, 1, &ss);
  out[0] += ss;
}

typedef struct {
  const float *x;
  size_t n;
  size_t first_bad[DS_POOL_PARTS_MAX]; /* per part: start of its first failing block, or n */
} nonfinite_job;

static void nonfinite_part(void *p, int part, int parts) {
  nonfinite_job *j = p;
  size_t b, e;
  ds_cpu_split(j->n, part, parts, DS_NONFINITE_BLOCK, &b, &e);
  j->first_bad[part] = j->n;
  for (size_t b0 = b; b0 < e; b0 += DS_NONFINITE_BLOCK) {
    size_t b1 = e - b0 < DS_NONFINITE_BLOCK ? e : b0 + DS_NONFINITE_BLOCK;
    if (ds_any_nonfinite(j->x, b0, b1)) {
      j->first_bad[part] = b0;
      return;
    }
  }
}

void monitor_nonfinite_record_cpu(int64_t *rec, const float *x, size_t n, const size_t *first_bad,
                                  const int64_t *step) {
  size_t b0 = n;
  for (int q = 0; q < DS_POOL_PARTS_MAX && b0 == n; q++) b0 = first_bad[q]; /* parts run in index order */
  size_t b1 = n - b0 < DS_NONFINITE_BLOCK ? n : b0 + DS_NONFINITE_BLOCK;
  for (size_t i = b0; i < b1; i++)
    if (!isfinite(x[i])) {
      rec[0] = *step;
      rec[1] = (int64_t)i;
      rec[2] = isnan(x[i]) ? 1 : 2;
      return;
    }
}

/* rec[3] = {*step, first index, 1 NaN / 2 Inf} when rec[0] < 0 and x[n] holds a
 * non-finite value; else unchanged. This runs on every update, so blocks are
 * tested first (each thread its own range) and only the first block that
 * fails is searched. */
void monitor_nonfinite_cpu(int64_t *rec, const float *x, size_t n, const int64_t *step) {
  if (rec[0] >= 0) return;
  nonfinite_job j = {.x = x, .n = n};
  for (int q = 0; q < DS_POOL_PARTS_MAX; q++) j.first_bad[q] = n;
  ds_cpu_parallel(nonfinite_part, &j, n / 4);
  monitor_nonfinite_record_cpu(rec, x, n, j.first_bad, step);
}
