/* Replays fuzz inputs without libFuzzer: every file named on the command
 * line, and every file in every folder named (sorted; names starting with a
 * dot skipped), goes once through the harness's LLVMFuzzerTestOneInput. A
 * harness signals a bug by aborting (or a sanitizer does), so reaching the
 * end means every input passed. Built with any C compiler, as a ctest suite:
 * the seed corpus and every crash `make fuzz` ever found are replayed by
 * `make test` (and under ASan and UBSan by `make test-asan`). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return -1;
  }
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  for (;;) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    cap *= 2;
    buf = realloc(buf, cap);
    if (!buf) {
      fprintf(stderr, "replay: out of memory reading %s\n", path);
      fclose(f);
      return -1;
    }
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    fprintf(stderr, "replay: cannot read %s\n", path);
    free(buf);
    return -1;
  }
  /* a copy of exactly n bytes, so that ASan sees an overread past the input */
  uint8_t *exact = malloc(n ? n : 1);
  memcpy(exact, buf, n);
  free(buf);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

static int skip(const struct dirent *e) { return e->d_name[0] != '.'; }

int main(int argc, char **argv) {
  long total = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: %s does not exist\n", argv[i]);
      return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (replay_file(argv[i]) != 0) return 1;
      total++;
      continue;
    }
    struct dirent **names;
    int n = scandir(argv[i], &names, skip, alphasort);
    if (n < 0) {
      fprintf(stderr, "replay: cannot list %s\n", argv[i]);
      return 1;
    }
    long here = 0;
    for (int k = 0; k < n; k++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[i], names[k]->d_name);
      struct stat fs;
      if (stat(path, &fs) == 0 && S_ISREG(fs.st_mode)) {
        if (replay_file(path) != 0) return 1;
        here++;
      }
      free(names[k]);
    }
    free(names);
    printf("replay: %ld inputs from %s\n", here, argv[i]);
    total += here;
  }
  printf("replay: all %ld inputs passed\n", total);
  return 0;
}
