/* MLP layout over flat buffers and parameter initialisation. */
#include "descent/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "descent/common.h"
#include "descent/philox.h"

static const char *const activation_names[] = {"relu", "leaky_relu", "tanh", "sigmoid", NULL};

const char *ds_activation_name(ds_activation a) { return activation_names[a]; }

int ds_activation_parse(const char *s, ds_activation *out) {
  for (int i = 0; activation_names[i]; i++)
    if (strcmp(s, activation_names[i]) == 0) { *out = (ds_activation)i; return 0; }
  return -1;
}

void ds_mlp_spec_defaults(ds_mlp_spec *spec) {
  memset(spec, 0, sizeof *spec);
  spec->activation = DS_ACT_RELU;
  spec->leaky_slope = 0.01f;
  spec->bn_momentum = 0.1f;
  spec->bn_eps = 1e-5f;
  spec->dropout_form = DS_DROPOUT_INVERTED;
  spec->init = DS_INIT_AUTO;
}

int ds_mlp_layout(ds_mlp *m, const ds_mlp_spec *spec, int n_inputs, int n_classes, char *err,
                  size_t errlen) {
  memset(m, 0, sizeof *m);
  m->spec = *spec;
  m->n_inputs = n_inputs;
  m->n_classes = n_classes;
  m->n_layers = spec->n_hidden + 1;
  if (spec->n_hidden < 0 || m->n_layers > DS_MAX_LAYERS) {
    snprintf(err, errlen, "--hidden: at most %d hidden layers", DS_MAX_LAYERS - 1);
    return -1;
  }
  size_t off = 0;
  int in = n_inputs;
  for (int l = 0; l < m->n_layers; l++) { /* weights first: [0, n_decay) */
    ds_layer *L = &m->layers[l];
    L->hidden = l < spec->n_hidden;
    L->in = in;
    L->out = L->hidden ? spec->hidden[l] : n_classes;
    if (L->out < 1) {
      snprintf(err, errlen, "--hidden: layer widths must be >= 1");
      return -1;
    }
    L->weight = (ds_view){off, (size_t)L->out * (size_t)L->in};
    off += L->weight.size;
    in = L->out;
  }
  m->n_decay = off;
  for (int l = 0; l < m->n_layers; l++) { /* then biases */
    ds_layer *L = &m->layers[l];
    L->bias = (ds_view){off, (size_t)L->out};
    off += L->bias.size;
  }
  size_t soff = 0;
  for (int l = 0; l < m->n_layers; l++) { /* then BN gamma/beta; stats in their own buffer */
    ds_layer *L = &m->layers[l];
    if (!(L->hidden && spec->batchnorm)) continue;
    L->gamma = (ds_view){off, (size_t)L->out};
    off += L->out;
    L->beta = (ds_view){off, (size_t)L->out};
    off += L->out;
    L->running_mean = (ds_view){soff, (size_t)L->out};
    soff += L->out;
    L->running_var = (ds_view){soff, (size_t)L->out};
    soff += L->out;
  }
  m->n_params = off;
  m->n_stats = soff;
  return 0;
}

/* A uniform double in (0, 1) from the parameter-init stream of tensor `tensor`. */
static double init_uniform(uint64_t seed, uint32_t tensor, uint64_t element) {
  uint32_t w = ds_philox_word(seed, DS_STREAM_INIT + tensor, 0, element);
  return ((double)w + 0.5) * (1.0 / 4294967296.0);
}

/* Standard normal by Box-Muller from elements 2i and 2i+1 of the stream. */
static double init_normal(uint64_t seed, uint32_t tensor, uint64_t i) {
  double u1 = init_uniform(seed, tensor, 2 * i), u2 = init_uniform(seed, tensor, 2 * i + 1);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Standard normal truncated to [-2, 2] by redrawing, as tf.truncated_normal:
 * draw k of element i uses the normal pair of index i + k * n, so every
 * element keeps its own counters. */
static double trunc_normal(uint64_t seed, uint32_t tensor, uint64_t i, uint64_t n) {
  for (uint64_t k = 0;; k++) {
    double z = init_normal(seed, tensor, i + k * n);
    if (fabs(z) <= 2.0) return z;
  }
}

static ds_init resolve_init(const ds_mlp_spec *s) {
  if (s->init != DS_INIT_AUTO) return s->init;
  return (s->activation == DS_ACT_TANH || s->activation == DS_ACT_SIGMOID) ? DS_INIT_XAVIER_NORMAL
                                                                          : DS_INIT_HE_NORMAL;
}

void ds_mlp_init_params(const ds_mlp *m, float *params, float *stats, uint64_t seed) {
  ds_init init = resolve_init(&m->spec);
  /* He gain for leaky ReLU is sqrt(2/(1+slope^2)), as torch.nn.init.calculate_gain. */
  double relu_gain2 = m->spec.activation == DS_ACT_LEAKY_RELU
                          ? 2.0 / (1.0 + (double)m->spec.leaky_slope * m->spec.leaky_slope)
                          : 2.0;
  for (int l = 0; l < m->n_layers; l++) {
    const ds_layer *L = &m->layers[l];
    double fan_in = L->in, fan_out = L->out;
    double std = 0.0, bound = 0.0; /* normal std or uniform bound */
    switch (init) {
      case DS_INIT_HE_NORMAL: std = sqrt(relu_gain2 / fan_in); break;
      case DS_INIT_HE_UNIFORM: bound = sqrt(3.0 * relu_gain2 / fan_in); break;
      case DS_INIT_XAVIER_NORMAL: std = sqrt(2.0 / (fan_in + fan_out)); break;
      case DS_INIT_XAVIER_UNIFORM: bound = sqrt(6.0 / (fan_in + fan_out)); break;
      case DS_INIT_TRUNC_NORMAL: std = m->spec.init_std; break;
      default: bound = 1.0 / sqrt(fan_in); break; /* PyTorch Linear default */
    }
    uint32_t wt = (uint32_t)(2 * l), bt = (uint32_t)(2 * l + 1);
    float *W = params + L->weight.offset;
    for (size_t i = 0; i < L->weight.size; i++)
      W[i] = (float)(init == DS_INIT_TRUNC_NORMAL ? std * trunc_normal(seed, wt, i, L->weight.size)
                     : std > 0.0                  ? std * init_normal(seed, wt, i)
                                                  : bound * (2.0 * init_uniform(seed, wt, i) - 1.0));
    float *b = params + L->bias.offset;
    double bbound = 1.0 / sqrt(fan_in);
    for (size_t i = 0; i < L->bias.size; i++)
      b[i] = init == DS_INIT_PYTORCH ? (float)(bbound * (2.0 * init_uniform(seed, bt, i) - 1.0)) : 0.0f;
    if (L->gamma.size) {
      for (size_t i = 0; i < L->gamma.size; i++) {
        params[L->gamma.offset + i] = 1.0f;
        params[L->beta.offset + i] = 0.0f;
        stats[L->running_mean.offset + i] = 0.0f;
        stats[L->running_var.offset + i] = 1.0f;
      }
    }
  }
}

void ds_mlp_describe(const ds_mlp *m, char *buf, size_t len) {
  size_t n = 0;
  n += (size_t)snprintf(buf + n, len - n, "%d", m->n_inputs);
  for (int l = 0; l < m->n_layers && n < len; l++)
    n += (size_t)snprintf(buf + n, len - n, "-%d", m->layers[l].out);
  if (n < len) n += (size_t)snprintf(buf + n, len - n, " %s", ds_activation_name(m->spec.activation));
  if (n < len && m->spec.batchnorm) n += (size_t)snprintf(buf + n, len - n, " batchnorm");
  if (n < len && m->spec.dropout > 0)
    n += (size_t)snprintf(buf + n, len - n, " dropout=%g", (double)m->spec.dropout);
  if (n < len && m->spec.input_dropout > 0)
    n += (size_t)snprintf(buf + n, len - n, " input-dropout=%g", (double)m->spec.input_dropout);
  if (n < len) snprintf(buf + n, len - n, " (%zu parameters)", m->n_params);
}

void ds_mlp_param_name(const ds_mlp *m, size_t i, char *buf, size_t len) {
  for (int l = 0; l < m->n_layers; l++) {
    const ds_layer *L = &m->layers[l];
    const ds_view v[4] = {L->weight, L->bias, L->gamma, L->beta};
    static const char *const what[4] = {"weight", "bias", "batchnorm gamma", "batchnorm beta"};
    for (int k = 0; k < 4; k++)
      if (v[k].size && i >= v[k].offset && i < v[k].offset + v[k].size) {
        snprintf(buf, len, "fc%d %s", l + 1, what[k]);
        return;
      }
  }
  snprintf(buf, len, "parameter %zu", i);
}
