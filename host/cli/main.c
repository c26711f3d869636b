/* descent — one binary, subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "descent/backend.h"
#include "descent/common.h"
#include "report/report.h"
#include "dist/dist.h"

static void print_help(void) {
  printf("descent %s — train multilayer perceptrons on the CPU or an NVIDIA GPU\n\n"
         "usage: descent <command> [flags]\n\n"
         "commands:\n"
         "  train        train and evaluate an MLP (descent train --help)\n"
         "  eval         evaluate a checkpoint on a test set: accuracy per class, confusion matrix\n"
         "  predict      the class and class probabilities of every image of a file (CSV, .npy logits)\n"
         "  export       a checkpoint's model as .safetensors or .npz with PyTorch state_dict names\n"
         "  playground   optimizers on the course's toy functions: CSV and pictures\n"
         "  plot         draw a training log (descent train --log): losses, accuracies, gradient norms\n"
         "  verify       the same steps on the CPU and the GPU, largest error per tensor\n"
         "  sweep        many training runs: grids, random search, seeds; one JSON line each (descent sweep --help)\n"
         "  report       tables and pictures of an optimizer benchmark from sweep result files\n\n"
         "flags:\n"
         "  --help       this text\n"
         "  --version    version, CUDA, MPI and NCCL support, the device found\n\n"
         "exit status: 0 success, 1 runtime failure (I/O, device, numerical),\n"
         "             2 bad usage or input, 77 a GPU was asked for and none is present,\n"
         "             130 interrupted (Ctrl-C)\n",
         DESCENT_VERSION);
}

static void print_version(void) {
  printf("descent %s\n", DESCENT_VERSION);
  printf("cpu: %s\n", ds_backend_cpu()->device);
  const char *core = ds_backend_cpu_blas_coretype_set();
  if (core)
    printf("cpu: OpenBLAS did not recognise this CPU (its SSE3 Prescott kernels); descent set OPENBLAS_CORETYPE=%s\n",
           core);
  printf("json: %s\n", ds_report_json_available() ? "Jansson (descent report)" : "not compiled in (descent report needs libjansson-dev)");
  char dist[160];
  printf("mpi: %s\n", ds_dist_describe(dist, sizeof dist)); /* data-parallel training (mpirun) */
  if (!ds_cuda_compiled()) {
    printf("cuda: not compiled in\n");
    return;
  }
  char why[256] = "";
  const ds_backend *be = ds_backend_cuda(0, why, sizeof why);
  printf("cuda: compiled in; %s\n", be ? be->device : why);
}

int main(int argc, char **argv) {
  ds_backend_cpu_blas_reexec(argv); /* OpenBLAS on a CPU newer than it: its fast kernels */
  if (argc < 2) {
    print_help();
    return DS_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    print_help();
    return DS_EXIT_OK;
  }
  if (strcmp(cmd, "--version") == 0) {
    print_version();
    return DS_EXIT_OK;
  }
  if (strcmp(cmd, "train") == 0) return ds_cmd_train(argc - 2, argv + 2);
  if (strcmp(cmd, "eval") == 0) return ds_cmd_eval(argc - 2, argv + 2);
  if (strcmp(cmd, "predict") == 0) return ds_cmd_predict(argc - 2, argv + 2);
  if (strcmp(cmd, "export") == 0) return ds_cmd_export(argc - 2, argv + 2);
  if (strcmp(cmd, "playground") == 0) return ds_cmd_playground(argc - 2, argv + 2);
  if (strcmp(cmd, "plot") == 0) return ds_cmd_plot(argc - 2, argv + 2);
  if (strcmp(cmd, "verify") == 0) return ds_cmd_verify(argc - 2, argv + 2);
  if (strcmp(cmd, "sweep") == 0) return ds_cmd_sweep(argc - 2, argv + 2);
  if (strcmp(cmd, "report") == 0) return ds_cmd_report(argc - 2, argv + 2);
  ds_fatal(DS_EXIT_USAGE, "unknown command '%s' (see 'descent --help')", cmd);
}
