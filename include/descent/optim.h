/* descent — optimizers, learning-rate schedules and gradient clipping.
 *
 * Every optimizer is one update over flat buffers (parameters, gradients and
 * one buffer per state role). Defaults follow torch.optim's documented
 * algorithms; the course's other notations are named options.
 *
 * Order of operations in one update (the same for every optimizer):
 *   1. g = clamp(g, -clip_value, clip_value)              (--clip-value)
 *   2. g = g * min(1, clip_norm / (||g||_2 + 1e-6))        (--clip-norm, global)
 *   3. g = g + weight_decay * w + l1 * sign(w)             (L2/L1 terms; AdamW: decoupled,
 *                                                            w = w * (1 - lr * weight_decay))
 *      on weight matrices only (index < n_decay) unless --decay-all
 *   4. the optimizer's own update with lr = schedule(t) (t = updates already applied)
 * Gradient accumulation happens before 1: the gradient buffer then holds the
 * mean over the K micro-batches.
 *
 * Memory: configurations and scalars are host structs; ds_optim_buffers
 * point into BACKEND memory (the trainer's flat buffers). Thread safety:
 * the functions here are pure. */
#ifndef DESCENT_OPTIM_H
#define DESCENT_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { DS_OPT_SGD, DS_OPT_ADAGRAD, DS_OPT_RMSPROP, DS_OPT_ADAM, DS_OPT_ADAMW } ds_optimizer;
typedef enum { DS_MOMENTUM_PYTORCH, DS_MOMENTUM_EMA, DS_MOMENTUM_KERAS } ds_momentum_form;
typedef enum { DS_NESTEROV_PYTORCH, DS_NESTEROV_LOOKAHEAD } ds_nesterov_form;
typedef enum {
  DS_SCHED_CONSTANT, DS_SCHED_STEP, DS_SCHED_EXPONENTIAL, DS_SCHED_INVERSE, DS_SCHED_COSINE
} ds_schedule_kind;

typedef struct {
  ds_optimizer kind;
  float lr;                 /* base learning rate lr0 */
  /* sgd */
  float momentum;           /* also rmsprop's momentum */
  float dampening;
  int nesterov;
  ds_momentum_form momentum_form;
  ds_nesterov_form nesterov_form;
  /* adagrad */
  float lr_decay;
  float initial_accumulator;
  /* rmsprop */
  float alpha;
  int centered;
  /* adam / adamw */
  float beta1, beta2;
  int amsgrad;
  /* adagrad, rmsprop, adam */
  float eps;
  int eps_in_sqrt;          /* sqrt(s + eps) instead of sqrt(s) + eps */
  /* regularisation */
  float weight_decay;       /* L2 in the gradient; decoupled for adamw */
  float l1;
  int decay_all;            /* decay biases and BN parameters too */
  /* clipping (0 = off) */
  float clip_value;
  float clip_norm;
  /* schedule */
  ds_schedule_kind schedule;
  long step_size;           /* step: lr0 * gamma^floor(t/step_size) */
  float gamma;
  float decay;              /* exponential: lr0*exp(-decay*t); inverse: lr0/(1+decay*t) */
  long t_max;               /* cosine period in updates (or epochs with per-epoch) */
  float lr_min;
  long warmup;              /* linear warmup updates */
  int schedule_per_epoch;
} ds_optim_config;

/* Scalars of one update, computed once on the host per step. */
typedef struct {
  float lr;                 /* after schedule (and adagrad's lr_decay) */
  float bias_correction1;   /* 1 - beta1^t (adam) */
  float bias_correction2;   /* 1 - beta2^t (adam) */
  /* Adam's per-update constants, rounded once from double on the host so
   * that the per-element update needs one division (torch's fused Adam
   * computes the same two: step_size = lr / bias_correction1 and
   * bias_correction2_sqrt = sqrt(bias_correction2)): */
  float adam_step_size;     /* lr / (1 - beta1^t) */
  float adam_inv_sqrt_bc2;  /* 1 / sqrt(1 - beta2^t) */
  float adam_inv_bc2;       /* 1 / (1 - beta2^t), for eps_in_sqrt */
  uint64_t t;               /* 1-based number of this update */
} ds_optim_scalars;

/* The flat buffers one update touches. Which state buffers exist depends on
 * the optimizer (ds_optim_state_roles); unused ones are NULL. */
typedef struct {
  float *param;
  float *grad;
  float *m;      /* sgd momentum buffer b / keras velocity v, adam m, rmsprop momentum buffer */
  float *v;      /* adagrad sum of squares, rmsprop square average, adam v */
  float *vmax;   /* amsgrad max of v */
  float *gavg;   /* centered rmsprop gradient average */
  /* Optional, NULL = off: the non-finite check of the gradient, done in the
   * update's own pass over it. optim_step then also does what
   * monitor_nonfinite(nonfinite, grad, n, update) does (descent/backend.h:
   * the first NaN/Inf of grad[n] recorded in nonfinite[0..2] unless one is
   * there already), so the gradient is read once per update, not twice.
   * Both live in backend memory; update is the 1-based update number. */
  int64_t *nonfinite;
  const int64_t *update;
} ds_optim_buffers;

/* Which state buffers an optimizer configuration needs. */
typedef struct { int m, v, vmax, gavg; } ds_optim_roles;
ds_optim_roles ds_optim_state_roles(const ds_optim_config *cfg);

/* The defaults that differ between optimizers, as torch.optim documents them
 * (torch.optim.SGD has no default lr; descent uses 0.1), indexed by
 * ds_optimizer. ds_optim_defaults and --help read this table; tests check the
 * README's tables against it. */
typedef struct {
  const char *name;
  float lr, eps, weight_decay;
} ds_optim_default_row;
extern const ds_optim_default_row ds_optim_default_rows[5];

/* Defaults as torch.optim documents them: the row above, and alpha 0.99,
 * betas (0.9, 0.999), no momentum, no schedule, for every optimizer. */
void ds_optim_defaults(ds_optim_config *cfg, ds_optimizer kind);

/* Learning rate after the schedule for update index t (0 for the first),
 * before AdaGrad's lr_decay; a pure function of cfg and t. */
double ds_schedule_lr(const ds_optim_config *cfg, long t);

/* All per-step scalars of an update. The schedule sees t, the number of
 * updates attempted before this one (0 for the first), or `epoch` (0-based)
 * with schedule_per_epoch, as a PyTorch scheduler stepped every iteration
 * does. The optimizer's own step count (Adam's bias corrections, AdaGrad's
 * lr_decay) is `applied + 1`, `applied` being the updates applied before this
 * one: updates skipped for a NaN/Inf gradient (--on-nonfinite skip) do not
 * count, as torch.optim's state["step"] does not advance when GradScaler
 * skips optimizer.step(). Without skips applied == t. */
ds_optim_scalars ds_optim_scalars_at(const ds_optim_config *cfg, long t, long epoch, long applied);

/* Parse an optimizer name ("sgd", "momentum", "nesterov", "adagrad", "rmsprop",
 * "adam", "adamw"); fills kind and the implied momentum/nesterov. 0 on success. */
int ds_optim_parse_name(const char *name, ds_optim_config *cfg);
/* The name of a kind ("sgd", "adagrad", "rmsprop", "adam", "adamw"), static. */
const char *ds_optim_name(ds_optimizer kind);

/* Check the configuration (finite values in range: lr >= 0, momentum,
 * betas and eps in their ranges, flags that fit the optimizer); 0, or -1
 * with a message naming the flag in err. */
int ds_optim_validate(const ds_optim_config *cfg, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
