/* A small table-driven command-line parser: strict numbers (no trailing junk,
 * finite, inside a documented range), unknown flags and missing values
 * rejected with exit 2 naming the flag, and --help generated from the same
 * table, with each flag's current (default) value, so it cannot drift. */
#ifndef DS_FLAGS_H
#define DS_FLAGS_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
  DS_FLAG_BOOL,    /* int*: set to 1, takes no value */
  DS_FLAG_INT,     /* int* */
  DS_FLAG_LONG,    /* long* */
  DS_FLAG_U64,     /* uint64_t* */
  DS_FLAG_FLOAT,   /* float* */
  DS_FLAG_DOUBLE,  /* double* */
  DS_FLAG_STRING,  /* const char** */
  DS_FLAG_CHOICE,  /* int*: index into choices */
  DS_FLAG_CUSTOM   /* parse(value, ptr, err) */
} ds_flag_type;

typedef struct ds_flag {
  const char *name;            /* "--lr"; NULL ends the table */
  ds_flag_type type;
  void *ptr;
  const char *metavar;         /* "X" */
  const char *help;
  const char *range;           /* numbers: "(0,inf)", "[0,1)", "[1,inf)"; NULL = any finite */
  const char *const *choices;  /* CHOICE: NULL-terminated names */
  int (*parse)(const char *value, void *ptr, char *err, size_t errlen);
  const char *default_text;    /* shown instead of the current value (CUSTOM, or computed defaults) */
  const char *group;           /* starts a new section in --help */
  /* CUSTOM: the current value as the flag would be given ("256,128"), for
   * ds_flags_json; NULL = left out of it */
  void (*format)(const void *ptr, char *buf, size_t len);
  int given;                   /* set by the parser */
} ds_flag;

/* Parse argv[0..argc) (argv[0] is the first flag, not the program).
 * Positional arguments are stored in positional[] (at most max_positional);
 * -h/--help prints help and exits 0. Errors exit 2 with "descent <cmd>: ...". */
int ds_flags_parse(const char *cmd, ds_flag *flags, int argc, char **argv,
                   const char **positional, int max_positional, const char *usage,
                   const char *summary);
/* The same parse without exiting or printing (the fuzzer's entry point):
 * DS_FLAGS_OK with *n_positional set, DS_FLAGS_HELP when -h/--help comes
 * before any error, or DS_FLAGS_ERROR with one line in err that names the
 * flag ("--lr: expected a finite number > 0, got 'x'"). */
enum { DS_FLAGS_OK = 0, DS_FLAGS_HELP = 1, DS_FLAGS_ERROR = -1 };
int ds_flags_parse_status(ds_flag *flags, int argc, char **argv, const char **positional, int max_positional,
                          int *n_positional, char *err, size_t errlen);
void ds_flags_help(FILE *f, const char *cmd, const char *usage, const char *summary,
                   const ds_flag *flags);
/* Write the flags' current (effective) values as one JSON object, keys the
 * flag names without "--" and with '-' as '_': numbers as numbers, switches
 * as true/false, choices and strings as strings (null when unset). Flags
 * named in skip (NULL-terminated) and CUSTOM flags without format are left
 * out. Returns what fprintf returns, negative on error. */
int ds_flags_json(FILE *f, const ds_flag *flags, const char *const *skip);
/* Find a flag by name (to ask whether it was given). */
const ds_flag *ds_flags_find(const ds_flag *flags, const char *name);
int ds_flag_given(const ds_flag *flags, const char *name);

#endif
