/* Philox4x32-10 (include/descent/philox.h): known answers, the documented
 * counter layout of ds_philox_word, and ds_dropout_threshold.
 *
 * The known answers are the three "philox4x32 10" lines of Random123's
 * examples/kat_vectors (columns: counter[4] key[2] -> output[4], hex). They
 * were looked up in copies of that file, not recalled:
 *   philox4x32 10 00000000 00000000 00000000 00000000 00000000 00000000   6627e8d5 e169c58d bc57ac4c 9b00dbd8
 *   philox4x32 10 ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff   408f276d 41c83b0e a20bc7c6 6d5451fd
 *   philox4x32 10 243f6a88 85a308d3 13198a2e 03707344 a4093822 299f31d0   d16cfe09 94fdcceb 5001e420 24126ea1
 * Everything else is compared with a second Philox written here from the
 * paper (different code shape: explicit per-round key schedule table), which
 * must itself reproduce the three known answers. */
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "descent/philox.h"
#include "elementwise_cpu.h" /* ds_philox_words_cpu */

typedef struct {
  uint32_t ctr[4], key[2], want[4];
} kat;

static const kat kats[] = {
  {{0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u}, {0x00000000u, 0x00000000u},
   {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
  {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu},
   {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
  {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u},
   {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
};

/* Independent Philox4x32-10: precompute the 10 round keys k + r*W, then
 * apply the S-box/P-box round of Salmon et al. (Fig. 2) with 64-bit products. */
static void ref_philox(const uint32_t in[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t rk[10][2];
  for (int r = 0; r < 10; r++) {
    rk[r][0] = key[0] + (uint32_t)r * 0x9E3779B9u;
    rk[r][1] = key[1] + (uint32_t)r * 0xBB67AE85u;
  }
  uint32_t x0 = in[0], x1 = in[1], x2 = in[2], x3 = in[3];
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * x0, p1 = (uint64_t)0xCD9E8D57u * x2;
    uint32_t y0 = (uint32_t)(p1 >> 32) ^ x1 ^ rk[r][0];
    uint32_t y1 = (uint32_t)p1;
    uint32_t y2 = (uint32_t)(p0 >> 32) ^ x3 ^ rk[r][1];
    uint32_t y3 = (uint32_t)p0;
    x0 = y0; x1 = y1; x2 = y2; x3 = y3;
  }
  out[0] = x0; out[1] = x1; out[2] = x2; out[3] = x3;
}

static uint32_t rand32(void) { return (uint32_t)((check_uniform() + 1.0) * 2147483648.0); }

static void test_known_answers(void) {
  for (size_t i = 0; i < sizeof kats / sizeof kats[0]; i++) {
    const kat *k = &kats[i];
    ds_philox_ctr c = {{k->ctr[0], k->ctr[1], k->ctr[2], k->ctr[3]}};
    ds_philox_key key = {{k->key[0], k->key[1]}};
    ds_philox_ctr r = ds_philox4x32_10(c, key);
    uint32_t ref[4];
    ref_philox(k->ctr, k->key, ref);
    for (int j = 0; j < 4; j++) {
      CHECK(r.v[j] == k->want[j], "kat %zu word %d: got %08x want %08x", i, j, r.v[j], k->want[j]);
      CHECK(ref[j] == k->want[j], "the test's own Philox, kat %zu word %d: got %08x want %08x", i, j,
            ref[j], k->want[j]);
    }
  }
}

/* The library block function equals the independent one on random inputs. */
static void test_random_blocks(void) {
  int bad = 0;
  for (int i = 0; i < 2000; i++) {
    uint32_t in[4] = {rand32(), rand32(), rand32(), rand32()}, key[2] = {rand32(), rand32()}, ref[4];
    ref_philox(in, key, ref);
    ds_philox_ctr r = ds_philox4x32_10((ds_philox_ctr){{in[0], in[1], in[2], in[3]}},
                                       (ds_philox_key){{key[0], key[1]}});
    for (int j = 0; j < 4; j++) bad += r.v[j] != ref[j];
  }
  CHECK(bad == 0, "ds_philox4x32_10 differs from the reference on %d of 8000 random words", bad);
}

/* Documented layout: key = {seed lo, seed hi}; counter = {element/4, stream,
 * step lo, step hi}; word = output[element % 4]. */
static uint32_t ref_word(uint64_t seed, uint32_t stream, uint64_t step, uint64_t element) {
  uint32_t in[4] = {(uint32_t)(element / 4), stream, (uint32_t)(step & 0xffffffffu), (uint32_t)(step >> 32)};
  uint32_t key[2] = {(uint32_t)(seed & 0xffffffffu), (uint32_t)(seed >> 32)}, out[4];
  ref_philox(in, key, out);
  return out[element % 4];
}

static void test_word_layout(void) {
  /* seed, step above 2^32 so that the high halves matter; elements cover all four lanes */
  const uint64_t seeds[] = {0, 1, 42, 0x123456789abcdef0ull, 0xffffffffffffffffull};
  const uint32_t streams[] = {0, 1, 3, DS_STREAM_INIT + 5, DS_STREAM_SAMPLER};
  const uint64_t steps[] = {0, 1, 7, 0xffffffffull, 0x100000000ull, 0xfedcba9876543210ull};
  const uint64_t elems[] = {0, 1, 2, 3, 4, 5, 6, 7, 1001, 4ull * 0xffffffffull + 3};
  int bad = 0, n = 0;
  for (size_t a = 0; a < 5; a++)
    for (size_t b = 0; b < 5; b++)
      for (size_t c = 0; c < 6; c++)
        for (size_t e = 0; e < 10; e++) {
          uint32_t got = ds_philox_word(seeds[a], streams[b], steps[c], elems[e]);
          uint32_t want = ref_word(seeds[a], streams[b], steps[c], elems[e]);
          if (got != want && bad++ < 5)
            fprintf(stderr, "  word(seed %llx, stream %u, step %llx, e %llu) = %08x want %08x\n",
                    (unsigned long long)seeds[a], streams[b], (unsigned long long)steps[c],
                    (unsigned long long)elems[e], got, want);
          n++;
        }
  CHECK(bad == 0, "ds_philox_word disagrees with the documented counter layout on %d of %d", bad, n);

  /* A direct known answer through the layout: seed 0, stream 0, step 0,
   * elements 0..3 are the all-zero KAT's four words; the pi vector is
   * reached with seed = 0x299f31d0a4093822, stream 0x85a308d3,
   * step = 0x0370734413198a2e and elements 4*0x243f6a88 + j. */
  for (int j = 0; j < 4; j++) {
    CHECK(ds_philox_word(0, 0, 0, (uint64_t)j) == kats[0].want[j], "zero KAT via ds_philox_word, lane %d", j);
    CHECK(ds_philox_word(0x299f31d0a4093822ull, 0x85a308d3u, 0x0370734413198a2eull,
                         4ull * 0x243f6a88u + (uint64_t)j) == kats[2].want[j],
          "pi KAT via ds_philox_word, lane %d", j);
  }
  /* Different streams / steps / seeds give different words (sanity of keying). */
  CHECK(ds_philox_word(1, 0, 0, 0) != ds_philox_word(1, 1, 0, 0), "stream does not key the word");
  CHECK(ds_philox_word(1, 0, 0, 0) != ds_philox_word(1, 0, 1, 0), "step does not key the word");
  CHECK(ds_philox_word(1, 0, 0, 0) != ds_philox_word(2, 0, 0, 0), "seed does not key the word");
  CHECK(ds_philox_word(1, 0, 0, 0) != ds_philox_word(1, 0, 1ull << 32, 0), "step high half ignored");
  CHECK(ds_philox_word(1, 0, 0, 0) != ds_philox_word(1ull << 32 | 1, 0, 0, 0), "seed high half ignored");
}

/* threshold(p) = floor((1 - p) * 2^32) with p as the float given, saturating
 * at 0xffffffff; kept fraction of uniform words is then 1 - p to 2^-32. */
static void test_threshold(void) {
  CHECK(ds_dropout_threshold(0.0f) == 0xffffffffu, "threshold(0) = %08x", ds_dropout_threshold(0.0f));
  CHECK(ds_dropout_threshold(1.0f) == 0u, "threshold(1) = %08x", ds_dropout_threshold(1.0f));
  CHECK(ds_dropout_threshold(0.5f) == 0x80000000u, "threshold(0.5) = %08x", ds_dropout_threshold(0.5f));
  CHECK(ds_dropout_threshold(0.25f) == 0xC0000000u, "threshold(0.25) = %08x", ds_dropout_threshold(0.25f));
  CHECK(ds_dropout_threshold(0.75f) == 0x40000000u, "threshold(0.75) = %08x", ds_dropout_threshold(0.75f));
  const float ps[] = {1e-9f, 1e-3f, 0.1f, 0.2f, 0.3f, 1.0f / 3.0f, 0.9f, 0.999f};
  uint32_t prev = 0xffffffffu;
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
    double want = (1.0 - (double)ps[i]) * 4294967296.0;
    uint32_t got = ds_dropout_threshold(ps[i]);
    double w = want >= 4294967295.0 ? 4294967295.0 : (double)(uint64_t)want; /* floor, saturated */
    CHECK((double)got == w, "threshold(%g) = %u want %.0f", (double)ps[i], got, w);
    CHECK(got <= prev, "threshold not monotone at p=%g", (double)ps[i]);
    prev = got;
  }
}

/* Words are uniform enough that a large run keeps 1-p of them: per-lane
 * kept fraction over 4*2^16 words within 6 binomial standard deviations. */
static void test_uniformity(void) {
  const float p = 0.3f;
  uint32_t th = ds_dropout_threshold(p);
  const int n = 1 << 18;
  long kept[4] = {0, 0, 0, 0};
  for (int e = 0; e < n; e++) kept[e & 3] += ds_philox_word(7, DS_STREAM_DROPOUT + 2, 11, (uint64_t)e) < th;
  for (int j = 0; j < 4; j++) {
    double f = (double)kept[j] / (n / 4), sd = sqrt(0.3 * 0.7 / (n / 4));
    CHECK(fabs(f - 0.7) < 6 * sd, "lane %d keeps %.5f, expected 0.7 +- %.5f", j, f, 6 * sd);
  }
}

/* The CPU's batch generator (AVX-512 where the CPU has it, 16 groups per
 * vector, then a scalar tail) against ds_philox_block group by group: every
 * count of groups around the vector width, counters that wrap at 2^32, keys
 * and steps with both halves set. */
static void test_words_cpu(void) {
  uint32_t words[4 * 80 + 4];
  int bad = 0;
  for (int trial = 0; trial < 200; trial++) {
    uint64_t seed = ((uint64_t)rand32() << 32) | rand32(), step = ((uint64_t)rand32() << 32) | rand32();
    uint32_t stream = rand32();
    uint64_t group0 = trial % 3 == 0 ? 0xFFFFFFF8ull + (uint64_t)(trial % 7) : ((uint64_t)rand32() << 8) | rand32();
    size_t n = (size_t)(trial % 81);
    words[4 * n] = 0xDEADBEEFu; /* one past the end stays */
    ds_philox_words_cpu(words, seed, stream, step, group0, n);
    for (size_t g = 0; g < n; g++) {
      ds_philox_ctr r = ds_philox_block(seed, stream, step, group0 + g);
      for (int j = 0; j < 4; j++) bad += words[4 * g + j] != r.v[j];
    }
    bad += words[4 * n] != 0xDEADBEEFu;
  }
  CHECK(bad == 0, "ds_philox_words_cpu: %d words differ from ds_philox_block (or were written past the end)", bad);
}

int main(void) {
  test_words_cpu();
  test_known_answers();
  test_random_blocks();
  test_word_layout();
  test_threshold();
  test_uniformity();
  return check_finish("test_philox");
}
