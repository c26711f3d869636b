/* `descent train --preset NAME`: the published test problems of optimizer
 * benchmarks, as flag defaults. A preset is a list of flags placed before the
 * user's own; a flag the user gives wins (the preset's is left out). */
#include <stdio.h>
#include <string.h>

#include "cli/presets.h"
#include "descent/common.h"

static const ds_preset presets[] = {
  {"deepobs-fmnist-mlp",
   "DeepOBS fmnist_mlp: 784-1000-500-100-10 ReLU, truncated normal std 0.03, zero biases, batch 128, 100 epochs, "
   "no regularisation (deepobs/tensorflow/testproblems/_mlp.py, fmnist_mlp.py; deepobs/config.py)",
   {"--dataset", "fashion-mnist", "--hidden", "1000,500,100", "--activation", "relu", "--init", "trunc-normal:0.03",
    "--batch-size", "128", "--epochs", "100", NULL}},
  {"deepobs-mnist-mlp",
   "DeepOBS mnist_mlp: the same network and protocol on MNIST (deepobs/tensorflow/testproblems/mnist_mlp.py)",
   {"--dataset", "mnist", "--hidden", "1000,500,100", "--activation", "relu", "--init", "trunc-normal:0.03",
    "--batch-size", "128", "--epochs", "100", NULL}},
  {"algoperf-mnist",
   "AlgoPerf's MNIST development workload: 784-128 sigmoid-10, inputs normalised with mean 0.1307 and std 0.3081, "
   "a 50k/10k train/validation split (1/6 held out), target 0.97 validation accuracy, 60 s of training "
   "(algorithmic_efficiency/workloads/mnist)",
   {"--dataset", "mnist", "--hidden", "128", "--activation", "sigmoid", "--normalize", "0.1307,0.3081",
    "--val-fraction", "0.16666667", "--target-accuracy", "0.97", "--max-seconds", "60", "--epochs", "1000", NULL}},
};

const ds_preset *ds_preset_find(const char *name) {
  for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
    if (strcmp(presets[i].name, name) == 0) return &presets[i];
  return NULL;
}

const char *ds_preset_names(void) { return "deepobs-fmnist-mlp, deepobs-mnist-mlp, algoperf-mnist"; }

/* Whether argv[0..argc) gives `flag` (as "--flag V" or "--flag=V"). */
static int argv_gives(int argc, char **argv, const char *flag) {
  size_t n = strlen(flag);
  for (int i = 0; i < argc; i++)
    if (strncmp(argv[i], flag, n) == 0 && (argv[i][n] == '\0' || argv[i][n] == '=')) return 1;
  return 0;
}

const char *ds_preset_scan(int argc, char **argv) {
  const char *name = NULL;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) break;
    if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc) name = argv[i + 1];
    else if (strncmp(argv[i], "--preset=", 9) == 0) name = argv[i] + 9;
  }
  return name;
}

int ds_preset_expand(const ds_preset *p, int argc, char **argv, char **out, int max_out) {
  int n = 0;
  for (int i = 0; p->args[i]; i += 2) {
    if (argv_gives(argc, argv, p->args[i])) continue;
    /* --standardize is the user's choice of input scaling: the preset's --normalize gives way */
    if (strcmp(p->args[i], "--normalize") == 0 && argv_gives(argc, argv, "--standardize")) continue;
    /* --dataset is a default only when no other data flag chooses the data */
    if (strcmp(p->args[i], "--dataset") == 0 &&
        (argv_gives(argc, argv, "--data") || argv_gives(argc, argv, "--train-images")))
      continue;
    if (n + 2 > max_out) ds_fatal(DS_EXIT_RUNTIME, "internal: preset %s has too many flags", p->name);
    out[n++] = (char *)p->args[i];
    out[n++] = (char *)p->args[i + 1];
  }
  for (int i = 0; i < argc; i++) {
    if (n + 1 > max_out) ds_fatal(DS_EXIT_USAGE, "too many arguments (%d)", argc);
    out[n++] = argv[i];
  }
  return n;
}
