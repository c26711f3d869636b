/* Learning-rate schedules and the per-step scalars: ds_schedule_lr and
 * ds_optim_scalars_at at chosen steps against closed forms written here.
 *
 * Conventions under test (descent/optim.h): t is the number of updates
 * already applied (0 for the first update); scalars.t is 1-based; warmup
 * multiplies the schedule's first value by (t+1)/W for t < W and the schedule
 * then counts from the end of warmup (t - W); Adagrad's lr_decay divides by
 * 1 + (t_1based - 1)*lr_decay; Adam's bias corrections are 1 - beta^t_1based.
 *
 * Tolerances: ds_schedule_lr returns a double computed from float
 * hyperparameters, so against expected values computed here in double from
 * the same floats it agrees to rounding (1e-12 relative). Where the expected
 * value is a literal (lr0, gamma exactly representable) the same holds.
 * Scalars are floats: one rounding, 1e-7 relative (float eps 1.2e-7 / 2). */
#include <math.h>
#include <stdio.h>

#include "check.h"
#include "descent/optim.h"

#define DTOL 1e-12
#define FTOL 1e-7
#define PI 3.141592653589793

static ds_optim_config base(ds_optimizer kind, float lr) {
  ds_optim_config c;
  ds_optim_defaults(&c, kind);
  c.lr = lr;
  return c;
}

static void test_constant(void) {
  ds_optim_config c = base(DS_OPT_SGD, 0.25f);
  const long ts[] = {0, 1, 7, 1000, 123456789};
  for (int i = 0; i < 5; i++)
    CHECK(ds_schedule_lr(&c, ts[i]) == 0.25, "constant: lr(%ld) = %g, want 0.25", ts[i], ds_schedule_lr(&c, ts[i]));
}

static void test_step(void) {
  ds_optim_config c = base(DS_OPT_SGD, 0.5f);
  c.schedule = DS_SCHED_STEP;
  c.step_size = 3;
  c.gamma = 0.5f;
  /* lr0 * gamma^floor(t/3): t 0..2 -> 0.5, 3..5 -> 0.25, 6..8 -> 0.125, 9 -> 0.0625 (all exact) */
  const long ts[] = {0, 2, 3, 5, 6, 8, 9, 30};
  const double want[] = {0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.0625, 0.5 / 1024.0};
  for (int i = 0; i < 8; i++)
    CHECK_CLOSE(ds_schedule_lr(&c, ts[i]), want[i], 0.0, DTOL, "step: lr(%ld)", ts[i]);
  /* a gamma that is not a power of two */
  c.gamma = 0.1f;
  c.step_size = 10;
  CHECK_CLOSE(ds_schedule_lr(&c, 25), 0.5 * (double)0.1f * (double)0.1f, 0.0, DTOL, "step gamma 0.1: lr(25)");
  CHECK_CLOSE(ds_schedule_lr(&c, 9), 0.5, 0.0, DTOL, "step gamma 0.1: lr(9)");
}

static void test_exponential(void) {
  ds_optim_config c = base(DS_OPT_SGD, 0.1f);
  c.schedule = DS_SCHED_EXPONENTIAL;
  c.decay = 0.5f;
  CHECK_CLOSE(ds_schedule_lr(&c, 0), (double)0.1f, 0.0, DTOL, "exponential: lr(0) = lr0");
  CHECK_CLOSE(ds_schedule_lr(&c, 1), (double)0.1f * exp(-0.5), 0.0, DTOL, "exponential: lr(1)");
  CHECK_CLOSE(ds_schedule_lr(&c, 10), (double)0.1f * exp(-5.0), 0.0, DTOL, "exponential: lr(10)");
  c.decay = 0.01f;
  CHECK_CLOSE(ds_schedule_lr(&c, 100), (double)0.1f * exp(-100.0 * (double)0.01f), 0.0, DTOL, "exponential: lr(100)");
}

static void test_inverse(void) {
  ds_optim_config c = base(DS_OPT_SGD, 1.0f);
  c.schedule = DS_SCHED_INVERSE;
  c.decay = 0.5f;
  /* lr0/(1 + k t): 1, 1/1.5, 1/2, 1/6 */
  CHECK(ds_schedule_lr(&c, 0) == 1.0, "inverse: lr(0) = %g", ds_schedule_lr(&c, 0));
  CHECK_CLOSE(ds_schedule_lr(&c, 1), 1.0 / 1.5, 0.0, DTOL, "inverse: lr(1)");
  CHECK_CLOSE(ds_schedule_lr(&c, 2), 0.5, 0.0, DTOL, "inverse: lr(2)");
  CHECK_CLOSE(ds_schedule_lr(&c, 10), 1.0 / 6.0, 0.0, DTOL, "inverse: lr(10)");
}

static void test_cosine(void) {
  ds_optim_config c = base(DS_OPT_SGD, 1.0f);
  c.schedule = DS_SCHED_COSINE;
  c.t_max = 100;
  c.lr_min = 0.0f;
  CHECK_CLOSE(ds_schedule_lr(&c, 0), 1.0, 0.0, DTOL, "cosine: lr(0) = lr0");
  CHECK_CLOSE(ds_schedule_lr(&c, 50), 0.5, 1e-15, DTOL, "cosine: lr(T/2) = (lr0+lr_min)/2");
  CHECK_CLOSE(ds_schedule_lr(&c, 25), (1.0 + sqrt(0.5)) / 2.0, 0.0, DTOL, "cosine: lr(T/4)");
  CHECK_CLOSE(ds_schedule_lr(&c, 100), 0.0, 1e-15, 0.0, "cosine: lr(T) = lr_min");
  c.lr_min = 0.25f;
  c.lr = 0.75f;
  CHECK_CLOSE(ds_schedule_lr(&c, 50), 0.5, 0.0, DTOL, "cosine lr_min: lr(T/2)");
  CHECK_CLOSE(ds_schedule_lr(&c, 75), 0.25 + 0.5 * (1.0 - sqrt(0.5)) / 2.0, 0.0, DTOL, "cosine lr_min: lr(3T/4)");
  CHECK_CLOSE(ds_schedule_lr(&c, 100), 0.25, 0.0, DTOL, "cosine lr_min: lr(T)");
  /* beyond t_max it stays at lr_min (no restart, no rise) */
  CHECK_CLOSE(ds_schedule_lr(&c, 101), 0.25, 0.0, DTOL, "cosine: lr(T+1) = lr_min");
  CHECK_CLOSE(ds_schedule_lr(&c, 150), 0.25, 0.0, DTOL, "cosine: lr(1.5 T) = lr_min");
  CHECK_CLOSE(ds_schedule_lr(&c, 100000), 0.25, 0.0, DTOL, "cosine: lr(1000 T) = lr_min");
  /* monotone non-increasing over [0, T] */
  int mono = 1;
  for (long t = 1; t <= 100; t++) mono &= ds_schedule_lr(&c, t) <= ds_schedule_lr(&c, t - 1);
  CHECK(mono, "cosine: not monotone over [0, T]");
}

static void test_warmup(void) {
  /* warmup W = 4 in front of a constant schedule */
  ds_optim_config c = base(DS_OPT_SGD, 0.8f);
  c.warmup = 4;
  const double lr0 = (double)0.8f;
  CHECK_CLOSE(ds_schedule_lr(&c, 0), lr0 * 0.25, 0.0, DTOL, "warmup: lr(0) = lr0/W");
  CHECK_CLOSE(ds_schedule_lr(&c, 1), lr0 * 0.5, 0.0, DTOL, "warmup: lr(1) = 2 lr0/W");
  CHECK_CLOSE(ds_schedule_lr(&c, 3), lr0, 0.0, DTOL, "warmup: lr(W-1) = lr0");
  CHECK_CLOSE(ds_schedule_lr(&c, 4), lr0, 0.0, DTOL, "warmup: lr(W) = lr0");
  CHECK_CLOSE(ds_schedule_lr(&c, 5), lr0, 0.0, DTOL, "warmup: lr(W+1) = lr0");

  /* before a step schedule: after warmup it counts from the end of warmup */
  c.schedule = DS_SCHED_STEP;
  c.step_size = 2;
  c.gamma = 0.5f;
  CHECK_CLOSE(ds_schedule_lr(&c, 0), lr0 / 4.0, 0.0, DTOL, "warmup+step: lr(0)");
  CHECK_CLOSE(ds_schedule_lr(&c, 3), lr0, 0.0, DTOL, "warmup+step: lr(W-1)");
  CHECK_CLOSE(ds_schedule_lr(&c, 4), lr0, 0.0, DTOL, "warmup+step: lr(W) = step(0)");
  CHECK_CLOSE(ds_schedule_lr(&c, 5), lr0, 0.0, DTOL, "warmup+step: lr(W+1) = step(1)");
  CHECK_CLOSE(ds_schedule_lr(&c, 6), lr0 / 2.0, 0.0, DTOL, "warmup+step: lr(W+2) = step(2)");
  CHECK_CLOSE(ds_schedule_lr(&c, 9), lr0 / 4.0, 0.0, DTOL, "warmup+step: lr(W+5) = step(5)");

  /* before cosine: reaches lr_min at t = W + T */
  c.schedule = DS_SCHED_COSINE;
  c.t_max = 10;
  c.lr_min = 0.0f;
  CHECK_CLOSE(ds_schedule_lr(&c, 2), lr0 * 0.75, 0.0, DTOL, "warmup+cosine: lr(2)");
  CHECK_CLOSE(ds_schedule_lr(&c, 4), lr0, 0.0, DTOL, "warmup+cosine: lr(W) = cosine(0)");
  CHECK_CLOSE(ds_schedule_lr(&c, 5), lr0 * (1.0 + cos(PI / 10.0)) / 2.0, 0.0, DTOL, "warmup+cosine: lr(W+1)");
  CHECK_CLOSE(ds_schedule_lr(&c, 9), lr0 * 0.5, 1e-15, DTOL, "warmup+cosine: lr(W+T/2)");
  CHECK_CLOSE(ds_schedule_lr(&c, 14), 0.0, 1e-15, 0.0, "warmup+cosine: lr(W+T) = lr_min");
  CHECK_CLOSE(ds_schedule_lr(&c, 20), 0.0, 1e-15, 0.0, "warmup+cosine: lr beyond W+T = lr_min");

  /* before exponential: the warmup ramps toward the schedule's first value */
  c.schedule = DS_SCHED_EXPONENTIAL;
  c.decay = 0.1f;
  CHECK_CLOSE(ds_schedule_lr(&c, 3), lr0, 0.0, DTOL, "warmup+exponential: lr(W-1)");
  CHECK_CLOSE(ds_schedule_lr(&c, 7), lr0 * exp(-3.0 * (double)0.1f), 0.0, DTOL, "warmup+exponential: lr(W+3)");

  /* W = 1: only the first update is "warm", at the full rate */
  c.schedule = DS_SCHED_CONSTANT;
  c.warmup = 1;
  CHECK_CLOSE(ds_schedule_lr(&c, 0), lr0, 0.0, DTOL, "warmup 1: lr(0) = lr0");
}

static void test_scalars(void) {
  /* scalars.t is 1-based; lr is the schedule at the 0-based t, as a float */
  ds_optim_config c = base(DS_OPT_SGD, 0.3f);
  c.schedule = DS_SCHED_STEP;
  c.step_size = 5;
  c.gamma = 0.5f;
  ds_optim_scalars s = ds_optim_scalars_at(&c, 0, 0, 0);
  CHECK(s.t == 1, "scalars_at(0).t = %llu, want 1", (unsigned long long)s.t);
  CHECK(s.lr == 0.3f, "scalars_at(0).lr = %.9g, want 0.3f", (double)s.lr);
  s = ds_optim_scalars_at(&c, 5, 0, 5);
  CHECK(s.t == 6, "scalars_at(5).t = %llu, want 6", (unsigned long long)s.t);
  CHECK_CLOSE(s.lr, (double)0.3f * 0.5, 0.0, FTOL, "scalars_at(5).lr");

  /* schedule_per_epoch: the schedule follows the epoch, not the update */
  c.schedule_per_epoch = 1;
  c.step_size = 1;
  s = ds_optim_scalars_at(&c, 1000, 0, 1000);
  CHECK(s.lr == 0.3f, "per-epoch: lr at update 1000 of epoch 0 = %g, want 0.3", (double)s.lr);
  CHECK(s.t == 1001, "per-epoch: t still counts updates (%llu)", (unsigned long long)s.t);
  s = ds_optim_scalars_at(&c, 0, 2, 0);
  CHECK_CLOSE(s.lr, (double)0.3f * 0.25, 0.0, FTOL, "per-epoch: lr in epoch 2");

  /* Adagrad: lr / (1 + (t_1based - 1) * lr_decay), folded into the scalar lr */
  ds_optim_config a = base(DS_OPT_ADAGRAD, 0.1f);
  a.lr_decay = 0.5f;
  s = ds_optim_scalars_at(&a, 0, 0, 0);
  CHECK_CLOSE(s.lr, (double)0.1f, 0.0, FTOL, "adagrad lr_decay: first update undecayed");
  s = ds_optim_scalars_at(&a, 1, 0, 1);
  CHECK_CLOSE(s.lr, (double)0.1f / 1.5, 0.0, FTOL, "adagrad lr_decay: second update");
  s = ds_optim_scalars_at(&a, 4, 0, 4);
  CHECK_CLOSE(s.lr, (double)0.1f / 3.0, 0.0, FTOL, "adagrad lr_decay: fifth update");
  /* with a schedule the two multiply; lr_decay counts updates even per epoch */
  a.schedule = DS_SCHED_STEP;
  a.step_size = 2;
  a.gamma = 0.5f;
  s = ds_optim_scalars_at(&a, 4, 0, 4);
  CHECK_CLOSE(s.lr, (double)0.1f * 0.25 / 3.0, 0.0, FTOL, "adagrad lr_decay + step schedule");
  a.schedule_per_epoch = 1;
  s = ds_optim_scalars_at(&a, 4, 1, 4);
  CHECK_CLOSE(s.lr, (double)0.1f / 3.0, 0.0, FTOL, "adagrad lr_decay + per-epoch step (epoch 1)");
  /* lr_decay is Adagrad's alone */
  ds_optim_config sg = base(DS_OPT_SGD, 0.1f);
  sg.lr_decay = 0.5f;
  CHECK(ds_optim_scalars_at(&sg, 4, 0, 4).lr == 0.1f, "lr_decay changed sgd's lr");

  /* Adam: bias corrections 1 - beta^t with t 1-based */
  ds_optim_config m = base(DS_OPT_ADAM, 1e-3f);
  const long ts[] = {0, 1, 9, 999, 99999};
  for (int i = 0; i < 5; i++) {
    s = ds_optim_scalars_at(&m, ts[i], 0, ts[i]);
    double t1 = (double)(ts[i] + 1);
    CHECK_CLOSE(s.bias_correction1, 1.0 - pow((double)0.9f, t1), 0.0, FTOL, "adam bc1 at t=%ld", ts[i]);
    CHECK_CLOSE(s.bias_correction2, 1.0 - pow((double)0.999f, t1), 0.0, FTOL, "adam bc2 at t=%ld", ts[i]);
    /* the per-update constants of the one-division update (torch's fused
       Adam: step_size = lr/bc1, bias_correction2_sqrt = sqrt(bc2)) */
    double bc1 = 1.0 - pow((double)0.9f, t1), bc2 = 1.0 - pow((double)0.999f, t1);
    CHECK_CLOSE(s.adam_step_size, (double)1e-3f / bc1, 0.0, FTOL, "adam step size lr/bc1 at t=%ld", ts[i]);
    CHECK_CLOSE(s.adam_inv_sqrt_bc2, 1.0 / sqrt(bc2), 0.0, FTOL, "adam 1/sqrt(bc2) at t=%ld", ts[i]);
    CHECK_CLOSE(s.adam_inv_bc2, 1.0 / bc2, 0.0, FTOL, "adam 1/bc2 at t=%ld", ts[i]);
  }
  s = ds_optim_scalars_at(&m, 0, 0, 0);
  CHECK_CLOSE(s.bias_correction1, 0.1, 0.0, 1e-6, "adam bc1 of the first update = 1 - 0.9");
  CHECK_CLOSE(s.bias_correction2, 0.001, 0.0, 1e-4, "adam bc2 of the first update = 1 - 0.999");
  m.beta1 = 0.5f;
  m.beta2 = 0.75f;
  s = ds_optim_scalars_at(&m, 2, 0, 2);
  CHECK(s.bias_correction1 == 0.875f, "adam bc1 beta1 0.5, t 3 = %.9g, want 0.875", (double)s.bias_correction1);
  CHECK_CLOSE(s.bias_correction2, 1.0 - 0.421875, 0.0, FTOL, "adam bc2 beta2 0.75, t 3");
  /* bias corrections do not follow the per-epoch schedule */
  m.schedule_per_epoch = 1;
  s = ds_optim_scalars_at(&m, 2, 7, 2);
  CHECK(s.bias_correction1 == 0.875f, "per-epoch changed the bias correction (%g)", (double)s.bias_correction1);
  /* beta = 0: no correction needed, factor 1 */
  m.beta1 = 0.0f;
  CHECK(ds_optim_scalars_at(&m, 0, 0, 0).bias_correction1 == 1.0f, "beta1 0: bc1 != 1");
}

int main(void) {
  (void)check_uniform; /* check.h's static helper is unused here (-Werror=unused-function) */
  test_constant();
  test_step();
  test_exponential();
  test_inverse();
  test_cosine();
  test_warmup();
  test_scalars();
  return check_finish("test_schedule");
}
