/* descent — mini-batch sampling on the host.
 *
 * shuffle:     every epoch a seeded Fisher-Yates permutation (Philox words
 *              keyed by seed, DS_STREAM_SAMPLER, epoch); each index once per epoch.
 * replacement: every batch draws B indices uniformly with replacement; an epoch
 *              is ceil(n/B) batches (n/B with drop_last).
 * Batch size n gives full-batch gradient descent, 1 pure SGD.
 *
 * Memory: host. Thread safety: one sampler per thread (a sampler is only
 * touched by the calls given it). ds_sampler_init exits 1 when memory for
 * the order runs out. */
#ifndef DESCENT_SAMPLER_H
#define DESCENT_SAMPLER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { DS_SAMPLE_SHUFFLE, DS_SAMPLE_REPLACEMENT, DS_SAMPLE_SEQUENTIAL } ds_sample_mode;

typedef struct {
  int n, batch_size, drop_last;
  ds_sample_mode mode;
  uint64_t seed;
  long epoch;              /* 0-based epoch being drawn */
  int pos;                 /* next position in the epoch's order */
  long batch_in_epoch;
  int32_t *order;          /* [n] this epoch's permutation (shuffle/sequential) */
} ds_sampler;

void ds_sampler_init(ds_sampler *s, int n, int batch_size, ds_sample_mode mode, int drop_last,
                     uint64_t seed);
/* Free the order; the struct may be initialised again. */
void ds_sampler_free(ds_sampler *s);
/* Number of batches in one epoch. */
long ds_sampler_batches_per_epoch(const ds_sampler *s);
/* Start epoch `epoch` (0-based): draws its permutation. */
void ds_sampler_begin_epoch(ds_sampler *s, long epoch);
/* Fill idx[batch_size] (host memory; row indices in [0, n)) with the next
 * batch of the current epoch; returns its size, at most batch_size, the last
 * one smaller unless drop_last (0 when the epoch is exhausted). */
int ds_sampler_next(ds_sampler *s, int32_t *idx);
/* Pass over the next `batches` batches of the current epoch without drawing
 * them (a resumed run continues where the checkpoint stopped): afterwards
 * ds_sampler_next returns what it would have returned after that many calls. */
void ds_sampler_skip(ds_sampler *s, long batches);

#ifdef __cplusplus
}
#endif
#endif
