/* `descent predict --checkpoint M --images FILE`: the class and class
 * probabilities of every image (CSV), or the logits as a float32 .npy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "descent/checkpoint.h"
#include "descent/common.h"
#include "descent/data.h"
#include "descent/interop.h"
#include "descent/train.h"

static const char *predict_summary =
    "Predict the class of every image of an IDX file (raw or .gz) with a checkpoint's model\n"
    "and its input scaling. CSV on stdout (or --out FILE.csv): index, predicted class, then the\n"
    "probability of every class (p0, p1, ...) or, with --top K, the K most probable classes and\n"
    "their probabilities. --out FILE.npy writes the logits instead: float32 [images, classes].";

/* one CSV row: index, class, then all probabilities or the top K (class, probability) */
static int write_row(FILE *f, long i, const float *logit, int C, int top, double *prob, int *order) {
  double mx = logit[0], sum = 0.0;
  for (int c = 1; c < C; c++) mx = logit[c] > mx ? logit[c] : mx;
  for (int c = 0; c < C; c++) sum += prob[c] = exp((double)logit[c] - mx);
  for (int c = 0; c < C; c++) prob[c] /= sum;
  char v[32];
  int bad = fprintf(f, "%ld,%d", i, ds_argmax(logit, C)) < 0;
  if (top == 0) {
    for (int c = 0; c < C; c++) bad |= fprintf(f, ",%s", ds_format_shortest(v, sizeof v, (float)prob[c])) < 0;
  } else {
    for (int c = 0; c < C; c++) order[c] = c;
    for (int k = 0; k < top; k++) { /* selection: the largest logit first, ties by class */
      int best = k;
      for (int c = k + 1; c < C; c++)
        if (logit[order[c]] > logit[order[best]]) best = c;
      int tmp = order[k];
      order[k] = order[best], order[best] = tmp;
      bad |= fprintf(f, ",%d,%s", order[k], ds_format_shortest(v, sizeof v, (float)prob[order[k]])) < 0;
    }
  }
  return bad | (fputc('\n', f) == EOF);
}

int ds_cmd_predict(int argc, char **argv) {
  const char *path = NULL, *images = NULL, *out = NULL, *backend = "auto";
  int top = 0, device = 0, quiet = 0;
  ds_flag flags[] = {
    {"--checkpoint", DS_FLAG_STRING, &path, "FILE", "the model (descent train --save; required)", .group = "Model and data"},
    {"--images", DS_FLAG_STRING, &images, "FILE", "the images: IDX, raw or .gz, of the checkpoint's image size (required)"},
    {"--top", DS_FLAG_INT, &top, "K", "CSV: the K most probable classes and their probabilities instead of all (0 = all)", "[0,256]", .group = "Output"},
    {"--out", DS_FLAG_STRING, &out, "FILE.csv|FILE.npy", "write the CSV to a file, or the logits as a float32 .npy [images, classes]", .default_text = "CSV on stdout"},
    {"--backend", DS_FLAG_STRING, &backend, "auto|cpu|cuda", "where the math runs (auto: CUDA when a GPU is present)", .group = "Run"},
    {"--device", DS_FLAG_INT, &device, "N", "CUDA device index", "[0,inf)"},
    {"--quiet", DS_FLAG_BOOL, &quiet, NULL, "nothing on stderr but errors (no notes)"},
    {NULL},
  };
  ds_flags_parse("predict", flags, argc, argv, NULL, 0, "--checkpoint FILE --images FILE [flags]", predict_summary);
  ds_set_quiet(quiet);
  if (!path) ds_fatal(DS_EXIT_USAGE, "predict: --checkpoint FILE is required");
  if (!images) ds_fatal(DS_EXIT_USAGE, "predict: --images FILE is required");
  if (strcmp(backend, "auto") && strcmp(backend, "cpu") && strcmp(backend, "cuda"))
    ds_fatal(DS_EXIT_USAGE, "predict: --backend: expected auto, cpu or cuda, got '%s'", backend);
  int npy = out && ds_path_has_suffix(out, ".npy");
  if (out && !npy && !ds_path_has_suffix(out, ".csv"))
    ds_fatal(DS_EXIT_USAGE, "predict: --out %s: the name must end in .csv or .npy", out);
  if (npy && ds_flag_given(flags, "--top"))
    ds_fatal(DS_EXIT_USAGE, "predict: --top: applies to the CSV output, not to --out %s (the logits of every class)", out);
  char err[DS_PATH_MAX + 512];
  int code;
  if (out && (code = ds_output_check("--out", out, err, sizeof err)) != 0) ds_fatal(code, "predict: %s", err);

  ds_checkpoint ck;
  if (ds_checkpoint_read(path, &ck, err, sizeof err) != DS_CKPT_OK) ds_fatal(DS_EXIT_USAGE, "predict: %s", err);
  if (!ck.has_scaling && ck.cfg.standardize)
    ds_fatal(DS_EXIT_USAGE, "predict: %s: a version-1 checkpoint trained with --standardize does not store its input "
             "scaling (descent eval with the training data still works)", path);
  if (top > ck.n_classes) ds_fatal(DS_EXIT_USAGE, "predict: --top %d: the model has %d classes", top, ck.n_classes);
  ds_idx idx;
  if (ds_idx_read(images, DS_IDX_MAGIC_IMAGES, &idx, err, sizeof err) != 0) ds_fatal(DS_EXIT_USAGE, "predict: %s", err);
  int n = (int)idx.dims[0];
  if ((int)idx.item_size != ck.n_inputs)
    ds_fatal(DS_EXIT_USAGE, "predict: %s: the images have %zu values (%ux%u), the model takes %d", images, idx.item_size,
             idx.dims[1], idx.dims[2], ck.n_inputs);
  if (n < 1) ds_fatal(DS_EXIT_USAGE, "predict: %s: holds no images", images);

  /* the images as the trainer's data (at least 2 rows: a BatchNorm model
   * needs batches of 2 to be built, although nothing is trained) */
  int rows = n < 2 ? 2 : n;
  ds_dataset set = {.n = rows, .d = ck.n_inputs, .rows = (int)idx.dims[1], .cols = (int)idx.dims[2], .n_classes = ck.n_classes};
  set.images = ds_xcalloc((size_t)rows, idx.item_size, "the images");
  memcpy(set.images, idx.data, (size_t)n * idx.item_size);
  set.labels = ds_xcalloc((size_t)rows, 1, "the labels");
  set.labels[rows - 1] = (uint8_t)(ck.n_classes - 1); /* labels span the classes (unused) */
  ds_idx_free(&idx);
  const ds_backend *be = ds_backend_select(backend, device);
  ds_train_config cfg = ck.cfg;
  cfg.quiet = 1;
  cfg.val_fraction = 0.0f;
  cfg.batch_size = 2, cfg.drop_last = 1, cfg.accum = 1;
  ds_trainer t;
  ds_trainer_init(&t, be, &cfg, &set, &set);
  if (ds_checkpoint_check(&ck, &t, err, sizeof err) != 0) ds_fatal(DS_EXIT_USAGE, "predict: %s: %s", path, err);
  ds_checkpoint_restore(&t, &ck);
  int C = ck.n_classes;
  float *logits = ds_xmalloc(ds_mul_size((size_t)rows, (size_t)C * sizeof(float)), "the logits");
  ds_trainer_logits(&t, t.test_images, t.test_labels, n, logits);

  if (npy) {
    ds_tensor lt = {.name = "logits", .dtype = DS_DTYPE_F32, .ndim = 2, .shape = {n, C}, .data = logits,
                    .bytes = (size_t)n * (size_t)C * sizeof(float)};
    if (ds_npy_write(out, &lt, err, sizeof err) != 0) ds_fatal(DS_EXIT_RUNTIME, "predict: --out %s", err);
  } else {
    ds_atomic_file a = {0};
    FILE *f = stdout;
    if (out) {
      if (ds_atomic_open(&a, out, err, sizeof err) != 0) ds_fatal(DS_EXIT_RUNTIME, "predict: --out %s: %s", out, err);
      f = a.f;
    }
    int bad = fprintf(f, "index,class") < 0;
    for (int k = 0; k < (top ? top : C); k++) bad |= (top ? fprintf(f, ",top%d,p_top%d", k + 1, k + 1) : fprintf(f, ",p%d", k)) < 0;
    bad |= fputc('\n', f) == EOF;
    double *prob = ds_xmalloc((size_t)C * sizeof(double), "probabilities");
    int *order = ds_xmalloc((size_t)C * sizeof(int), "an order");
    for (int i = 0; i < n && !bad; i++) bad = write_row(f, i, logits + (size_t)i * (size_t)C, C, top, prob, order);
    free(prob);
    free(order);
    if (out) {
      if (ds_atomic_commit(&a, bad, err, sizeof err) != 0) ds_fatal(DS_EXIT_RUNTIME, "predict: --out %s: %s", out, err);
    } else if (bad || fflush(stdout) != 0)
      ds_fatal(DS_EXIT_RUNTIME, "predict: cannot write to standard output");
  }
  free(logits);
  ds_trainer_free(&t);
  free(set.images);
  free(set.labels);
  ds_checkpoint_free(&ck);
  return DS_EXIT_OK;
}
