/* descent — checkpoints: the model, the configuration needed to continue, the
 * counters and every flat buffer of a trainer, saved at an epoch boundary.
 *
 * File layout (little-endian; see host/train/checkpoint.c):
 *   "DSCKPT01" | u32 version | u32 header_bytes | header | u32 crc32(all before)
 *   then per tensor: u32 role | u64 count (floats) | u32 crc32(data) | f32 data[count]
 * Tensors: params, stats (only with batchnorm), then the optimizer state buffers
 * that ds_optim_state_roles says exist (m, v, vmax, gavg), in that order.
 *
 * Resume is exact because saves happen at epoch boundaries: the sampler's
 * order is a pure function of (seed, epoch) and dropout masks of (seed,
 * micro_step), so params + stats + optimizer state + the three counters are
 * the whole state of a run. */
#ifndef DESCENT_CHECKPOINT_H
#define DESCENT_CHECKPOINT_H

#include <stddef.h>
#include "descent/train.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DS_CKPT_MAGIC "DSCKPT01"
#define DS_CKPT_VERSION 1u
#define DS_CKPT_MAX_PARAMS (1ull << 31)   /* refuse absurd sizes before allocating */
#define DS_CKPT_MAX_WIDTH (1 << 24)

typedef struct {
  ds_train_config cfg;     /* model spec, optimizer, loop settings (save_path not stored) */
  int n_inputs, n_classes;
  long step, epoch, micro_step;
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
void ds_checkpoint_free(ds_checkpoint *ck);

/* Host copy of a trainer's state (downloads from the backend). */
void ds_checkpoint_capture(ds_checkpoint *ck, const ds_trainer *t);
/* Does the checkpoint fit this trainer? 0, or -1 with a message naming the
 * dimension (or optimizer state) that differs. */
int ds_checkpoint_check(const ds_checkpoint *ck, const ds_trainer *t, char *err, size_t errlen);
/* Upload params, stats, optimizer state and set step/epoch/micro_step. */
void ds_checkpoint_restore(ds_trainer *t, const ds_checkpoint *ck);

/* CLI helpers: save exits 1 (I/O, non-finite) naming the path; load exits 2
 * on a missing, unreadable or bad file, or a mismatch with the trainer. */
void ds_checkpoint_save_or_die(const ds_trainer *t, const char *path);
void ds_checkpoint_resume_or_die(ds_trainer *t, const char *path);

#ifdef __cplusplus
}
#endif
#endif
