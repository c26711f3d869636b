/* Mini-batch sampler (see descent/sampler.h). */
#include "descent/sampler.h"

#include <stdlib.h>

#include "descent/common.h"
#include "descent/philox.h"

/* Uniform integer in [0, bound) from one 32-bit word (multiply-shift; its bias
 * is below bound / 2^32, irrelevant for dataset sizes). */
static uint32_t bounded(uint32_t word, uint32_t bound) {
  return (uint32_t)(((uint64_t)word * bound) >> 32);
}

void ds_sampler_init(ds_sampler *s, int n, int batch_size, ds_sample_mode mode, int drop_last,
                     uint64_t seed) {
  s->n = n;
  s->batch_size = batch_size < 1 || batch_size > n ? n : batch_size;
  s->mode = mode;
  s->drop_last = drop_last;
  s->seed = seed;
  s->epoch = -1;
  s->pos = 0;
  s->batch_in_epoch = 0;
  s->order = ds_xcalloc((size_t)n, sizeof *s->order, "the sampler's permutation");
}

void ds_sampler_free(ds_sampler *s) {
  free(s->order);
  s->order = NULL;
}

long ds_sampler_batches_per_epoch(const ds_sampler *s) {
  long full = s->n / s->batch_size;
  return s->drop_last || s->n % s->batch_size == 0 ? full : full + 1;
}

void ds_sampler_begin_epoch(ds_sampler *s, long epoch) {
  s->epoch = epoch;
  s->pos = 0;
  s->batch_in_epoch = 0;
  for (int i = 0; i < s->n; i++) s->order[i] = i;
  if (s->mode != DS_SAMPLE_SHUFFLE) return;
  /* Fisher-Yates: position i swaps with a uniform j in [0, i]. */
  for (int i = s->n - 1; i > 0; i--) {
    uint32_t w = ds_philox_word(s->seed, DS_STREAM_SAMPLER, (uint64_t)epoch, (uint64_t)i);
    int j = (int)bounded(w, (uint32_t)i + 1u);
    int32_t tmp = s->order[i];
    s->order[i] = s->order[j];
    s->order[j] = tmp;
  }
}

int ds_sampler_next(ds_sampler *s, int32_t *idx) {
  if (s->batch_in_epoch >= ds_sampler_batches_per_epoch(s)) return 0;
  int B = s->batch_size;
  if (s->mode == DS_SAMPLE_REPLACEMENT) {
    /* element (batch * B + b) of the epoch's stream; the stream id's top bit
     * keeps it apart from the shuffle words */
    for (int b = 0; b < B; b++) {
      uint64_t e = (uint64_t)s->batch_in_epoch * (uint64_t)B + (uint64_t)b;
      uint32_t w = ds_philox_word(s->seed, DS_STREAM_SAMPLER | 0x8000u, (uint64_t)s->epoch, e);
      idx[b] = (int32_t)bounded(w, (uint32_t)s->n);
    }
  } else {
    int left = s->n - s->pos;
    if (left < B) B = left;
    for (int b = 0; b < B; b++) idx[b] = s->order[s->pos + b];
    s->pos += B;
  }
  s->batch_in_epoch++;
  return B;
}

void ds_sampler_skip(ds_sampler *s, long batches) {
  long end = ds_sampler_batches_per_epoch(s);
  for (long i = 0; i < batches && s->batch_in_epoch < end; i++) {
    if (s->mode != DS_SAMPLE_REPLACEMENT) { /* replacement draws are keyed by the batch number alone */
      int left = s->n - s->pos;
      s->pos += left < s->batch_size ? left : s->batch_size;
    }
    s->batch_in_epoch++;
  }
}
