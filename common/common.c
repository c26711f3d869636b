/* Error reporting and small helpers shared by everything. */
#include "descent/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void (*fatal_hook)(int code, const char *message);

void ds_set_fatal_hook(void (*hook)(int code, const char *message)) { fatal_hook = hook; }
static char fatal_prefix[32];
static void (*fatal_end)(int code);

void ds_set_fatal_end(const char *prefix, void (*end)(int code)) {
  snprintf(fatal_prefix, sizeof fatal_prefix, "%s", prefix ? prefix : "");
  fatal_end = end;
}

void ds_fatal(int code, const char *fmt, ...) {
  char msg[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fflush(stdout);
  fprintf(stderr, "descent: %s%s\n", fatal_prefix, msg);
  fflush(stderr);
  void (*hook)(int, const char *) = fatal_hook;
  fatal_hook = NULL; /* once: a failure inside the hook exits plainly */
  if (hook) hook(code, msg);
  if (fatal_end) fatal_end(code);
  exit(code);
}

static int quiet_notes;

void ds_set_quiet(int quiet) { quiet_notes = quiet != 0; }

void ds_note(const char *fmt, ...) {
  if (quiet_notes) return;
  va_list ap;
  va_start(ap, fmt);
  fputs("descent: note: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void *ds_xmalloc(size_t bytes, const char *what) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) ds_fatal(DS_EXIT_RUNTIME, "out of host memory allocating %zu bytes for %s", bytes, what);
  return p;
}

void *ds_xcalloc(size_t count, size_t size, const char *what) {
  if (size && count > SIZE_MAX / size)
    ds_fatal(DS_EXIT_RUNTIME, "size overflow allocating %zu x %zu bytes for %s", count, size, what);
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p) ds_fatal(DS_EXIT_RUNTIME, "out of host memory allocating %zu x %zu bytes for %s", count, size, what);
  return p;
}

void *ds_xrealloc(void *p, size_t bytes, const char *what) {
  void *q = realloc(p, bytes ? bytes : 1);
  if (!q) ds_fatal(DS_EXIT_RUNTIME, "out of host memory allocating %zu bytes for %s", bytes, what);
  return q;
}

size_t ds_mul_size(size_t n, size_t m) {
  if (n && m > SIZE_MAX / n) return 0;
  return n * m;
}

double ds_now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
