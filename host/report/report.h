/* `descent report`: reading sweep result files (JSON lines, format
 * "descent-sweep/1", docs/sweep-format.md), the statistics of a benchmark
 * (best settings per problem and optimizer, means and sample standard
 * deviations over seeds, time to target, performance profiles) and their
 * writing as Markdown, SVG pictures and DeepOBS's folder layout.
 *
 * Memory: everything lives in host memory, owned by a ds_rep_set
 * (ds_rep_set_free releases it). Numbers that are null in the file are NAN.
 * Errors: functions return 0, or the exit status to end with (DS_EXIT_USAGE
 * for bad input, DS_EXIT_RUNTIME for I/O) with one line in err that names
 * the file (and line). */
#ifndef DS_REPORT_H
#define DS_REPORT_H

#include <stddef.h>

/* One evaluation of a trial's curve, or its final figures (NAN: null). */
typedef struct {
  double step, epoch, train_seconds;
  double train_loss, train_accuracy, val_loss, val_accuracy, test_loss, test_accuracy;
} ds_rep_eval;

/* One swept hyperparameter: a number (str NULL) or a string. */
typedef struct {
  char *name;
  double num;
  char *str;
  int is_int;  /* the number was written as an integer (DeepOBS names it so) */
} ds_rep_hp;

typedef struct {
  const char *file;   /* the input file (argv memory) */
  long line;          /* its line, 1-based */
  char *problem, *optimizer, *trial;
  long seed;
  ds_rep_hp *hp;      /* sorted by name */
  int nhp;
  char *setting;      /* exact key of the hyperparameters ("lr=0.001,momentum=0.9", %.17g) */
  char *label;        /* for people: "lr=0.001, momentum=0.9" (%.6g), "(none)" */
  double lr;          /* hyperparameters.lr, else config.lr; NAN when neither */
  int has_target;
  double target_value;
  int target_metric;  /* target.metric as a ds_rep_metric, -1 when another name */
  ds_rep_eval *curve;
  int ncurve;
  ds_rep_eval fin;    /* "final"; fin.step = final.steps, fin.epoch = final.epochs */
  double eval_seconds, time_to_target, steps_to_target; /* NAN: null */
  int failed;         /* status "failed" */
  int diverged;       /* final.stopped "diverged" */
  long batch_size;    /* config.batch_size, -1 when absent */
  double weight_decay; /* config.weight_decay, NAN when absent */
} ds_rep_trial;

typedef struct {
  ds_rep_trial *t;
  int n, cap;
  int failed_early;   /* failed lines with no problem (the trial failed before training): left out */
} ds_rep_set;

/* Whether this build can read JSON (libjansson was found at build time). */
int ds_report_json_available(void);

/* Append the trials of one JSONL file to set. Blank lines are skipped; a last
 * line without its newline (a half-written one) is ignored and counted in
 * *partial. Every line must be a JSON object of format "descent-sweep/1"
 * with the keys docs/sweep-format.md lists (types checked), else
 * DS_EXIT_USAGE and "FILE:LINE: ..." in err. */
int ds_report_read(const char *path, ds_rep_set *set, int *partial, char *err, size_t errlen);
void ds_rep_set_free(ds_rep_set *set);
/* Drop lines whose "trial" (the resume key) comes again later (a failed
 * trial run again by a resumed sweep, a file given twice): the last line of
 * a trial is kept. Returns how many were dropped. */
int ds_report_dedup(ds_rep_set *set);

/* The metric that picks the best settings. */
typedef enum {
  DS_MET_VAL_ACCURACY, DS_MET_VAL_LOSS, DS_MET_TEST_ACCURACY, DS_MET_TEST_LOSS,
  DS_MET_TRAIN_ACCURACY, DS_MET_TRAIN_LOSS
} ds_rep_metric;
extern const char *const ds_rep_metric_names[]; /* NULL-terminated, in enum order */

/* What `descent report` writes: DIR/report.md, DIR/<problem>-lr.svg,
 * DIR/<problem>-curves.svg, DIR/profile.svg (more than one problem) and,
 * with deepobs, DIR/deepobs/... . DIR must exist. The files are replaced
 * atomically. notes (may be NULL) are lines put at the top of report.md. */
typedef struct {
  const char *dir;
  ds_rep_metric metric;
  int deepobs;
  const char *deepobs_stamp; /* "YYYY-MM-DD-HH-MM-SS" of the file names */
  const char *const *notes;
  int nnotes;
} ds_rep_options;

int ds_report_write(const ds_rep_set *set, const ds_rep_options *opt, char *err, size_t errlen);

/* ---- statistics (report_stats.c), shared by the writers ---------------- */

/* Metric accessors on one evaluation. */
double ds_rep_metric_value(const ds_rep_eval *e, ds_rep_metric m);
int ds_rep_metric_higher_better(ds_rep_metric m);
/* The loss of the same split as m (val_accuracy -> val_loss). */
ds_rep_metric ds_rep_metric_loss(ds_rep_metric m);

/* A trial's score under m for choosing settings: the final value; a
 * diverged trial or a null value counts as the worst (0 accuracy, +inf loss). */
double ds_rep_score(const ds_rep_trial *t, ds_rep_metric m);

/* Median of n values (sorted copy; the mean of the two middle ones when n
 * is even; +inf stays +inf); NAN when n is 0. */
double ds_rep_median(const double *v, int n);
/* Mean and sample standard deviation (n-1; NAN when n < 2). */
void ds_rep_mean_sd(const double *v, int n, double *mean, double *sd);

#endif
