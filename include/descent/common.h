/* descent — common definitions: exit codes, error reporting, small helpers.
 *
 * Errors, for the whole library: a function that cannot go on with bad
 * input or a failed device/allocation call prints ONE line on stderr
 * ("descent: ...", naming the file, flag or tensor) and exits the process
 * with a DS_EXIT_* status, unless its comment says it returns an error code
 * (the readers: ds_idx_read, ds_checkpoint_read, ds_safetensors_parse, ...,
 * which return -1 or a DS_CKPT_* code with the message in err).
 * Memory: every pointer in this header is host memory.
 * Thread safety: the functions here are safe to call from several threads,
 * except ds_set_quiet (a process-wide switch: set it before starting them);
 * ds_fatal ends the whole process.
 *
 * Two prefixes, as in kann: `ds_` is the public C API, `DS_` its macros and
 * constants. Ops in kernels/ are named <stem>_<backend> (linear_forward_cpu,
 * linear_forward_cuda) and are reached through the backend table only. */
#ifndef DESCENT_COMMON_H
#define DESCENT_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exit status, as ../shared/design/ENGINE.md documents them. */
enum {
  DS_EXIT_OK = 0,
  DS_EXIT_RUNTIME = 1,  /* I/O, device or numerical failure */
  DS_EXIT_USAGE = 2,    /* bad flag, bad value, bad input file */
  DS_EXIT_NOGPU = 77,   /* a GPU was asked for and none is present */
  DS_EXIT_INTERRUPTED = 130
};

/* Print "descent: <message>" as one line on stderr (stdout is flushed first)
 * and exit with `code` (one of the DS_EXIT_* values). */
#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 2, 3)))
#endif
void ds_fatal(int code, const char *fmt, ...);
/* A function ds_fatal calls once, after printing the message and before
 * exiting (`descent train --json` prints its partial results there); NULL
 * removes it. The hook must not return into the failed work: ds_fatal exits
 * after it. */
void ds_set_fatal_hook(void (*hook)(int code, const char *message));

/* For a job of several processes (host/dist): `prefix` (e.g. "rank 1: ", at
 * most 31 characters; NULL for none) goes after "descent: " in ds_fatal's line,
 * and `end(code)` replaces exit(code) there (MPI_Abort: the whole job ends
 * with that status instead of the other ranks waiting for this one forever).
 * `end` must not return; if it does, ds_fatal exits as before. */
void ds_set_fatal_end(const char *prefix, void (*end)(int code));

/* Print "descent: note: <message>" on stderr (not fatal), unless notes are
 * off (ds_set_quiet(1): --quiet, which leaves nothing but errors). */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
void ds_note(const char *fmt, ...);
void ds_set_quiet(int quiet);

/* malloc/calloc that exit 1 (DS_EXIT_RUNTIME) with the size asked for and
 * `what` ("the parameters") when memory runs out; never return NULL. Free
 * with free(). */
void *ds_xmalloc(size_t bytes, const char *what);
void *ds_xcalloc(size_t count, size_t size, const char *what);
/* realloc that exits 1 naming `what` when memory runs out (p may be NULL). */
void *ds_xrealloc(void *p, size_t bytes, const char *what);

/* n*m with an overflow check; returns 0 on overflow (callers treat 0 as an error
 * because every product they take has non-zero factors). */
size_t ds_mul_size(size_t n, size_t m);

/* Monotonic wall clock in seconds (CLOCK_MONOTONIC; differences only). */
double ds_now_seconds(void);

/* Strict number parsing (common/parse.c): the whole string must be one number,
 * with no blanks around it and no trailing junk; a double must be finite and
 * in range, a long must fit. 0 on success (value in *out), -1 otherwise
 * (*out untouched). */
int ds_parse_double(const char *s, double *out);
int ds_parse_long(const char *s, long *out);

/* Numbers for people: "0.2310" (4 decimals) in the usual range, "2.11e+31"
 * or "3.2e-07" beyond it, "nan", "inf", "-inf" (never "-nan"). Writes into
 * buf and returns it. */
const char *ds_format_number(char *buf, size_t len, double v);
/* A value that is exactly a float (a float32 parameter, an lr) as the
 * shortest text that reads back as that float ("8.7", not "8.69999981"); a
 * whole number as one ("20"); any other double with 9 significant digits;
 * "nan", "inf", "-inf". For CSV and messages. */
const char *ds_format_shortest(char *buf, size_t len, double v);

/* JSON: a number, or null when it is NaN or infinite (the value does not
 * exist); a string with quotes, backslashes and control characters escaped
 * (truncated to fit len). Both write into buf and return it. */
const char *ds_json_number(char *buf, size_t len, double v);
const char *ds_json_string(char *buf, size_t len, const char *s);
/* A float as the shortest decimal that reads back as the same float
 * (0.01, not 0.00999999978); null when not finite. Returns buf. */
const char *ds_json_float(char *buf, size_t len, float v);

/* Does `path` end in `suffix` (given in lower case), ignoring ASCII case? */
int ds_path_has_suffix(const char *path, const char *suffix);

/* ---- a growing heap string (common/strbuf.c) ---------------------------------
 * Start from {0}; s is NUL-terminated once anything was added; free(s) at the
 * end. Running out of memory exits 1. */
typedef struct {
  char *s;
  size_t len, cap;
} ds_strbuf;
void ds_strbuf_add(ds_strbuf *b, const char *s, size_t n);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void ds_strbuf_printf(ds_strbuf *b, const char *fmt, ...);
/* s as one JSON string value (quoted, escaped: ds_json_string) */
void ds_strbuf_json_string(ds_strbuf *b, const char *s);

/* ---- output files (common/outfile.c) ------------------------------------- */
#define DS_PATH_MAX 4096

/* Check, before any work, that `path` can be written as an output named by
 * `flag`: following symbolic links, the file must be absent or a regular
 * writable file (not a directory, device or FIFO) in an existing folder where
 * files can be created. 0, or the exit status to end with and
 * "<flag> <path>: ..." in err: DS_EXIT_USAGE for a name that cannot be an
 * output file (empty, a directory, a device), DS_EXIT_RUNTIME for one that
 * cannot be written (no such folder, no permission). */
int ds_output_check(const char *flag, const char *path, char *err, size_t errlen);

/* Whether two output names are one file (the same inode when both exist, or
 * the same folder and name, links followed). */
int ds_same_output(const char *a, const char *b);

/* The file a write to `path` replaces: path itself, or the file at the end of
 * its chain of symbolic links (a write through a link keeps the link).
 * 0, or -1 with errno set. */
int ds_output_target(const char *path, char *out, size_t len);

/* Atomic replace: ds_atomic_open creates TARGET.tmp beside the target and
 * returns it in a->f; write, then ds_atomic_commit flushes, fsyncs, renames
 * it over the target and fsyncs the folder. Any failure (or write_failed
 * != 0) removes the temporary file and leaves the previous file untouched.
 * Both return 0, or -1 with what failed in err ("create F.tmp: No space left
 * on device"; the caller names the output). ds_atomic_abort gives up
 * (removes the temporary file). */
typedef struct {
  FILE *f;
  const char *path;
  char target[DS_PATH_MAX], tmp[DS_PATH_MAX + 8];
} ds_atomic_file;
int ds_atomic_open(ds_atomic_file *a, const char *path, char *err, size_t errlen);
int ds_atomic_commit(ds_atomic_file *a, int write_failed, char *err, size_t errlen);
void ds_atomic_abort(ds_atomic_file *a);

#ifdef __cplusplus
}
#endif
#endif
