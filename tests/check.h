/* Minimal test helpers: every CHECK that fails is printed and counted, and
 * check_finish() turns the count into the exit status (0 only when none failed). */
#ifndef DS_TEST_CHECK_H
#define DS_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_failures = 0;
static int check_count = 0;

#define CHECK(cond, ...)                                          \
  do {                                                            \
    check_count++;                                                \
    if (!(cond)) {                                                \
      check_failures++;                                           \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);        \
      fprintf(stderr, __VA_ARGS__);                               \
      fputc('\n', stderr);                                        \
    }                                                             \
  } while (0)

/* |got - want| <= atol + rtol * |want| */
#define CHECK_CLOSE(got, want, atol, rtol, ...)                                           \
  do {                                                                                    \
    double g_ = (double)(got), w_ = (double)(want);                                       \
    CHECK(fabs(g_ - w_) <= (atol) + (rtol) * fabs(w_) && isfinite(g_), __VA_ARGS__);      \
    if (!(fabs(g_ - w_) <= (atol) + (rtol) * fabs(w_) && isfinite(g_)))                   \
      fprintf(stderr, "     got %.9g want %.9g (diff %.3g)\n", g_, w_, fabs(g_ - w_));    \
  } while (0)

static inline int check_finish(const char *suite) {
  if (check_failures) {
    fprintf(stderr, "%s: %d of %d checks FAILED\n", suite, check_failures, check_count);
    return 1;
  }
  printf("%s: all %d checks passed\n", suite, check_count);
  return 0;
}

/* Deterministic test data: xorshift64* uniform in [-1, 1). */
static unsigned long long check_rng_state = 0x9E3779B97F4A7C15ull;
static inline double check_uniform(void) {
  check_rng_state ^= check_rng_state >> 12;
  check_rng_state ^= check_rng_state << 25;
  check_rng_state ^= check_rng_state >> 27;
  unsigned long long r = check_rng_state * 2685821657736338717ull;
  return (double)(r >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

#endif
