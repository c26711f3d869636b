/* Shared by the fuzz harnesses: a failed invariant aborts, so that libFuzzer
 * (and the replay driver under ctest) reports it as a crash with the input. */
#ifndef DS_FUZZ_COMMON_H
#define DS_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(cond, ...)                                                   \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "fuzz invariant failed at %s:%d: %s: ", __FILE__,      \
              __LINE__, #cond);                                              \
      fprintf(stderr, __VA_ARGS__);                                          \
      fputc('\n', stderr);                                                   \
      abort();                                                               \
    }                                                                        \
  } while (0)

/* An error message is one non-empty line. */
static inline int fuzz_one_line(const char *msg) {
  return msg[0] != '\0' && strchr(msg, '\n') == NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
