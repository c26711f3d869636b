/* descent sweep: the trials of a hyperparameter search (host/sweep/sweep_plan.c)
 * and the JSON-lines record of a finished trial (host/sweep/sweep_record.c).
 *
 * A sweep is `descent train` run once per trial. Every train flag may carry
 * a list of values or a range:
 *   --optimizer sgd,momentum,adam   a list (for --hidden and --normalize,
 *                                   whose values hold commas: 256,128/512)
 *   --lr 1e-4:1:13log               13 values log-spaced from 1e-4 to 1
 *   --momentum 0.8:0.99:5           5 values evenly spaced
 *   --lr 1e-4:1e-1:log, 0.8:0.99    ranges for --search random:N | quasirandom:N
 *   --batchnorm on,off              a switch given or not
 * Grid search takes the product of the lists in the order given (the first
 * flag varies slowest), times the seeds (fastest). Random search draws N
 * points (Philox keyed by the search seed); quasirandom takes N points of
 * the Halton sequence (bases 2, 3, 5, ...; from its first point after 0),
 * rotated by the search seed when it is not 0 (Cranley-Patterson). */
#ifndef DS_SWEEP_H
#define DS_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#define DS_SWEEP_MAX_AXES 32
#define DS_SWEEP_MAX_VALUES 1000

typedef enum { DS_SEARCH_GRID, DS_SEARCH_RANDOM, DS_SEARCH_QUASIRANDOM } ds_search_kind;

/* One train flag of the sweep: a fixed value, a list, or a range. */
typedef struct {
  const char *flag;        /* "--lr" */
  const char *spec;        /* as given ("1e-4:1:13log"); NULL for a switch given alone */
  int n_values;            /* the values of a list or grid (1 for a fixed value) */
  char **values;           /* [n_values] heap strings; "on"/"off" for a switch */
  int is_switch;           /* values are on/off: the flag is given (on) or left out */
  int is_range;            /* lo:hi or lo:hi:log, for random search only */
  double lo, hi;
  int log;
  int integer;             /* lo and hi written as integers: the values are rounded to integers */
} ds_sweep_axis;

typedef struct {
  ds_sweep_axis axes[DS_SWEEP_MAX_AXES];
  int n_axes;
  uint64_t *seeds;
  int n_seeds;
  ds_search_kind search;
  long search_points;      /* random / quasirandom: N */
  uint64_t search_seed;
} ds_sweep_spec;

/* Parse one flag's value spec into axis (flag and spec are kept as
 * pointers). 0, or -1 with a message in err naming the flag. */
int ds_sweep_axis_parse(ds_sweep_axis *axis, const char *flag, const char *spec, char *err, size_t errlen);
/* --seeds: "1-5", "1,2,7" or "3". 0, or -1 with a message. */
int ds_sweep_seeds_parse(ds_sweep_spec *s, const char *spec, char *err, size_t errlen);
/* --search: "grid", "random:N", "quasirandom:N". */
int ds_sweep_search_parse(ds_sweep_spec *s, const char *spec, char *err, size_t errlen);
void ds_sweep_spec_free(ds_sweep_spec *s);

/* A trial: the value (index into the axis's values, or a drawn number) of
 * every axis and its seed. */
typedef struct {
  char **args;             /* the train flags, NULL-terminated (heap); without --json/--quiet */
  int n_args;
  uint64_t seed;
  char id[17];             /* 16 hex digits: FNV-1a 64 of the args joined by NUL */
  char **hyper_names;      /* [n_hyper] the swept flags ("lr", "momentum"; not seed/optimizer) */
  char **hyper_values;     /* [n_hyper] their values as given to train */
  int n_hyper;
} ds_trial;

/* The trials the spec asks for, duplicates dropped. How many there would be
 * (before building them) is ds_sweep_count; a grid beyond max_trials is not
 * built (returns -1 with a message). Returns the count, or -1. */
long ds_sweep_count(const ds_sweep_spec *s);
long ds_sweep_trials(const ds_sweep_spec *s, long max_trials, ds_trial **out, char *err, size_t errlen);
void ds_sweep_trials_free(ds_trial *t, long n);

/* ---- JSON helpers for the child's --json object (host/sweep/sweep_record.c) ---- */

/* Whether text[0..len) is one whole JSON object (brackets and strings
 * closed, nothing after it): a line a crash or a failed write cut short is not. */
int ds_json_whole(const char *text, size_t len);
/* The text of top-level member `key` of the JSON object obj[0..len): 0 and
 * *val and *vlen set, or -1 when absent or obj is malformed. */
int ds_json_member(const char *obj, size_t len, const char *key, const char **val, size_t *vlen);

/* One line of the result file (format "descent-sweep/1", README), built from
 * the trial and the child's output (NULL when it printed no JSON): heap
 * string ending in '\n'. status is "ok" or "failed"; error (or NULL) its
 * last stderr line. */
char *ds_sweep_record(const ds_trial *t, const char *json, size_t json_len, int exit_code, const char *error);

#endif
