/* Mini-batch sampler (host/train/sampler.c): shuffle visits every index exactly
 * once per epoch, reproducibly per (seed, epoch) and differently across them;
 * replacement draws in range and roughly uniformly; batch counts follow
 * ceil(n/B) (or floor with drop_last); batch size n and 1 work. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "descent/sampler.h"

/* Draw one whole epoch into out[] (room for n + B); returns the sample count
 * and writes the batch sizes into sizes[] (room for n + 1) and their count. */
static long draw_epoch(ds_sampler *s, long epoch, int32_t *out, int *sizes, long *n_batches) {
  ds_sampler_begin_epoch(s, epoch);
  long total = 0, nb = 0;
  int B;
  while ((B = ds_sampler_next(s, out + total)) > 0) {
    sizes[nb++] = B;
    total += B;
    if (nb > (long)s->n + 1) break; /* a sampler that never stops */
  }
  *n_batches = nb;
  return total;
}

/* Shuffle: each epoch is a permutation of 0..n-1, batches of B with one
 * smaller last batch unless drop_last. */
static void test_shuffle_counts(int n, int B, int drop_last) {
  ds_sampler s;
  ds_sampler_init(&s, n, B, DS_SAMPLE_SHUFFLE, drop_last, 42);
  int32_t *idx = calloc((size_t)n + (size_t)B, sizeof *idx);
  int *sizes = calloc((size_t)n + 2, sizeof *sizes);
  int *seen = calloc((size_t)n, sizeof *seen);
  long want_batches = drop_last ? n / B : (n + B - 1) / B;
  long want_samples = drop_last ? (long)(n / B) * B : n;
  CHECK(ds_sampler_batches_per_epoch(&s) == want_batches, "n=%d B=%d drop_last=%d: %ld batches per epoch, want %ld",
        n, B, drop_last, ds_sampler_batches_per_epoch(&s), want_batches);
  for (long e = 0; e < 3; e++) {
    long nb;
    long total = draw_epoch(&s, e, idx, sizes, &nb);
    CHECK(nb == want_batches, "n=%d B=%d dl=%d epoch %ld: %ld batches, want %ld", n, B, drop_last, e, nb, want_batches);
    CHECK(total == want_samples, "n=%d B=%d dl=%d epoch %ld: %ld samples, want %ld", n, B, drop_last, e, total,
          want_samples);
    int sizes_ok = 1;
    for (long b = 0; b < nb; b++) {
      int want = (b == nb - 1 && !drop_last && n % B) ? n % B : B;
      if (sizes[b] != want) sizes_ok = 0;
    }
    CHECK(sizes_ok, "n=%d B=%d dl=%d epoch %ld: batch sizes wrong", n, B, drop_last, e);
    memset(seen, 0, (size_t)n * sizeof *seen);
    int in_range = 1;
    for (long i = 0; i < total; i++) {
      if (idx[i] < 0 || idx[i] >= n) in_range = 0;
      else seen[idx[i]]++;
    }
    CHECK(in_range, "n=%d B=%d epoch %ld: index out of range", n, B, e);
    int dup = 0, missing = 0;
    for (int i = 0; i < n; i++) {
      if (seen[i] > 1) dup++;
      if (seen[i] == 0) missing++;
    }
    CHECK(dup == 0, "n=%d B=%d epoch %ld: %d indices drawn twice", n, B, e, dup);
    /* without drop_last each index exactly once; with it, exactly n % B left out */
    CHECK(missing == (drop_last ? n % B : 0), "n=%d B=%d dl=%d epoch %ld: %d indices missing", n, B, drop_last, e,
          missing);
    CHECK(ds_sampler_next(&s, idx) == 0, "n=%d B=%d: next after the end of the epoch is not 0", n, B);
  }
  ds_sampler_free(&s);
  free(idx);
  free(sizes);
  free(seen);
}

/* The order of one epoch as a fresh array. */
static int32_t *epoch_order(int n, int B, uint64_t seed, long epoch) {
  ds_sampler s;
  ds_sampler_init(&s, n, B, DS_SAMPLE_SHUFFLE, 0, seed);
  int32_t *idx = calloc((size_t)n + (size_t)B, sizeof *idx);
  int *sizes = calloc((size_t)n + 2, sizeof *sizes);
  long nb;
  draw_epoch(&s, epoch, idx, sizes, &nb);
  ds_sampler_free(&s);
  free(sizes);
  return idx;
}

static void test_shuffle_reproducible(void) {
  const int n = 1000, B = 32;
  int32_t *a = epoch_order(n, B, 7, 0), *a2 = epoch_order(n, B, 7, 0);
  int32_t *b = epoch_order(n, B, 8, 0), *c = epoch_order(n, B, 7, 1);
  CHECK(memcmp(a, a2, n * sizeof *a) == 0, "same seed and epoch gave different orders");
  CHECK(memcmp(a, b, n * sizeof *a) != 0, "seeds 7 and 8 gave the same order");
  CHECK(memcmp(a, c, n * sizeof *a) != 0, "epochs 0 and 1 gave the same order");
  /* the order does not depend on the batch size (the permutation is per epoch) */
  int32_t *d = epoch_order(n, 7, 7, 0);
  CHECK(memcmp(a, d, n * sizeof *a) == 0, "batch size changed the epoch's permutation");
  /* "different" means substantially: a random permutation fixes ~1 point, and
   * two independent ones agree in ~1 place; allow 10 (P(>10) < 1e-7) */
  int same_ab = 0, same_ac = 0, fixed = 0;
  for (int i = 0; i < n; i++) {
    same_ab += a[i] == b[i];
    same_ac += a[i] == c[i];
    fixed += a[i] == i;
  }
  CHECK(same_ab <= 10 && same_ac <= 10 && fixed <= 10,
        "orders too alike: %d same across seeds, %d across epochs, %d fixed points", same_ab, same_ac, fixed);
  /* revisiting an epoch (begin_epoch(0) after epoch 1) gives epoch 0's order back */
  ds_sampler s;
  ds_sampler_init(&s, n, B, DS_SAMPLE_SHUFFLE, 0, 7);
  ds_sampler_begin_epoch(&s, 1);
  ds_sampler_begin_epoch(&s, 0);
  CHECK(memcmp(s.order, a, n * sizeof *a) == 0, "epoch 0 not reproducible after epoch 1");
  ds_sampler_free(&s);
  free(a);
  free(a2);
  free(b);
  free(c);
  free(d);
}

/* Uniformity of the shuffle: over many epochs, index 0 lands in each of n
 * positions about equally often (a classic Fisher-Yates bug, j in [0, i)
 * instead of [0, i], never leaves an element in place). */
static void test_shuffle_uniform(void) {
  const int n = 8, epochs = 16000;
  long pos_count[8][8] = {{0}};
  ds_sampler s;
  ds_sampler_init(&s, n, n, DS_SAMPLE_SHUFFLE, 0, 123);
  for (long e = 0; e < epochs; e++) {
    ds_sampler_begin_epoch(&s, e);
    for (int p = 0; p < n; p++) pos_count[s.order[p]][p]++;
  }
  ds_sampler_free(&s);
  /* each cell ~ Binomial(16000, 1/8): mean 2000, sd 41.8; 64 cells, 5 sd
   * bounds (|x - 2000| <= 210) fail by chance with probability ~4e-5 */
  int bad = 0;
  for (int i = 0; i < n; i++)
    for (int p = 0; p < n; p++)
      if (labs(pos_count[i][p] - epochs / n) > 210) bad++;
  CHECK(bad == 0, "shuffle not uniform: %d of 64 (item, position) counts off by > 5 sd", bad);
}

static void test_replacement(int n, int B, int drop_last) {
  ds_sampler s;
  ds_sampler_init(&s, n, B, DS_SAMPLE_REPLACEMENT, drop_last, 99);
  long want_batches = drop_last ? n / B : (n + B - 1) / B;
  CHECK(ds_sampler_batches_per_epoch(&s) == want_batches, "replacement n=%d B=%d dl=%d: %ld batches, want %ld", n,
        B, drop_last, ds_sampler_batches_per_epoch(&s), want_batches);
  int32_t *idx = calloc((size_t)want_batches * B + (size_t)B, sizeof *idx);
  int *sizes = calloc((size_t)n + 2, sizeof *sizes);
  long *hits = calloc((size_t)n, sizeof *hits);
  long total_all = 0;
  int32_t *first = NULL;
  for (long e = 0; e < 4; e++) {
    long nb;
    long total = draw_epoch(&s, e, idx, sizes, &nb);
    CHECK(nb == want_batches, "replacement n=%d B=%d epoch %ld: %ld batches, want %ld", n, B, e, nb, want_batches);
    /* every batch is a full B draws (with replacement there is no "rest") */
    CHECK(total == nb * B, "replacement n=%d B=%d epoch %ld: %ld samples, want %ld", n, B, e, total, nb * B);
    int in_range = 1;
    for (long i = 0; i < total; i++) {
      if (idx[i] < 0 || idx[i] >= n) in_range = 0;
      else hits[idx[i]]++;
    }
    CHECK(in_range, "replacement n=%d B=%d epoch %ld: index out of range", n, B, e);
    if (e == 0) {
      first = malloc((size_t)total * sizeof *first);
      memcpy(first, idx, (size_t)total * sizeof *first);
    } else if (e == 1) {
      CHECK(memcmp(first, idx, (size_t)total * sizeof *first) != 0, "replacement: epochs 0 and 1 drew the same");
    }
    total_all += total;
  }
  /* epoch 0 again draws the same indices */
  long nb;
  draw_epoch(&s, 0, idx, sizes, &nb);
  CHECK(memcmp(first, idx, (size_t)nb * B * sizeof *first) == 0, "replacement: epoch 0 not reproducible");
  /* with replacement an epoch of n draws repeats some indices: among 4 epochs
   * of >= 1000 draws from n <= 1000 some index is drawn at least twice in one
   * epoch with overwhelming probability (birthday bound) */
  if (n >= 100) {
    draw_epoch(&s, 2, idx, sizes, &nb);
    int *seen = calloc((size_t)n, sizeof *seen);
    int repeats = 0;
    for (long i = 0; i < nb * B; i++)
      if (seen[idx[i]]++) repeats++;
    CHECK(repeats > 0, "replacement n=%d: no index repeated in an epoch (is it shuffling?)", n);
    free(seen);
    /* counts ~ Poisson(total_all / n); chi-square against uniform, 6 sd above
     * its mean (n-1) as the bound */
    double mean = (double)total_all / n, chi2 = 0;
    for (int i = 0; i < n; i++) chi2 += (hits[i] - mean) * (hits[i] - mean) / mean;
    double bound = (n - 1) + 6.0 * sqrt(2.0 * (n - 1));
    CHECK(chi2 < bound, "replacement n=%d: chi-square %.1f over %d draws exceeds %.1f", n, chi2, (int)total_all,
          bound);
  }
  ds_sampler_free(&s);
  free(idx);
  free(sizes);
  free(hits);
  free(first);
}

static void test_sequential(void) {
  ds_sampler s;
  ds_sampler_init(&s, 10, 4, DS_SAMPLE_SEQUENTIAL, 0, 5);
  int32_t idx[16];
  int sizes[12];
  long nb;
  for (long e = 0; e < 2; e++) {
    long total = draw_epoch(&s, e, idx, sizes, &nb);
    int ok = total == 10 && nb == 3;
    for (int i = 0; i < 10 && ok; i++) ok = idx[i] == i;
    CHECK(ok, "sequential epoch %ld: not 0..9 in order", e);
  }
  ds_sampler_free(&s);
}

static void test_extreme_batches(void) {
  const int n = 37;
  /* full batch: one batch of n per epoch, every index once */
  test_shuffle_counts(n, n, 0);
  test_shuffle_counts(n, n, 1);
  /* batch size 0 or above n means full batch (ds_sampler_init clamps it) */
  ds_sampler s;
  ds_sampler_init(&s, n, 0, DS_SAMPLE_SHUFFLE, 0, 1);
  CHECK(s.batch_size == n && ds_sampler_batches_per_epoch(&s) == 1, "batch size 0: %d, %ld batches", s.batch_size,
        ds_sampler_batches_per_epoch(&s));
  ds_sampler_free(&s);
  ds_sampler_init(&s, n, 1000, DS_SAMPLE_SHUFFLE, 0, 1);
  CHECK(s.batch_size == n && ds_sampler_batches_per_epoch(&s) == 1, "batch size > n: %d", s.batch_size);
  ds_sampler_free(&s);
  /* pure SGD: n batches of 1 */
  test_shuffle_counts(n, 1, 0);
  test_shuffle_counts(n, 1, 1);
  test_replacement(n, 1, 0);
  test_replacement(n, n, 0);
  /* n = 1 */
  test_shuffle_counts(1, 1, 0);
}

int main(void) {
  (void)check_uniform; /* check.h helper this suite does not need */
  /* n not a multiple of B, with and without drop_last; and a multiple */
  test_shuffle_counts(1000, 64, 0);
  test_shuffle_counts(1000, 64, 1);
  test_shuffle_counts(1024, 64, 0);
  test_shuffle_counts(1024, 64, 1);
  test_shuffle_counts(10, 3, 0);
  test_shuffle_counts(10, 3, 1);
  test_shuffle_reproducible();
  test_shuffle_uniform();
  test_replacement(1000, 64, 0);
  test_replacement(1000, 64, 1);
  test_replacement(1024, 64, 0);
  test_sequential();
  test_extreme_batches();
  return check_finish("test_sampler");
}
