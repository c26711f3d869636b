/* The CPU ops on several threads (ctest runs this suite with
 * OPENBLAS_NUM_THREADS=3: an odd count, so every split has uneven parts),
 * against single-thread loops written here in the order the reference
 * documents (a column summed over b in order, elements one by one). Shapes
 * are large enough that every op really splits its work (the pool runs work
 * under ~16k elements on the calling thread).
 *
 * Every op but the GEMM must give the SAME BITS as the loop here: the split
 * between threads may not change a float (parallel_cpu.h). That is what makes
 * a run's result independent of the thread count outside the GEMM. The GEMM
 * (OpenBLAS blocks each part its own way) is checked against a double
 * reference with test_ops_cpu's bound, 4 * K * FLT_EPSILON * sum|terms|,
 * which a misplaced or missing block of the output misses by orders of
 * magnitude. Sums in double over many elements (monitoring) are checked at
 * 1e-12 relative: fixed blocks added in order, not the plain running sum. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "descent/backend.h"
#include "descent/philox.h"
#include "optim_math.h"

static const ds_backend *be;

static float *falloc(size_t n) { return (float *)malloc((n ? n : 1) * sizeof(float)); }
static void fill(float *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * 0.5 * (check_uniform() + 1.0));
}
/* Number of elements whose bits differ. */
static size_t differ(const float *a, const float *b, size_t n) {
  size_t d = 0;
  for (size_t i = 0; i < n; i++) d += memcmp(a + i, b + i, sizeof(float)) != 0;
  return d;
}

/* ---- references: one thread, the documented order ---------------------------- */

static float act_f(ds_activation act, float x, float slope) {
  switch (act) {
    case DS_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case DS_ACT_LEAKY_RELU: return x > 0.0f ? x : slope * x;
    case DS_ACT_TANH: return tanhf(x);
    default: return 1.0f / (1.0f + expf(-x));
  }
}
static float act_d(ds_activation act, float y, float slope) {
  switch (act) {
    case DS_ACT_RELU: return y > 0.0f ? 1.0f : 0.0f;
    case DS_ACT_LEAKY_RELU: return y > 0.0f ? 1.0f : slope;
    case DS_ACT_TANH: return 1.0f - y * y;
    default: return y * (1.0f - y);
  }
}
/* element0: where the n elements start in the whole batch (a rank's slice) */
static void ref_dropout(float *out, const float *inp, size_t n, float p, ds_dropout_form form, uint64_t seed,
                        uint32_t stream, uint64_t step, uint64_t element0) {
  uint32_t thr = ds_dropout_threshold(p);
  float scale = form == DS_DROPOUT_INVERTED ? 1.0f / (1.0f - p) : 1.0f;
  for (size_t i = 0; i < n; i++) out[i] = ds_philox_word(seed, stream, step, element0 + i) < thr ? inp[i] * scale : 0.0f;
}
static void ref_bn_forward(float *out, float *mean, float *rstd, float *rm, float *rv, const float *x,
                           const float *g, const float *bt, int B, int C, int training, float mom, float eps) {
  for (int c = 0; c < C; c++) {
    float mu, rs;
    if (training) {
      double sum = 0.0;
      for (int b = 0; b < B; b++) sum += x[(size_t)b * C + c];
      double dmean = sum / B, ss = 0.0;
      for (int b = 0; b < B; b++) {
        double d = x[(size_t)b * C + c] - dmean;
        ss += d * d;
      }
      double var = ss / B;
      mu = (float)dmean;
      rs = (float)(1.0 / sqrt(var + eps));
      mean[c] = mu;
      rstd[c] = rs;
      rm[c] = (float)((1.0 - mom) * rm[c] + mom * dmean);
      rv[c] = (float)((1.0 - mom) * rv[c] + mom * (ss / (B - 1)));
    } else {
      mu = rm[c];
      rs = (float)(1.0 / sqrt((double)rv[c] + eps));
    }
    for (int b = 0; b < B; b++) {
      size_t i = (size_t)b * C + c;
      out[i] = g[c] * ((x[i] - mu) * rs) + bt[c];
    }
  }
}
static void ref_bn_backward(float *dx, float *dg, float *db, const float *dy, const float *x, const float *mean,
                            const float *rstd, const float *g, int B, int C) {
  for (int c = 0; c < C; c++) {
    double s1 = 0.0, s2 = 0.0;
    for (int b = 0; b < B; b++) {
      size_t i = (size_t)b * C + c;
      float xhat = (x[i] - mean[c]) * rstd[c];
      s1 += dy[i];
      s2 += (double)dy[i] * xhat;
    }
    db[c] += (float)s1;
    dg[c] += (float)s2;
    float k1 = (float)(g[c] * s1 / B), k2 = (float)(g[c] * s2 / B);
    for (int b = 0; b < B; b++) {
      size_t i = (size_t)b * C + c;
      float xhat = (x[i] - mean[c]) * rstd[c];
      dx[i] = rstd[c] * (g[c] * dy[i] - k1 - xhat * k2);
    }
  }
}

/* ---- the ops ----------------------------------------------------------------- */

static void test_elementwise(void) {
  size_t n = 100003; /* odd: the last part and the Philox tail are short */
  float *x = falloc(n), *y = falloc(n), *r = falloc(n), *d = falloc(n), *dx = falloc(n), *dr = falloc(n);
  fill(x, n, -3, 3);
  fill(d, n, -1, 1);
  for (int act = DS_ACT_RELU; act <= DS_ACT_SIGMOID; act++) {
    be->activation_forward(y, x, n, (ds_activation)act, 0.1f);
    for (size_t i = 0; i < n; i++) r[i] = act_f((ds_activation)act, x[i], 0.1f);
    CHECK(differ(y, r, n) == 0, "activation %d forward: %zu elements differ from one thread", act, differ(y, r, n));
    be->activation_backward(dx, d, y, n, (ds_activation)act, 0.1f);
    for (size_t i = 0; i < n; i++) dr[i] = d[i] * act_d((ds_activation)act, r[i], 0.1f);
    CHECK(differ(dx, dr, n) == 0, "activation %d backward: %zu elements differ", act, differ(dx, dr, n));
  }
  uint64_t step = 5;
  const uint64_t element0s[] = {0, 8, 6}; /* a rank's slice: aligned to a Philox group, and not */
  for (int k = 0; k < 3; k++)
    for (int form = 0; form < 2; form++) {
      uint64_t e0 = element0s[k];
      be->dropout_forward(y, x, n, 0.3f, (ds_dropout_form)form, 1, 42, 3, e0, &step);
      ref_dropout(r, x, n, 0.3f, (ds_dropout_form)form, 42, 3, step, e0);
      CHECK(differ(y, r, n) == 0, "dropout form %d element0 %llu forward: %zu elements differ", form,
            (unsigned long long)e0, differ(y, r, n));
      memcpy(dx, d, n * sizeof(float));
      be->dropout_backward(dx, dx, n, 0.3f, (ds_dropout_form)form, 42, 3, e0, &step); /* in place */
      ref_dropout(dr, d, n, 0.3f, (ds_dropout_form)form, 42, 3, step, e0);
      CHECK(differ(dx, dr, n) == 0, "dropout form %d element0 %llu backward: %zu elements differ", form,
            (unsigned long long)e0, differ(dx, dr, n));
    }
  be->axpy(y, x, -0.7f, d, n);
  for (size_t i = 0; i < n; i++) r[i] = x[i] + -0.7f * d[i];
  CHECK(differ(y, r, n) == 0, "axpy: %zu elements differ", differ(y, r, n));
  be->copy(y, d, n * sizeof(float));
  CHECK(differ(y, d, n) == 0, "copy: %zu elements differ", differ(y, d, n));
  be->zero(y, n * sizeof(float));
  size_t nonzero = 0;
  for (size_t i = 0; i < n; i++) nonzero += y[i] != 0.0f;
  CHECK(nonzero == 0, "zero: %zu elements left", nonzero);
  free(x), free(y), free(r), free(d), free(dx), free(dr);
}

static void test_gather(void) {
  int N = 500, D = 784, B = 300;
  uint8_t *img = malloc((size_t)N * D), *lab = malloc((size_t)N);
  int32_t *idx = malloc(sizeof(int32_t) * B), *y = malloc(sizeof(int32_t) * B);
  for (size_t i = 0; i < (size_t)N * D; i++) img[i] = (uint8_t)(i * 2654435761u >> 24);
  for (int i = 0; i < N; i++) lab[i] = (uint8_t)(i % 10);
  for (int b = 0; b < B; b++) idx[b] = (b * 37) % N;
  float *x = falloc((size_t)B * D), *r = falloc((size_t)B * D);
  be->gather_forward(x, y, img, lab, idx, B, D, 1.0f / 255.0f, -0.5f);
  int bad_labels = 0;
  for (int b = 0; b < B; b++) {
    for (int d = 0; d < D; d++) r[(size_t)b * D + d] = (float)img[(size_t)idx[b] * D + d] * (1.0f / 255.0f) + -0.5f;
    bad_labels += y[b] != lab[idx[b]];
  }
  CHECK(differ(x, r, (size_t)B * D) == 0 && bad_labels == 0, "gather: %zu pixels, %d labels differ",
        differ(x, r, (size_t)B * D), bad_labels);
  free(img), free(lab), free(idx), free(y), free(x), free(r);
}

/* BatchNorm and the fused hidden layer against the ops in sequence, done here. */
static void test_hidden_at(int B, int C, int bn, float p, ds_activation act, int training, uint64_t e0) {
  size_t n = (size_t)B * C;
  float *z = falloc(n), *a = falloc(n), *o = falloc(n), *ra = falloc(n), *ro = falloc(n);
  float *g = falloc(C), *bt = falloc(C), *mean = falloc(C), *rstd = falloc(C), *rm = falloc(C), *rv = falloc(C);
  float *rmean = falloc(C), *rrstd = falloc(C), *rrm = falloc(C), *rrv = falloc(C);
  fill(z, n, -2, 3);
  fill(g, C, 0.5, 1.5);
  fill(bt, C, -0.5, 0.5);
  fill(rm, C, -0.2, 0.2);
  fill(rv, C, 0.5, 2.0);
  memcpy(rrm, rm, C * sizeof(float));
  memcpy(rrv, rv, C * sizeof(float));
  ds_hidden_spec s = {.batchnorm = bn, .bn_momentum = 0.1f, .bn_eps = 1e-5f, .act = act, .slope = 0.01f, .p = p,
                      .form = DS_DROPOUT_INVERTED, .seed = 9, .stream = 2, .element0 = e0};
  uint64_t step = 77;
  be->hidden_forward(a, p > 0 ? o : NULL, mean, rstd, rm, rv, z, g, bt, B, C, training, &s, &step);
  const float *h = z;
  if (bn) {
    ref_bn_forward(ra, rmean, rrstd, rrm, rrv, z, g, bt, B, C, training, 0.1f, 1e-5f);
    h = ra;
  }
  for (size_t i = 0; i < n; i++) ra[i] = act_f(act, h[i], 0.01f);
  if (p > 0 && training) ref_dropout(ro, ra, n, p, s.form, 9, 2, step, e0);
  else if (p > 0) memcpy(ro, ra, n * sizeof(float)); /* inverted dropout at test time: identity */
  CHECK(differ(a, ra, n) == 0, "hidden B=%d C=%d bn=%d p=%g act=%d train=%d: a differs in %zu elements", B, C, bn,
        (double)p, act, training, differ(a, ra, n));
  if (p > 0) CHECK(differ(o, ro, n) == 0, "hidden B=%d C=%d: o differs in %zu elements", B, C, differ(o, ro, n));
  if (bn)
    CHECK(differ(rm, rrm, C) + differ(rv, rrv, C) + (training ? differ(mean, rmean, C) + differ(rstd, rrstd, C) : 0) == 0,
          "hidden B=%d C=%d: BatchNorm statistics differ", B, C);
  if (training) {
    float *dout = falloc(n), *dz = falloc(n), *rd = falloc(n), *rdz = falloc(n);
    float *dg = falloc(C), *db = falloc(C), *rdg = falloc(C), *rdb = falloc(C);
    fill(dout, n, -1, 1);
    fill(dg, C, -1, 1);
    fill(db, C, -1, 1);
    memcpy(rdg, dg, C * sizeof(float));
    memcpy(rdb, db, C * sizeof(float));
    memcpy(rd, dout, n * sizeof(float));
    be->hidden_backward(dz, dg, db, dout, a, z, mean, rstd, g, B, C, p > 0, &s, &step);
    if (p > 0) ref_dropout(rd, rd, n, p, s.form, 9, 2, step, e0);
    for (size_t i = 0; i < n; i++) rd[i] = rd[i] * act_d(act, ra[i], 0.01f);
    if (bn) ref_bn_backward(rdz, rdg, rdb, rd, z, rmean, rrstd, g, B, C);
    else memcpy(rdz, rd, n * sizeof(float));
    CHECK(differ(dz, rdz, n) == 0, "hidden backward B=%d C=%d bn=%d p=%g act=%d: dz differs in %zu elements", B, C,
          bn, (double)p, act, differ(dz, rdz, n));
    if (bn) CHECK(differ(dg, rdg, C) + differ(db, rdb, C) == 0, "hidden backward B=%d C=%d: dgamma/dbeta differ", B, C);
    free(dout), free(dz), free(rd), free(rdz), free(dg), free(db), free(rdg), free(rdb);
  }
  /* the separate BatchNorm ops too */
  if (bn && training) {
    memcpy(rm, rrm, C * sizeof(float));
    memcpy(rv, rrv, C * sizeof(float));
    be->batchnorm_forward(a, mean, rstd, rm, rv, z, g, bt, B, C, 1, 0.1f, 1e-5f);
    ref_bn_forward(ra, rmean, rrstd, rrm, rrv, z, g, bt, B, C, 1, 0.1f, 1e-5f);
    CHECK(differ(a, ra, n) + differ(rm, rrm, C) + differ(rv, rrv, C) == 0, "batchnorm_forward B=%d C=%d differs", B, C);
    float *dy = falloc(n), *dx = falloc(n), *rdx = falloc(n), *dg = falloc(C), *db = falloc(C);
    float *rdg = falloc(C), *rdb = falloc(C);
    fill(dy, n, -1, 1);
    memset(dg, 0, C * sizeof(float)), memset(db, 0, C * sizeof(float));
    memset(rdg, 0, C * sizeof(float)), memset(rdb, 0, C * sizeof(float));
    be->batchnorm_backward(dx, dg, db, dy, z, mean, rstd, g, B, C);
    ref_bn_backward(rdx, rdg, rdb, dy, z, rmean, rrstd, g, B, C);
    CHECK(differ(dx, rdx, n) + differ(dg, rdg, C) + differ(db, rdb, C) == 0, "batchnorm_backward B=%d C=%d differs",
          B, C);
    free(dy), free(dx), free(rdx), free(dg), free(db), free(rdg), free(rdb);
  }
  free(z), free(a), free(o), free(ra), free(ro), free(g), free(bt), free(mean), free(rstd), free(rm), free(rv);
  free(rmean), free(rrstd), free(rrm), free(rrv);
}

static void test_hidden(int B, int C, int bn, float p, ds_activation act, int training) {
  test_hidden_at(B, C, bn, p, act, training, 0);
}

/* Linear forward/backward: GEMM within the float bound, bias gradient bit for bit. */
static void test_linear(int B, int Ci, int Co) {
  float *x = falloc((size_t)B * Ci), *w = falloc((size_t)Co * Ci), *bias = falloc(Co), *out = falloc((size_t)B * Co);
  float *dout = falloc((size_t)B * Co), *dx = falloc((size_t)B * Ci), *dw = falloc((size_t)Co * Ci), *db = falloc(Co);
  float *rdb = falloc(Co);
  fill(x, (size_t)B * Ci, -1, 1), fill(w, (size_t)Co * Ci, -1, 1), fill(bias, Co, -1, 1);
  fill(dout, (size_t)B * Co, -1, 1), fill(dw, (size_t)Co * Ci, -1, 1), fill(db, Co, -1, 1);
  float *dw0 = falloc((size_t)Co * Ci);
  memcpy(dw0, dw, (size_t)Co * Ci * sizeof(float));
  memcpy(rdb, db, Co * sizeof(float));
  be->linear_forward(out, x, w, bias, B, Ci, Co);
  be->linear_backward(dx, dw, db, dout, x, w, B, Ci, Co);
  int bad = 0;
  for (int b = 0; b < B; b++)
    for (int o = 0; o < Co; o++) {
      double s = bias[o], mag = fabs(bias[o]);
      for (int k = 0; k < Ci; k++) {
        s += (double)x[(size_t)b * Ci + k] * w[(size_t)o * Ci + k];
        mag += fabs((double)x[(size_t)b * Ci + k] * w[(size_t)o * Ci + k]);
      }
      bad += !(fabs(out[(size_t)b * Co + o] - s) <= 4.0 * (Ci + 1) * FLT_EPSILON * mag);
    }
  CHECK(bad == 0, "linear_forward B=%d %d->%d: %d outputs off", B, Ci, Co, bad);
  bad = 0;
  for (int b = 0; b < B; b++)
    for (int i = 0; i < Ci; i++) {
      double s = 0, mag = 0;
      for (int o = 0; o < Co; o++) {
        s += (double)dout[(size_t)b * Co + o] * w[(size_t)o * Ci + i];
        mag += fabs((double)dout[(size_t)b * Co + o] * w[(size_t)o * Ci + i]);
      }
      bad += !(fabs(dx[(size_t)b * Ci + i] - s) <= 4.0 * Co * FLT_EPSILON * mag);
    }
  CHECK(bad == 0, "linear_backward dinp B=%d %d->%d: %d off", B, Ci, Co, bad);
  bad = 0;
  for (int o = 0; o < Co; o++)
    for (int i = 0; i < Ci; i++) {
      double s = dw0[(size_t)o * Ci + i], mag = fabs(s);
      for (int b = 0; b < B; b++) {
        s += (double)dout[(size_t)b * Co + o] * x[(size_t)b * Ci + i];
        mag += fabs((double)dout[(size_t)b * Co + o] * x[(size_t)b * Ci + i]);
      }
      bad += !(fabs(dw[(size_t)o * Ci + i] - s) <= 4.0 * (B + 1) * FLT_EPSILON * mag);
    }
  CHECK(bad == 0, "linear_backward dweight B=%d %d->%d: %d off", B, Ci, Co, bad);
  for (int b = 0; b < B; b++)
    for (int o = 0; o < Co; o++) rdb[o] += dout[(size_t)b * Co + o];
  CHECK(differ(db, rdb, Co) == 0, "linear_backward dbias B=%d %d->%d: %zu differ", B, Ci, Co, differ(db, rdb, Co));
  free(x), free(w), free(bias), free(out), free(dout), free(dx), free(dw), free(db), free(rdb), free(dw0);
}

/* The optimizer step against ds_optim_element in a plain loop, bit for bit. */
static void test_optim(const char *name, ds_optim_config c) {
  size_t n = 200003, n_decay = 150001;
  float *w = falloc(n), *g = falloc(n), *st[4], *rw = falloc(n), *rst[4];
  fill(w, n, -1, 1), fill(g, n, -0.1, 0.1);
  memcpy(rw, w, n * sizeof(float));
  for (int k = 0; k < 4; k++) {
    st[k] = falloc(n), rst[k] = falloc(n);
    fill(st[k], n, 0.0, 0.01);
    memcpy(rst[k], st[k], n * sizeof(float));
  }
  ds_optim_buffers buf = {w, g, st[0], st[1], st[2], st[3]};
  for (long t = 0; t < 3; t++) {
    ds_optim_scalars s = ds_optim_scalars_at(&c, t, 0, t);
    be->optim_step(&buf, n, n_decay, &c, &s);
    for (size_t i = 0; i < n; i++)
      ds_optim_element(i, &c, &s, 1.0f, i < n_decay || c.decay_all, rw, g, rst[0], rst[1], rst[2], rst[3]);
  }
  size_t d = differ(w, rw, n);
  for (int k = 0; k < 4; k++) d += differ(st[k], rst[k], n);
  CHECK(d == 0, "optimizer %s: %zu values differ from one thread", name, d);
  free(w), free(g), free(rw);
  for (int k = 0; k < 4; k++) free(st[k]), free(rst[k]);
}

/* The non-finite check fused into the optimizer step (buf.nonfinite): the
 * record monitor_nonfinite makes, wherever the parts and blocks are cut, the
 * first record kept, and the update itself unchanged bit for bit. */
static void test_optim_nonfinite(size_t n) {
  ds_optim_config c;
  ds_optim_defaults(&c, DS_OPT_ADAM);
  float *w = falloc(n), *g = falloc(n), *m = falloc(n), *v = falloc(n);
  float *rw = falloc(n), *rm = falloc(n), *rv = falloc(n);
  size_t where[] = {n - 1, n / 2 + 3, 7, n * 3 / 4, 4096, 4095};
  for (int k = 0; k < 6; k++) {
    fill(w, n, -1, 1), fill(g, n, -0.1, 0.1), fill(m, n, 0.0, 0.01), fill(v, n, 0.0, 0.01);
    memcpy(rw, w, n * sizeof(float)), memcpy(rm, m, n * sizeof(float)), memcpy(rv, v, n * sizeof(float));
    g[where[k]] = k % 2 ? -INFINITY : NAN;
    if (k == 3) g[n - 2] = INFINITY; /* a later one in another part: the first is still the one recorded */
    int64_t want[3] = {-1, -1, 0}, rec[3] = {-1, -1, 0}, update = 40 + k;
    be->monitor_nonfinite(want, g, n, &update);
    ds_optim_scalars s = ds_optim_scalars_at(&c, 5, 0, 5);
    ds_optim_buffers plain = {rw, g, rm, rv, NULL, NULL};
    be->optim_step(&plain, n, n / 3, &c, &s);
    ds_optim_buffers checked = {w, g, m, v, NULL, NULL};
    checked.nonfinite = rec;
    checked.update = &update;
    be->optim_step(&checked, n, n / 3, &c, &s);
    CHECK(rec[0] == want[0] && rec[1] == want[1] && rec[2] == want[2] && rec[1] == (int64_t)where[k],
          "n %zu: fused non-finite check {%lld, %lld, %lld}, monitor_nonfinite {%lld, %lld, %lld} (element %zu)", n,
          (long long)rec[0], (long long)rec[1], (long long)rec[2], (long long)want[0], (long long)want[1],
          (long long)want[2], where[k]);
    size_t d = differ(w, rw, n) + differ(m, rm, n) + differ(v, rv, n);
    CHECK(d == 0, "n %zu: the checked update differs from the plain one in %zu values", n, d);
    /* a record already there stays */
    int64_t kept[3] = {3, 9, 1}, later = 99;
    checked.nonfinite = kept;
    checked.update = &later;
    be->optim_step(&checked, n, n / 3, &c, &s);
    CHECK(kept[0] == 3 && kept[1] == 9 && kept[2] == 1, "n %zu: the fused check replaced an earlier record", n);
  }
  /* all finite: nothing recorded */
  fill(g, n, -0.1, 0.1);
  int64_t none[3] = {-1, -1, 0}, update = 7;
  ds_optim_buffers checked = {w, g, m, v, NULL, NULL};
  checked.nonfinite = none;
  checked.update = &update;
  ds_optim_scalars s = ds_optim_scalars_at(&c, 6, 0, 6);
  be->optim_step(&checked, n, n / 3, &c, &s);
  CHECK(none[0] == -1 && none[1] == -1, "n %zu: a finite gradient was recorded as non-finite", n);
  free(w), free(g), free(m), free(v), free(rw), free(rm), free(rv);
}

static void test_optimizers(void) {
  ds_optim_config c;
  ds_optim_defaults(&c, DS_OPT_SGD);
  c.weight_decay = 1e-3f;
  test_optim("sgd", c);
  c.momentum = 0.9f;
  test_optim("momentum", c);
  c.nesterov = 1;
  test_optim("nesterov", c);
  c.momentum_form = DS_MOMENTUM_KERAS;
  test_optim("nesterov keras", c);
  c.momentum_form = DS_MOMENTUM_EMA;
  test_optim("nesterov ema", c);
  ds_optim_defaults(&c, DS_OPT_ADAGRAD);
  test_optim("adagrad", c);
  ds_optim_defaults(&c, DS_OPT_RMSPROP);
  c.centered = 1, c.momentum = 0.5f;
  test_optim("rmsprop centered momentum", c);
  ds_optim_defaults(&c, DS_OPT_ADAM);
  c.weight_decay = 1e-2f, c.l1 = 1e-4f;
  test_optim("adam", c);
  c.amsgrad = 1;
  test_optim("amsgrad", c);
  ds_optim_defaults(&c, DS_OPT_ADAMW);
  c.weight_decay = 1e-2f;
  test_optim("adamw", c);
}

static void test_monitor(void) {
  size_t n = 300001;
  float *x = falloc(n), *y = falloc(n);
  fill(x, n, -1, 1), fill(y, n, -1, 1);
  double ss = 0.0, sd = 0.0, got[1] = {0}, got2[1] = {0};
  for (size_t i = 0; i < n; i++) {
    ss += (double)x[i] * x[i];
    sd += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
  }
  be->monitor_sumsq(got, x, NULL, n);
  be->monitor_sumsq(got2, x, y, n);
  CHECK_CLOSE(got[0], ss, 0, 1e-12, "monitor_sumsq");
  CHECK_CLOSE(got2[0], sd, 0, 1e-12, "monitor_sumsq with y");
  int B = 300, C = 1000;
  double st[4] = {0}, sum = 0, sq = 0, sat = 0, dead = 0;
  for (size_t i = 0; i < (size_t)B * C; i++) {
    sum += x[i];
    sq += (double)x[i] * x[i];
    sat += x[i] <= -0.9f || x[i] >= 0.9f;
  }
  for (int c = 0; c < C; c++) {
    int b = 0;
    while (b < B && x[(size_t)b * C + c] <= 0.0f) b++;
    dead += b == B;
  }
  be->monitor_stats(st, x, B, C, -0.9f, 0.9f);
  CHECK_CLOSE(st[0], sum, 1e-9, 1e-12, "monitor_stats sum");
  CHECK_CLOSE(st[1], sq, 0, 1e-12, "monitor_stats sum of squares");
  CHECK(st[2] == dead && st[3] == sat, "monitor_stats counts: %g %g, want %g %g", st[2], st[3], dead, sat);
  /* the first non-finite element, wherever the parts are cut */
  size_t where[] = {n - 1, 150000, 7, 200000};
  for (int k = 0; k < 4; k++) {
    x[where[k]] = k % 2 ? INFINITY : NAN;
    if (k == 3) x[250000] = NAN; /* a later one in another part: the first is still reported */
    int64_t rec[3] = {-1, -1, -1}, step = 12;
    be->monitor_nonfinite(rec, x, n, &step);
    CHECK(rec[0] == 12 && rec[1] == (int64_t)where[k] && rec[2] == (k % 2 ? 2 : 1),
          "monitor_nonfinite: {%lld, %lld, %lld}, want the element %zu", (long long)rec[0], (long long)rec[1],
          (long long)rec[2], where[k]);
    x[where[k]] = 0.5f;
    x[250000] = 0.5f;
  }
  free(x), free(y);
}

int main(void) {
  be = ds_backend_cpu();
  int threads = ds_backend_cpu_threads();
  printf("test_threads_cpu: %d threads (%s)\n", threads, be->device);
  CHECK(threads == 3 || getenv("OPENBLAS_NUM_THREADS") == NULL || strcmp(getenv("OPENBLAS_NUM_THREADS"), "3") != 0,
        "OPENBLAS_NUM_THREADS=3 but the backend runs %d threads", threads);
  test_elementwise();
  test_gather();
  const ds_activation acts[] = {DS_ACT_RELU, DS_ACT_LEAKY_RELU, DS_ACT_TANH, DS_ACT_SIGMOID};
  for (int k = 0; k < 4; k++) {
    test_hidden(129, 1024, 1, 0.2f, acts[k], 1); /* C % 4 == 0: dropout inside the block pass */
    test_hidden(130, 1030, 1, 0.2f, acts[k], 1); /* C % 4 != 0: dropout as its own pass */
  }
  test_hidden(40, 3500, 1, 0.2f, DS_ACT_RELU, 1); /* more columns per thread than one block (DS_BN_BLOCK) */
  test_hidden(40, 3502, 1, 0.2f, DS_ACT_TANH, 1);
  test_hidden(64, 1030, 0, 0.3f, DS_ACT_RELU, 1);
  test_hidden(64, 1024, 0, 0.0f, DS_ACT_TANH, 1);
  test_hidden(200, 516, 1, 0.0f, DS_ACT_RELU, 1);
  test_hidden(200, 516, 1, 0.2f, DS_ACT_RELU, 0);
  /* a rank's slice of the batch (mpirun): its first element inside the whole batch */
  test_hidden_at(64, 1024, 1, 0.2f, DS_ACT_RELU, 1, 64 * 1024); /* aligned: dropout inside the block pass */
  test_hidden_at(63, 1030, 1, 0.2f, DS_ACT_RELU, 1, 63 * 1030); /* 64890: inside a Philox group */
  test_hidden_at(64, 1030, 0, 0.3f, DS_ACT_TANH, 1, 6);
  test_linear(130, 97, 1030);  /* the output split by columns */
  test_linear(1030, 97, 10);   /* by rows */
  test_optimizers();
  test_optim_nonfinite(200003); /* every thread, blocks cut inside parts */
  test_optim_nonfinite(5000);   /* below the pool's threshold: one part */
  test_monitor();
  return check_finish("test_threads_cpu");
}
