/* descent — the MLP: its specification and the layout of its flat buffers.
 *
 * The model does not own parameters (as in tiny-cuda-nn): it is a list of
 * views (offset + shape) into flat buffers that the trainer allocates.
 *
 * Parameter buffer layout (so "decay weights but not biases" is one boundary):
 *   [ W_0 | W_1 | ... | W_L-1 | b_0 | ... | b_L-1 | gamma_0 | beta_0 | ... ]
 *   ^--------- n_decay ------^
 * Statistics buffer (not trained): [ running_mean_0 | running_var_0 | ... ]
 *
 * A hidden layer l computes
 *   z = x W^T + b  ->  [BatchNorm]  ->  activation  ->  [dropout]
 * and the output layer computes logits = x W^T + b.
 *
 * Memory: views are offsets in floats into buffers the caller owns; the
 * functions here fill or read HOST copies. Thread safety: pure functions of
 * their arguments. The trainer's buffers in backend memory have the same
 * layout (include/descent/train.h). */
#ifndef DESCENT_MODEL_H
#define DESCENT_MODEL_H

#include <stddef.h>
#include "descent/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DS_MAX_LAYERS 16

typedef enum {
  DS_INIT_AUTO,            /* He for (leaky) ReLU, Xavier for tanh/sigmoid; normal */
  DS_INIT_HE_NORMAL, DS_INIT_HE_UNIFORM,
  DS_INIT_XAVIER_NORMAL, DS_INIT_XAVIER_UNIFORM,
  DS_INIT_PYTORCH,         /* torch.nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b */
  DS_INIT_TRUNC_NORMAL     /* W ~ N(0, init_std^2) truncated to +-2 std (redrawn), b = 0: TensorFlow's
                              truncated_normal_initializer, DeepOBS's MLP (std 0.03) */
} ds_init;

typedef struct {
  int n_hidden;
  int hidden[DS_MAX_LAYERS - 1];
  ds_activation activation;
  float leaky_slope;       /* 0.01 */
  int batchnorm;
  float bn_momentum;       /* 0.1 */
  float bn_eps;            /* 1e-5 */
  float dropout;           /* after each hidden activation */
  float input_dropout;
  ds_dropout_form dropout_form;
  ds_init init;
  float init_std;          /* DS_INIT_TRUNC_NORMAL: the standard deviation before truncation */
} ds_mlp_spec;

typedef struct { size_t offset, size; } ds_view;

typedef struct {
  int in, out;             /* widths */
  int hidden;              /* 1 for hidden layers, 0 for the output layer */
  ds_view weight, bias;    /* in params */
  ds_view gamma, beta;     /* in params, size 0 without batchnorm */
  ds_view running_mean, running_var;   /* in stats */
} ds_layer;

typedef struct {
  ds_mlp_spec spec;
  int n_inputs, n_classes, n_layers;
  ds_layer layers[DS_MAX_LAYERS];
  size_t n_params;         /* total parameters */
  size_t n_decay;          /* the weight matrices: params[0, n_decay) */
  size_t n_stats;          /* BN running statistics */
} ds_mlp;

/* No hidden layers, relu (leaky slope 0.01), BatchNorm off (momentum 0.1,
 * eps 1e-5), no dropout, inverted dropout form, init auto. */
void ds_mlp_spec_defaults(ds_mlp_spec *spec);

/* Compute the layout of spec for n_inputs pixels and n_classes outputs.
 * Returns 0, or -1 with a message in err (more than DS_MAX_LAYERS - 1 hidden
 * layers, a width < 1). */
int ds_mlp_layout(ds_mlp *m, const ds_mlp_spec *spec, int n_inputs, int n_classes,
                  char *err, size_t errlen);

/* Initialise host copies of the parameters params[m->n_params] and
 * statistics stats[m->n_stats] (Philox, keyed by seed): weights by spec.init,
 * biases 0 (PyTorch init: uniform), gamma 1, beta 0, running mean 0, running
 * variance 1. The same seed gives the same bits on every machine. */
void ds_mlp_init_params(const ds_mlp *m, float *params, float *stats, uint64_t seed);

/* Short description into buf[len] (truncated to fit), e.g.
 * "784-256-128-10 relu batchnorm dropout=0.2 (235146 parameters)". */
void ds_mlp_describe(const ds_mlp *m, char *buf, size_t len);

/* Name of the tensor holding flat parameter index i, layers counted from 1:
 * "fc2 weight", "fc1 bias", "fc1 batchnorm gamma"; "parameter i" past the end. */
void ds_mlp_param_name(const ds_mlp *m, size_t i, char *buf, size_t len);

/* "relu", "leaky_relu", "tanh", "sigmoid" (static strings), and back:
 * parse returns 0, or -1 for another name (*out untouched). */
const char *ds_activation_name(ds_activation a);
int ds_activation_parse(const char *s, ds_activation *out);

#ifdef __cplusplus
}
#endif
#endif
