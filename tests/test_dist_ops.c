/* The ops that let a batch be split across processes (host/dist), on the
 * CPU backend, against the same batch computed whole:
 *
 * 1. BatchNorm in phases (batchnorm_sums, _forward_synced, _backward_sums,
 *    _backward_synced, descent/backend.h): with one part (count = B) the
 *    outputs, saved statistics, running statistics and gradients are
 *    batchnorm_forward/backward's bit for bit; split into parts whose sums are
 *    added as the all-reduce adds them, they agree to 1e-6 (only the order of
 *    the partial sums differs). A wrong count (a part's rows instead of the
 *    whole batch's) is shown to miss by far more.
 * 2. Dropout with element0: the slices of a batch (starting inside a Philox
 *    group too: element0 % 4 != 0) draw exactly the masks of the whole batch,
 *    forward and backward, also through hidden_forward/backward. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "descent/backend.h"

static const ds_backend *be;

static float *randoms(size_t n, double scale, double shift) {
  float *x = malloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++) x[i] = (float)(shift + scale * check_uniform());
  return x;
}

/* Largest |a - b| / (|b| + 1e-3) over n floats. */
static double max_rel(const float *a, const float *b, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; i++) {
    double r = fabs((double)a[i] - b[i]) / (fabs((double)b[i]) + 1e-3);
    if (r > m || isnan(r)) m = r;
  }
  return m;
}

/* Largest |a - b| over n floats. */
static double max_abs(const float *a, const float *b, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]);
    if (d > m || isnan(d)) m = d;
  }
  return m;
}

/* BatchNorm of x[B,C] split at the row boundaries cut[0..parts] (cut[0] = 0,
 * cut[parts] = B) with the sums added across the parts, as host/dist does;
 * `count` is the rows the ops are told the whole batch has. */
static void bn_split(float *out, float *mean, float *rstd, float *rm, float *rv, float *dx, float *dgamma,
                     float *dbeta, const float *x, const float *dy, const float *gamma, const float *beta, int B,
                     int C, const int *cut, int parts, int count) {
  (void)B;
  double *sums = calloc(2 * (size_t)C, sizeof *sums), *part = calloc(2 * (size_t)C, sizeof *part);
  for (int pass = 0; pass < 2; pass++) {
    double *total = calloc((size_t)C, sizeof *total);
    for (int p = 0; p < parts; p++) {
      memcpy(part, sums, 2 * (size_t)C * sizeof *part); /* pass 1 reads the whole batch's sum */
      be->batchnorm_sums(part, x + (size_t)cut[p] * C, cut[p + 1] - cut[p], C, pass, count);
      for (int c = 0; c < C; c++) total[c] += part[pass * C + c];
    }
    memcpy(sums + pass * C, total, (size_t)C * sizeof *total);
    free(total);
  }
  for (int p = 0; p < parts; p++) {
    float *rm_p = malloc((size_t)C * sizeof(float)), *rv_p = malloc((size_t)C * sizeof(float));
    memcpy(rm_p, rm, (size_t)C * sizeof(float));
    memcpy(rv_p, rv, (size_t)C * sizeof(float));
    be->batchnorm_forward_synced(out + (size_t)cut[p] * C, mean, rstd, rm_p, rv_p, x + (size_t)cut[p] * C, gamma, beta,
                                 sums, cut[p + 1] - cut[p], C, count, 0.1f, 1e-5f);
    if (p == parts - 1) {
      memcpy(rm, rm_p, (size_t)C * sizeof(float));
      memcpy(rv, rv_p, (size_t)C * sizeof(float));
    }
    free(rm_p);
    free(rv_p);
  }
  double *bsums = calloc(2 * (size_t)C, sizeof *bsums);
  for (int p = 0; p < parts; p++) {
    be->batchnorm_backward_sums(part, dgamma, dbeta, dy + (size_t)cut[p] * C, x + (size_t)cut[p] * C, mean, rstd,
                                cut[p + 1] - cut[p], C);
    for (int i = 0; i < 2 * C; i++) bsums[i] += part[i];
  }
  for (int p = 0; p < parts; p++)
    be->batchnorm_backward_synced(dx + (size_t)cut[p] * C, dy + (size_t)cut[p] * C, x + (size_t)cut[p] * C, mean, rstd,
                                  gamma, bsums, cut[p + 1] - cut[p], C, count);
  free(sums);
  free(part);
  free(bsums);
}

static void test_batchnorm(int B, int C) {
  size_t n = (size_t)B * C;
  float *x = randoms(n, 2.0, 0.5), *dy = randoms(n, 1.0, 0.0);
  float *gamma = randoms((size_t)C, 0.5, 1.0), *beta = randoms((size_t)C, 0.5, 0.0);
  /* the whole batch, with the one-piece ops */
  float *out = malloc(n * sizeof(float)), *dx = malloc(n * sizeof(float));
  float *mean = malloc((size_t)C * sizeof(float)), *rstd = malloc((size_t)C * sizeof(float));
  float *rm = calloc((size_t)C, sizeof(float)), *rv = malloc((size_t)C * sizeof(float));
  float *dg = calloc((size_t)C, sizeof(float)), *db = calloc((size_t)C, sizeof(float));
  for (int c = 0; c < C; c++) rv[c] = 1.0f;
  be->batchnorm_forward(out, mean, rstd, rm, rv, x, gamma, beta, B, C, 1, 0.1f, 1e-5f);
  be->batchnorm_backward(dx, dg, db, dy, x, mean, rstd, gamma, B, C);

  /* one part, and three parts */
  int one[2] = {0, B}, three[4] = {0, B / 3, B / 3 + B / 4, B};
  const int *cuts[2] = {one, three};
  int parts[2] = {1, 3};
  for (int k = 0; k < 2; k++) {
    float *o2 = malloc(n * sizeof(float)), *dx2 = malloc(n * sizeof(float));
    float *m2 = malloc((size_t)C * sizeof(float)), *r2 = malloc((size_t)C * sizeof(float));
    float *rm2 = calloc((size_t)C, sizeof(float)), *rv2 = malloc((size_t)C * sizeof(float));
    float *dg2 = calloc((size_t)C, sizeof(float)), *db2 = calloc((size_t)C, sizeof(float));
    for (int c = 0; c < C; c++) rv2[c] = 1.0f;
    bn_split(o2, m2, r2, rm2, rv2, dx2, dg2, db2, x, dy, gamma, beta, B, C, cuts[k], parts[k], B);
    if (parts[k] == 1) {
      CHECK(memcmp(o2, out, n * sizeof(float)) == 0, "B=%d C=%d, one part: output not bit-identical", B, C);
      CHECK(memcmp(m2, mean, (size_t)C * sizeof(float)) == 0 && memcmp(r2, rstd, (size_t)C * sizeof(float)) == 0,
            "B=%d C=%d, one part: saved mean/rstd not bit-identical", B, C);
      CHECK(memcmp(rm2, rm, (size_t)C * sizeof(float)) == 0 && memcmp(rv2, rv, (size_t)C * sizeof(float)) == 0,
            "B=%d C=%d, one part: running statistics not bit-identical", B, C);
      CHECK(memcmp(dx2, dx, n * sizeof(float)) == 0, "B=%d C=%d, one part: dx not bit-identical", B, C);
      CHECK(memcmp(dg2, dg, (size_t)C * sizeof(float)) == 0 && memcmp(db2, db, (size_t)C * sizeof(float)) == 0,
            "B=%d C=%d, one part: dgamma/dbeta not bit-identical", B, C);
    } else {
      double e[4] = {max_rel(o2, out, n), max_rel(rm2, rm, (size_t)C), max_rel(rv2, rv, (size_t)C),
                     max_rel(dx2, dx, n)};
      const char *what[4] = {"output", "running mean", "running var", "dx"};
      for (int i = 0; i < 4; i++) CHECK(e[i] <= 1e-6, "B=%d C=%d, 3 parts: %s off by %.3g", B, C, what[i], e[i]);
      /* dgamma, dbeta: each part's sum is rounded to float and the parts are
         added in float, so the bound is a few float roundings of sums of B
         terms |dy| <= 1, |dy * xhat| <= ~4 (they may cancel to near 0) */
      double bound = 8.0 * 1.2e-7 * 4.0 * B;
      CHECK(max_abs(dg2, dg, (size_t)C) <= bound, "B=%d C=%d, 3 parts: dgamma off by %.3g (bound %.3g)", B, C,
            max_abs(dg2, dg, (size_t)C), bound);
      CHECK(max_abs(db2, db, (size_t)C) <= bound, "B=%d C=%d, 3 parts: dbeta off by %.3g (bound %.3g)", B, C,
            max_abs(db2, db, (size_t)C), bound);
      /* the check can fail: each part told its own rows as the count */
      int wrong = three[1] - three[0];
      bn_split(o2, m2, r2, rm2, rv2, dx2, dg2, db2, x, dy, gamma, beta, B, C, three, 3, wrong);
      CHECK(max_rel(o2, out, n) > 1e-2, "B=%d C=%d: a wrong count still matches (%.3g)", B, C, max_rel(o2, out, n));
    }
    free(o2), free(dx2), free(m2), free(r2), free(rm2), free(rv2), free(dg2), free(db2);
  }
  free(x), free(dy), free(gamma), free(beta), free(out), free(dx), free(mean), free(rstd), free(rm), free(rv);
  free(dg), free(db);
}

/* Dropout of x[B,C] whole vs in row slices with element0 = first row * C. */
static void test_dropout(int B, int C) {
  size_t n = (size_t)B * C;
  float *x = randoms(n, 1.0, 0.0), *whole = malloc(n * sizeof(float)), *sliced = malloc(n * sizeof(float));
  float *bw = malloc(n * sizeof(float)), *bs = malloc(n * sizeof(float));
  uint64_t step = 12345;
  be->dropout_forward(whole, x, n, 0.3f, DS_DROPOUT_INVERTED, 1, 77, 5, 0, &step);
  be->dropout_backward(bw, x, n, 0.3f, DS_DROPOUT_INVERTED, 77, 5, 0, &step);
  int cut[4] = {0, 1, B / 2 + 1, B};
  for (int p = 0; p < 3; p++) {
    size_t e0 = (size_t)cut[p] * C, m = (size_t)(cut[p + 1] - cut[p]) * C;
    be->dropout_forward(sliced + e0, x + e0, m, 0.3f, DS_DROPOUT_INVERTED, 1, 77, 5, e0, &step);
    be->dropout_backward(bs + e0, x + e0, m, 0.3f, DS_DROPOUT_INVERTED, 77, 5, e0, &step);
  }
  CHECK(memcmp(sliced, whole, n * sizeof(float)) == 0, "dropout B=%d C=%d: slices draw other masks", B, C);
  CHECK(memcmp(bs, bw, n * sizeof(float)) == 0, "dropout backward B=%d C=%d: slices draw other masks", B, C);
  /* the check can fail: slices keyed from 0 draw the first rows' masks again */
  be->dropout_forward(sliced + C, x + C, n - C, 0.3f, DS_DROPOUT_INVERTED, 1, 77, 5, 0, &step);
  CHECK(memcmp(sliced, whole, n * sizeof(float)) != 0, "dropout B=%d C=%d: element0 0 for a slice still matches", B, C);

  /* hidden_forward/backward (no BatchNorm) with spec.element0 */
  ds_hidden_spec hs = {0};
  hs.act = DS_ACT_RELU;
  hs.p = 0.3f;
  hs.form = DS_DROPOUT_INVERTED;
  hs.seed = 77;
  hs.stream = 6;
  float *a = malloc(n * sizeof(float)), *o = malloc(n * sizeof(float)), *a2 = malloc(n * sizeof(float));
  float *o2 = malloc(n * sizeof(float)), *dz = malloc(n * sizeof(float)), *dz2 = malloc(n * sizeof(float));
  float *g = randoms(n, 1.0, 0.0), *g2 = malloc(n * sizeof(float));
  memcpy(g2, g, n * sizeof(float));
  be->hidden_forward(a, o, NULL, NULL, NULL, NULL, x, NULL, NULL, B, C, 1, &hs, &step);
  be->hidden_backward(dz, NULL, NULL, g, a, x, NULL, NULL, NULL, B, C, 1, &hs, &step);
  for (int p = 0; p < 3; p++) {
    size_t e0 = (size_t)cut[p] * C;
    hs.element0 = e0;
    int rows = cut[p + 1] - cut[p];
    be->hidden_forward(a2 + e0, o2 + e0, NULL, NULL, NULL, NULL, x + e0, NULL, NULL, rows, C, 1, &hs, &step);
    be->hidden_backward(dz2 + e0, NULL, NULL, g2 + e0, a2 + e0, x + e0, NULL, NULL, NULL, rows, C, 1, &hs, &step);
  }
  CHECK(memcmp(o2, o, n * sizeof(float)) == 0 && memcmp(dz2, dz, n * sizeof(float)) == 0,
        "hidden layer B=%d C=%d: slices with element0 differ from the whole batch", B, C);
  free(x), free(whole), free(sliced), free(bw), free(bs), free(a), free(o), free(a2), free(o2), free(dz), free(dz2);
  free(g), free(g2);
}

int main(void) {
  be = ds_backend_cpu();
  const int shapes[][2] = {{10, 7}, {64, 33}, {129, 1}};
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    test_batchnorm(shapes[i][0], shapes[i][1]);
    test_dropout(shapes[i][0], shapes[i][1]);
  }
  return check_finish("test_dist_ops");
}
