/* descent — models that leave descent (host/interop/): the model as named
 * tensors with PyTorch's torch.nn.Sequential state_dict names, written as
 * safetensors or NumPy .npz, read back strictly, and predictions.
 *
 * Names and shapes: the Sequential that computes the same function, with
 * one index per module, in order:
 *   [Dropout(input_dropout)]                            (only when > 0)
 *   per hidden layer: Linear, [BatchNorm1d], activation, [Dropout(dropout)]
 *   output: Linear
 * so a 784-256-10 model with BatchNorm and dropout is 0.weight [256,784],
 * 0.bias [256], 1.weight/1.bias/1.running_mean/1.running_var [256],
 * 1.num_batches_tracked (I64, shape []), 4.weight [10,256], 4.bias [10]
 * (2 is ReLU, 3 Dropout: no tensors). Linear weights are [out, in],
 * row-major, as torch.nn.Linear keeps them and as descent does.
 *   running_var is the UNBIASED batch variance (n/(n-1)) averaged with the
 * momentum, as torch.nn.BatchNorm1d keeps it; num_batches_tracked is the
 * trainer's count of training forward passes (micro_step).
 *
 * All pointers here are HOST memory. Nothing here keeps global state: the
 * functions are safe to call from several threads on different objects. */
#ifndef DESCENT_INTEROP_H
#define DESCENT_INTEROP_H

#include <stddef.h>
#include <stdint.h>
#include "descent/checkpoint.h"
#include "descent/train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { DS_DTYPE_F32, DS_DTYPE_I64 } ds_dtype;

#define DS_TENSOR_NAME_MAX 128
#define DS_TENSOR_MAX_DIMS 4
#define DS_SAFETENSORS_MAX_HEADER (100u << 20) /* as the reference implementation: 100 MB */
#define DS_SAFETENSORS_MAX_TENSORS 4096

/* One tensor: little-endian data of prod(shape) elements of dtype
 * (ndim 0: a scalar, one element). `data` is host memory owned by whoever
 * filled the struct (see each function). */
typedef struct {
  char name[DS_TENSOR_NAME_MAX];
  ds_dtype dtype;
  int ndim;
  int64_t shape[DS_TENSOR_MAX_DIMS];
  const void *data;
  size_t bytes;            /* prod(shape) * 4 (F32) or 8 (I64) */
} ds_tensor;

/* A string map ("__metadata__" of safetensors). */
typedef struct {
  const char *key, *value;
} ds_meta;

/* A model as tensors: the state_dict of the equivalent Sequential plus the
 * metadata that rebuilds it. Owns its memory (ds_model_tensors_free). */
typedef struct {
  int n;
  ds_tensor t[7 * DS_MAX_LAYERS];  /* at most 7 a layer: Linear 2, BatchNorm1d 5 */
  int n_meta;
  ds_meta meta[32];
  char *arena;             /* the copies of data and metadata text */
} ds_model_tensors;

/* The Sequential module index of each layer's Linear and BatchNorm1d
 * (bn_index -1 without BatchNorm), as described above. */
void ds_sequential_indices(const ds_mlp_spec *spec, int n_layers, int *linear_index, int *bn_index);

/* Build the tensors of a model: layout m, params [m->n_params] and stats
 * [m->n_stats] (host copies, as ds_checkpoint keeps them), the training
 * forward passes so far (num_batches_tracked), the input scaling (x = byte *
 * scale + shift). The data is copied. Metadata keys: format ("pt"),
 * descent.modules ("Linear(784, 256), ReLU(), ..."), descent.architecture
 * ("784-256-10"), descent.activation, descent.leaky_slope, descent.batchnorm,
 * descent.bn_eps, descent.bn_momentum, descent.dropout, descent.input_dropout,
 * descent.dropout_form ("inverted" | "scale-at-test": then the network's
 * output at test multiplies each dropout's input by (1 - p), which
 * torch.nn.Dropout does not), descent.input_scale, descent.input_shift,
 * descent.inputs, descent.classes, descent.running_var ("unbiased"),
 * descent.steps. Numbers are the shortest text that reads back as the float. */
void ds_model_tensors_build(ds_model_tensors *mt, const ds_mlp *m, const float *params, const float *stats,
                            long forward_passes, float scale, float shift, long steps);
/* From a checkpoint. 0, or -1 with one line in err (a version-1 checkpoint
 * trained with --standardize does not store its input scaling). */
int ds_model_tensors_from_checkpoint(ds_model_tensors *mt, const ds_checkpoint *ck, char *err, size_t errlen);
void ds_model_tensors_free(ds_model_tensors *mt);

/* Write tensors as safetensors (8-byte little-endian header length, the JSON
 * header padded with spaces to a multiple of 8, then the data in the given
 * order, no gaps) or as .npz (a zip archive of <name>.npy members, NumPy
 * format 1.0, stored, CRC-32 from zlib). Atomic (common/outfile.c): on
 * failure the previous file is untouched. 0, or -1 with one line in err
 * naming the path. */
int ds_safetensors_write(const char *path, const ds_tensor *t, int n, const ds_meta *meta, int n_meta, char *err,
                         size_t errlen);
int ds_npz_write(const char *path, const ds_tensor *t, int n, char *err, size_t errlen);
/* One tensor as a .npy file (format 1.0), atomically; 0, or -1 with err. */
int ds_npy_write(const char *path, const ds_tensor *t, char *err, size_t errlen);

/* A safetensors file read strictly. Owns its memory. */
typedef struct {
  int n;
  ds_tensor *t;            /* [n], in file order; data points into `bytes` */
  int n_meta;
  ds_meta *meta;           /* [n_meta] */
  uint8_t *bytes;          /* the file */
  char *strings;           /* names and metadata text */
} ds_safetensors;

/* Parse safetensors bytes (the fuzzer's entry point; `name` labels
 * messages). Refuses, with one line "<name>: ..." in err and -1: a length
 * shorter than 8 or a header length beyond the file or above
 * DS_SAFETENSORS_MAX_HEADER, a header that is not one JSON object of the
 * expected form (duplicate names, unknown keys, non-integer shapes), a dtype
 * other than F32 and I64, data_offsets whose size differs from the shape's,
 * tensors that overlap or leave gaps, trailing bytes after the last tensor.
 * On success 0 and *out owns a copy of the bytes. Never leaves memory
 * allocated on failure. */
int ds_safetensors_parse(const uint8_t *bytes, size_t len, const char *name, ds_safetensors *out, char *err,
                         size_t errlen);
/* The same from a file: -1 with "<path>: ..." when it cannot be read too. */
int ds_safetensors_read(const char *path, ds_safetensors *out, char *err, size_t errlen);
void ds_safetensors_free(ds_safetensors *st);
/* The metadata value of key, or NULL. */
const char *ds_safetensors_meta(const ds_safetensors *st, const char *key);

/* Load a file's tensors into a trainer whose model the flags described:
 * every tensor of that model must be present with the same name, shape and
 * dtype, and no other tensor; BatchNorm num_batches_tracked (equal in every
 * layer, >= 0) becomes t->micro_step. Uploads to the trainer's backend
 * buffers (t->params, t->stats). 0, or -1 with one line naming the first
 * mismatch in err. Host code; not thread-safe with other uses of t. */
int ds_model_tensors_load(ds_trainer *t, const ds_safetensors *st, char *err, size_t errlen);
/* CLI helper for `descent train --init-from FILE`: read, check and load,
 * or exit 2 with one line ("--init-from FILE: ..."); refuses to be combined
 * with --resume (resumed != 0). */
void ds_init_from_or_die(ds_trainer *t, const char *path, int resumed);

/* The logits of n images (bytes [n, t->d] already on the trainer's backend,
 * e.g. t->test_images) in inference mode: out [n, n_classes] HOST memory,
 * row-major float32. Uses the trainer's evaluation workspace; labels are
 * the backend labels array the gather reads (any [n] bytes). */
void ds_trainer_logits(ds_trainer *t, const uint8_t *images, const uint8_t *labels, int n, float *out);

/* The predicted class of a row of logits: the first largest (as the
 * backends' accuracy counts it). */
int ds_argmax(const float *logits, int n_classes);

#ifdef __cplusplus
}
#endif
#endif
