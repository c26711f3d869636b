/* Optimizer updates: ds_backend_cpu()->optim_step against an independent
 * double-precision implementation of the documented algorithms, for every
 * optimizer, form and option, over 40 steps of random gradients on a flat
 * buffer of odd size (37 parameters, the first 23 of them "weight matrices").
 *
 * The reference follows torch.optim's pseudo-code (SGD, Adagrad, RMSprop,
 * Adam, AdamW) and the course's named forms as descent/optim.h and
 * host/cli/cli_optim.c describe them; clipping follows torch.nn.utils.clip_grad_norm_.
 * It shares no code with kernels/optim_math.h or kernels/optim_config.c: its
 * learning rate, Adagrad's lr_decay and Adam's bias corrections are computed
 * here, so the per-step scalars of ds_optim_scalars_at are checked as well.
 *
 * A few deliberately wrong variants of the reference ("mutants") must NOT
 * match the kernel: they show that the tolerance is tight enough to tell the
 * documented formula from its usual look-alikes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "descent/backend.h"
#include "descent/optim.h"

#define N 37       /* odd: no vector-width assumptions hold */
#define N_DECAY 23 /* params[0, 23) are decayed unless decay_all */
#define STEPS 40

/* ---- the schedule every case runs under (varying lr) --------------------
 * Linear warmup over 3 updates, then step decay (x0.6 every 9 updates): lr
 * changes 6 times in 40 steps, so forms that put lr inside the state (keras,
 * lookahead) differ measurably from those that apply it outside. */
static void use_test_schedule(ds_optim_config *c) {
  c->schedule = DS_SCHED_STEP;
  c->step_size = 9;
  c->gamma = 0.6f;
  c->warmup = 3;
}

/* The same schedule, written out: t = updates already applied (0-based). */
static double ref_lr(const ds_optim_config *c, long t) {
  double lr0 = c->lr;
  if (t < c->warmup) return lr0 * (double)(t + 1) / (double)c->warmup;
  long u = t - c->warmup;
  return lr0 * pow(c->gamma, (double)(u / c->step_size));
}

/* ---- the reference -------------------------------------------------------- */
typedef struct { double w[N], m[N], v[N], vmax[N], gavg[N]; } ref_state;

/* Wrong variants of the reference, each a plausible mistake. */
typedef enum {
  MUT_NONE,
  MUT_DAMPEN_FIRST,     /* dampening applied on the first step too (torch: b1 = g) */
  MUT_AMSGRAD_VHAT,     /* max over the bias-corrected v-hat (older torch docs), not over v */
  MUT_CLIP_NORM_FIRST,  /* global-norm clip before the value clip */
  MUT_DECAY_ALL,        /* decay every element, ignoring n_decay */
  MUT_ADAMW_AS_L2,      /* AdamW's decay added to the gradient (that is Adam + L2) */
  MUT_KERAS_AS_PYTORCH, /* keras velocity with lr outside: equal only for constant lr */
  MUT_EMA_TORCH_NESTEROV, /* ema nesterov as g + mu*b instead of (1-mu)*g + mu*b */
  MUT_ADAGRAD_DECAY_T   /* lr/(1 + t*lr_decay) with 1-based t (torch: t-1) */
} mutant;

static double sgn(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }

/* Global L2 norm clip, as torch.nn.utils.clip_grad_norm_: coef = c/(norm+1e-6), capped at 1.
 * Returns 1 when it scaled the gradient. */
static int ref_clip_norm(double *g, double c) {
  double ss = 0.0;
  for (int i = 0; i < N; i++) ss += g[i] * g[i];
  double coef = c / (sqrt(ss) + 1e-6);
  if (coef >= 1.0) return 0;
  for (int i = 0; i < N; i++) g[i] *= coef;
  return 1;
}

static void ref_clip_value(double *g, double u) {
  for (int i = 0; i < N; i++) g[i] = g[i] < -u ? -u : (g[i] > u ? u : g[i]);
}

/* One update; t1 is the 1-based number of this update, lr the scheduled lr.
 * Returns whether the norm clip was active. */
static int ref_step(const ds_optim_config *c, ref_state *s, const float *grad, long t1, double lr,
                    mutant mut) {
  double g[N];
  int clipped = 0;
  for (int i = 0; i < N; i++) g[i] = grad[i];
  /* 1, 2: clipping (value first, then the global norm of what is left) */
  if (mut == MUT_CLIP_NORM_FIRST && c->clip_norm > 0) clipped = ref_clip_norm(g, c->clip_norm);
  if (c->clip_value > 0) ref_clip_value(g, c->clip_value);
  if (mut != MUT_CLIP_NORM_FIRST && c->clip_norm > 0) clipped = ref_clip_norm(g, c->clip_norm);

  int n_decay = c->decay_all || mut == MUT_DECAY_ALL ? N : N_DECAY;
  double mu = c->momentum, eps = c->eps;
  double b1 = c->beta1, b2 = c->beta2;
  double bc1 = 1.0 - pow(b1, (double)t1), bc2 = 1.0 - pow(b2, (double)t1);
  for (int i = 0; i < N; i++) {
    double w = s->w[i], gi = g[i];
    int decay = i < n_decay;
    /* 3: L2 in the gradient (decoupled for AdamW), L1 as lambda*sign(w) */
    if (decay && (c->kind != DS_OPT_ADAMW || mut == MUT_ADAMW_AS_L2)) gi += c->weight_decay * w;
    if (decay) gi += c->l1 * sgn(w);
    switch (c->kind) {
      case DS_OPT_SGD:
        if (mu == 0.0) {
          w -= lr * gi;
        } else if (c->momentum_form == DS_MOMENTUM_KERAS && mut != MUT_KERAS_AS_PYTORCH) {
          /* Keras SGD: v = mu*v - lr*g; w += v, or w += mu*v - lr*g with nesterov */
          s->m[i] = mu * s->m[i] - lr * gi;
          w += c->nesterov ? mu * s->m[i] - lr * gi : s->m[i];
        } else if (c->momentum_form == DS_MOMENTUM_KERAS) { /* the mutant: b = mu*b + g; w -= lr*b */
          s->m[i] = mu * s->m[i] + gi;
          w -= lr * (c->nesterov ? gi + mu * s->m[i] : s->m[i]);
        } else if (c->nesterov && c->nesterov_form == DS_NESTEROV_LOOKAHEAD) {
          /* Sutskever et al.: v = mu*v + lr*g(w - mu*v); w -= v (g is given here) */
          s->m[i] = mu * s->m[i] + lr * gi;
          w -= s->m[i];
        } else if (c->momentum_form == DS_MOMENTUM_EMA) {
          /* exponential moving average b = mu*b + (1-mu)*g from b0 = 0; Nesterov
           * steps along the average one gradient further: mu*b + (1-mu)*g */
          s->m[i] = mu * s->m[i] + (1.0 - mu) * gi;
          double d = s->m[i];
          if (c->nesterov)
            d = mut == MUT_EMA_TORCH_NESTEROV ? gi + mu * s->m[i] : (1.0 - mu) * gi + mu * s->m[i];
          w -= lr * d;
        } else {
          /* torch.optim.SGD: b = g at t = 1, else mu*b + (1-dampening)*g;
           * nesterov: g + mu*b, else b; w -= lr * that */
          if (t1 > 1 || mut == MUT_DAMPEN_FIRST)
            s->m[i] = mu * (t1 > 1 ? s->m[i] : 0.0) + (1.0 - c->dampening) * gi;
          else
            s->m[i] = gi;
          w -= lr * (c->nesterov ? gi + mu * s->m[i] : s->m[i]);
        }
        break;
      case DS_OPT_ADAGRAD: {
        /* torch.optim.Adagrad: clr = lr/(1 + (t-1)*lr_decay); sum += g^2;
         * w -= clr * g/(sqrt(sum) + eps)   (eps_in_sqrt: sqrt(sum + eps)) */
        double clr = lr / (1.0 + (double)(mut == MUT_ADAGRAD_DECAY_T ? t1 : t1 - 1) * c->lr_decay);
        s->v[i] += gi * gi;
        double den = c->eps_in_sqrt ? sqrt(s->v[i] + eps) : sqrt(s->v[i]) + eps;
        w -= clr * gi / den;
        break;
      }
      case DS_OPT_RMSPROP: {
        /* torch.optim.RMSprop: v = alpha*v + (1-alpha)*g^2; centered: gavg likewise,
         * v~ = v - gavg^2; momentum: b = mu*b + g/(sqrt(v~)+eps), w -= lr*b;
         * else w -= lr * g/(sqrt(v~)+eps) */
        double a = c->alpha;
        double vt;
        if (c->centered) { /* v here is torch's square_avg - grad_avg^2, as descent keeps it */
          double sq = s->v[i] + s->gavg[i] * s->gavg[i]; /* torch's square_avg */
          sq = a * sq + (1.0 - a) * gi * gi;
          s->gavg[i] = a * s->gavg[i] + (1.0 - a) * gi;
          vt = sq - s->gavg[i] * s->gavg[i];
          s->v[i] = vt;
        } else {
          s->v[i] = a * s->v[i] + (1.0 - a) * gi * gi;
          vt = s->v[i];
        }
        double den = c->eps_in_sqrt ? sqrt(vt + eps) : sqrt(vt) + eps;
        if (mu > 0.0) {
          s->m[i] = mu * s->m[i] + gi / den;
          w -= lr * s->m[i];
        } else {
          w -= lr * gi / den;
        }
        break;
      }
      default: {
        /* torch.optim.AdamW: w *= 1 - lr*weight_decay first (decayed elements). */
        if (c->kind == DS_OPT_ADAMW && decay && mut != MUT_ADAMW_AS_L2) w *= 1.0 - lr * c->weight_decay;
        /* torch.optim.Adam: m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
         * w -= lr/bc1 * m/(sqrt(v/bc2) + eps). amsgrad: torch's code keeps the
         * running max of the raw v and divides it by the current bc2 (the 1.x
         * docs wrote the max over bias-corrected v-hat: MUT_AMSGRAD_VHAT). */
        s->m[i] = b1 * s->m[i] + (1.0 - b1) * gi;
        s->v[i] = b2 * s->v[i] + (1.0 - b2) * gi * gi;
        double vhat = s->v[i] / bc2;
        if (c->amsgrad && mut == MUT_AMSGRAD_VHAT) { /* vmax holds max of v-hat */
          s->vmax[i] = fmax(s->vmax[i], vhat);
          vhat = s->vmax[i];
        } else if (c->amsgrad) {
          s->vmax[i] = fmax(s->vmax[i], s->v[i]);
          vhat = s->vmax[i] / bc2;
        }
        double den = c->eps_in_sqrt ? sqrt(vhat + eps) : sqrt(vhat) + eps;
        w -= lr * (s->m[i] / bc1) / den;
        break;
      }
    }
    s->w[i] = w;
  }
  return clipped;
}

/* ---- running a case -------------------------------------------------------- */

/* Tolerance. float32 rounds each operation to ~6e-8 relative; one update is
 * ~10 operations per element and the state feeds back, so after 40 steps the
 * worst case is ~40*10*6e-8 = 2.4e-5 relative and the typical error (random
 * rounding, sqrt(N) growth) is ~1e-6 (measured: the worst case uses 0.13 of
 * the tolerance below). 3e-5 relative plus 3e-6 absolute (for values that cancel to ~0;
 * parameters and states are O(0.01..1)) covers the worst case, while every
 * mistake the mutants model misses by more than 1000 tolerances (printed). */
#define RTOL 3e-5
#define ATOL 3e-6

typedef struct { int m, v, vmax, gavg; } roles_want;

static float grad_seq(int step, int i, double u) {
  /* three magnitudes so the norm clip is both active and idle; a few exact zeros */
  if ((i * 7 + step) % 13 == 0) return 0.0f;
  double scale = 0.5 + (double)(step % 3);
  return (float)(u * scale);
}

static double max_err(const float *got, const double *want, int n) {
  double e = 0.0;
  for (int i = 0; i < n; i++) {
    double d = fabs((double)got[i] - want[i]) / (ATOL + RTOL * fabs(want[i]));
    if (!(d <= e)) e = isfinite(d) ? d : INFINITY;
  }
  return e;
}

typedef struct {
  double err;    /* worst error over parameters and state, in units of the tolerance */
  int clipped, unclipped;
} case_result;

/* Runs STEPS updates of the kernel and of the reference side by side. */
static case_result run_case(const char *name, const ds_optim_config *cfg, const roles_want *rw,
                            mutant mut) {
  const ds_backend *be = ds_backend_cpu();
  float param[N], grad[N], m[N], v[N], vmax[N], gavg[N];
  ref_state ref;
  memset(&ref, 0, sizeof ref);
  memset(m, 0, sizeof m);
  memset(v, 0, sizeof v);
  memset(vmax, 0, sizeof vmax);
  memset(gavg, 0, sizeof gavg);
  check_rng_state = 0x243F6A8885A308D3ull; /* same sequence for every case */
  for (int i = 0; i < N; i++) {
    param[i] = i == 5 ? 0.0f : (float)check_uniform(); /* one exact zero: sign(0) = 0 */
    ref.w[i] = param[i];
  }
  if (cfg->kind == DS_OPT_ADAGRAD) /* the trainer fills the accumulator so (host/train/trainer.c) */
    for (int i = 0; i < N; i++) v[i] = cfg->initial_accumulator, ref.v[i] = cfg->initial_accumulator;

  ds_optim_roles roles = ds_optim_state_roles(cfg);
  if (mut == MUT_NONE)
    CHECK(roles.m == rw->m && roles.v == rw->v && roles.vmax == rw->vmax && roles.gavg == rw->gavg,
          "%s: state roles m%d v%d vmax%d gavg%d, want m%d v%d vmax%d gavg%d", name, roles.m, roles.v,
          roles.vmax, roles.gavg, rw->m, rw->v, rw->vmax, rw->gavg);
  /* absent roles get NULL: a kernel that touched them would crash the suite */
  ds_optim_buffers buf = {param, grad, roles.m ? m : NULL, roles.v ? v : NULL,
                          roles.vmax ? vmax : NULL, roles.gavg ? gavg : NULL};
  case_result r = {0.0, 0, 0};
  int worst_step = -1;
  for (int step = 0; step < STEPS; step++) {
    for (int i = 0; i < N; i++) grad[i] = grad_seq(step, i, check_uniform());
    ds_optim_scalars sc = ds_optim_scalars_at(cfg, step, 0, step);
    be->optim_step(&buf, N, N_DECAY, cfg, &sc);
    if (ref_step(cfg, &ref, grad, step + 1, ref_lr(cfg, step), mut)) r.clipped++;
    else r.unclipped++;
    double e = max_err(param, ref.w, N);
    if (roles.m) e = fmax(e, max_err(m, ref.m, N));
    if (roles.v) e = fmax(e, max_err(v, ref.v, N));
    if (roles.vmax) e = fmax(e, max_err(vmax, ref.vmax, N));
    if (roles.gavg) e = fmax(e, max_err(gavg, ref.gavg, N));
    if (!(e <= r.err)) { r.err = e; worst_step = step; }
  }
  if (mut == MUT_NONE) {
    CHECK(r.err <= 1.0, "%s: kernel and reference differ by %.3g tolerances (worst at step %d)",
          name, r.err, worst_step + 1);
    /* the parameters must really have moved, or the comparison proves nothing */
    double moved = 0.0;
    check_rng_state = 0x243F6A8885A308D3ull;
    for (int i = 0; i < N; i++) {
      double w0 = i == 5 ? 0.0 : (double)(float)check_uniform();
      moved = fmax(moved, fabs(ref.w[i] - w0));
    }
    CHECK(moved > 1e-3, "%s: parameters moved only %.3g", name, moved);
  }
  return r;
}

/* ---- the cases --------------------------------------------------------------- */
typedef struct {
  const char *name;
  ds_optimizer kind;
  void (*set)(ds_optim_config *);
  roles_want roles;
} opt_case;

static void c_plain(ds_optim_config *c) { c->lr = 0.05f; }
static void c_momentum(ds_optim_config *c) { c->lr = 0.05f; c->momentum = 0.9f; }
static void c_dampening(ds_optim_config *c) { c_momentum(c); c->dampening = 0.3f; }
static void c_nesterov(ds_optim_config *c) { c_momentum(c); c->nesterov = 1; }
static void c_ema(ds_optim_config *c) { c_momentum(c); c->momentum_form = DS_MOMENTUM_EMA; }
static void c_ema_nesterov(ds_optim_config *c) { c_ema(c); c->nesterov = 1; }
static void c_keras(ds_optim_config *c) { c_momentum(c); c->momentum_form = DS_MOMENTUM_KERAS; }
static void c_keras_nesterov(ds_optim_config *c) { c_keras(c); c->nesterov = 1; }
static void c_lookahead(ds_optim_config *c) { c_nesterov(c); c->nesterov_form = DS_NESTEROV_LOOKAHEAD; }
static void c_sgd_l2(ds_optim_config *c) { c_plain(c); c->weight_decay = 0.2f; }
static void c_sgd_l2_all(ds_optim_config *c) { c_sgd_l2(c); c->decay_all = 1; }
static void c_sgd_l1(ds_optim_config *c) { c_plain(c); c->l1 = 0.05f; }
static void c_momentum_l1_l2_all(ds_optim_config *c) {
  c_momentum(c); c->l1 = 0.02f; c->weight_decay = 0.1f; c->decay_all = 1;
}
static void c_clip_value(ds_optim_config *c) { c_momentum(c); c->clip_value = 0.6f; }
static void c_clip_norm(ds_optim_config *c) { c_momentum(c); c->clip_norm = 3.0f; }
static void c_clip_both(ds_optim_config *c) { c_momentum(c); c->clip_value = 0.6f; c->clip_norm = 2.0f; }
static void c_adagrad(ds_optim_config *c) { c->lr = 0.1f; }
static void c_adagrad_decay(ds_optim_config *c) {
  c->lr = 0.1f; c->lr_decay = 0.05f; c->initial_accumulator = 0.1f;
}
static void c_adagrad_sqrt(ds_optim_config *c) { c->lr = 0.1f; c->eps = 1e-2f; c->eps_in_sqrt = 1; }
static void c_adagrad_l2(ds_optim_config *c) { c->lr = 0.1f; c->weight_decay = 0.1f; c->l1 = 0.01f; }
static void c_rmsprop(ds_optim_config *c) { c->lr = 0.01f; }
static void c_rmsprop_centered(ds_optim_config *c) { c->lr = 0.01f; c->alpha = 0.9f; c->centered = 1; }
static void c_rmsprop_momentum(ds_optim_config *c) { c->lr = 0.01f; c->momentum = 0.5f; }
static void c_rmsprop_all(ds_optim_config *c) {
  c->lr = 0.01f; c->alpha = 0.8f; c->centered = 1; c->momentum = 0.7f; c->eps = 1e-2f;
  c->eps_in_sqrt = 1; c->weight_decay = 0.05f;
}
static void c_adam(ds_optim_config *c) { c->lr = 0.01f; }
static void c_adam_amsgrad(ds_optim_config *c) { c->lr = 0.01f; c->amsgrad = 1; }
static void c_adam_sqrt(ds_optim_config *c) { c->lr = 0.01f; c->eps = 1e-3f; c->eps_in_sqrt = 1; }
static void c_adam_l2(ds_optim_config *c) { c->lr = 0.01f; c->weight_decay = 0.1f; }
static void c_adam_clip(ds_optim_config *c) {
  c->lr = 0.01f; c->beta1 = 0.8f; c->beta2 = 0.95f; c->clip_norm = 3.0f; c->clip_value = 1.0f; c->l1 = 0.01f;
}
static void c_adamw(ds_optim_config *c) { c->lr = 0.01f; c->weight_decay = 0.5f; }
static void c_adamw_all(ds_optim_config *c) { c_adamw(c); c->decay_all = 1; c->amsgrad = 1; }

static const opt_case cases[] = {
  {"sgd", DS_OPT_SGD, c_plain, {0, 0, 0, 0}},
  {"sgd momentum", DS_OPT_SGD, c_momentum, {1, 0, 0, 0}},
  {"sgd momentum dampening 0.3", DS_OPT_SGD, c_dampening, {1, 0, 0, 0}},
  {"sgd nesterov", DS_OPT_SGD, c_nesterov, {1, 0, 0, 0}},
  {"sgd momentum-form ema", DS_OPT_SGD, c_ema, {1, 0, 0, 0}},
  {"sgd momentum-form ema nesterov", DS_OPT_SGD, c_ema_nesterov, {1, 0, 0, 0}},
  {"sgd momentum-form keras", DS_OPT_SGD, c_keras, {1, 0, 0, 0}},
  {"sgd momentum-form keras nesterov", DS_OPT_SGD, c_keras_nesterov, {1, 0, 0, 0}},
  {"sgd nesterov-form lookahead", DS_OPT_SGD, c_lookahead, {1, 0, 0, 0}},
  {"sgd weight_decay", DS_OPT_SGD, c_sgd_l2, {0, 0, 0, 0}},
  {"sgd weight_decay decay_all", DS_OPT_SGD, c_sgd_l2_all, {0, 0, 0, 0}},
  {"sgd l1", DS_OPT_SGD, c_sgd_l1, {0, 0, 0, 0}},
  {"sgd momentum l1+l2 decay_all", DS_OPT_SGD, c_momentum_l1_l2_all, {1, 0, 0, 0}},
  {"sgd momentum clip_value", DS_OPT_SGD, c_clip_value, {1, 0, 0, 0}},
  {"sgd momentum clip_norm", DS_OPT_SGD, c_clip_norm, {1, 0, 0, 0}},
  {"sgd momentum clip_value+clip_norm", DS_OPT_SGD, c_clip_both, {1, 0, 0, 0}},
  {"adagrad", DS_OPT_ADAGRAD, c_adagrad, {0, 1, 0, 0}},
  {"adagrad lr_decay initial_accumulator", DS_OPT_ADAGRAD, c_adagrad_decay, {0, 1, 0, 0}},
  {"adagrad eps_in_sqrt", DS_OPT_ADAGRAD, c_adagrad_sqrt, {0, 1, 0, 0}},
  {"adagrad weight_decay l1", DS_OPT_ADAGRAD, c_adagrad_l2, {0, 1, 0, 0}},
  {"rmsprop", DS_OPT_RMSPROP, c_rmsprop, {0, 1, 0, 0}},
  {"rmsprop alpha centered", DS_OPT_RMSPROP, c_rmsprop_centered, {0, 1, 0, 1}},
  {"rmsprop momentum", DS_OPT_RMSPROP, c_rmsprop_momentum, {1, 1, 0, 0}},
  {"rmsprop centered momentum eps_in_sqrt weight_decay", DS_OPT_RMSPROP, c_rmsprop_all, {1, 1, 0, 1}},
  {"adam", DS_OPT_ADAM, c_adam, {1, 1, 0, 0}},
  {"adam amsgrad", DS_OPT_ADAM, c_adam_amsgrad, {1, 1, 1, 0}},
  {"adam eps_in_sqrt", DS_OPT_ADAM, c_adam_sqrt, {1, 1, 0, 0}},
  {"adam weight_decay (L2)", DS_OPT_ADAM, c_adam_l2, {1, 1, 0, 0}},
  {"adam betas clip_value+clip_norm l1", DS_OPT_ADAM, c_adam_clip, {1, 1, 0, 0}},
  {"adamw", DS_OPT_ADAMW, c_adamw, {1, 1, 0, 0}},
  {"adamw decay_all amsgrad", DS_OPT_ADAMW, c_adamw_all, {1, 1, 1, 0}},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static void make_config(ds_optim_config *c, const opt_case *oc) {
  ds_optim_defaults(c, oc->kind);
  oc->set(c);
  use_test_schedule(c);
}

static const opt_case *find_case(const char *name) {
  for (int i = 0; i < N_CASES; i++)
    if (strcmp(cases[i].name, name) == 0) return &cases[i];
  return NULL;
}

/* ---- the tests ---------------------------------------------------------------- */

static void test_against_reference(void) {
  for (int k = 0; k < N_CASES; k++) {
    ds_optim_config c;
    make_config(&c, &cases[k]);
    char err[256];
    CHECK(ds_optim_validate(&c, err, sizeof err) == 0, "%s: config rejected: %s", cases[k].name, err);
    case_result r = run_case(cases[k].name, &c, &cases[k].roles, MUT_NONE);
    printf("  %-52s max error %.3f tolerances\n", cases[k].name, r.err);
    if (c.clip_norm > 0)
      CHECK(r.clipped > 0 && r.unclipped > 0, "%s: the norm clip should be both active and idle (%d/%d)",
            cases[k].name, r.clipped, r.unclipped);
  }
}

/* Each mutant must miss the kernel by far more than the tolerance. */
static void test_mutants_are_caught(void) {
  static const struct { const char *c; mutant mut; const char *what; } muts[] = {
    {"sgd momentum dampening 0.3", MUT_DAMPEN_FIRST, "dampening on the first step"},
    {"adam amsgrad", MUT_AMSGRAD_VHAT, "amsgrad max over v-hat"},
    {"sgd momentum clip_value+clip_norm", MUT_CLIP_NORM_FIRST, "norm clip before value clip"},
    {"sgd weight_decay", MUT_DECAY_ALL, "decay ignoring n_decay"},
    {"adamw", MUT_ADAMW_AS_L2, "adamw as L2"},
    {"sgd momentum-form keras", MUT_KERAS_AS_PYTORCH, "keras as pytorch (lr varies)"},
    {"sgd momentum-form ema nesterov", MUT_EMA_TORCH_NESTEROV, "ema nesterov as g + mu*b"},
    {"adagrad lr_decay initial_accumulator", MUT_ADAGRAD_DECAY_T, "adagrad decay with t, not t-1"},
  };
  for (size_t k = 0; k < sizeof muts / sizeof muts[0]; k++) {
    const opt_case *oc = find_case(muts[k].c);
    CHECK(oc != NULL, "no case %s", muts[k].c);
    if (!oc) continue;
    ds_optim_config c;
    make_config(&c, oc);
    case_result r = run_case(oc->name, &c, &oc->roles, muts[k].mut);
    printf("  mutant %-40s misses by %.3g tolerances\n", muts[k].what, r.err);
    CHECK(r.err > 30.0, "mutant '%s' of %s is within %.3g tolerances: the test cannot tell them apart",
          muts[k].what, oc->name, r.err);
  }
}

/* lr = 0: every optimizer leaves the parameters bit-identical. */
static void test_lr_zero(void) {
  const ds_backend *be = ds_backend_cpu();
  for (int k = 0; k < N_CASES; k++) {
    ds_optim_config c;
    make_config(&c, &cases[k]);
    c.lr = 0.0f;
    float param[N], before[N], grad[N], m[N] = {0}, v[N] = {0}, vmax[N] = {0}, gavg[N] = {0};
    for (int i = 0; i < N; i++) param[i] = (float)check_uniform();
    if (c.kind == DS_OPT_ADAGRAD) for (int i = 0; i < N; i++) v[i] = c.initial_accumulator;
    memcpy(before, param, sizeof param);
    ds_optim_buffers buf = {param, grad, m, v, vmax, gavg};
    for (int step = 0; step < 5; step++) {
      for (int i = 0; i < N; i++) grad[i] = (float)(3.0 * check_uniform());
      ds_optim_scalars sc = ds_optim_scalars_at(&c, step, 0, step);
      CHECK(sc.lr == 0.0f, "%s: lr 0 scheduled to %g", cases[k].name, (double)sc.lr);
      be->optim_step(&buf, N, N_DECAY, &c, &sc);
    }
    CHECK(memcmp(param, before, sizeof param) == 0, "%s: lr = 0 changed the parameters", cases[k].name);
  }
}

/* Zero gradients from the start: Adam's m and v stay 0, so the step m/(sqrt(v)+eps) is 0. */
static void test_adam_zero_grad(void) {
  const ds_backend *be = ds_backend_cpu();
  const char *names[] = {"adam", "adam amsgrad", "adam eps_in_sqrt", "adam betas clip_value+clip_norm l1"};
  for (int k = 0; k < 4; k++) {
    const opt_case *oc = find_case(names[k]);
    ds_optim_config c;
    make_config(&c, oc);
    c.l1 = 0.0f; /* no penalty: the gradient really is zero */
    float param[N], before[N], grad[N] = {0}, m[N] = {0}, v[N] = {0}, vmax[N] = {0};
    for (int i = 0; i < N; i++) param[i] = (float)check_uniform();
    memcpy(before, param, sizeof param);
    ds_optim_buffers buf = {param, grad, m, v, vmax, NULL};
    for (int step = 0; step < 10; step++) {
      ds_optim_scalars sc = ds_optim_scalars_at(&c, step, 0, step);
      be->optim_step(&buf, N, N_DECAY, &c, &sc);
    }
    CHECK(memcmp(param, before, sizeof param) == 0, "%s: zero gradients changed the parameters", names[k]);
  }
}

/* Centered RMSprop with a constant gradient: v - gavg^2 = (1-a^t) a^t g^2 >= 0
 * exactly, but as the difference of two float averages it rounds to 0 or
 * below (sqrt: NaN, or the step lr*g/eps). 200 steps against the float64
 * closed form. */
static void test_rmsprop_constant_gradient(void) {
  const ds_backend *be = ds_backend_cpu();
  const float alphas[] = {0.5f, 0.9f, 0.99f};
  const float grads[] = {0.3f, 1.0f, 1e-3f};
  for (int ai = 0; ai < 3; ai++)
    for (int gi = 0; gi < 3; gi++) {
      ds_optim_config c;
      ds_optim_defaults(&c, DS_OPT_RMSPROP);
      c.centered = 1;
      c.alpha = alphas[ai];
      c.lr = 1e-6f;
      float param[1] = {1000.0f}, grad[1], v[1] = {0}, gavg[1] = {0};
      ds_optim_buffers buf = {param, grad, NULL, v, NULL, gavg};
      double w = 1000.0, g = grads[gi], a = alphas[ai];
      int bad = 0;
      double worst = 0.0;
      for (int step = 0; step < 200; step++) {
        grad[0] = grads[gi];
        ds_optim_scalars sc = ds_optim_scalars_at(&c, step, 0, step);
        be->optim_step(&buf, 1, 1, &c, &sc);
        double at = pow(a, step + 1), var = (1.0 - at) * at * g * g;
        w -= 1e-6 * g / (sqrt(var) + 1e-8);
        if (!isfinite(param[0])) bad++;
        double e = fabs(param[0] - w) / fabs(w);
        if (e > worst) worst = e;
      }
      CHECK(bad == 0, "centered rmsprop, alpha %g, constant g %g: %d of 200 steps non-finite", (double)alphas[ai],
            (double)grads[gi], bad);
      /* float noise only: the steps once the variance is below float resolution differ by rounding */
      CHECK(worst < 1e-3, "centered rmsprop, alpha %g, constant g %g: %.3g from the float64 closed form",
            (double)alphas[ai], (double)grads[gi], worst);
    }
}

static void expect_reject(const ds_optim_config *c, const char *flag, const char *what) {
  char err[256] = "";
  int rc = ds_optim_validate(c, err, sizeof err);
  CHECK(rc == -1, "validate accepted %s", what);
  CHECK(strstr(err, flag) != NULL, "validate: %s: message '%s' does not name %s", what, err, flag);
}

static void test_validate(void) {
  char err[256];
  for (int k = DS_OPT_SGD; k <= DS_OPT_ADAMW; k++) {
    ds_optim_config c;
    ds_optim_defaults(&c, (ds_optimizer)k);
    CHECK(ds_optim_validate(&c, err, sizeof err) == 0, "defaults of %s rejected: %s",
          ds_optim_name((ds_optimizer)k), err);
  }
  ds_optim_config c;
  ds_optim_defaults(&c, DS_OPT_SGD);
  c.lr = -0.1f;
  expect_reject(&c, "--lr", "a negative lr");
  c.lr = NAN;
  expect_reject(&c, "--lr", "a NaN lr");

  ds_optim_defaults(&c, DS_OPT_ADAM);
  const float bad_betas[] = {1.0f, -0.1f, 1.5f};
  for (int i = 0; i < 3; i++) {
    ds_optim_defaults(&c, DS_OPT_ADAM);
    c.beta1 = bad_betas[i];
    expect_reject(&c, "--beta1", "beta1 outside [0,1)");
    ds_optim_defaults(&c, DS_OPT_ADAM);
    c.beta2 = bad_betas[i];
    expect_reject(&c, "--beta2", "beta2 outside [0,1)");
  }
  ds_optim_defaults(&c, DS_OPT_ADAM);
  c.beta1 = 0.0f; /* the closed end is allowed */
  CHECK(ds_optim_validate(&c, err, sizeof err) == 0, "beta1 = 0 rejected: %s", err);

  ds_optim_defaults(&c, DS_OPT_SGD);
  c.momentum = -0.5f;
  expect_reject(&c, "--momentum", "a negative momentum");

  const float bad_eps[] = {0.0f, -1e-8f};
  for (int k = DS_OPT_ADAGRAD; k <= DS_OPT_ADAMW; k++)
    for (int i = 0; i < 2; i++) {
      ds_optim_defaults(&c, (ds_optimizer)k);
      c.eps = bad_eps[i];
      expect_reject(&c, "--eps", "eps <= 0");
    }

  ds_optim_defaults(&c, DS_OPT_SGD);
  c.nesterov = 1; /* momentum 0 */
  expect_reject(&c, "--nesterov", "nesterov without momentum");
  for (int k = DS_OPT_ADAGRAD; k <= DS_OPT_ADAMW; k++) {
    ds_optim_defaults(&c, (ds_optimizer)k);
    c.nesterov = 1;
    expect_reject(&c, "--nesterov", "nesterov with a non-sgd optimizer");
  }
  ds_optim_defaults(&c, DS_OPT_RMSPROP);
  c.momentum = 0.9f; /* rmsprop takes momentum, but not Nesterov */
  c.nesterov = 1;
  expect_reject(&c, "--nesterov", "nesterov with rmsprop momentum");

  /* lookahead + ema: the kernel would apply the lookahead velocity update while
   * the trainer (which takes the look-ahead gradient for the pytorch form only)
   * evaluates the gradient at w -- heavy-ball momentum under Nesterov's name. */
  ds_optim_defaults(&c, DS_OPT_SGD);
  c.momentum = 0.9f;
  c.nesterov = 1;
  c.nesterov_form = DS_NESTEROV_LOOKAHEAD;
  CHECK(ds_optim_validate(&c, err, sizeof err) == 0, "lookahead (pytorch form) rejected: %s", err);
  c.momentum_form = DS_MOMENTUM_KERAS; /* keras' Nesterov is lookahead in shifted variables */
  CHECK(ds_optim_validate(&c, err, sizeof err) == 0, "lookahead with keras rejected: %s", err);
  c.momentum_form = DS_MOMENTUM_EMA;
  expect_reject(&c, "--nesterov-form", "lookahead with --momentum-form ema");
}

int main(void) {
  test_against_reference();
  test_mutants_are_caught();
  test_lr_zero();
  test_adam_zero_grad();
  test_rmsprop_constant_gradient();
  test_validate();
  return check_finish("test_optim");
}
