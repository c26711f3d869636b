/* The report's view of a set of trials (host/report only): trials grouped
 * by problem, optimizer and setting (the swept hyperparameters), with each
 * optimizer's best setting and best time to target. Indices point into the
 * ds_rep_set the model was built from, which must outlive it. */
#ifndef DS_REPORT_MODEL_H
#define DS_REPORT_MODEL_H

#include <stdio.h>

#include "report/report.h"

typedef struct {
  const char *key, *label;  /* the trials' setting and label */
  int *idx, n;              /* trials that did not fail (seeds) */
  int nfailed;
  double score;             /* mean ds_rep_score over the n trials (NAN when n is 0) */
  double loss;              /* mean final loss of the metric's split (+inf for a diverged or null one) */
  double ttt;               /* median time to target over the n trials, a miss counting +inf */
} rep_setting;

typedef struct {
  const char *name;
  int color;                /* index of the optimizer among all problems' (first seen first) */
  rep_setting *s;
  int ns;
  int best;                 /* index into s, -1 when no trial succeeded */
  double best_ttt;          /* min over settings of ttt (+inf: never reached, or no target) */
} rep_opt;

typedef struct {
  const char *name;
  char slug[128];           /* the file-name form of the name */
  ds_rep_metric metric;     /* the metric asked for, or its test twin when no trial has the val figure */
  rep_opt *o;
  int no;
  int has_target;
} rep_problem;

typedef struct {
  rep_problem *p;
  int np;
  const char **opt_names;   /* every optimizer, first seen first */
  int nopt;
} rep_model;

void ds_rep_model_build(const ds_rep_set *set, ds_rep_metric metric, rep_model *m);
void ds_rep_model_free(rep_model *m);

/* The curve value of metric m at evaluation e. */
double ds_rep_curve_value(const ds_rep_eval *e, ds_rep_metric m);

/* The pictures (report_svg.c): 0, or -1 with err. */
int ds_rep_svg_lr(const char *path, const ds_rep_set *set, const rep_model *m, const rep_problem *p, char *err,
                  size_t errlen);
int ds_rep_svg_curves(const char *path, const ds_rep_set *set, const rep_model *m, const rep_problem *p, char *err,
                      size_t errlen);
int ds_rep_svg_profile(const char *path, const rep_model *m, char *err, size_t errlen);

/* The performance profile: rho of optimizer o at tau (fraction of problems
 * whose best time to target is within tau times the fastest optimizer's). */
double ds_rep_profile_rho(const rep_model *m, int o, double tau);

/* DeepOBS's layout under dir (report_deepobs.c): 0, or an exit status. */
int ds_rep_deepobs_write(const char *dir, const ds_rep_set *set, const rep_model *m, const char *stamp, int *nfiles,
                         char *err, size_t errlen);

/* Write `path` atomically: draw(f, ctx) writes the content and returns 0. */
int ds_rep_write_file(const char *path, int (*draw)(FILE *f, const void *ctx), const void *ctx, char *err,
                      size_t errlen);

/* The colour of optimizer number i. */
const char *ds_rep_color(int i);

#endif
