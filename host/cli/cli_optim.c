#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "descent/common.h"
#include "descent/model.h"

static const char *const momentum_forms[] = {"pytorch", "ema", "keras", NULL};
static const char *const nesterov_forms[] = {"pytorch", "lookahead", NULL};
static const char *const schedules[] = {"constant", "step", "exponential", "inverse", "cosine", NULL};

/* "0.1 sgd, 0.01 adagrad, ..." from ds_optim_default_rows: --help cannot drift from the code */
static const char *defaults_text(char *buf, size_t len, int field) {
  size_t k = 0;
  for (int i = 0; i < 5 && k < len; i++) {
    const ds_optim_default_row *r = &ds_optim_default_rows[i];
    double v = field == 0 ? r->lr : field == 1 ? r->eps : r->weight_decay;
    if (field == 1 && i == DS_OPT_SGD) continue; /* sgd has no eps */
    k += (size_t)snprintf(buf + k, len - k, "%s%g %s", k ? ", " : "", v, r->name);
  }
  return buf;
}

int ds_cli_optim_flags(ds_flag *out, ds_optim_config *c, const char **optimizer_name) {
  static char lr_text[160], eps_text[160], wd_text[160];
  ds_flag f[] = {
    {"--optimizer", DS_FLAG_STRING, optimizer_name, "NAME", "sgd, momentum (sgd, momentum 0.9), nesterov (sgd, Nesterov 0.9), adagrad, rmsprop, adam, adamw", .group = "Optimizer"},
    {"--lr", DS_FLAG_FLOAT, &c->lr, "X", "base learning rate lr0", "(0,inf)", .default_text = defaults_text(lr_text, sizeof lr_text, 0)},
    {"--momentum", DS_FLAG_FLOAT, &c->momentum, "MU", "momentum (sgd, rmsprop)", "[0,inf)", .default_text = "0.9 for momentum/nesterov, else 0"},
    {"--dampening", DS_FLAG_FLOAT, &c->dampening, "D", "sgd momentum dampening", "[0,1]"},
    {"--nesterov", DS_FLAG_BOOL, &c->nesterov, NULL, "Nesterov momentum (sgd)"},
    {"--momentum-form", DS_FLAG_CHOICE, &c->momentum_form, NULL, "pytorch: b=mu*b+(1-dampening)*g, first b=g; ema: b=mu*b+(1-mu)*g; keras: v=mu*v-lr*g, w+=v", .choices = momentum_forms},
    {"--nesterov-form", DS_FLAG_CHOICE, &c->nesterov_form, NULL, "pytorch: step along g+mu*b; lookahead: gradient taken at w-mu*v, v=mu*v+lr*g, w-=v", .choices = nesterov_forms},
    {"--lr-decay", DS_FLAG_FLOAT, &c->lr_decay, "K", "adagrad: lr/(1+(t-1)*K)", "[0,inf)"},
    {"--initial-accumulator", DS_FLAG_FLOAT, &c->initial_accumulator, "S0", "adagrad: initial sum of squares", "[0,inf)"},
    {"--alpha", DS_FLAG_FLOAT, &c->alpha, "A", "rmsprop: smoothing constant", "[0,1)"},
    {"--centered", DS_FLAG_BOOL, &c->centered, NULL, "rmsprop: normalise by the variance estimate"},
    {"--beta1", DS_FLAG_FLOAT, &c->beta1, "B1", "adam(w): first-moment decay", "[0,1)"},
    {"--beta2", DS_FLAG_FLOAT, &c->beta2, "B2", "adam(w): second-moment decay", "[0,1)"},
    {"--amsgrad", DS_FLAG_BOOL, &c->amsgrad, NULL, "adam(w): use the running max of the second moment"},
    {"--eps", DS_FLAG_FLOAT, &c->eps, "E", "adagrad/rmsprop/adam(w): added to the denominator", "(0,inf)", .default_text = defaults_text(eps_text, sizeof eps_text, 1)},
    {"--eps-in-sqrt", DS_FLAG_BOOL, &c->eps_in_sqrt, NULL, "divide by sqrt(s+eps) instead of sqrt(s)+eps"},
    {"--weight-decay", DS_FLAG_FLOAT, &c->weight_decay, "L", "L2: g += L*w (adamw: decoupled w -= lr*L*w)", "[0,inf)", .default_text = defaults_text(wd_text, sizeof wd_text, 2), .group = "Regularisation and clipping"},
    {"--l1", DS_FLAG_FLOAT, &c->l1, "L", "L1: g += L*sign(w)", "[0,inf)"},
    {"--decay-all", DS_FLAG_BOOL, &c->decay_all, NULL, "decay biases and batchnorm parameters too (default: weight matrices only)"},
    {"--clip-value", DS_FLAG_FLOAT, &c->clip_value, "U", "clamp every gradient to [-U,U] (0 = off)", "[0,inf)"},
    {"--clip-norm", DS_FLAG_FLOAT, &c->clip_norm, "C", "scale gradients by min(1, C/(global norm+1e-6)) (0 = off)", "[0,inf)"},
    {"--schedule", DS_FLAG_CHOICE, &c->schedule, NULL, "learning-rate schedule over t = updates applied", .choices = schedules, .group = "Learning-rate schedule"},
    {"--step-size", DS_FLAG_LONG, &c->step_size, "N", "step: lr0*gamma^floor(t/N)", "[1,inf)"},
    {"--gamma", DS_FLAG_FLOAT, &c->gamma, "G", "step: decay factor", "(0,inf)"},
    {"--decay", DS_FLAG_FLOAT, &c->decay, "K", "exponential: lr0*exp(-K*t); inverse: lr0/(1+K*t)", "[0,inf)"},
    {"--t-max", DS_FLAG_LONG, &c->t_max, "T", "cosine: lr_min+(lr0-lr_min)(1+cos(pi*min(t,T)/T))/2", "[1,inf)"},
    {"--lr-min", DS_FLAG_FLOAT, &c->lr_min, "X", "cosine: final learning rate", "[0,inf)"},
    {"--warmup", DS_FLAG_LONG, &c->warmup, "W", "multiply by (t+1)/W for t < W; the schedule starts after", "[0,inf)"},
    {"--schedule-per-epoch", DS_FLAG_BOOL, &c->schedule_per_epoch, NULL, "advance the schedule per epoch instead of per update"},
  };
  int n = (int)(sizeof f / sizeof f[0]);
  memcpy(out, f, sizeof f);
  return n;
}

void ds_cli_optim_resolve(const char *cmd, const ds_flag *flags, ds_optim_config *c,
                          const char *optimizer_name) {
  ds_optim_config def;
  ds_optim_config named = *c;
  if (ds_optim_parse_name(optimizer_name, &named) != 0)
    ds_fatal(DS_EXIT_USAGE, "%s: --optimizer: unknown optimizer '%s' (expected sgd, momentum, nesterov, adagrad, rmsprop, adam or adamw)", cmd, optimizer_name);
  ds_optim_defaults(&def, named.kind);
  c->kind = named.kind;
  if (!ds_flag_given(flags, "--lr")) c->lr = def.lr;
  if (!ds_flag_given(flags, "--eps")) c->eps = def.eps;
  if (!ds_flag_given(flags, "--weight-decay")) c->weight_decay = def.weight_decay;
  if (!ds_flag_given(flags, "--momentum")) c->momentum = named.momentum;
  c->nesterov = c->nesterov || named.nesterov;
  char err[256];
  if (ds_optim_validate(c, err, sizeof err) != 0) ds_fatal(DS_EXIT_USAGE, "%s: %s", cmd, err);
}

/* ---- flags that only some optimizers or schedules read -------------------- */

#define K(x) (1u << (x))
static const struct {
  const char *flag;
  unsigned kinds;          /* bit per ds_optimizer */
  const char *who;
} optimizer_only[] = {
  {"--dampening", K(DS_OPT_SGD), "sgd with momentum"},
  {"--nesterov", K(DS_OPT_SGD), "sgd"},
  {"--momentum-form", K(DS_OPT_SGD), "sgd with momentum"},
  {"--nesterov-form", K(DS_OPT_SGD), "sgd with Nesterov momentum"},
  {"--lr-decay", K(DS_OPT_ADAGRAD), "adagrad"},
  {"--initial-accumulator", K(DS_OPT_ADAGRAD), "adagrad"},
  {"--alpha", K(DS_OPT_RMSPROP), "rmsprop"},
  {"--centered", K(DS_OPT_RMSPROP), "rmsprop"},
  {"--beta1", K(DS_OPT_ADAM) | K(DS_OPT_ADAMW), "adam and adamw"},
  {"--beta2", K(DS_OPT_ADAM) | K(DS_OPT_ADAMW), "adam and adamw"},
  {"--amsgrad", K(DS_OPT_ADAM) | K(DS_OPT_ADAMW), "adam and adamw"},
  {"--eps", K(DS_OPT_ADAGRAD) | K(DS_OPT_RMSPROP) | K(DS_OPT_ADAM) | K(DS_OPT_ADAMW), "adagrad, rmsprop, adam and adamw"},
  {"--eps-in-sqrt", K(DS_OPT_ADAGRAD) | K(DS_OPT_RMSPROP) | K(DS_OPT_ADAM) | K(DS_OPT_ADAMW), "adagrad, rmsprop, adam and adamw"},
};
static const struct {
  const char *flag;
  unsigned schedules;      /* bit per ds_schedule_kind */
  const char *who;
} schedule_only[] = {
  {"--step-size", K(DS_SCHED_STEP), "--schedule step"},
  {"--gamma", K(DS_SCHED_STEP), "--schedule step"},
  {"--decay", K(DS_SCHED_EXPONENTIAL) | K(DS_SCHED_INVERSE), "--schedule exponential and inverse"},
  {"--t-max", K(DS_SCHED_COSINE), "--schedule cosine"},
  {"--lr-min", K(DS_SCHED_COSINE), "--schedule cosine"},
};

void ds_cli_optim_check_flags(const char *cmd, const ds_flag *flags, const ds_optim_config *const *cfgs, int n) {
  unsigned kinds = 0;
  int any_momentum = 0, any_nesterov = 0;
  for (int i = 0; i < n; i++) {
    kinds |= K(cfgs[i]->kind);
    any_momentum |= cfgs[i]->kind == DS_OPT_SGD && cfgs[i]->momentum > 0.0f;
    any_nesterov |= cfgs[i]->nesterov;
  }
  char names[128] = "";
  for (int i = 0; i < n; i++)
    snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", ds_optim_name(cfgs[i]->kind));
  for (size_t i = 0; i < sizeof optimizer_only / sizeof optimizer_only[0]; i++)
    if (ds_flag_given(flags, optimizer_only[i].flag) && !(kinds & optimizer_only[i].kinds))
      ds_fatal(DS_EXIT_USAGE, "%s: %s: applies to %s, not to --optimizer %s; leave it out", cmd, optimizer_only[i].flag,
               optimizer_only[i].who, names);
  if ((ds_flag_given(flags, "--dampening") || ds_flag_given(flags, "--momentum-form")) && !any_momentum)
    ds_fatal(DS_EXIT_USAGE, "%s: %s: applies to sgd with momentum; give --momentum MU or --optimizer momentum", cmd,
             ds_flag_given(flags, "--dampening") ? "--dampening" : "--momentum-form");
  for (int i = 0; i < n; i++)
    if (ds_flag_given(flags, "--dampening") && cfgs[i]->kind == DS_OPT_SGD && cfgs[i]->momentum > 0.0f &&
        cfgs[i]->momentum_form != DS_MOMENTUM_PYTORCH)
      ds_fatal(DS_EXIT_USAGE, "%s: --dampening: applies to --momentum-form pytorch only (ema and keras do not read it)", cmd);
  if (ds_flag_given(flags, "--nesterov-form") && !any_nesterov)
    ds_fatal(DS_EXIT_USAGE, "%s: --nesterov-form: applies to Nesterov momentum; give --nesterov or --optimizer nesterov", cmd);
  ds_schedule_kind sched = cfgs[0]->schedule;
  static const char *const schedule_names[] = {"constant", "step", "exponential", "inverse", "cosine"};
  for (size_t i = 0; i < sizeof schedule_only / sizeof schedule_only[0]; i++)
    if (ds_flag_given(flags, schedule_only[i].flag) && !(K(sched) & schedule_only[i].schedules))
      ds_fatal(DS_EXIT_USAGE, "%s: %s: applies to %s, not to --schedule %s", cmd, schedule_only[i].flag,
               schedule_only[i].who, schedule_names[sched]);
  /* schedules whose defaults would make them degenerate */
  if (sched == DS_SCHED_STEP && !ds_flag_given(flags, "--step-size"))
    ds_fatal(DS_EXIT_USAGE, "%s: --schedule step: needs --step-size N (lr0 * gamma^floor(t/N); gamma %g)", cmd,
             (double)cfgs[0]->gamma);
  if ((sched == DS_SCHED_EXPONENTIAL || sched == DS_SCHED_INVERSE) && !(cfgs[0]->decay > 0.0f))
    ds_fatal(DS_EXIT_USAGE, "%s: --schedule %s: needs --decay K > 0 (%s)", cmd, schedule_names[sched],
             sched == DS_SCHED_EXPONENTIAL ? "lr0 * exp(-K t)" : "lr0 / (1 + K t)");
}
#undef K

int ds_cli_parse_hidden(const char *value, void *ptr, char *err, size_t errlen) {
  ds_mlp_spec *spec = ptr;
  int n = 0;
  if (strcmp(value, "none") == 0) {
    spec->n_hidden = 0;
    return 0;
  }
  const char *p = value;
  if (!*p) {
    snprintf(err, errlen, "expected comma-separated widths >= 1 (e.g. 256,128) or none");
    return -1;
  }
  while (*p) {
    /* one width: digits only (no blanks or signs), then ',' or the end */
    const char *end = p;
    while (*end >= '0' && *end <= '9') end++;
    char digits[16];
    long w = -1;
    if (end > p && end - p < (long)sizeof digits) {
      memcpy(digits, p, (size_t)(end - p));
      digits[end - p] = '\0';
      if (ds_parse_long(digits, &w) != 0) w = -1;
    }
    if (end == p || (*end != ',' && *end != '\0') || w < 1) {
      snprintf(err, errlen, "expected comma-separated widths >= 1 (e.g. 256,128) or none");
      return -1;
    }
    if (w > DS_MAX_WIDTH) {
      snprintf(err, errlen, "a width is at most %d", DS_MAX_WIDTH);
      return -1;
    }
    if (n >= DS_MAX_LAYERS - 1) {
      snprintf(err, errlen, "at most %d hidden layers", DS_MAX_LAYERS - 1);
      return -1;
    }
    spec->hidden[n++] = (int)w;
    p = *end == ',' ? end + 1 : end;
    if (*end == ',' && *p == '\0') {
      snprintf(err, errlen, "trailing comma");
      return -1;
    }
  }
  spec->n_hidden = n;
  return 0;
}
