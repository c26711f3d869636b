/* `descent eval`: rebuild the model from a checkpoint's header, load its
 * parameters and statistics, and report test loss and accuracy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "descent/checkpoint.h"
#include "descent/common.h"
#include "descent/interop.h"
#include "descent/train.h"
#include "plot/confusion_svg.h"
#include "plot/picture.h"

static const char *eval_summary =
    "Evaluate a checkpoint written by `descent train --save` on a test set. The model\n"
    "(widths, activation, batchnorm, dropout form) and its input scaling come from the\n"
    "checkpoint; only the test files are read (--data DIR needs just the t10k files).\n"
    "Prints the accuracy of every class and the confusion matrix (rows: true class,\n"
    "columns: predicted class); --confusion draws it.";

/* The confusion table: rows true class, columns predicted (up to 32 classes). */
static void print_confusion(const long *cm, int C, const long *total) {
  printf("class  samples  accuracy\n");
  char a[32];
  for (int i = 0; i < C; i++)
    printf("%5d  %7ld  %s\n", i, total[i], total[i] ? ds_format_number(a, sizeof a, (double)cm[(size_t)i * C + i] / total[i]) : "-");
  if (C > 32) {
    printf("confusion matrix: %d classes; see --json or --confusion FILE.svg\n", C);
    return;
  }
  printf("confusion matrix (rows: true class, columns: predicted class)\n     ");
  for (int j = 0; j < C; j++) printf(" %5d", j);
  printf("\n");
  for (int i = 0; i < C; i++) {
    printf("%5d", i);
    for (int j = 0; j < C; j++) printf(" %5ld", cm[(size_t)i * C + j]);
    printf("\n");
  }
}

/* ,"per_class_accuracy":[...],"confusion":[[...],...] */
static void json_confusion(const long *cm, int C, const long *total) {
  char a[32];
  printf(",\"per_class_accuracy\":[");
  for (int i = 0; i < C; i++)
    printf("%s%s", i ? "," : "", total[i] ? ds_json_number(a, sizeof a, (double)cm[(size_t)i * C + i] / total[i]) : "null");
  printf("],\"confusion\":[");
  for (int i = 0; i < C; i++) {
    printf("%s[", i ? "," : "");
    for (int j = 0; j < C; j++) printf("%s%ld", j ? "," : "", cm[(size_t)i * C + j]);
    printf("]");
  }
  printf("]");
}

int ds_cmd_eval(int argc, char **argv) {
  ds_data_source src = {0};
  const char *path = NULL, *backend = "auto", *confusion = NULL;
  int device = 0, json = 0, quiet = 0;
  ds_flag flags[32] = {
    {"--checkpoint", DS_FLAG_STRING, &path, "FILE", "checkpoint to evaluate (required)", .group = "Model"},
  };
  int n = 1 + ds_cli_data_flags(flags + 1, &src);
  ds_flag run_flags[] = {
    {"--backend", DS_FLAG_STRING, &backend, "auto|cpu|cuda", "where the math runs (auto: CUDA when a GPU is present)", .group = "Run"},
    {"--device", DS_FLAG_INT, &device, "N", "CUDA device index", "[0,inf)"},
    {"--json", DS_FLAG_BOOL, &json, NULL, "print one JSON object with the results on stdout"},
    {"--quiet", DS_FLAG_BOOL, &quiet, NULL, "nothing on stderr but errors (no notes)"},
    {"--confusion", DS_FLAG_STRING, &confusion, "FILE.svg|FILE.png", "draw the confusion matrix: counts in labelled cells, shaded by the share of the true class"},
    {NULL},
  };
  memcpy(flags + n, run_flags, sizeof run_flags);
  ds_flags_parse("eval", flags, argc, argv, NULL, 0, "--checkpoint FILE [flags]", eval_summary);
  ds_set_quiet(quiet);
  if (!path) ds_fatal(DS_EXIT_USAGE, "eval: --checkpoint FILE is required");
  if (strcmp(backend, "auto") && strcmp(backend, "cpu") && strcmp(backend, "cuda"))
    ds_fatal(DS_EXIT_USAGE, "eval: --backend: expected auto, cpu or cuda, got '%s'", backend);
  char err[DS_PATH_MAX + 512];
  int code;
  if (confusion && (code = ds_picture_check("--confusion", confusion, err, sizeof err)) != 0) ds_fatal(code, "eval: %s", err);

  ds_checkpoint ck;
  if (ds_checkpoint_read(path, &ck, err, sizeof err) != DS_CKPT_OK) ds_fatal(DS_EXIT_USAGE, "%s", err);
  const ds_backend *be = ds_backend_select(backend, device);
  ds_train_config cfg = ck.cfg;
  cfg.quiet = 1;
  ds_dataset train, test;
  ds_trainer t;
  if (ck.has_scaling || !cfg.standardize) {
    /* the model and its input scaling come from the checkpoint: the test set is all it needs */
    src.classes = ck.n_classes;
    ds_data_load_test(&src, &test);
    if (test.d != ck.n_inputs)
      ds_fatal(DS_EXIT_USAGE, "%s: the images have %d values (%dx%d), the model takes %d", path, test.d, test.rows,
               test.cols, ck.n_inputs);
    if (test.n_classes > ck.n_classes)
      ds_fatal(DS_EXIT_USAGE, "%s: the test labels go up to %d, the model has %d classes", path, test.n_classes - 1,
               ck.n_classes);
    test.n_classes = ck.n_classes;
    cfg.val_fraction = 0.0f; /* the trainer's "training set" here is the test set: nothing is trained */
    cfg.batch_size = 2, cfg.drop_last = 1, cfg.accum = 1;
    train = test;
    ds_trainer_init(&t, be, &cfg, &test, &test);
    train.images = train.labels = NULL; /* shared with test */
  } else {
    /* a version-1 checkpoint with --standardize: the scaling comes from the training data, as it did */
    ds_data_load(&src, &train, &test);
    ds_trainer_init(&t, be, &cfg, &train, &test);
  }
  if (ds_checkpoint_check(&ck, &t, err, sizeof err) != 0)
    ds_fatal(DS_EXIT_USAGE, "%s: does not fit this data: %s", path, err);
  ds_checkpoint_restore(&t, &ck);
  double loss, acc;
  ds_trainer_evaluate(&t, t.test_images, t.test_labels, t.n_test, &loss, &acc);
  /* the confusion matrix from the logits (the same forward pass; the same first-largest argmax) */
  int C = t.model.n_classes;
  float *logits = ds_xmalloc(ds_mul_size((size_t)t.n_test, (size_t)C * sizeof(float)), "the logits");
  ds_trainer_logits(&t, t.test_images, t.test_labels, t.n_test, logits);
  long *cm = ds_xcalloc((size_t)C * (size_t)C, sizeof(long), "the confusion matrix");
  long *total = ds_xcalloc((size_t)C, sizeof(long), "the class counts");
  for (int i = 0; i < t.n_test; i++) {
    int y = test.labels[i];
    cm[(size_t)y * C + ds_argmax(logits + (size_t)i * C, C)]++;
    total[y]++;
  }
  free(logits);
  char ls[32], as[32], ps[2 * DS_PATH_MAX];
  if (json) {
    printf("{\"checkpoint\":%s,\"backend\":\"%s\",\"params\":%zu,\"epochs\":%ld,\"steps\":%ld,"
           "\"test_samples\":%d,\"test_loss\":%s,\"test_accuracy\":%s",
           ds_json_string(ps, sizeof ps, path), be->name, t.model.n_params, t.epoch, t.step, t.n_test, ds_json_number(ls, sizeof ls, loss),
           ds_json_number(as, sizeof as, acc));
    json_confusion(cm, C, total);
    printf("}\n");
  } else {
    printf("test_accuracy %s  test_loss %s  (%d samples; checkpoint after %ld update%s, %ld full epoch%s)\n",
           ds_format_number(as, sizeof as, acc), ds_format_number(ls, sizeof ls, loss), t.n_test, t.step, t.step == 1 ? "" : "s", t.epoch, t.epoch == 1 ? "" : "s");
    print_confusion(cm, C, total);
  }
  if (confusion) {
    const char *base = strrchr(path, '/');
    char sub[256];
    snprintf(sub, sizeof sub, "%s: %d test samples, accuracy %s", base ? base + 1 : path, t.n_test, ds_format_number(as, sizeof as, acc));
    ds_confusion_picture pic = {C, cm, "Confusion matrix", sub};
    if (ds_picture_write(confusion, ds_confusion_svg, &pic, err, sizeof err) != 0) ds_fatal(DS_EXIT_RUNTIME, "eval: --confusion %s", err);
  }
  free(cm);
  free(total);
  if (fflush(stdout) != 0) ds_fatal(DS_EXIT_RUNTIME, "cannot write to standard output");
  ds_checkpoint_free(&ck);
  ds_trainer_free(&t);
  ds_dataset_free(&train);
  ds_dataset_free(&test);
  return DS_EXIT_OK;
}
