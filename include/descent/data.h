/* descent — datasets: IDX files (raw or gzip) and the known locations.
 *
 * Memory: everything here is host memory (the trainer uploads the bytes to
 * its backend once). Thread safety: the functions keep no state; different
 * objects may be used from different threads. Errors: the readers return -1
 * with one line in err; the loaders exit (see each). */
#ifndef DESCENT_DATA_H
#define DESCENT_DATA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DS_IDX_MAGIC_IMAGES 0x00000803u  /* unsigned byte, 3 dimensions */
#define DS_IDX_MAGIC_LABELS 0x00000801u  /* unsigned byte, 1 dimension */
#define DS_IDX_MAX_ITEMS 100000000u      /* refuse absurd headers before allocating */
#define DS_IDX_MAX_SIDE 4096u

/* One IDX file: dims[0] items of dims[1]*dims[2] bytes (images) or 1 byte (labels). */
typedef struct {
  uint32_t magic;
  int ndim;
  uint32_t dims[3];
  size_t item_size;        /* bytes per item */
  uint8_t *data;           /* dims[0] * item_size bytes */
} ds_idx;

/* Read an IDX file, raw or gzip-compressed (detected from the content).
 * expect_magic is DS_IDX_MAGIC_IMAGES or DS_IDX_MAGIC_LABELS.
 * Returns 0, or -1 with a one-line message naming the file in err. */
int ds_idx_read(const char *path, uint32_t expect_magic, ds_idx *out, char *err, size_t errlen);
/* The same, from bytes in memory (the fuzzer's entry point). `name` labels messages. */
int ds_idx_parse(const uint8_t *bytes, size_t len, const char *name, uint32_t expect_magic,
                 ds_idx *out, char *err, size_t errlen);
/* Free the data (idx->data); the struct may be reused. */
void ds_idx_free(ds_idx *idx);

/* A labelled image set: n items of d bytes, labels in [0, n_classes). */
typedef struct {
  int n, d, rows, cols;
  int n_classes;
  uint8_t *images;         /* [n, d] */
  uint8_t *labels;         /* [n] */
} ds_dataset;

typedef struct {
  const char *data_dir;          /* folder with the four standard files */
  const char *dataset;           /* "fashion-mnist" | "mnist" (known locations) */
  const char *train_images, *train_labels, *test_images, *test_labels;
  float test_fraction;           /* hold out the last F of train when no test files */
  int classes;                   /* > 0: the class count (--classes); 0: the largest label + 1 */
} ds_data_source;

/* Load the train and test sets. The class count is src->classes, or the
 * largest training label + 1 when every class up to it occurs; at least two
 * distinct labels; test labels below it. Exits 2 with a message naming the
 * file on bad input. */
void ds_data_load(const ds_data_source *src, ds_dataset *train, ds_dataset *test);
/* Load only the test set (what `descent eval` needs): the explicit test
 * files, the t10k files of a folder, or the held-out tail of a training file
 * (--test-fraction, which reads that file). n_classes is the largest label
 * + 1. Exits 2 with a message on bad input. */
void ds_data_load_test(const ds_data_source *src, ds_dataset *test);
/* Without reading them: the files src names (or its folder holds) exist and
 * open for reading, and the test set is given one way. Exits 2 with one
 * line naming the flag or file otherwise (the checks of `--dry-run`). */
void ds_data_check(const ds_data_source *src);
/* Free images and labels (NULL is fine). */
void ds_dataset_free(ds_dataset *d);

/* Where a named dataset lives ("fashion-mnist", "mnist"); NULL if unknown. */
const char *ds_dataset_dir(const char *name);

#ifdef __cplusplus
}
#endif
#endif
