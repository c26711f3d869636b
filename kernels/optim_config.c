/* Optimizer configuration: names, torch.optim defaults, validation, and the
 * per-step scalars (scheduled lr, bias corrections) computed once per update. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "descent/optim.h"

static const char *const optimizer_names[] = {"sgd", "adagrad", "rmsprop", "adam", "adamw"};

const char *ds_optim_name(ds_optimizer kind) { return optimizer_names[kind]; }

/* torch.optim: Adagrad(lr=0.01, eps=1e-10), RMSprop(lr=0.01, eps=1e-8),
 * Adam(lr=0.001, eps=1e-8), AdamW(lr=0.001, eps=1e-8, weight_decay=0.01) */
const ds_optim_default_row ds_optim_default_rows[5] = {
  [DS_OPT_SGD] = {"sgd", 0.1f, 1e-8f, 0.0f},
  [DS_OPT_ADAGRAD] = {"adagrad", 0.01f, 1e-10f, 0.0f},
  [DS_OPT_RMSPROP] = {"rmsprop", 0.01f, 1e-8f, 0.0f},
  [DS_OPT_ADAM] = {"adam", 1e-3f, 1e-8f, 0.0f},
  [DS_OPT_ADAMW] = {"adamw", 1e-3f, 1e-8f, 0.01f},
};

void ds_optim_defaults(ds_optim_config *c, ds_optimizer kind) {
  memset(c, 0, sizeof *c);
  c->kind = kind;
  c->lr = ds_optim_default_rows[kind].lr;
  c->alpha = 0.99f;
  c->beta1 = 0.9f;
  c->beta2 = 0.999f;
  c->eps = ds_optim_default_rows[kind].eps;
  c->weight_decay = ds_optim_default_rows[kind].weight_decay;
  c->gamma = 0.1f;
  c->step_size = 1;
  c->t_max = 0;
}

int ds_optim_parse_name(const char *name, ds_optim_config *c) {
  if (strcmp(name, "momentum") == 0 || strcmp(name, "nesterov") == 0) {
    c->kind = DS_OPT_SGD;
    c->momentum = 0.9f;
    c->nesterov = strcmp(name, "nesterov") == 0;
    return 0;
  }
  for (int i = 0; i < 5; i++)
    if (strcmp(name, optimizer_names[i]) == 0) { c->kind = (ds_optimizer)i; return 0; }
  return -1;
}

ds_optim_roles ds_optim_state_roles(const ds_optim_config *c) {
  ds_optim_roles r = {0, 0, 0, 0};
  switch (c->kind) {
    case DS_OPT_SGD: r.m = c->momentum != 0.0f; break;
    case DS_OPT_ADAGRAD: r.v = 1; break;
    case DS_OPT_RMSPROP: r.v = 1; r.m = c->momentum > 0.0f; r.gavg = c->centered; break;
    default: r.m = r.v = 1; r.vmax = c->amsgrad; break;
  }
  return r;
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

int ds_optim_validate(const ds_optim_config *c, char *err, size_t errlen) {
  if (!(c->lr >= 0.0f) || !isfinite(c->lr)) FAIL("--lr: must be >= 0, got %g", (double)c->lr);
  if (!(c->momentum >= 0.0f)) FAIL("--momentum: must be >= 0, got %g", (double)c->momentum);
  if (c->nesterov && c->kind != DS_OPT_SGD) FAIL("--nesterov: applies to sgd only");
  if (c->nesterov && c->momentum <= 0.0f) FAIL("--nesterov: needs --momentum > 0");
  if (c->nesterov && c->dampening != 0.0f && c->momentum_form == DS_MOMENTUM_PYTORCH)
    FAIL("--nesterov: needs --dampening 0 (as torch.optim.SGD)");
  /* lookahead keeps its own velocity v = mu*v + lr*g (optim_math.h) and the
   * trainer takes the look-ahead gradient only for the pytorch form: with ema
   * the run would silently be plain heavy-ball momentum. (keras + lookahead is
   * keras' own Nesterov form, the same method in shifted variables.) */
  if (c->nesterov && c->nesterov_form == DS_NESTEROV_LOOKAHEAD && c->momentum_form == DS_MOMENTUM_EMA)
    FAIL("--nesterov-form lookahead: keeps its own velocity v = mu*v + lr*g; use --momentum-form pytorch, not ema");
  if (c->momentum > 0.0f && c->kind != DS_OPT_SGD && c->kind != DS_OPT_RMSPROP)
    FAIL("--momentum: applies to sgd and rmsprop only (adam uses --beta1)");
  if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f)) FAIL("--beta1: must be in [0,1), got %g", (double)c->beta1);
  if (!(c->beta2 >= 0.0f && c->beta2 < 1.0f)) FAIL("--beta2: must be in [0,1), got %g", (double)c->beta2);
  if (!(c->eps > 0.0f)) FAIL("--eps: must be > 0, got %g", (double)c->eps);
  if (c->weight_decay < 0.0f) FAIL("--weight-decay: must be >= 0");
  if (c->l1 < 0.0f) FAIL("--l1: must be >= 0");
  if (c->schedule == DS_SCHED_COSINE && c->t_max <= 0) FAIL("--schedule cosine: needs --t-max > 0");
  return 0;
}

static double schedule_base(const ds_optim_config *c, long t) {
  double lr0 = c->lr;
  switch (c->schedule) {
    case DS_SCHED_STEP: return lr0 * pow(c->gamma, (double)(t / (c->step_size > 0 ? c->step_size : 1)));
    case DS_SCHED_EXPONENTIAL: return lr0 * exp(-(double)c->decay * (double)t);
    case DS_SCHED_INVERSE: return lr0 / (1.0 + (double)c->decay * (double)t);
    case DS_SCHED_COSINE: {
      double T = (double)c->t_max, tt = (double)t < T ? (double)t : T;
      return c->lr_min + (lr0 - c->lr_min) * (1.0 + cos(3.141592653589793 * tt / T)) / 2.0;
    }
    default: return lr0;
  }
}

double ds_schedule_lr(const ds_optim_config *c, long t) {
  if (c->warmup > 0 && t < c->warmup) return schedule_base(c, 0) * (double)(t + 1) / (double)c->warmup;
  return schedule_base(c, t - (c->warmup > 0 ? c->warmup : 0));
}

ds_optim_scalars ds_optim_scalars_at(const ds_optim_config *c, long t, long epoch, long applied) {
  ds_optim_scalars s;
  s.t = (uint64_t)applied + 1;
  double lr = ds_schedule_lr(c, c->schedule_per_epoch ? epoch : t);
  if (c->kind == DS_OPT_ADAGRAD) lr /= 1.0 + (double)applied * c->lr_decay; /* (t_1based - 1) */
  s.lr = (float)lr;
  s.bias_correction1 = (float)(1.0 - pow(c->beta1, (double)s.t));
  s.bias_correction2 = (float)(1.0 - pow(c->beta2, (double)s.t));
  /* from the float values above, so the update equals, to rounding, the one
     written with them: lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps) */
  s.adam_step_size = (float)((double)s.lr / (double)s.bias_correction1);
  s.adam_inv_sqrt_bc2 = (float)(1.0 / sqrt((double)s.bias_correction2));
  s.adam_inv_bc2 = (float)(1.0 / (double)s.bias_correction2);
  return s;
}
