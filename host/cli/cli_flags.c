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

int ds_cli_model_flags(ds_flag *out, ds_train_config *cfg) {
  ds_flag f[DS_MODEL_FLAG_COUNT] = {
    {"--standardize", DS_FLAG_BOOL, &cfg->standardize, NULL, "standardise pixels with the training set's mean and std (default: scale to [0,1])"},
    {"--hidden", DS_FLAG_CUSTOM, &cfg->model, "W1,W2,..", "hidden layer widths, or none", .parse = ds_cli_parse_hidden, .default_text = "256,128", .group = "Model"},
    {"--activation", DS_FLAG_CHOICE, &cfg->model.activation, NULL, "hidden activation", .choices = activations},
    {"--leaky-slope", DS_FLAG_FLOAT, &cfg->model.leaky_slope, "S", "negative slope of leaky_relu", "[0,1)"},
    {"--batchnorm", DS_FLAG_BOOL, &cfg->model.batchnorm, NULL, "BatchNorm1d after each hidden linear layer"},
    {"--bn-momentum", DS_FLAG_FLOAT, &cfg->model.bn_momentum, "M", "running-statistics momentum (PyTorch convention)", "[0,1]"},
    {"--bn-eps", DS_FLAG_FLOAT, &cfg->model.bn_eps, "E", "batchnorm epsilon", "(0,inf)"},
    {"--dropout", DS_FLAG_FLOAT, &cfg->model.dropout, "P", "dropout probability after each hidden activation", "[0,1)"},
    {"--input-dropout", DS_FLAG_FLOAT, &cfg->model.input_dropout, "P", "dropout probability on the input pixels", "[0,1)"},
    {"--dropout-form", DS_FLAG_CHOICE, &cfg->model.dropout_form, NULL, "inverted: kept/(1-p) in training; scale-at-test: x*(1-p) at test", .choices = dropout_forms},
    {"--init", DS_FLAG_CHOICE, &cfg->model.init, NULL, "weight init; auto = He (relu) or Xavier (tanh/sigmoid), normal", .choices = inits},
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
