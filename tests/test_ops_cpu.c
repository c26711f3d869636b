/* Every CPU op reached through ds_backend_cpu(), against double-precision
 * reimplementations written here, on odd shapes (batch 1, 2, 3, 129; widths
 * 1, 7, 10, 33: none a multiple of 4 or 8, so vector tails are exercised).
 *
 * Conventions checked besides the values (descent/backend.h): parameter
 * gradients accumulate (+=) into pre-filled buffers; activation gradients are
 * overwritten (their buffers are pre-filled with NaN, so any read of the old
 * contents shows up); documented aliasing (activation and dropout in place)
 * works.
 *
 * Tolerances: the op computes in float, the reference in double from the
 * same float inputs. A float dot product of K terms is within
 * K * 2^-24 * sum|terms| of the exact value (standard bound; blocked or FMA
 * orders only make it smaller), so linear ops are checked against
 * 4 * K * FLT_EPSILON * sum|terms|. Elementwise ops are a few roundings deep
 * and are checked at ~1e-6 relative; statistics ops (BN) at 1e-5 because
 * they subtract a rounded mean. Each bound is at least 100x below the error
 * that a wrong formula (biased vs unbiased variance at B=129, a missing
 * scale, a wrong derivative) would produce. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "descent/backend.h"
#include "descent/philox.h"

static const ds_backend *be;

static float *falloc(size_t n) { return (float *)malloc((n ? n : 1) * sizeof(float)); }
static void fill_uniform(float *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * 0.5 * (check_uniform() + 1.0));
}
static void fill_nan(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = NAN;
}

static const int batches[] = {1, 3, 129};
static const int widths[] = {1, 7, 10, 33};
#define NB (int)(sizeof batches / sizeof batches[0])
#define NW (int)(sizeof widths / sizeof widths[0])

/* ---- gather ------------------------------------------------------------ */
static void test_gather(void) {
  const int N = 11;
  for (int bi = 0; bi < NB; bi++)
    for (int wi = 0; wi < NW; wi++) {
      int B = batches[bi], D = widths[wi];
      uint8_t *img = malloc((size_t)N * D), lab[11];
      for (int i = 0; i < N * D; i++) img[i] = (uint8_t)(i * 37 + 11 * D);  /* covers 0..255 */
      for (int i = 0; i < N; i++) lab[i] = (uint8_t)((i * 7) % 10);
      int32_t *idx = malloc(sizeof(int32_t) * B), *y = malloc(sizeof(int32_t) * B);
      for (int b = 0; b < B; b++) idx[b] = (b * 5 + 3) % N;  /* repeats when B > N */
      float *x = falloc((size_t)B * D);
      fill_nan(x, (size_t)B * D);
      for (int b = 0; b < B; b++) y[b] = -1;
      const float scale = 1.0f / 255.0f / 0.3081f, shift = -0.1307f / 0.3081f;
      be->gather_forward(x, y, img, lab, idx, B, D, scale, shift);
      int bad = 0;
      for (int b = 0; b < B; b++) {
        bad += y[b] != lab[idx[b]];
        for (int d = 0; d < D; d++) {
          double want = (double)img[(size_t)idx[b] * D + d] * scale + shift;
          /* one multiply-add in float: within 2 ulps of |byte*scale| + |shift| <= 4 */
          if (!(fabs(x[(size_t)b * D + d] - want) <= 4.0 * 2 * FLT_EPSILON)) bad++;
        }
      }
      CHECK(bad == 0, "gather B=%d D=%d: %d wrong entries", B, D, bad);
      free(img); free(idx); free(y); free(x);
    }
}

/* ---- linear ------------------------------------------------------------ */
static void test_linear(void) {
  for (int bi = 0; bi < NB; bi++)
    for (int ii = 0; ii < NW; ii++)
      for (int oi = 0; oi < NW; oi++) {
        int B = batches[bi], Ci = widths[ii], Co = widths[oi];
        size_t ni = (size_t)B * Ci, no = (size_t)B * Co, nw = (size_t)Co * Ci;
        float *inp = falloc(ni), *w = falloc(nw), *bias = falloc(Co), *out = falloc(no);
        float *dout = falloc(no), *dinp = falloc(ni), *dw = falloc(nw), *db = falloc(Co);
        float *dw0 = falloc(nw), *db0 = falloc(Co);
        fill_uniform(inp, ni, -2, 2);
        fill_uniform(w, nw, -1, 1);
        fill_uniform(bias, Co, -1, 1);
        fill_uniform(dout, no, -1, 1);
        fill_uniform(dw0, nw, -3, 3);   /* non-zero: gradients must accumulate */
        fill_uniform(db0, Co, -3, 3);
        memcpy(dw, dw0, nw * sizeof(float));
        memcpy(db, db0, Co * sizeof(float));
        fill_nan(out, no);
        fill_nan(dinp, ni);

        be->linear_forward(out, inp, w, bias, B, Ci, Co);
        int bad = 0;
        for (int b = 0; b < B; b++)
          for (int o = 0; o < Co; o++) {
            double s = bias[o], a = fabs(bias[o]);
            for (int i = 0; i < Ci; i++) {
              s += (double)inp[(size_t)b * Ci + i] * w[(size_t)o * Ci + i];
              a += fabs((double)inp[(size_t)b * Ci + i] * w[(size_t)o * Ci + i]);
            }
            if (!(fabs(out[(size_t)b * Co + o] - s) <= 4.0 * (Ci + 1) * FLT_EPSILON * a + 1e-30)) bad++;
          }
        CHECK(bad == 0, "linear_forward B=%d Cin=%d Cout=%d: %d wrong", B, Ci, Co, bad);

        be->linear_backward(dinp, dw, db, dout, inp, w, B, Ci, Co);
        bad = 0;
        for (int b = 0; b < B; b++)     /* dinp = dout @ W, overwritten */
          for (int i = 0; i < Ci; i++) {
            double s = 0, a = 0;
            for (int o = 0; o < Co; o++) {
              double t = (double)dout[(size_t)b * Co + o] * w[(size_t)o * Ci + i];
              s += t; a += fabs(t);
            }
            if (!(fabs(dinp[(size_t)b * Ci + i] - s) <= 4.0 * Co * FLT_EPSILON * a + 1e-30)) bad++;
          }
        CHECK(bad == 0, "linear_backward dinp B=%d Cin=%d Cout=%d: %d wrong", B, Ci, Co, bad);
        bad = 0;
        for (int o = 0; o < Co; o++) {  /* dW += dout^T inp, db += sum dout */
          for (int i = 0; i < Ci; i++) {
            double s = dw0[(size_t)o * Ci + i], a = fabs(s);
            for (int b = 0; b < B; b++) {
              double t = (double)dout[(size_t)b * Co + o] * inp[(size_t)b * Ci + i];
              s += t; a += fabs(t);
            }
            if (!(fabs(dw[(size_t)o * Ci + i] - s) <= 4.0 * (B + 1) * FLT_EPSILON * a)) bad++;
          }
          double s = db0[o], a = fabs(s);
          for (int b = 0; b < B; b++) { s += dout[(size_t)b * Co + o]; a += fabs(dout[(size_t)b * Co + o]); }
          if (!(fabs(db[o] - s) <= 4.0 * (B + 1) * FLT_EPSILON * a)) bad++;
        }
        CHECK(bad == 0, "linear_backward dW/db (accumulating) B=%d Cin=%d Cout=%d: %d wrong", B, Ci, Co, bad);

        /* dinp == NULL: parameter gradients still accumulate, a second time */
        float *dw1 = falloc(nw), *db1 = falloc(Co);
        memcpy(dw1, dw, nw * sizeof(float));
        memcpy(db1, db, Co * sizeof(float));
        be->linear_backward(NULL, dw, db, dout, inp, w, B, Ci, Co);
        bad = 0;
        for (size_t k = 0; k < nw; k++) {   /* dw now = dw0 + 2 G, so dw - dw1 = G = dw1 - dw0 */
          double g = (double)dw1[k] - dw0[k];
          if (!(fabs((dw[k] - (double)dw1[k]) - g) <= 1e-5 * (fabs(dw[k]) + fabs(dw0[k]) + 1))) bad++;
        }
        for (int o = 0; o < Co; o++) {
          double g = (double)db1[o] - db0[o];
          if (!(fabs((db[o] - (double)db1[o]) - g) <= 1e-5 * (fabs(db[o]) + fabs(db0[o]) + 1))) bad++;
        }
        CHECK(bad == 0, "linear_backward(dinp=NULL) B=%d Cin=%d Cout=%d: %d wrong", B, Ci, Co, bad);
        free(dw1); free(db1);
        free(inp); free(w); free(bias); free(out); free(dout); free(dinp); free(dw); free(db);
        free(dw0); free(db0);
      }
}

/* ---- activations ------------------------------------------------------- */
static double act_ref(ds_activation a, double x, double slope) {
  switch (a) {
    case DS_ACT_RELU: return x > 0 ? x : 0;
    case DS_ACT_LEAKY_RELU: return x > 0 ? x : slope * x;
    case DS_ACT_TANH: return tanh(x);
    default: return 1.0 / (1.0 + exp(-x));
  }
}
/* derivative from the INPUT x (the op uses its output; both must agree).
 * At x = 0 PyTorch's relu' is 0 and leaky_relu' is the slope. */
static double dact_ref(ds_activation a, double x, double slope) {
  switch (a) {
    case DS_ACT_RELU: return x > 0 ? 1 : 0;
    case DS_ACT_LEAKY_RELU: return x > 0 ? 1 : slope;
    case DS_ACT_TANH: { double t = tanh(x); return 1 - t * t; }
    default: { double s = 1.0 / (1.0 + exp(-x)); return s * (1 - s); }
  }
}

static void test_activations(void) {
  const ds_activation acts[] = {DS_ACT_RELU, DS_ACT_LEAKY_RELU, DS_ACT_TANH, DS_ACT_SIGMOID};
  const char *names[] = {"relu", "leaky_relu", "tanh", "sigmoid"};
  const size_t sizes[] = {1, 7, 10, 33, 129 * 7};
  for (int ai = 0; ai < 4; ai++)
    for (int si = 0; si < 5; si++) {
      size_t n = sizes[si];
      const float slope = 0.07f;
      float *x = falloc(n), *y = falloc(n), *dy = falloc(n), *dx = falloc(n), *io = falloc(n);
      fill_uniform(x, n, -4, 4);
      if (n > 6) { x[0] = 0.0f; x[1] = -0.0f; x[2] = 30.0f; x[3] = -30.0f; x[4] = 1e-30f; x[5] = -1e-30f; }
      fill_uniform(dy, n, -1, 1);
      fill_nan(y, n);
      fill_nan(dx, n);
      be->activation_forward(y, x, n, acts[ai], slope);
      int bad = 0;
      for (size_t i = 0; i < n; i++) {
        double want = act_ref(acts[ai], x[i], slope);
        /* float tanhf/expf are within a few ulps */
        if (!(fabs(y[i] - want) <= 1e-7 + 1e-6 * fabs(want))) bad++;
      }
      CHECK(bad == 0, "%s forward n=%zu: %d wrong", names[ai], n, bad);

      be->activation_backward(dx, dy, y, n, acts[ai], slope);
      bad = 0;
      for (size_t i = 0; i < n; i++) {
        double want = dy[i] * dact_ref(acts[ai], x[i], slope);
        /* derivative rebuilt from a rounded y: 1 - y^2 and y(1-y) lose ~2 ulps of y,
         * i.e. <= 3e-7 absolute; scaled by |dy| <= 1 */
        if (!(fabs(dx[i] - want) <= 3e-7 * fabs(dy[i]) + 1e-6 * fabs(want))) bad++;
      }
      CHECK(bad == 0, "%s backward n=%zu: %d wrong", names[ai], n, bad);

      /* dinp may alias dout */
      memcpy(io, dy, n * sizeof(float));
      be->activation_backward(io, io, y, n, acts[ai], slope);
      CHECK(memcmp(io, dx, n * sizeof(float)) == 0, "%s backward in place differs, n=%zu", names[ai], n);
      free(x); free(y); free(dy); free(dx); free(io);
    }
}

/* ---- batchnorm --------------------------------------------------------- */
static void test_batchnorm(void) {
  const int bbs[] = {1, 2, 3, 129};
  const float momenta[] = {0.1f, 0.3f};
  const float eps = 1e-5f;
  for (int bi = 0; bi < 4; bi++)
    for (int wi = 0; wi < NW; wi++)
      for (int mi = 0; mi < 2; mi++) {
        int B = bbs[bi], C = widths[wi];
        float mom = momenta[mi];
        size_t n = (size_t)B * C;
        float *x = falloc(n), *out = falloc(n), *g = falloc(C), *bt = falloc(C);
        float *mean = falloc(C), *rstd = falloc(C), *rm = falloc(C), *rv = falloc(C);
        float *rm0 = falloc(C), *rv0 = falloc(C);
        /* per-channel offset and spread, so mean and var differ per channel
         * and the mean is far from 0 (tests the subtraction) */
        for (int c = 0; c < C; c++) {
          double off = 3.0 * check_uniform() + 2.0, spread = 0.5 + 0.5 * (check_uniform() + 1.0);
          for (int b = 0; b < B; b++) x[(size_t)b * C + c] = (float)(off + spread * check_uniform());
        }
        fill_uniform(g, C, 0.5, 1.5);
        fill_uniform(bt, C, -0.5, 0.5);
        fill_uniform(rm0, C, -1, 1);
        fill_uniform(rv0, C, 0.5, 2);
        /* channel 0 nearly constant and its running variance tiny, so that
         * eps (1e-5) dominates var + eps in both modes */
        rv0[0] = 2e-5f;
        for (int b = 0; b < B; b++) x[(size_t)b * C] = (float)(1.5 + 1e-3 * check_uniform());

        if (B > 1) { /* training mode (PyTorch requires B > 1) */
          memcpy(rm, rm0, C * sizeof(float));
          memcpy(rv, rv0, C * sizeof(float));
          fill_nan(out, n);
          be->batchnorm_forward(out, mean, rstd, rm, rv, x, g, bt, B, C, 1, mom, eps);
          int bad = 0, bad_stats = 0, bad_run = 0;
          for (int c = 0; c < C; c++) {
            double s = 0, ss = 0;
            for (int b = 0; b < B; b++) s += x[(size_t)b * C + c];
            double mu = s / B;
            for (int b = 0; b < B; b++) { double d = x[(size_t)b * C + c] - mu; ss += d * d; }
            double var = ss / B, rs = 1.0 / sqrt(var + eps);
            if (!(fabs(mean[c] - mu) <= 1e-6 * (fabs(mu) + 1))) bad_stats++;
            if (!(fabs(rstd[c] - rs) <= 1e-6 * rs)) bad_stats++;
            double want_rm = (1 - (double)mom) * rm0[c] + mom * mu;
            double want_rv = (1 - (double)mom) * rv0[c] + mom * ss / (B - 1);  /* unbiased */
            if (!(fabs(rm[c] - want_rm) <= 1e-6 * (fabs(want_rm) + 1))) bad_run++;
            if (!(fabs(rv[c] - want_rv) <= 1e-6 * fabs(want_rv))) bad_run++;
            for (int b = 0; b < B; b++) {
              double want = g[c] * (x[(size_t)b * C + c] - mu) * rs + bt[c];
              /* x - mean is formed in float: a few ulps of |x| + |mean|, times gamma rstd */
              double xerr = 4 * FLT_EPSILON * (fabs(x[(size_t)b * C + c]) + fabs(mu)) * rs * g[c];
              if (!(fabs(out[(size_t)b * C + c] - want) <= 1e-6 + 1e-6 * fabs(want) + xerr)) bad++;
            }
          }
          CHECK(bad == 0, "batchnorm train out B=%d C=%d m=%g: %d wrong", B, C, (double)mom, bad);
          CHECK(bad_stats == 0, "batchnorm train mean/rstd B=%d C=%d: %d wrong", B, C, bad_stats);
          CHECK(bad_run == 0, "batchnorm running stats B=%d C=%d m=%g: %d wrong", B, C, (double)mom, bad_run);

          /* backward with the saved statistics; dgamma/dbeta accumulate */
          if (mi == 0) {
            float *dy = falloc(n), *dx = falloc(n), *dg = falloc(C), *db = falloc(C), *dg0 = falloc(C),
                  *db0 = falloc(C);
            fill_uniform(dy, n, -1, 1);
            fill_uniform(dg0, C, -2, 2);
            fill_uniform(db0, C, -2, 2);
            memcpy(dg, dg0, C * sizeof(float));
            memcpy(db, db0, C * sizeof(float));
            fill_nan(dx, n);
            be->batchnorm_backward(dx, dg, db, dy, x, mean, rstd, g, B, C);
            int bad_dx = 0, bad_p = 0;
            for (int c = 0; c < C; c++) {
              double s = 0, ss = 0;
              for (int b = 0; b < B; b++) s += x[(size_t)b * C + c];
              double mu = s / B;
              for (int b = 0; b < B; b++) { double d = x[(size_t)b * C + c] - mu; ss += d * d; }
              double rs = 1.0 / sqrt(ss / B + eps);
              /* d out_j / d x_i = gamma rs (delta_ij - 1/B - xhat_i xhat_j / B) */
              double sdy = 0, sdyx = 0, sabs = 0;
              for (int b = 0; b < B; b++) {
                double dyv = dy[(size_t)b * C + c], xh = (x[(size_t)b * C + c] - mu) * rs;
                sdy += dyv; sdyx += dyv * xh; sabs += fabs(dyv);
              }
              if (!(fabs(db[c] - (db0[c] + sdy)) <= 1e-5 * (sabs + fabs(db0[c])))) bad_p++;
              if (!(fabs(dg[c] - (dg0[c] + sdyx)) <= 1e-5 * (3 * sabs + fabs(dg0[c])))) bad_p++;
              for (int b = 0; b < B; b++) {
                double xh = (x[(size_t)b * C + c] - mu) * rs;
                double want = g[c] * rs * (dy[(size_t)b * C + c] - sdy / B - xh * sdyx / B);
                /* three float terms of size <= gamma rs (|dy| + mean|dy| + |xhat| mean|dy xhat|) */
                double scale = g[c] * rs * (fabs(dy[(size_t)b * C + c]) + sabs / B + fabs(xh) * 3 * sabs / B);
                /* plus the float xhat's own error (see forward) times its coefficient */
                double xerr = 4 * FLT_EPSILON * (fabs(x[(size_t)b * C + c]) + fabs(mu)) * rs;
                if (!(fabs(dx[(size_t)b * C + c] - want) <= 1e-5 * scale + g[c] * rs * xerr * 3 * sabs / B)) bad_dx++;
              }
            }
            CHECK(bad_dx == 0, "batchnorm backward dx B=%d C=%d: %d wrong", B, C, bad_dx);
            CHECK(bad_p == 0, "batchnorm backward dgamma/dbeta (accumulating) B=%d C=%d: %d wrong", B, C, bad_p);
            free(dy); free(dx); free(dg); free(db); free(dg0); free(db0);
          }
        }

        /* inference: running statistics, mean/rstd/running stats untouched */
        memcpy(rm, rm0, C * sizeof(float));
        memcpy(rv, rv0, C * sizeof(float));
        for (int c = 0; c < C; c++) { mean[c] = 123.0f; rstd[c] = 456.0f; }
        fill_nan(out, n);
        be->batchnorm_forward(out, mean, rstd, rm, rv, x, g, bt, B, C, 0, mom, eps);
        int bad = 0, touched = 0;
        for (int c = 0; c < C; c++) {
          touched += mean[c] != 123.0f || rstd[c] != 456.0f || rm[c] != rm0[c] || rv[c] != rv0[c];
          for (int b = 0; b < B; b++) {
            double want = g[c] * (x[(size_t)b * C + c] - (double)rm0[c]) / sqrt((double)rv0[c] + eps) + bt[c];
            if (!(fabs(out[(size_t)b * C + c] - want) <= 1e-5 * (1 + fabs(want)))) bad++;
          }
        }
        CHECK(bad == 0, "batchnorm inference B=%d C=%d: %d wrong", B, C, bad);
        CHECK(touched == 0, "batchnorm inference modified mean/rstd/running stats (B=%d C=%d)", B, C);
        free(x); free(out); free(g); free(bt); free(mean); free(rstd); free(rm); free(rv); free(rm0); free(rv0);
      }
}

/* ---- dropout ----------------------------------------------------------- */
static void test_dropout(void) {
  const float ps[] = {0.1f, 0.5f, 0.9f, 0.3f};
  const size_t sizes[] = {1, 7, 10, 33, 129 * 10};
  const ds_dropout_form forms[] = {DS_DROPOUT_INVERTED, DS_DROPOUT_SCALE_AT_TEST};
  for (int fi = 0; fi < 2; fi++)
    for (int pi = 0; pi < 4; pi++)
      for (int si = 0; si < 5; si++) {
        size_t n = sizes[si];
        float p = ps[pi];
        uint64_t seed = 0x1234567890ull + (uint64_t)pi, step = 5ull + ((uint64_t)si << 33);
        uint32_t stream = DS_STREAM_DROPOUT + (uint32_t)si;
        uint32_t th = ds_dropout_threshold(p);
        double train_scale = forms[fi] == DS_DROPOUT_INVERTED ? 1.0 / (1.0 - (double)p) : 1.0;
        double test_scale = forms[fi] == DS_DROPOUT_INVERTED ? 1.0 : 1.0 - (double)p;
        float *x = falloc(n), *y = falloc(n), *dy = falloc(n), *dx = falloc(n), *io = falloc(n);
        fill_uniform(x, n, -2, 2);
        fill_uniform(dy, n, -2, 2);
        fill_nan(y, n);
        fill_nan(dx, n);
        be->dropout_forward(y, x, n, p, forms[fi], 1, seed, stream, 0, &step);
        be->dropout_backward(dx, dy, n, p, forms[fi], seed, stream, 0, &step);
        int bad_f = 0, bad_b = 0;
        for (size_t e = 0; e < n; e++) {
          int keep = ds_philox_word(seed, stream, step, e) < th;
          double wf = keep ? x[e] * train_scale : 0.0, wb = keep ? dy[e] * train_scale : 0.0;
          if (!(fabs(y[e] - wf) <= 1e-6 * fabs(wf))) bad_f++;       /* one rounded multiply */
          if (!(fabs(dx[e] - wb) <= 1e-6 * fabs(wb))) bad_b++;
        }
        CHECK(bad_f == 0, "dropout forward form=%d p=%g n=%zu: %d wrong", fi, (double)p, n, bad_f);
        CHECK(bad_b == 0, "dropout backward form=%d p=%g n=%zu: %d wrong (mask or scale)", fi, (double)p, n, bad_b);

        /* in place (out aliases inp), both directions */
        memcpy(io, x, n * sizeof(float));
        be->dropout_forward(io, io, n, p, forms[fi], 1, seed, stream, 0, &step);
        CHECK(memcmp(io, y, n * sizeof(float)) == 0, "dropout forward in place differs (n=%zu)", n);
        memcpy(io, dy, n * sizeof(float));
        be->dropout_backward(io, io, n, p, forms[fi], seed, stream, 0, &step);
        CHECK(memcmp(io, dx, n * sizeof(float)) == 0, "dropout backward in place differs (n=%zu)", n);

        /* evaluation: identity (inverted) or x * (1 - p) (scale at test) */
        fill_nan(y, n);
        be->dropout_forward(y, x, n, p, forms[fi], 0, seed, stream, 0, &step);
        int bad_e = 0;
        for (size_t e = 0; e < n; e++) {
          double w = x[e] * test_scale;
          if (!(fabs(y[e] - w) <= 1e-6 * fabs(w))) bad_e++;
        }
        CHECK(bad_e == 0, "dropout eval form=%d p=%g n=%zu: %d wrong", fi, (double)p, n, bad_e);
        free(x); free(y); free(dy); free(dx); free(io);
      }

  /* Statistics on a large n: kept fraction is 1 - p within 6 binomial sd;
   * the inverted form preserves the mean of a constant input (E = x). Masks of
   * different steps / streams are not the same (agreement ~ (1-p)^2 + p^2). */
  const size_t n = 1 << 20;
  float *x = falloc(n), *y = falloc(n), *y2 = falloc(n);
  for (size_t i = 0; i < n; i++) x[i] = 1.0f;
  const float p = 0.3f;
  const uint64_t step17 = 17, step18 = 18; /* the key is read from backend (here host) memory */
  be->dropout_forward(y, x, n, p, DS_DROPOUT_INVERTED, 1, 99, DS_STREAM_DROPOUT + 1, 0, &step17);
  size_t kept = 0;
  double sum = 0;
  for (size_t i = 0; i < n; i++) { kept += y[i] != 0.0f; sum += y[i]; }
  double f = (double)kept / n, sd = sqrt(0.3 * 0.7 / n);
  CHECK(fabs(f - 0.7) < 6 * sd, "kept fraction %.5f, expected 0.7 +- %.5f", f, 6 * sd);
  CHECK(fabs(sum / n - 1.0) < 6 * sd / 0.7, "inverted dropout mean %.5f, expected 1", sum / n);
  be->dropout_forward(y2, x, n, p, DS_DROPOUT_INVERTED, 1, 99, DS_STREAM_DROPOUT + 1, 0, &step18);
  size_t same = 0;
  for (size_t i = 0; i < n; i++) same += (y[i] != 0.0f) == (y2[i] != 0.0f);
  double agree = (double)same / n, want_agree = 0.7 * 0.7 + 0.3 * 0.3;
  CHECK(fabs(agree - want_agree) < 0.01, "masks of consecutive steps agree on %.4f (independent: %.4f)", agree, want_agree);
  be->dropout_forward(y2, x, n, p, DS_DROPOUT_INVERTED, 1, 99, DS_STREAM_DROPOUT + 2, 0, &step17);
  same = 0;
  for (size_t i = 0; i < n; i++) same += (y[i] != 0.0f) == (y2[i] != 0.0f);
  agree = (double)same / n;
  CHECK(fabs(agree - want_agree) < 0.01, "masks of two streams agree on %.4f (independent: %.4f)", agree, want_agree);
  free(x); free(y); free(y2);
}

/* ---- softmax + cross-entropy ------------------------------------------- */
static void check_softmax(const float *logits, const int32_t *labels, int B, int C, float gs,
                          const char *what) {
  size_t n = (size_t)B * C;
  float *dl = falloc(n);
  fill_nan(dl, n);
  double acc[2] = {2.5, 3.0};  /* accumulates */
  be->softmax_xent(dl, acc, logits, labels, B, C, gs);
  double loss = 0, loss_tol = 0;
  long correct = 0;
  int bad = 0;
  for (int b = 0; b < B; b++) {
    const float *l = logits + (size_t)b * C;
    int am = 0;
    double mx = l[0];
    for (int c = 1; c < C; c++) if (l[c] > mx) { mx = l[c]; am = c; }   /* first max, as torch.argmax */
    double s = 0;
    for (int c = 0; c < C; c++) s += exp(l[c] - mx);
    double lse = mx + log(s);
    double lb = lse - l[labels[b]];
    loss += lb;
    correct += am == labels[b];
    /* Error budget in float, independent of the logits' magnitude (they are
     * exact floats, so an accurate op is accurate at 1000 too):
     * log(sum) of C terms is within ~C ulps; (l - max) is exact or
     * negligible after exp; exp, the subtraction and the scale a few ulps.
     * Loss: ~C ulps of log(sum) plus a few ulps of the row's loss. */
    loss_tol += (C + 8) * FLT_EPSILON + 4 * FLT_EPSILON * fabs(lb);
    for (int c = 0; c < C; c++) {
      double want = (exp(l[c] - lse) - (c == labels[b])) * gs;
      double tol = fabs(gs) * (C + 8) * FLT_EPSILON;
      if (!(fabs(dl[(size_t)b * C + c] - want) <= tol)) bad++;
    }
  }
  CHECK(bad == 0, "softmax_xent %s B=%d C=%d gs=%g: %d dlogits wrong", what, B, C, (double)gs, bad);
  CHECK_CLOSE(acc[0], 2.5 + loss, loss_tol, 1e-12,
              "softmax_xent %s loss sum B=%d C=%d", what, B, C);
  CHECK(acc[1] == 3.0 + (double)correct, "softmax_xent %s correct %g want %ld", what, acc[1] - 3.0, correct);

  /* dlogits == NULL: only the accumulators */
  double acc2[2] = {0, 0};
  be->softmax_xent(NULL, acc2, logits, labels, B, C, gs);
  CHECK(acc2[0] == acc[0] - 2.5 && acc2[1] == acc[1] - 3.0, "softmax_xent %s without dlogits differs", what);
  free(dl);
}

static void test_softmax_xent(void) {
  for (int bi = 0; bi < NB; bi++)
    for (int wi = 0; wi < NW; wi++) {
      int B = batches[bi], C = widths[wi];
      float *l = falloc((size_t)B * C);
      int32_t *y = malloc(sizeof(int32_t) * B);
      fill_uniform(l, (size_t)B * C, -5, 5);
      for (int b = 0; b < B; b++) y[b] = (int32_t)((b * 7 + 3) % C);
      check_softmax(l, y, B, C, 1.0f / (float)B, "random");
      check_softmax(l, y, B, C, 0.37f, "random");
      /* huge logits: naive exp overflows; stable form must stay finite and exact */
      for (size_t i = 0; i < (size_t)B * C; i++) l[i] = (float)(1000.0 + 20.0 * check_uniform());
      if (B * C > 2) { l[0] = -1000.0f; l[1] = 1000.0f; }
      check_softmax(l, y, B, C, 1.0f / (float)B, "logits~1000");
      for (size_t i = 0; i < (size_t)B * C; i++) l[i] = -l[i];
      check_softmax(l, y, B, C, 1.0f / (float)B, "logits~-1000");
      free(l); free(y);
    }
  /* ties: argmax is the first maximum, so a label on the second tied max is wrong */
  float l[6] = {1.0f, 3.0f, 3.0f, 2.0f, 2.0f, 0.0f};
  int32_t y[2] = {1, 0};  /* both labels on the first of two tied maxima */
  double acc[2] = {0, 0};
  be->softmax_xent(NULL, acc, l, y, 2, 3, 1.0f);
  CHECK(acc[1] == 2.0, "ties: %g correct, expected 2 (argmax is the first maximum)", acc[1]);
  /* one extreme row: true class at -1000 among +1000: loss ~ 2000, gradient finite */
  float lx[3] = {1000.0f, -1000.0f, 1000.0f};
  int32_t yx[1] = {1};
  float dl[3];
  double ax[2] = {0, 0};
  be->softmax_xent(dl, ax, lx, yx, 1, 3, 1.0f);
  CHECK_CLOSE(ax[0], 2000.0 + log(2.0), 2000.0 * 2 * FLT_EPSILON, 0, "extreme row loss");
  CHECK_CLOSE(dl[0], 0.5, 1e-6, 0, "extreme row dlogit 0");
  CHECK_CLOSE(dl[1], -1.0, 1e-6, 0, "extreme row dlogit 1");
  CHECK_CLOSE(dl[2], 0.5, 1e-6, 0, "extreme row dlogit 2");
}

/* ---- axpy -------------------------------------------------------------- */
static void test_axpy(void) {
  const size_t sizes[] = {1, 7, 10, 33, 1031};
  for (int si = 0; si < 5; si++) {
    size_t n = sizes[si];
    float *a = falloc(n), *b = falloc(n), *out = falloc(n);
    fill_uniform(a, n, -3, 3);
    fill_uniform(b, n, -3, 3);
    fill_nan(out, n);
    const float alpha = -0.9f;
    be->axpy(out, a, alpha, b, n);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
      double w = a[i] + (double)alpha * b[i];
      if (!(fabs(out[i] - w) <= 2 * FLT_EPSILON * (fabs(a[i]) + fabs(alpha * b[i])))) bad++;
    }
    CHECK(bad == 0, "axpy n=%zu: %d wrong", n, bad);
    free(a); free(b); free(out);
  }
}

/* ---- memory helpers of the table --------------------------------------- */
static void test_memory(void) {
  float *d = be->alloc(37 * sizeof(float), "test buffer");
  int nz = 0;
  for (int i = 0; i < 37; i++) nz += d[i] != 0.0f;
  CHECK(nz == 0, "alloc is not zeroed");
  float h[37], r[37];
  for (int i = 0; i < 37; i++) h[i] = (float)i + 0.5f;
  be->upload(d, h, sizeof h);
  be->download(r, d, sizeof r);
  CHECK(memcmp(h, r, sizeof h) == 0, "upload/download round trip");
  be->zero(d, 10 * sizeof(float));
  be->download(r, d, sizeof r);
  CHECK(r[9] == 0.0f && r[10] == 10.5f, "zero touches exactly the bytes asked for");
  be->synchronize();
  be->free(d);
}

int main(void) {
  be = ds_backend_cpu();
  CHECK(be && strcmp(be->name, "cpu") == 0, "ds_backend_cpu() name");
  printf("backend: %s (%s)\n", be->name, be->device);
  test_memory();
  test_gather();
  test_linear();
  test_activations();
  test_batchnorm();
  test_dropout();
  test_softmax_xent();
  test_axpy();
  return check_finish("test_ops_cpu");
}
