#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "descent/common.h"
#include "descent/model.h"

static const char *const momentum_forms[] = {"pytorch", "ema", "keras", NULL};
static const char *const nesterov_forms[] = {"pytorch", "lookahead", NULL};
static const char *const schedules[] = {"constant", "step", "exponential", "inverse", "cosine", NULL};

int ds_cli_optim_flags(ds_flag *out, ds_optim_config *c, const char **optimizer_name) {
  ds_flag f[] = {
    {"--optimizer", DS_FLAG_STRING, optimizer_name, "NAME", "sgd, momentum (sgd, momentum 0.9), nesterov (sgd, Nesterov 0.9), adagrad, rmsprop, adam, adamw", .group = "Optimizer"},
    {"--lr", DS_FLAG_FLOAT, &c->lr, "X", "base learning rate lr0", "(0,inf)", .default_text = "0.1 sgd, 0.01 adagrad/rmsprop, 0.001 adam/adamw"},
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
    {"--eps", DS_FLAG_FLOAT, &c->eps, "E", "adagrad/rmsprop/adam: added to the denominator", "(0,inf)", .default_text = "1e-10 adagrad, else 1e-8"},
    {"--eps-in-sqrt", DS_FLAG_BOOL, &c->eps_in_sqrt, NULL, "divide by sqrt(s+eps) instead of sqrt(s)+eps"},
    {"--weight-decay", DS_FLAG_FLOAT, &c->weight_decay, "L", "L2: g += L*w (adamw: decoupled w -= lr*L*w)", "[0,inf)", .default_text = "0.01 adamw, else 0", .group = "Regularisation and clipping"},
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
    if (end == p || (*end != ',' && *end != '\0') || w < 1 || w > 1000000) {
      snprintf(err, errlen, "expected comma-separated widths >= 1 (e.g. 256,128) or none");
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
