/* Train an MLP through libdescent's public API and print its test accuracy.
 *
 *   train_mnist IMAGES LABELS [UPDATES]
 *
 * IMAGES and LABELS are IDX files (raw or .gz), for example the 10,000 MNIST
 * test digits t10k-images-idx3-ubyte.gz / t10k-labels-idx1-ubyte.gz, or
 * Fashion-MNIST's; the last 20% are held out as the test set. Build it
 * against the installed library:
 *
 *   cc train_mnist.c $(pkg-config --cflags --libs descent) -o train_mnist
 *
 * (or with CMake: examples/CMakeLists.txt, find_package(descent)). */
#include <stdio.h>
#include <stdlib.h>

#include <descent/backend.h>
#include <descent/common.h>
#include <descent/train.h>

int main(int argc, char **argv) {
  /* an OpenBLAS older than the CPU would run its slow SSE3 kernels: run
     again with the CPU's own (descent/backend.h) */
  ds_backend_cpu_blas_reexec(argv);
  if (argc < 3) {
    fprintf(stderr, "usage: %s IMAGES LABELS [UPDATES]\n", argv[0]);
    return DS_EXIT_USAGE;
  }
  long updates = argc > 3 ? atol(argv[3]) : 1000;
  if (updates < 1) {
    fprintf(stderr, "%s: UPDATES must be a positive integer\n", argv[0]);
    return DS_EXIT_USAGE;
  }

  /* the data: one labelled file, its last 20% held out for testing */
  ds_data_source src = {0};
  src.train_images = argv[1];
  src.train_labels = argv[2];
  src.test_fraction = 0.2f;
  ds_dataset train, test;
  ds_data_load(&src, &train, &test); /* exits 2 with one line on a bad file */

  /* the run: 784-128-10 ReLU with BatchNorm, Adam, batches of 64 */
  ds_train_config cfg;
  ds_train_config_defaults(&cfg);
  cfg.model.n_hidden = 1;
  cfg.model.hidden[0] = 128;
  cfg.model.batchnorm = 1;
  ds_optim_defaults(&cfg.optim, DS_OPT_ADAM);
  cfg.optim.lr = 1e-3f;
  cfg.batch_size = 64;
  cfg.steps = updates;
  cfg.quiet = 1;

  /* CUDA when the library has it and a GPU is present, else the CPU */
  const ds_backend *be = ds_backend_select("auto", 0);
  ds_trainer t;
  ds_trainer_init(&t, be, &cfg, &train, &test);
  ds_train_result r;
  ds_train_run(&t, &r);
  printf("test accuracy %.4f (test loss %.4f) after %ld updates on %s (%d training, %d test images)\n",
         r.test_accuracy, r.test_loss, r.steps, be->name, t.n_train, t.n_test);
  ds_train_result_free(&r); /* the learning curve */
  ds_trainer_free(&t);
  ds_dataset_free(&train);
  ds_dataset_free(&test);
  return 0;
}
