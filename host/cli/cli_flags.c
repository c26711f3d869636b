#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "descent/common.h"

int ds_cli_data_flags(ds_flag *out, ds_data_source *src) {
  ds_flag f[DS_DATA_FLAG_COUNT] = {
    {"--data", DS_FLAG_STRING, &src->data_dir, "DIR", "folder with the four IDX files (train-images-idx3-ubyte[.gz], ...)", .group = "Data"},
    {"--dataset", DS_FLAG_STRING, &src->dataset, "NAME", "fashion-mnist (" DS_DEFAULT_DATA_DIR ") or mnist (datasets/fetch-mnist.sh)", .default_text = "fashion-mnist"},
    {"--train-images", DS_FLAG_STRING, &src->train_images, "FILE", "training images (IDX, raw or .gz)"},
    {"--train-labels", DS_FLAG_STRING, &src->train_labels, "FILE", "training labels"},
    {"--test-images", DS_FLAG_STRING, &src->test_images, "FILE", "test images"},
    {"--test-labels", DS_FLAG_STRING, &src->test_labels, "FILE", "test labels"},
    {"--test-fraction", DS_FLAG_FLOAT, &src->test_fraction, "F", "hold out the last F of the training file as the test set", "(0,1)", .default_text = "off"},
  };
  memcpy(out, f, sizeof f);
  return DS_DATA_FLAG_COUNT;
}

static const char *const activations[] = {"relu", "leaky_relu", "tanh", "sigmoid", NULL};
static const char *const dropout_forms[] = {"inverted", "scale-at-test", NULL};
static const char *const inits[] = {"auto", "he-normal", "he-uniform", "xavier-normal", "xavier-uniform", "pytorch", NULL};
const char *const ds_cli_samplings[] = {"shuffle", "replacement", "sequential", NULL};
const char *const ds_cli_nonfinite_modes[] = {"stop", "skip", NULL};

/* --init NAME | trunc-normal:STD (into ds_mlp_spec) */
static int parse_init(const char *value, void *ptr, char *err, size_t errlen) {
  ds_mlp_spec *spec = ptr;
  static const char prefix[] = "trunc-normal:";
  if (strncmp(value, prefix, sizeof prefix - 1) == 0) {
    double std;
    if (ds_parse_double(value + sizeof prefix - 1, &std) != 0 || !(std > 0.0) || std > 1e6) {
      snprintf(err, errlen, "trunc-normal:STD: expected a standard deviation in (0, 1e6]");
      return -1;
    }
    spec->init = DS_INIT_TRUNC_NORMAL;
    spec->init_std = (float)std;
    return 0;
  }
  for (int i = 0; inits[i]; i++)
    if (strcmp(value, inits[i]) == 0) {
      spec->init = (ds_init)i;
      spec->init_std = 0.0f;
      return 0;
    }
  snprintf(err, errlen, "expected auto, he-normal, he-uniform, xavier-normal, xavier-uniform, pytorch or trunc-normal:STD");
  return -1;
}

/* --normalize MEAN,STD */
static int parse_normalize(const char *value, void *ptr, char *err, size_t errlen) {
  ds_train_config *cfg = ptr;
  char buf[64];
  const char *comma = strchr(value, ',');
  if (!comma || (size_t)(comma - value) >= sizeof buf) {
    snprintf(err, errlen, "expected MEAN,STD (two numbers, for example 0.1307,0.3081)");
    return -1;
  }
  memcpy(buf, value, (size_t)(comma - value));
  buf[comma - value] = '\0';
  double mean, std;
  if (ds_parse_double(buf, &mean) != 0 || ds_parse_double(comma + 1, &std) != 0 || fabs(mean) > 1e6 ||
      !(std > 1e-6) || std > 1e6) {
    snprintf(err, errlen, "expected MEAN,STD with |MEAN| <= 1e6 and STD in (1e-6, 1e6] (for example 0.1307,0.3081)");
    return -1;
  }
  cfg->norm_mean = (float)mean;
  cfg->norm_std = (float)std;
  return 0;
}

static void format_hidden(const void *ptr, char *buf, size_t len) {
  const ds_mlp_spec *spec = ptr;
  size_t n = 0;
  buf[0] = '\0';
  if (spec->n_hidden == 0) snprintf(buf, len, "none");
  for (int i = 0; i < spec->n_hidden && n < len; i++)
    n += (size_t)snprintf(buf + n, len - n, "%s%d", i ? "," : "", spec->hidden[i]);
}

static void format_init(const void *ptr, char *buf, size_t len) {
  const ds_mlp_spec *spec = ptr;
  char sd[32];
  if (spec->init == DS_INIT_TRUNC_NORMAL) snprintf(buf, len, "trunc-normal:%s", ds_json_float(sd, sizeof sd, spec->init_std));
  else snprintf(buf, len, "%s", inits[spec->init]);
}

static void format_normalize(const void *ptr, char *buf, size_t len) {
  const ds_train_config *cfg = ptr;
  char m[32], sd[32];
  if (cfg->norm_std > 0.0f)
    snprintf(buf, len, "%s,%s", ds_json_float(m, sizeof m, cfg->norm_mean), ds_json_float(sd, sizeof sd, cfg->norm_std));
  else buf[0] = '\0';
}

void ds_cli_format_batch(const void *ptr, char *buf, size_t len) {
  int b = *(const int *)ptr;
  if (b <= 0) snprintf(buf, len, "full");
  else snprintf(buf, len, "%d", b);
}

int ds_cli_model_flags(ds_flag *out, ds_train_config *cfg) {
  ds_flag f[DS_MODEL_FLAG_COUNT] = {
    {"--standardize", DS_FLAG_BOOL, &cfg->standardize, NULL, "standardise pixels with the training set's mean and std (default: scale to [0,1])"},
    {"--hidden", DS_FLAG_CUSTOM, &cfg->model, "W1,W2,..", "hidden layer widths, or none", .parse = ds_cli_parse_hidden, .format = format_hidden, .default_text = "256,128", .group = "Model"},
    {"--activation", DS_FLAG_CHOICE, &cfg->model.activation, NULL, "hidden activation", .choices = activations},
    {"--leaky-slope", DS_FLAG_FLOAT, &cfg->model.leaky_slope, "S", "negative slope of leaky_relu", "[0,1)"},
    {"--batchnorm", DS_FLAG_BOOL, &cfg->model.batchnorm, NULL, "BatchNorm1d after each hidden linear layer"},
    {"--bn-momentum", DS_FLAG_FLOAT, &cfg->model.bn_momentum, "M", "running-statistics momentum (PyTorch convention)", "[0,1]"},
    {"--bn-eps", DS_FLAG_FLOAT, &cfg->model.bn_eps, "E", "batchnorm epsilon", "(0,inf)"},
    {"--dropout", DS_FLAG_FLOAT, &cfg->model.dropout, "P", "dropout probability after each hidden activation", "[0,1)"},
    {"--input-dropout", DS_FLAG_FLOAT, &cfg->model.input_dropout, "P", "dropout probability on the input pixels", "[0,1)"},
    {"--dropout-form", DS_FLAG_CHOICE, &cfg->model.dropout_form, NULL, "inverted: kept/(1-p) in training; scale-at-test: x*(1-p) at test", .choices = dropout_forms},
    {"--init", DS_FLAG_CUSTOM, &cfg->model, "NAME", "weight init: auto (He for relu, Xavier for tanh/sigmoid; normal), he-normal, he-uniform, xavier-normal, xavier-uniform, pytorch, or trunc-normal:STD (N(0, STD^2) redrawn beyond 2 STD, biases 0: TensorFlow's truncated_normal, DeepOBS)", .parse = parse_init, .format = format_init, .default_text = "auto"},
    {"--normalize", DS_FLAG_CUSTOM, cfg, "MEAN,STD", "inputs (byte/255 - MEAN) / STD with given constants, as torchvision's Normalize (MNIST: 0.1307,0.3081)", .parse = parse_normalize, .format = format_normalize, .default_text = "off"},
  };
  memcpy(out, f, sizeof f);
  return DS_MODEL_FLAG_COUNT;
}

int ds_cli_parse_batch(const char *value, void *ptr, char *err, size_t errlen) {
  int *b = ptr;
  if (strcmp(value, "full") == 0) {
    *b = 0;
    return 0;
  }
  long v;
  if (ds_parse_long(value, &v) != 0 || v < 1 || v > 100000000) {
    snprintf(err, errlen, "expected an integer >= 1 or 'full'");
    return -1;
  }
  *b = (int)v;
  return 0;
}
