/* descent — checkpoints: the model, the configuration needed to continue, the
 * counters and every flat buffer of a trainer, saved at any update.
 *
 * File layout (little-endian; see host/train/checkpoint.c):
 *   "DSCKPT01" | u32 version | u32 header_bytes | header | u32 crc32(all before)
 *   then per tensor: u32 role | u64 count (floats) | u32 crc32(data) | f32 data[count]
 * Tensors: params, stats (only with batchnorm), then the optimizer state buffers
 * that ds_optim_state_roles says exist (m, v, vmax, gavg), in that order.
 * Version 2 (written now) adds to the header the position inside the epoch,
 * the skip count, the sizes of the training and validation parts, the
 * validation fraction, the non-finite policy and the input scaling; version 1
 * files still load (position 0, scaling recomputed from the training data).
 *
 * Resume is exact anywhere: the sampler's order is a pure function of (seed,
 * epoch), the position in it is stored, and dropout masks are a function of
 * (seed, micro_step); so params + stats + optimizer state + the counters are
 * the whole state of a run.
 *
 * Memory: a ds_checkpoint holds HOST copies (capture downloads, restore
 * uploads). Thread safety: reading and writing files is safe from several
 * threads on different paths; capture and restore use the trainer (one
 * thread at a time, see train.h). */
#ifndef DESCENT_CHECKPOINT_H
#define DESCENT_CHECKPOINT_H

#include <stddef.h>
#include "descent/train.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DS_CKPT_MAGIC "DSCKPT01"
#define DS_CKPT_VERSION 3u
#define DS_CKPT_MAX_PARAMS (1ull << 31)   /* refuse absurd sizes before allocating */
#define DS_CKPT_MAX_WIDTH (1 << 24)

typedef struct {
  uint32_t version;        /* of the file read (DS_CKPT_VERSION when captured) */
  ds_train_config cfg;     /* model spec, optimizer, loop settings (paths not stored) */
  int n_inputs, n_classes;
  long step, epoch, micro_step;
  long epoch_batches;      /* batches of epoch `epoch` already drawn (0 at a boundary) */
  long skipped;            /* updates skipped by --on-nonfinite skip so far */
  int n_train, n_val;      /* training rows after the validation split, validation rows */
  int has_scaling;         /* version >= 2: scale and shift below are the run's */
  float scale, shift;      /* input scaling: x = byte * scale + shift */
  int cpu_threads;         /* version >= 2: the CPU GEMM's threads when it trained on the CPU, else 0 */
  uint32_t data_crc;       /* version >= 2: CRC-32 of the training part's images, then labels */
  size_t n_params, n_stats;
  float *params, *stats;   /* host copies; stats NULL when n_stats == 0 */
  float *m, *v, *vmax, *gavg; /* optimizer state, NULL where the optimizer has none */
} ds_checkpoint;

/* Return codes of the functions below (err gets one line naming the file). */
enum { DS_CKPT_OK = 0, DS_CKPT_EIO = -1, DS_CKPT_EBAD = -2, DS_CKPT_ENONFINITE = -3 };

/* Read and verify (magic, version, sizes, checksums). DS_CKPT_EIO when the
 * file cannot be opened/read, DS_CKPT_EBAD when its contents are wrong. */
int ds_checkpoint_read(const char *path, ds_checkpoint *ck, char *err, size_t errlen);
/* Atomic write: path.tmp, fsync, rename, fsync of the folder. On failure the
 * previous file at path is untouched and path.tmp removed. Refuses
 * (DS_CKPT_ENONFINITE) a checkpoint with a NaN or Inf anywhere. */
int ds_checkpoint_write(const char *path, const ds_checkpoint *ck, char *err, size_t errlen);
/* Free the tensors (NULL ones are fine); the struct is zeroed. */
void ds_checkpoint_free(ds_checkpoint *ck);

/* Host copy of a trainer's state (downloads from the backend). */
void ds_checkpoint_capture(ds_checkpoint *ck, const ds_trainer *t);
/* Does the checkpoint fit this trainer as a model (to evaluate it)? 0, or -1
 * with a message naming the dimension that differs. */
int ds_checkpoint_check(const ds_checkpoint *ck, const ds_trainer *t, char *err, size_t errlen);
/* May this trainer continue the checkpoint's run? Every setting that changes
 * the meaning of the stored state must be equal: the architecture,
 * activation, BatchNorm, dropout form, optimizer and every flag that selects
 * its form, input scaling, the validation split (fraction, seed, sizes), the
 * training data's size, and inside an epoch also the batch size,
 * accumulation and sampling. 0, or -1 with every difference named with both
 * values in err ("--activation: relu in the checkpoint, tanh now; ...").
 * Settings that may change (lr, schedule, epochs, ...) and differ are listed
 * in `changed` (empty when none). */
int ds_checkpoint_check_resume(const ds_checkpoint *ck, const ds_trainer *t, char *err, size_t errlen,
                               char *changed, size_t changed_len);
/* Upload params, stats, optimizer state; set the counters, the position in
 * the epoch and (version >= 2) the input scaling. */
void ds_checkpoint_restore(ds_trainer *t, const ds_checkpoint *ck);

/* CLI helpers: save exits 1 (I/O, non-finite) naming the path; resume exits
 * 2 on a missing, unreadable or bad file, or a run it may not continue, and
 * notes (unless quiet) the settings that changed. */
void ds_checkpoint_save_or_die(const ds_trainer *t, const char *path);
void ds_checkpoint_resume_or_die(ds_trainer *t, const char *path);

#ifdef __cplusplus
}
#endif
#endif
