/* Dataset registry and loading: the four standard IDX files from a folder, or
 * explicit files, with an optional hold-out of the last part of the training
 * file as the test set. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "descent/common.h"
#include "descent/data.h"

const char *ds_dataset_dir(const char *name) {
  static char mnist_dir[1024];
  if (strcmp(name, "fashion-mnist") == 0) return DS_DEFAULT_DATA_DIR;
  if (strcmp(name, "mnist") == 0) {
    const char *env = getenv("DESCENT_MNIST_DIR");
    if (env && *env) return env;
    const char *home = getenv("HOME");
    snprintf(mnist_dir, sizeof mnist_dir, "%s/.cache/descent/mnist", home ? home : ".");
    return mnist_dir;
  }
  return NULL;
}

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* dir/stem or dir/stem.gz, whichever exists (NULL if neither). */
static const char *find_in_dir(const char *dir, const char *stem, char *buf, size_t len) {
  snprintf(buf, len, "%s/%s.gz", dir, stem);
  if (is_file(buf)) return buf;
  snprintf(buf, len, "%s/%s", dir, stem);
  if (is_file(buf)) return buf;
  return NULL;
}

static void load_pair(const char *images_path, const char *labels_path, ds_dataset *d) {
  char err[512];
  ds_idx im, lb;
  if (ds_idx_read(images_path, DS_IDX_MAGIC_IMAGES, &im, err, sizeof err) != 0) ds_fatal(DS_EXIT_USAGE, "%s", err);
  if (ds_idx_read(labels_path, DS_IDX_MAGIC_LABELS, &lb, err, sizeof err) != 0) {
    ds_idx_free(&im);
    ds_fatal(DS_EXIT_USAGE, "%s", err);
  }
  if (im.dims[0] != lb.dims[0]) {
    ds_idx_free(&im);
    ds_idx_free(&lb);
    ds_fatal(DS_EXIT_USAGE, "%s: holds %u labels but %s holds %u images", labels_path, lb.dims[0],
             images_path, im.dims[0]);
  }
  d->n = (int)im.dims[0];
  d->rows = (int)im.dims[1];
  d->cols = (int)im.dims[2];
  d->d = d->rows * d->cols;
  d->images = im.data;
  d->labels = lb.data;
  int maxl = 0;
  for (int i = 0; i < d->n; i++) maxl = d->labels[i] > maxl ? d->labels[i] : maxl;
  d->n_classes = maxl + 1;
}

/* The class count of a training set: --classes N when given (every label
 * below N), else the largest label + 1 provided every class from 0 to it
 * occurs (a gap is a corrupt label far more often than a real class that
 * never occurs). At least two distinct labels. Exits 2 naming the file. */
static void settle_classes(ds_dataset *d, int classes, const char *labels_path) {
  long count[256] = {0};
  for (int i = 0; i < d->n; i++) count[d->labels[i]]++;
  int distinct = 0, maxl = 0;
  for (int c = 0; c < 256; c++)
    if (count[c]) distinct++, maxl = c;
  if (distinct < 2)
    ds_fatal(DS_EXIT_USAGE, "%s: every label is %d, a single class: a classifier needs at least two", labels_path, maxl);
  if (classes > 0) {
    if (maxl >= classes)
      ds_fatal(DS_EXIT_USAGE, "%s: holds label %d, but --classes %d allows 0..%d (%ld such labels)", labels_path,
               maxl, classes, classes - 1, count[maxl]);
    d->n_classes = classes;
  } else {
    int missing = maxl + 1 - distinct;
    if (missing > 0) {
      int first = 0;
      while (count[first]) first++;
      ds_fatal(DS_EXIT_USAGE, "%s: the labels go up to %d, but %d of the %d classes 0..%d never occur (the first: %d); "
               "a corrupt label? If those classes are meant, give --classes %d", labels_path, maxl, missing, maxl + 1,
               maxl, first, maxl + 1);
    }
    d->n_classes = maxl + 1;
  }
}

static void split_tail(ds_dataset *train, ds_dataset *test, float fraction, const char *name) {
  int n_test = (int)((double)train->n * fraction + 0.5);
  if (n_test < 1 || n_test >= train->n)
    ds_fatal(DS_EXIT_USAGE, "--test-fraction %g: leaves %d test and %d training items of %s", (double)fraction,
             n_test, train->n - n_test, name);
  int n_train = train->n - n_test;
  *test = *train;
  test->n = n_test;
  test->images = ds_xmalloc((size_t)n_test * (size_t)train->d, "the test images");
  test->labels = ds_xmalloc((size_t)n_test, "the test labels");
  memcpy(test->images, train->images + (size_t)n_train * train->d, (size_t)n_test * train->d);
  memcpy(test->labels, train->labels + n_train, (size_t)n_test);
  train->n = n_train;
}

/* Where the four files are: explicit names, or the --data / --dataset folder
 * (each name raw or .gz). Exits 2 naming the flag when a pair is incomplete
 * or a folder lacks its files. p[0..3] = train images, train labels, test
 * images, test labels (the test pair NULL with --test-fraction); b* hold the
 * names found in a folder. */
typedef struct { const char *p[4]; char b[4][1100]; } data_paths;

static void resolve_paths(const ds_data_source *src, data_paths *dp) {
  const char *ti = src->train_images, *tl = src->train_labels;
  const char *vi = src->test_images, *vl = src->test_labels;
  if (!ti != !tl) ds_fatal(DS_EXIT_USAGE, "--train-images and --train-labels go together");
  if (!vi != !vl) ds_fatal(DS_EXIT_USAGE, "--test-images and --test-labels go together");
  if (!ti) {
    const char *dir = src->data_dir;
    const char *flag = "--data";
    if (!dir) {
      const char *name = src->dataset ? src->dataset : "fashion-mnist";
      dir = ds_dataset_dir(name);
      flag = "--dataset";
      if (!dir) ds_fatal(DS_EXIT_USAGE, "--dataset: unknown dataset '%s' (expected fashion-mnist or mnist)", name);
      if (!is_dir(dir)) {
        if (strcmp(name, "mnist") == 0)
          ds_fatal(DS_EXIT_USAGE, "--dataset mnist: %s does not exist; run datasets/fetch-mnist.sh (needs the internet) or pass --data DIR", dir);
        ds_fatal(DS_EXIT_USAGE, "--dataset %s: %s does not exist; install it with 'make deps' (Debian package dataset-fashion-mnist) or pass --data DIR", name, dir);
      }
    } else if (!is_dir(dir)) {
      ds_fatal(DS_EXIT_USAGE, "--data: %s is not a directory", dir);
    }
    ti = find_in_dir(dir, "train-images-idx3-ubyte", dp->b[0], sizeof dp->b[0]);
    tl = find_in_dir(dir, "train-labels-idx1-ubyte", dp->b[1], sizeof dp->b[1]);
    if (!ti || !tl) ds_fatal(DS_EXIT_USAGE, "%s: %s has no train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]", flag, dir);
    if (!vi && src->test_fraction <= 0.0f) {
      vi = find_in_dir(dir, "t10k-images-idx3-ubyte", dp->b[2], sizeof dp->b[2]);
      vl = find_in_dir(dir, "t10k-labels-idx1-ubyte", dp->b[3], sizeof dp->b[3]);
      if (!vi || !vl) ds_fatal(DS_EXIT_USAGE, "%s: %s has no t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] (or use --test-fraction)", flag, dir);
    }
  }
  dp->p[0] = ti, dp->p[1] = tl, dp->p[2] = vi, dp->p[3] = vl;
}

void ds_data_check(const ds_data_source *src) {
  data_paths dp;
  resolve_paths(src, &dp);
  if (dp.p[2] && src->test_fraction > 0.0f) ds_fatal(DS_EXIT_USAGE, "--test-fraction: not with explicit test files");
  if (!dp.p[2] && src->test_fraction <= 0.0f)
    ds_fatal(DS_EXIT_USAGE, "no test set: give --test-images/--test-labels or --test-fraction F");
  for (int i = 0; i < 4; i++) {
    if (!dp.p[i]) continue;
    FILE *f = fopen(dp.p[i], "rb");
    if (!f) ds_fatal(DS_EXIT_USAGE, "%s: cannot open: %s", dp.p[i], strerror(errno));
    fclose(f);
  }
}

void ds_data_load(const ds_data_source *src, ds_dataset *train, ds_dataset *test) {
  memset(train, 0, sizeof *train);
  memset(test, 0, sizeof *test);
  data_paths dp;
  resolve_paths(src, &dp);
  const char *ti = dp.p[0], *tl = dp.p[1], *vi = dp.p[2], *vl = dp.p[3];
  load_pair(ti, tl, train);
  if (vi && src->test_fraction > 0.0f)
    ds_fatal(DS_EXIT_USAGE, "--test-fraction: not with explicit test files");
  if (vi) {
    settle_classes(train, src->classes, tl);
    load_pair(vi, vl, test);
    if (test->d != train->d)
      ds_fatal(DS_EXIT_USAGE, "%s: images are %dx%d but the training images are %dx%d", vi, test->rows,
               test->cols, train->rows, train->cols);
    if (test->n_classes > train->n_classes)
      ds_fatal(DS_EXIT_USAGE, "%s: holds label %d but the model has %d classes (0..%d)%s", vl, test->n_classes - 1,
               train->n_classes, train->n_classes - 1, src->classes > 0 ? "" : "; give --classes N for more");
    test->n_classes = train->n_classes;
  } else {
    if (src->test_fraction <= 0.0f)
      ds_fatal(DS_EXIT_USAGE, "no test set: give --test-images/--test-labels or --test-fraction F");
    split_tail(train, test, src->test_fraction, ti);
    /* the classes of the part that trains; the held-out tail must stay within them */
    settle_classes(train, src->classes, tl);
    int maxl = 0;
    for (int i = 0; i < test->n; i++) maxl = test->labels[i] > maxl ? test->labels[i] : maxl;
    if (maxl >= train->n_classes)
      ds_fatal(DS_EXIT_USAGE, "%s: the held-out tail holds label %d but the training part has %d classes (0..%d)%s", tl,
               maxl, train->n_classes, train->n_classes - 1, src->classes > 0 ? "" : "; give --classes N for more");
    test->n_classes = train->n_classes;
  }
}

void ds_data_load_test(const ds_data_source *src, ds_dataset *test) {
  memset(test, 0, sizeof *test);
  char b1[1100], b2[1100];
  const char *vi = src->test_images, *vl = src->test_labels;
  if (!vi != !vl) ds_fatal(DS_EXIT_USAGE, "--test-images and --test-labels go together");
  if (vi && src->test_fraction > 0.0f) ds_fatal(DS_EXIT_USAGE, "--test-fraction: not with explicit test files");
  if (!vi && (src->train_images || src->train_labels || src->test_fraction > 0.0f)) {
    /* the test set is the tail of a training file: load it all, keep the tail */
    ds_dataset train;
    ds_data_load(src, &train, test);
    ds_dataset_free(&train);
    return;
  }
  if (!vi) {
    const char *dir = src->data_dir, *flag = "--data";
    if (!dir) {
      const char *name = src->dataset ? src->dataset : "fashion-mnist";
      dir = ds_dataset_dir(name);
      flag = "--dataset";
      if (!dir) ds_fatal(DS_EXIT_USAGE, "--dataset: unknown dataset '%s' (expected fashion-mnist or mnist)", name);
    }
    if (!is_dir(dir)) ds_fatal(DS_EXIT_USAGE, "%s: %s is not a directory", flag, dir);
    vi = find_in_dir(dir, "t10k-images-idx3-ubyte", b1, sizeof b1);
    vl = find_in_dir(dir, "t10k-labels-idx1-ubyte", b2, sizeof b2);
    if (!vi || !vl)
      ds_fatal(DS_EXIT_USAGE, "%s: %s has no t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]", flag, dir);
  }
  load_pair(vi, vl, test);
}

void ds_dataset_free(ds_dataset *d) {
  free(d->images);
  free(d->labels);
  d->images = d->labels = NULL;
}
