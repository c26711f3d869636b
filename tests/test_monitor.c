/* Monitoring, non-finite handling, validation split and the log writer.
 *
 * 1. The monitor ops (CPU) on hand-made inputs with hand-computed answers,
 *    and on random inputs against a double-precision loop written here;
 *    the non-finite scan at every position class (block edges, odd tails).
 * 2. The statistics of a captured update on tiny models whose numbers are
 *    worked out below in closed form: a 2->2 softmax layer (one sample) and
 *    a 2-3-2 ReLU net with a unit that is dead by construction.
 * 3. --on-nonfinite skip: an update whose gradient is NaN leaves parameters,
 *    Adam state, BN running statistics and the loss accumulators bit for bit
 *    as they were; stop mode records the update, the tensor and NaN.
 * 4. The validation split is a seeded partition that keeps file order.
 * 5. The log writer's CSV and JSON lines, read back. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "descent/backend.h"
#include "descent/train.h"
#include "kernels_cpu.h"
#include "train/log.h"
#include "train/monitor.h"

/* ---- 1. ops ------------------------------------------------------------------ */

static void test_ops(void) {
  /* x[3,4]: column 1 is <= 0 in every row (dead), column 3 is 0 except one row */
  const float x[12] = {1.0f, 0.0f, -2.0f, 0.0f,
                       0.5f, -1.0f, 3.0f, 0.0f,
                       -0.25f, 0.0f, 0.995f, 2.0f};
  double out[4] = {10, 20, 30, 40}; /* accumulates onto what is there */
  monitor_stats_cpu(out, x, 3, 4, -0.99f, 0.99f);
  /* sum = 1-2+0.5-1+3-0.25+0.995+2 = 4.245; sum of squares by hand */
  double ss = 1 + 4 + 0.25 + 1 + 9 + 0.0625 + (double)0.995f * (double)0.995f + 4;
  CHECK_CLOSE(out[0] - 10, 4.245, 1e-6, 0, "monitor_stats sum");
  CHECK_CLOSE(out[1] - 20, ss, 1e-6, 0, "monitor_stats sum of squares");
  CHECK(out[2] - 30 == 1.0, "dead columns: got %g, want 1 (column 1 only)", out[2] - 30);
  /* <= -0.99 or >= 0.99: 1, -2, -1, 3, 0.995, 2 */
  CHECK(out[3] - 40 == 6.0, "saturated elements: got %g, want 6", out[3] - 40);

  /* random [B,C] against a double loop; tolerance: both sum in double, only
     the order of the additions could differ (it does not here) */
  enum { B = 37, C = 29 };
  float r[B * C];
  for (int i = 0; i < B * C; i++) r[i] = (float)check_uniform();
  for (int b = 0; b < B; b++) r[b * C + 5] = -fabsf(r[b * C + 5]); /* a dead column */
  double o[4] = {0, 0, 0, 0}, want[4] = {0, 0, 0, 0};
  monitor_stats_cpu(o, r, B, C, -0.9f, 0.9f);
  for (int c = 0; c < C; c++) {
    int dead = 1;
    for (int b = 0; b < B; b++) dead &= r[b * C + c] <= 0.0f;
    want[2] += dead;
  }
  for (int i = 0; i < B * C; i++) {
    want[0] += r[i];
    want[1] += (double)r[i] * r[i];
    want[3] += r[i] <= -0.9f || r[i] >= 0.9f;
  }
  for (int k = 0; k < 4; k++) CHECK_CLOSE(o[k], want[k], 1e-9, 1e-12, "monitor_stats random slot %d", k);
  CHECK(want[2] >= 1, "the random test has its dead column");

  float a[5] = {1, -2, 3, 0.5f, 0}, y[5] = {0, 1, 1, 0.5f, -1};
  double s = 0;
  monitor_sumsq_cpu(&s, a, NULL, 5);
  CHECK(s == 14.25, "sumsq: got %g, want 1+4+9+0.25 = 14.25", s);
  monitor_sumsq_cpu(&s, a, y, 5);
  CHECK(s == 14.25 + 1 + 9 + 4 + 0 + 1, "sumsq of differences accumulates: got %g, want 29.25", s);

  /* non-finite scan: every position class of the blocked test */
  size_t n = 4096 * 3 + 5; /* three blocks and an odd tail */
  float *g = malloc(n * sizeof *g);
  for (size_t i = 0; i < n; i++) g[i] = (float)check_uniform() * 1e30f;
  g[7] = 3.4e38f;          /* the largest exponent below all ones: finite */
  g[8] = 1e-45f;           /* subnormal */
  g[9] = -0.0f;
  const int64_t step5 = 5, step42 = 42, step3 = 3, step4 = 4; /* the op reads the step from backend memory */
  int64_t rec[3] = {-1, -1, 0};
  monitor_nonfinite_cpu(rec, g, n, &step5);
  CHECK(rec[0] == -1, "a finite buffer (large, subnormal, -0) is not flagged");
  const size_t where[] = {0, 1, 7, 8, 4095, 4096, 8191, 8197, n - 1};
  for (size_t k = 0; k < sizeof where / sizeof where[0]; k++)
    for (int kind = 1; kind <= 3; kind++) {
      float saved = g[where[k]];
      g[where[k]] = kind == 1 ? NAN : (kind == 2 ? INFINITY : -INFINITY);
      int64_t q[3] = {-1, -1, 0};
      monitor_nonfinite_cpu(q, g, n, &step42);
      CHECK(q[0] == 42 && q[1] == (int64_t)where[k] && q[2] == (kind == 1 ? 1 : 2),
            "non-finite %s at %zu: record {%lld, %lld, %lld}", kind == 1 ? "NaN" : "Inf", where[k],
            (long long)q[0], (long long)q[1], (long long)q[2]);
      g[where[k]] = saved;
    }
  g[100] = INFINITY;
  g[50] = NAN;
  int64_t q[3] = {-1, -1, 0};
  monitor_nonfinite_cpu(q, g, n, &step3);
  CHECK(q[1] == 50 && q[2] == 1, "the smallest index is recorded (NaN at 50 before Inf at 100)");
  monitor_nonfinite_cpu(q, g + 60, n - 60, &step4);
  CHECK(q[0] == 3 && q[1] == 50, "the first record sticks");
  free(g);
}

/* ---- tiny models ---------------------------------------------------------------- */

static ds_dataset tiny_set(int n, int d, const uint8_t *img, const uint8_t *lab, int classes) {
  ds_dataset s = {0};
  s.n = n;
  s.d = d;
  s.rows = 1;
  s.cols = d;
  s.n_classes = classes;
  s.images = malloc((size_t)n * d);
  s.labels = malloc((size_t)n);
  memcpy(s.images, img, (size_t)n * d);
  memcpy(s.labels, lab, (size_t)n);
  return s;
}

static void base_config(ds_train_config *c, int batch) {
  ds_train_config_defaults(c);
  c->model.n_hidden = 0;
  c->batch_size = batch;
  c->sampling = DS_SAMPLE_SEQUENTIAL;
  c->optim.lr = 0.1f;
  c->eval_batch = 16;
}

/* 2a. logits = W x + b on one sample: p = softmax, gW = (p - y) x^T, gb = p - y.
 *     grad_norm_fc1 = sqrt(|gW|^2 + |gb|^2); SGD's update is -lr gW, so
 *     update_ratio_fc1 = lr |gW| / |W|. */
static void test_softmax_layer(void) {
  const ds_backend *be = ds_backend_cpu();
  uint8_t img[2] = {2, 1}, lab[1] = {1};
  ds_dataset set = tiny_set(1, 2, img, lab, 2);
  ds_train_config cfg;
  base_config(&cfg, 1);
  ds_trainer t;
  ds_trainer_init(&t, be, &cfg, &set, &set);
  t.scale = 1.0f, t.shift = 0.0f; /* x = the bytes: (2, 1) */
  float W[4] = {0.5f, -1.0f, 0.25f, 0.75f}, bias[2] = {0.1f, -0.2f};
  be->upload(t.params + t.model.layers[0].weight.offset, W, sizeof W);
  be->upload(t.params + t.model.layers[0].bias.offset, bias, sizeof bias);
  ds_monitor m;
  ds_monitor_init(&m, t.be, &t.model);
  t.mon = &m;
  t.capture = 1;
  ds_sampler_begin_epoch(&t.sampler, 0);
  CHECK(ds_trainer_update(&t, 1) == 1, "one sample");
  ds_monitor_read(&m);
  /* z0 = 0.5*2 - 1*1 + 0.1 = 0.1; z1 = 0.25*2 + 0.75*1 - 0.2 = 1.05 */
  double z0 = 0.1, z1 = 1.05, e0 = exp(z0), e1 = exp(z1);
  double p0 = e0 / (e0 + e1), p1 = e1 / (e0 + e1);
  double d0 = p0, d1 = p1 - 1.0; /* label 1 */
  double gW2 = (d0 * d0 + d1 * d1) * (4.0 + 1.0), gb2 = d0 * d0 + d1 * d1;
  double Wn = sqrt(0.25 + 1.0 + 0.0625 + 0.5625);
  /* tolerances: float forward/backward of a 2x2 layer, relative error ~1e-7 */
  CHECK_CLOSE(m.grad_norm[0], sqrt(gW2 + gb2), 0, 1e-6, "grad_norm_fc1 (closed form)");
  CHECK_CLOSE(m.grad_norm_total, sqrt(gW2 + gb2), 0, 1e-6, "grad_norm = the only layer's");
  CHECK_CLOSE(m.update_ratio[0], 0.1 * sqrt(gW2) / Wn, 0, 1e-5, "update_ratio_fc1 = lr |gW| / |W|");
  CHECK(isnan(m.act_mean[0]) && m.width[0] == 0, "the output layer has no activation statistics");
  t.mon = NULL;
  ds_monitor_free(&m);
  ds_trainer_free(&t);
  ds_dataset_free(&set);
}

/* 2b. 2-3-2 ReLU net, 4 samples, full batch. W1 rows (1,0), (0,1), (-1,-1),
 *     b1 = (0, -0.5, 0): unit 3 is -x1-x2 <= 0 for the non-negative inputs,
 *     so it is dead; units 1 and 2 are not. The gradients come from a double
 *     forward/backward written here. */
static void test_relu_net(void) {
  const ds_backend *be = ds_backend_cpu();
  uint8_t img[8] = {1, 2, 3, 0, 0, 1, 2, 2}, lab[4] = {0, 1, 1, 0};
  ds_dataset set = tiny_set(4, 2, img, lab, 2);
  ds_train_config cfg;
  base_config(&cfg, 4);
  cfg.model.n_hidden = 1;
  cfg.model.hidden[0] = 3;
  ds_trainer t;
  ds_trainer_init(&t, be, &cfg, &set, &set);
  t.scale = 1.0f, t.shift = 0.0f;
  const ds_layer *L1 = &t.model.layers[0], *L2 = &t.model.layers[1];
  double W1[6] = {1, 0, 0, 1, -1, -1}, b1[3] = {0, -0.5, 0};
  double W2[6] = {0.3, -0.2, 0.5, -0.4, 0.1, 0.2}, b2[2] = {0.05, -0.05};
  float f[6];
  for (int i = 0; i < 6; i++) f[i] = (float)W1[i];
  be->upload(t.params + L1->weight.offset, f, 6 * sizeof(float));
  for (int i = 0; i < 3; i++) f[i] = (float)b1[i];
  be->upload(t.params + L1->bias.offset, f, 3 * sizeof(float));
  for (int i = 0; i < 6; i++) f[i] = (float)W2[i];
  be->upload(t.params + L2->weight.offset, f, 6 * sizeof(float));
  for (int i = 0; i < 2; i++) f[i] = (float)b2[i];
  be->upload(t.params + L2->bias.offset, f, 2 * sizeof(float));
  ds_monitor m;
  ds_monitor_init(&m, t.be, &t.model);
  t.mon = &m;
  t.capture = 1;
  ds_sampler_begin_epoch(&t.sampler, 0);
  CHECK(ds_trainer_update(&t, 1) == 4, "one full batch");
  ds_monitor_read(&m);

  /* activations by hand: unit 1 = x1: 1,3,0,2; unit 2 = relu(x2-0.5): 1.5,0,0.5,1.5; unit 3 = 0 */
  double mean = (6.0 + 3.5) / 12.0, var = (14.0 + 4.75) / 12.0 - mean * mean;
  CHECK_CLOSE(m.act_mean[0], mean, 1e-7, 0, "act_mean_fc1 = 9.5/12");
  CHECK_CLOSE(m.act_std[0], sqrt(var), 1e-7, 0, "act_std_fc1");
  CHECK_CLOSE(m.units[0], 1.0 / 3.0, 1e-12, 0, "dead_fc1 = 1/3 (unit 3)");

  /* double forward/backward of the mean cross-entropy */
  double gW1[6] = {0}, gb1[3] = {0}, gW2[6] = {0}, gb2[2] = {0};
  for (int s = 0; s < 4; s++) {
    double x[2] = {img[2 * s], img[2 * s + 1]}, z[3], h[3], o[2];
    for (int j = 0; j < 3; j++) {
      z[j] = W1[2 * j] * x[0] + W1[2 * j + 1] * x[1] + b1[j];
      h[j] = z[j] > 0 ? z[j] : 0;
    }
    for (int k = 0; k < 2; k++) o[k] = W2[3 * k] * h[0] + W2[3 * k + 1] * h[1] + W2[3 * k + 2] * h[2] + b2[k];
    double mx = fmax(o[0], o[1]), e0 = exp(o[0] - mx), e1 = exp(o[1] - mx);
    double d[2] = {e0 / (e0 + e1) / 4, e1 / (e0 + e1) / 4};
    d[lab[s]] -= 0.25;
    double dh[3] = {0, 0, 0};
    for (int k = 0; k < 2; k++) {
      gb2[k] += d[k];
      for (int j = 0; j < 3; j++) {
        gW2[3 * k + j] += d[k] * h[j];
        dh[j] += d[k] * W2[3 * k + j];
      }
    }
    for (int j = 0; j < 3; j++) {
      double dz = z[j] > 0 ? dh[j] : 0;
      gb1[j] += dz;
      gW1[2 * j] += dz * x[0];
      gW1[2 * j + 1] += dz * x[1];
    }
  }
  double n1 = 0, n2 = 0, w1 = 0, u1 = 0, w2 = 0, u2 = 0;
  for (int i = 0; i < 6; i++) n1 += gW1[i] * gW1[i], n2 += gW2[i] * gW2[i];
  u1 = sqrt(n1), u2 = sqrt(n2);
  for (int i = 0; i < 3; i++) n1 += gb1[i] * gb1[i];
  for (int i = 0; i < 2; i++) n2 += gb2[i] * gb2[i];
  for (int i = 0; i < 6; i++) w1 += W1[i] * W1[i], w2 += W2[i] * W2[i];
  /* float arithmetic on O(1) values: 1e-5 relative is ~100 ulps of slack */
  CHECK_CLOSE(m.grad_norm[0], sqrt(n1), 1e-7, 1e-5, "grad_norm_fc1 vs the double backward");
  CHECK_CLOSE(m.grad_norm[1], sqrt(n2), 1e-7, 1e-5, "grad_norm_fc2 vs the double backward");
  CHECK_CLOSE(m.grad_norm_total, sqrt(n1 + n2), 1e-7, 1e-5, "grad_norm: the global norm");
  CHECK_CLOSE(m.update_ratio[0], 0.1 * u1 / sqrt(w1), 1e-8, 1e-4, "update_ratio_fc1 = lr |gW1| / |W1| (|W1| = 2)");
  CHECK_CLOSE(m.update_ratio[1], 0.1 * u2 / sqrt(w2), 1e-8, 1e-4, "update_ratio_fc2");

  /* warnings: dead_fc1 is 1/3 (healthy); make 2 of 3 units dead and it fires, once */
  ds_mon_warning w[DS_MON_MAX_WARNINGS];
  int fresh[DS_MON_MAX_WARNINGS];
  int nw = ds_monitor_warnings(&m, w, fresh, DS_MON_MAX_WARNINGS);
  for (int i = 0; i < nw; i++) CHECK(strncmp(w[i].key, "dead_", 5) != 0, "no dead-unit warning at 1/3: %s", w[i].text);
  m.units[0] = 2.0 / 3.0;
  /* a batch of 4 rows: "dead for the whole batch" says little, no warning */
  nw = ds_monitor_warnings(&m, w, fresh, DS_MON_MAX_WARNINGS);
  for (int i = 0; i < nw; i++) CHECK(strcmp(w[i].key, "dead_fc1") != 0, "dead_fc1 warned about a %d-row batch", m.rows);
  m.rows = DS_MON_MIN_ROWS; /* as if the batch had been large enough */
  nw = ds_monitor_warnings(&m, w, fresh, DS_MON_MAX_WARNINGS);
  int found = -1;
  for (int i = 0; i < nw; i++)
    if (strcmp(w[i].key, "dead_fc1") == 0) found = i;
  CHECK(found >= 0 && fresh[found], "dead_fc1 = 2/3 warns, as a fresh warning");
  nw = ds_monitor_warnings(&m, w, fresh, DS_MON_MAX_WARNINGS);
  found = -1;
  for (int i = 0; i < nw; i++)
    if (strcmp(w[i].key, "dead_fc1") == 0) found = i;
  CHECK(found >= 0 && !fresh[found], "still logged at the next log point, but not fresh (stderr once)");
  m.update_ratio[1] = 5e-5;
  m.grad_norm_total = 2e3;
  nw = ds_monitor_warnings(&m, w, fresh, DS_MON_MAX_WARNINGS);
  int ratio = 0, grad = 0;
  for (int i = 0; i < nw; i++) ratio |= strcmp(w[i].key, "update_ratio_fc2") == 0, grad |= strcmp(w[i].key, "grad_norm") == 0;
  CHECK(ratio && grad, "an update ratio of 5e-5 and a gradient norm of 2e3 warn");
  /* the advice fits the lr: at lr 1e6 a tiny ratio is a vanished gradient, not a low lr */
  m.lr = 1e6, m.lr0 = 1e6;
  nw = ds_monitor_warnings(&m, w, fresh, DS_MON_MAX_WARNINGS);
  for (int i = 0; i < nw; i++)
    if (strcmp(w[i].key, "update_ratio_fc2") == 0)
      CHECK(!strstr(w[i].text, "--lr too low") && strstr(w[i].text, "vanished"), "lr 1e6: %s", w[i].text);
  /* a schedule holding the lr below a tenth of --lr (warmup, a decay's end): no low-ratio warning */
  m.lr = 1e-4, m.lr0 = 0.1;
  nw = ds_monitor_warnings(&m, w, fresh, DS_MON_MAX_WARNINGS);
  for (int i = 0; i < nw; i++) CHECK(strcmp(w[i].key, "update_ratio_fc2") != 0, "decayed lr: %s", w[i].text);
  t.mon = NULL;
  ds_monitor_free(&m);
  ds_trainer_free(&t);
  ds_dataset_free(&set);
}

/* ---- 3. non-finite updates ------------------------------------------------------- */

static float *grab(const ds_backend *be, const float *p, size_t n) {
  float *h = malloc((n ? n : 1) * sizeof(float));
  be->download(h, p, n * sizeof(float));
  return h;
}

/* 16 rows of 6 deterministic bytes, labels 0, 1, 2, 0, ... (the non-finite tests) */
static ds_dataset pattern_set(void) {
  enum { N = 16, D = 6 };
  uint8_t img[N * D], lab[N];
  for (int i = 0; i < N * D; i++) img[i] = (uint8_t)(37 * i + 11);
  for (int i = 0; i < N; i++) lab[i] = (uint8_t)(i % 3);
  return tiny_set(N, D, img, lab, 3);
}

static void test_nonfinite(void) {
  const ds_backend *be = ds_backend_cpu();
  ds_dataset set = pattern_set();
  for (int mode = 0; mode < 2; mode++) {
    ds_train_config cfg;
    base_config(&cfg, 4);
    cfg.model.n_hidden = 1;
    cfg.model.hidden[0] = 5;
    cfg.model.batchnorm = 1;
    ds_optim_defaults(&cfg.optim, DS_OPT_ADAM);
    cfg.on_nonfinite = mode ? DS_NONFINITE_SKIP : DS_NONFINITE_STOP;
    ds_trainer t;
    ds_trainer_init(&t, be, &cfg, &set, &set);
    ds_sampler_begin_epoch(&t.sampler, 0);
    ds_trainer_update(&t, 1); /* one good update: non-zero Adam state */
    size_t np = t.model.n_params, ns = t.model.n_stats;
    float *p0 = grab(be, t.params, np), *m0 = grab(be, t.opt.m, np), *v0 = grab(be, t.opt.v, np);
    float *s0 = grab(be, t.stats, ns);
    double acc0[2], acc1[2];
    be->download(acc0, t.d_acc, sizeof acc0);
    float scale = t.scale;
    t.scale = INFINITY; /* x = byte * inf: Inf, and NaN for byte 0 -> NaN gradients */
    long step0 = t.step;
    ds_trainer_update(&t, 1);
    float *p1 = grab(be, t.params, np), *m1 = grab(be, t.opt.m, np), *v1 = grab(be, t.opt.v, np);
    float *s1 = grab(be, t.stats, ns);
    be->download(acc1, t.d_acc, sizeof acc1);
    CHECK(t.step == step0 + 1, "the bad update counts as a step (%s)", mode ? "skip" : "stop");
    if (mode) {
      CHECK(t.skipped == 1 && t.skipped_samples == 4, "skip: one update (4 samples) skipped");
      CHECK(memcmp(p0, p1, np * 4) == 0, "skip: parameters bit-identical");
      CHECK(memcmp(m0, m1, np * 4) == 0 && memcmp(v0, v1, np * 4) == 0, "skip: Adam m and v bit-identical");
      CHECK(memcmp(s0, s1, ns * 4) == 0, "skip: BN running statistics bit-identical");
      CHECK(memcmp(acc0, acc1, sizeof acc0) == 0, "skip: the loss accumulators leave the update out");
      CHECK(t.last_skip[0] == step0 + 1 && t.last_skip[2] == 1, "skip: the record names update %ld and NaN", step0 + 1);
      t.scale = scale;
      ds_trainer_update(&t, 1);
      float *p2 = grab(be, t.params, np);
      CHECK(memcmp(p0, p2, np * 4) != 0 && t.skipped == 1, "skip: the next good update applies");
      free(p2);
    } else {
      int64_t rec[6];
      be->download(rec, t.d_nonfinite, sizeof rec);
      char name[64];
      ds_mlp_param_name(&t.model, (size_t)rec[1], name, sizeof name);
      CHECK(rec[0] == step0 + 1 && rec[2] == 1, "stop: the record holds update %ld, NaN (got %lld, kind %lld)",
            step0 + 1, (long long)rec[0], (long long)rec[2]);
      CHECK(strcmp(name, "fc1 weight") == 0, "stop: the first NaN gradient is in fc1 weight (got %s)", name);
      CHECK(t.skipped == 0, "stop mode skips nothing");
    }
    free(p0), free(m0), free(v0), free(s0), free(p1), free(m1), free(v1), free(s1);
    ds_trainer_free(&t);
  }
  ds_dataset_free(&set);
}

/* ---- 4. the validation split ------------------------------------------------------ */

static void split_of(const ds_dataset *set, float fraction, uint64_t seed, int *is_val) {
  ds_train_config cfg;
  base_config(&cfg, 8);
  cfg.val_fraction = fraction;
  cfg.seed = seed;
  ds_trainer t;
  ds_trainer_init(&t, ds_backend_cpu(), &cfg, set, set);
  int n = set->n, d = set->d;
  CHECK(t.n_val == (int)(n * fraction + 0.5) && t.n_train == n - t.n_val, "split sizes %d + %d", t.n_train, t.n_val);
  CHECK(t.sampler.n == t.n_train, "the sampler draws from the training part only");
  for (int i = 0; i < n; i++) is_val[i] = -1;
  const uint8_t *parts[2] = {t.train_images, t.val_images};
  int counts[2] = {t.n_train, t.n_val};
  for (int p = 0; p < 2; p++) {
    int prev = -1;
    for (int k = 0; k < counts[p]; k++) {
      int id = parts[p][(size_t)k * d] | parts[p][(size_t)k * d + 1] << 8; /* items carry their index */
      CHECK(id > prev && id < n, "part %d keeps file order (item %d after %d)", p, id, prev);
      if (id >= 0 && id < n) {
        CHECK(is_val[id] == -1, "item %d in one part only", id);
        is_val[id] = p;
      }
      prev = id;
    }
  }
  for (int i = 0; i < n; i++) CHECK(is_val[i] >= 0, "item %d is in a part", i);
  ds_trainer_free(&t);
}

static void test_split(void) {
  enum { N = 300 };
  uint8_t img[N * 2], lab[N];
  for (int i = 0; i < N; i++) img[2 * i] = (uint8_t)(i & 255), img[2 * i + 1] = (uint8_t)(i >> 8), lab[i] = (uint8_t)(i % 2);
  ds_dataset set = tiny_set(N, 2, img, lab, 2);
  int a[N], b[N], c[N];
  split_of(&set, 0.2f, 7, a);
  split_of(&set, 0.2f, 7, b);
  split_of(&set, 0.2f, 8, c);
  CHECK(memcmp(a, b, sizeof a) == 0, "the same seed holds out the same items");
  CHECK(memcmp(a, c, sizeof a) != 0, "another seed holds out other items");
  int first = 0, last = 0;
  for (int i = 0; i < N / 2; i++) first += a[i];
  for (int i = N / 2; i < N; i++) last += a[i];
  /* 60 held out, 30 expected per half; a shuffle puts both halves within 30 +- 15 (p < 1e-3) */
  CHECK(first > 15 && last > 15, "held-out items come from the whole file (%d in the first half, %d in the second)", first, last);
  ds_dataset_free(&set);
}

/* ---- 5. the log writer --------------------------------------------------------------- */

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  static char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void test_log(void) {
  char path[64];
  snprintf(path, sizeof path, "/tmp/test_monitor_%d.csv", (int)getpid());
  ds_log lg;
  int code = 0;
  char err[256];
  CHECK(ds_log_open(&lg, "/tmp/x.txt", 0, &code, err, sizeof err) != 0 && code == 2, "--log needs .csv or .jsonl");
  CHECK(ds_log_open(&lg, "/nonexistent-dir/x.csv", 0, &code, err, sizeof err) != 0 && code == 1, "unwritable: exit 1");
  CHECK(ds_log_open(&lg, path, 0, &code, err, sizeof err) == 0, "open %s", path);
  ds_log_field f[3] = {{"step", 10}, {"train_loss", 0.25}, {"grad_norm_fc1", NAN}};
  const char *w[2] = {"dead_fc1 = 0.62: \"too many\"", "second"};
  ds_log_row(&lg, f, 3, w, 2);
  f[0].value = 20, f[2].value = INFINITY;
  ds_log_row(&lg, f, 3, NULL, 0);
  ds_log_close(&lg);
  const char *want = "step,train_loss,grad_norm_fc1,warnings\n"
                     "10,0.25,nan,\"dead_fc1 = 0.62: \"\"too many\"\"; second\"\n"
                     "20,0.25,inf,\"\"\n";
  char *got = slurp(path);
  CHECK(got && strcmp(got, want) == 0, "CSV log:\n%s\nwant:\n%s", got ? got : "(none)", want);
  remove(path);
  snprintf(path, sizeof path, "/tmp/test_monitor_%d.jsonl", (int)getpid());
  CHECK(ds_log_open(&lg, path, 0, &code, err, sizeof err) == 0, "open %s", path);
  f[0].value = 10, f[2].value = NAN;
  ds_log_row(&lg, f, 3, w, 2);
  ds_log_close(&lg);
  want = "{\"step\":10,\"train_loss\":0.25,\"grad_norm_fc1\":null,\"warnings\":[\"dead_fc1 = 0.62: \\\"too many\\\"\",\"second\"]}\n";
  got = slurp(path);
  CHECK(got && strcmp(got, want) == 0, "JSON lines log:\n%s\nwant:\n%s", got ? got : "(none)", want);
  remove(path);
}

/* --on-nonfinite skip and the counters: the schedule counts attempted updates
 * (a PyTorch scheduler stepped every iteration), Adam's step (bias
 * corrections) counts applied ones (torch.optim's state["step"] does not
 * advance when GradScaler skips optimizer.step()). Checked against a float64
 * simulation over a pattern of good and poisoned batches. */
static void test_skip_counts(void) {
  const ds_backend *be = ds_backend_cpu();
  ds_dataset set = pattern_set();
  ds_train_config cfg;
  base_config(&cfg, 2);
  cfg.model.n_hidden = 1;
  cfg.model.hidden[0] = 5;
  ds_optim_defaults(&cfg.optim, DS_OPT_ADAM);
  cfg.optim.schedule = DS_SCHED_STEP;
  cfg.optim.step_size = 1;
  cfg.optim.gamma = 0.5f;
  cfg.on_nonfinite = DS_NONFINITE_SKIP;
  ds_trainer t;
  ds_trainer_init(&t, be, &cfg, &set, &set);
  ds_sampler_begin_epoch(&t.sampler, 0);
  const int poisoned[] = {0, 1, 1, 0, 0, 1, 0, 0};
  float scale = t.scale;
  long applied = 0;
  for (int k = 0; k < 8; k++) {
    t.scale = poisoned[k] ? INFINITY : scale;
    ds_trainer_update(&t, 1);
    double lr = 1e-3 * pow(0.5, k), bc1 = 1.0 - pow((double)0.9f, (double)(applied + 1)),
           bc2 = 1.0 - pow((double)0.999f, (double)(applied + 1));
    const ds_optim_scalars *sc = &t.h_scalars->optim;
    CHECK((long)sc->t == applied + 1, "update %d: Adam's step %llu, want %ld (applied updates + 1)", k + 1,
          (unsigned long long)sc->t, applied + 1);
    CHECK_CLOSE(sc->lr, lr, 0, 1e-6, "update %d: the schedule's lr counts attempted updates", k + 1);
    CHECK_CLOSE(sc->bias_correction1, bc1, 0, 1e-6, "update %d: bias correction 1", k + 1);
    CHECK_CLOSE(sc->bias_correction2, bc2, 0, 1e-5, "update %d: bias correction 2", k + 1);
    applied += !poisoned[k];
  }
  CHECK(t.skipped == 3 && t.step == 8, "3 of 8 updates skipped (got %ld of %ld)", t.skipped, t.step);
  ds_trainer_free(&t);
  ds_dataset_free(&set);
}

int main(void) {
  test_ops();
  test_softmax_layer();
  test_relu_net();
  test_nonfinite();
  test_skip_counts();
  test_split();
  test_log();
  return check_finish("test_monitor");
}
