/* Gradient accumulation: with no batchnorm and no dropout, one update from K
 * micro-batches of B samples equals one update from a single batch of K*B
 * samples (descent/optim.h: the gradient buffer then holds the mean over the
 * K micro-batches, i.e. the mean over all K*B samples).
 *
 * Two CPU trainers (host/train/trainer.c) on the same in-memory synthetic dataset,
 * same seed (same initial parameters), sequential sampling so both see the
 * same samples in the same order:
 *   A: batch B,   ds_trainer_update(A, K)
 *   B: batch K*B, ds_trainer_update(B, 1)
 * After every update the gradient buffers, parameters and optimizer state
 * must agree, for sgd (with L2), lookahead Nesterov (the look-ahead point is
 * taken once per update, before the micro-batches) and adam/adamw. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "descent/backend.h"
#include "descent/train.h"

#define N_SAMPLES 60
#define ROWS 3
#define COLS 4
#define D (ROWS * COLS)
#define N_CLASSES 4
#define MB 5     /* micro-batch */
#define K 3      /* micro-batches per update */
#define EPOCHS 2 /* N_SAMPLES / (K*MB) = 4 updates per epoch */

/* Tolerance. The two trainers differ only in float summation order: B sums
 * the weight gradient over 15 rows in one GEMM, A over 3 GEMMs of 5 rows
 * accumulated with +=, so each gradient entry differs by ~15 roundings
 * (~1e-6 relative). Parameters move by lr times that difference per update
 * (Adam: its normalised step carries the same relative error), summed over 8
 * updates: far below 1e-6 absolute for parameters of size ~0.1-1, while one
 * update moves them by >= 1e-3 (checked below). */
#define ATOL 1e-6
#define RTOL 1e-5

static ds_dataset make_set(int n, unsigned long long seed) {
  ds_dataset s;
  memset(&s, 0, sizeof s);
  s.n = n;
  s.d = D;
  s.rows = ROWS;
  s.cols = COLS;
  s.n_classes = N_CLASSES;
  s.images = malloc((size_t)n * D);
  s.labels = malloc((size_t)n);
  check_rng_state = seed;
  for (int i = 0; i < n; i++) {
    /* random bytes (no zero pixels: no weight gradient is exactly 0 by construction) */
    for (int j = 0; j < D; j++) s.images[i * D + j] = (uint8_t)(1 + (int)((check_uniform() + 1.0) * 127.0));
    s.labels[i] = (uint8_t)((int)((check_uniform() + 1.0) * 2.0) % N_CLASSES);
  }
  return s;
}

static void free_set(ds_dataset *s) {
  free(s->images);
  free(s->labels);
}

/* Worst |a-b| / (ATOL + RTOL*|b|) over n floats on the CPU backend. */
static double max_err(const float *a, const float *b, size_t n) {
  double e = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]) / (ATOL + RTOL * fabs((double)b[i]));
    if (!(d <= e)) e = isfinite(d) ? d : INFINITY;
  }
  return e;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
  double e = 0.0;
  for (size_t i = 0; i < n; i++) e = fmax(e, fabs((double)a[i] - (double)b[i]));
  return e;
}

static void run(const char *name, const ds_optim_config *oc, const ds_dataset *train,
                const ds_dataset *test) {
  const ds_backend *be = ds_backend_cpu(); /* host memory: buffers are read directly */
  ds_train_config ca;
  ds_train_config_defaults(&ca);
  ca.model.n_hidden = 2;
  ca.model.hidden[0] = 9;
  ca.model.hidden[1] = 7;
  /* tanh: smooth, so a last-bit difference in a pre-activation cannot flip a
   * ReLU kink and turn a rounding difference into an O(1) one */
  ca.model.activation = DS_ACT_TANH;
  ca.optim = *oc;
  ca.sampling = DS_SAMPLE_SEQUENTIAL;
  ca.seed = 7;
  ca.quiet = 1;
  ca.eval_batch = test->n;
  ds_train_config cb = ca;
  ca.batch_size = MB;
  ca.accum = K;
  cb.batch_size = K * MB;
  cb.accum = 1;

  ds_trainer a, b;
  ds_trainer_init(&a, be, &ca, train, test);
  ds_trainer_init(&b, be, &cb, train, test);
  size_t np = a.model.n_params;
  CHECK(np == b.model.n_params, "%s: layouts differ", name);
  CHECK(memcmp(a.params, b.params, np * sizeof(float)) == 0, "%s: initial parameters differ", name);

  double worst_grad = 0, worst_param = 0, worst_state = 0, min_step = INFINITY;
  float *prev = malloc(np * sizeof(float));
  for (long epoch = 0; epoch < EPOCHS; epoch++) {
    ds_sampler_begin_epoch(&a.sampler, epoch);
    ds_sampler_begin_epoch(&b.sampler, epoch);
    a.epoch = b.epoch = epoch;
    for (int u = 0; u < N_SAMPLES / (K * MB); u++) {
      memcpy(prev, b.params, np * sizeof(float));
      int sa = ds_trainer_update(&a, K);
      int sb = ds_trainer_update(&b, 1);
      CHECK(sa == K * MB && sb == K * MB, "%s: update used %d and %d samples, want %d", name, sa, sb, K * MB);
      /* the gradient buffer still holds this update's (mean) gradient */
      worst_grad = fmax(worst_grad, max_err(a.grads, b.grads, np));
      worst_param = fmax(worst_param, max_err(a.params, b.params, np));
      if (a.opt.m) worst_state = fmax(worst_state, max_err(a.opt.m, b.opt.m, np));
      if (a.opt.v) worst_state = fmax(worst_state, max_err(a.opt.v, b.opt.v, np));
      min_step = fmin(min_step, max_abs_diff(b.params, prev, np));
    }
  }
  CHECK(a.step == b.step && a.step == EPOCHS * N_SAMPLES / (K * MB), "%s: %ld and %ld updates", name,
        a.step, b.step);
  CHECK(worst_grad <= 1.0, "%s: accumulated gradient differs from the big batch's by %.3g tolerances", name, worst_grad);
  CHECK(worst_param <= 1.0, "%s: parameters differ by %.3g tolerances", name, worst_param);
  CHECK(worst_state <= 1.0, "%s: optimizer state differs by %.3g tolerances", name, worst_state);
  /* every update must move the parameters far beyond the tolerance, or
   * agreement would prove nothing */
  CHECK(min_step > 1000 * ATOL, "%s: an update moved the parameters by only %.3g", name, min_step);

  /* both saw the same samples: the summed training losses agree too */
  double la[2], lb[2];
  be->download(la, a.d_acc, sizeof la);
  be->download(lb, b.d_acc, sizeof lb);
  CHECK_CLOSE(la[0], lb[0], 1e-9, 1e-5, "%s: summed training loss", name);
  CHECK(la[1] == lb[1], "%s: correct counts %g vs %g", name, la[1], lb[1]);
  printf("  %-28s grad %.3f  params %.3f  state %.3f tolerances; smallest update %.3g\n", name,
         worst_grad, worst_param, worst_state, min_step);
  free(prev);
  ds_trainer_free(&a);
  ds_trainer_free(&b);
}

/* A micro-batch trainer that does NOT average (k = 1 per update, K times as
 * many updates) must disagree: the comparison can fail. */
static void control(const ds_optim_config *oc, const ds_dataset *train, const ds_dataset *test) {
  const ds_backend *be = ds_backend_cpu();
  ds_train_config ca;
  ds_train_config_defaults(&ca);
  ca.model.n_hidden = 2;
  ca.model.hidden[0] = 9;
  ca.model.hidden[1] = 7;
  ca.model.activation = DS_ACT_TANH;
  ca.optim = *oc;
  ca.sampling = DS_SAMPLE_SEQUENTIAL;
  ca.seed = 7;
  ca.quiet = 1;
  ca.eval_batch = test->n;
  ds_train_config cb = ca;
  ca.batch_size = MB;
  cb.batch_size = K * MB;
  ds_trainer a, b;
  ds_trainer_init(&a, be, &ca, train, test);
  ds_trainer_init(&b, be, &cb, train, test);
  ds_sampler_begin_epoch(&a.sampler, 0);
  ds_sampler_begin_epoch(&b.sampler, 0);
  for (int i = 0; i < K; i++) ds_trainer_update(&a, 1);
  ds_trainer_update(&b, 1);
  double e = max_err(a.params, b.params, a.model.n_params);
  CHECK(e > 100.0, "control: K separate updates match one big-batch update (%.3g tolerances)", e);
  ds_trainer_free(&a);
  ds_trainer_free(&b);
}

int main(void) {
  ds_dataset train = make_set(N_SAMPLES, 0x1234567ull), test = make_set(10, 0x89abcdefull);

  ds_optim_config oc;
  ds_optim_defaults(&oc, DS_OPT_SGD);
  oc.lr = 0.2f;
  oc.weight_decay = 0.01f;
  run("sgd + L2", &oc, &train, &test);
  control(&oc, &train, &test);

  ds_optim_defaults(&oc, DS_OPT_SGD);
  oc.lr = 0.1f;
  oc.momentum = 0.9f;
  oc.nesterov = 1;
  oc.nesterov_form = DS_NESTEROV_LOOKAHEAD;
  oc.schedule = DS_SCHED_STEP; /* the lr varies across the compared updates */
  oc.step_size = 3;
  oc.gamma = 0.5f;
  run("sgd nesterov lookahead", &oc, &train, &test);

  ds_optim_defaults(&oc, DS_OPT_ADAM);
  oc.lr = 0.01f;
  run("adam", &oc, &train, &test);

  ds_optim_defaults(&oc, DS_OPT_ADAMW);
  oc.lr = 0.01f;
  oc.clip_norm = 0.5f;
  run("adamw + clip_norm", &oc, &train, &test);

  free_set(&train);
  free_set(&test);
  return check_finish("test_accum");
}
