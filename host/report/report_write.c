/* report.md and the orchestration of `descent report`'s files: one table a
 * problem (a row per optimizer at its best setting), the pictures, the
 * performance profile's table and, on request, DeepOBS's layout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descent/common.h"
#include "report/report_model.h"

/* "0.8812" for accuracies and losses; "—" for a value that does not exist */
static const char *fmt4(char *b, size_t n, double v) {
  if (isnan(v)) snprintf(b, n, "—");
  else if (isinf(v)) snprintf(b, n, v > 0 ? "inf" : "-inf");
  else snprintf(b, n, "%.4f", v);
  return b;
}

typedef struct {
  const ds_rep_set *set;
  const rep_model *m;
  const ds_rep_options *opt;
  int has_profile;
} md_ctx;

static const double taus[] = {1.0, 1.25, 1.5, 2.0, 4.0, 10.0};
#define NTAU (int)(sizeof taus / sizeof taus[0])

/* Text for a Markdown table cell or heading: '|' escaped, line breaks as
 * spaces (names come from the result files). Returns buf. */
static const char *md(const char *s, char *buf, size_t len) {
  size_t k = 0;
  for (; *s && k + 3 < len; s++) {
    if (*s == '|') buf[k++] = '\\', buf[k++] = '|';
    else buf[k++] = (*s == '\n' || *s == '\r') ? ' ' : *s;
  }
  buf[k] = '\0';
  return buf;
}

/* One optimizer's row at its best setting. */
static void row(FILE *f, const ds_rep_set *set, const rep_problem *p, const rep_opt *o) {
  char a[64], b[64], c[64], e1[600], e2[2400];
  if (o->best < 0) {
    int nf = 0;
    for (int si = 0; si < o->ns; si++) nf += o->s[si].nfailed;
    fprintf(f, "| %s | (every trial failed) | 0 | — | — | — | — | — | %d |\n", md(o->name, e1, sizeof e1), nf);
    return;
  }
  const rep_setting *s = &o->s[o->best];
  int n = s->n, div = 0, k = 0, nf = 0;
  for (int si = 0; si < o->ns; si++) nf += o->s[si].nfailed;
  double *acc = ds_xcalloc((size_t)n + 1, sizeof *acc, "a table"), *st = ds_xcalloc((size_t)n + 1, sizeof *st, "a table");
  double *sec = ds_xcalloc((size_t)n + 1, sizeof *sec, "a table");
  int any_target = 0;
  for (int j = 0; j < n; j++) {
    const ds_rep_trial *t = &set->t[s->idx[j]];
    div += t->diverged;
    acc[j] = t->diverged || !isfinite(t->fin.test_accuracy) ? 0.0 : t->fin.test_accuracy;
    any_target |= t->has_target;
    if (t->has_target && isfinite(t->steps_to_target) && isfinite(t->time_to_target)) {
      st[k] = t->steps_to_target;
      sec[k++] = t->time_to_target;
    }
  }
  double mean, sd;
  ds_rep_mean_sd(acc, n, &mean, &sd);
  fprintf(f, "| %s | %s | %d | %d | %s | %s ± %s |", md(o->name, e1, sizeof e1), md(s->label, e2, sizeof e2), n, div, fmt4(a, sizeof a, s->score),
          fmt4(b, sizeof b, mean), n < 2 ? "n/a" : fmt4(c, sizeof c, sd));
  if (!any_target) fprintf(f, " no target | no target |");
  else if (k == 0) fprintf(f, " — (0/%d) | — (0/%d) |", n, n);
  else fprintf(f, " %.6g (%d/%d) | %.6g (%d/%d) |", ds_rep_median(st, k), k, n, ds_rep_median(sec, k), k, n);
  fprintf(f, " %d |\n", nf);
  free(acc);
  free(st);
  free(sec);
}

static int draw_md(FILE *f, const void *vctx) {
  const md_ctx *c = vctx;
  const rep_model *m = c->m;
  fprintf(f, "# Optimizer benchmark report\n\n");
  fprintf(f, "Written by `descent report` from %d trials in %d problem%s. ", c->set->n, m->np, m->np == 1 ? "" : "s");
  fprintf(f, "The best setting of each optimizer has the best mean over seeds of the final `%s`%s; "
             "a diverged trial counts as %s, and ties go to the lower mean loss. "
             "Test accuracy is the mean ± sample standard deviation (n−1) over the n seeds at that setting "
             "(a diverged seed counts as 0). Steps and seconds to target are medians over the k of n seeds "
             "that reached the target. Failed trials (a process that exited with an error) are left out "
             "and counted in the last column.\n\n",
             ds_rep_metric_names[c->opt->metric],
             c->opt->metric == DS_MET_VAL_ACCURACY || c->opt->metric == DS_MET_VAL_LOSS
                 ? " (the test figure for a problem without a validation split)" : "",
             ds_rep_metric_higher_better(c->opt->metric) ? "0" : "+inf");
  for (int i = 0; i < c->opt->nnotes; i++) fprintf(f, "Note: %s\n\n", c->opt->notes[i]);
  for (int pi = 0; pi < m->np; pi++) {
    const rep_problem *p = &m->p[pi];
    char en[600];
    fprintf(f, "## Problem: %s\n\n", md(p->name, en, sizeof en));
    fprintf(f, "| optimizer | best hyperparameters | n | diverged | %s (mean) | test accuracy (mean ± sd) | "
               "steps to target (median, k/n) | seconds to target (median, k/n) | failed |\n",
            ds_rep_metric_names[p->metric]);
    fprintf(f, "|---|---|---|---|---|---|---|---|---|\n");
    for (int oi = 0; oi < p->no; oi++) row(f, c->set, p, &p->o[oi]);
    fprintf(f, "\n![learning-rate sensitivity](%s-lr.svg)\n\n", p->slug);
    fprintf(f, "![learning curves at the best settings](%s-curves.svg)\n\n", p->slug);
  }
  if (c->has_profile) {
    fprintf(f, "## Performance profile\n\n");
    fprintf(f, "An optimizer's time on a problem is the smallest, over its settings, median over seeds of "
               "`time_to_target` (training seconds; a seed that missed the target counts as infinite). "
               "rho(tau) is the fraction of problems on which that time is at most tau times the fastest "
               "optimizer's (Dolan and Moré 2002; AlgoPerf).\n\n");
    int any_target = 0;
    for (int pi = 0; pi < m->np; pi++) any_target |= m->p[pi].has_target;
    if (!any_target) fprintf(f, "No trial had a target (`--target-accuracy`): every time is missed.\n\n");
    fprintf(f, "| problem |");
    char en[600];
    for (int o = 0; o < m->nopt; o++) fprintf(f, " %s |", md(m->opt_names[o], en, sizeof en));
    fprintf(f, "\n|---|");
    for (int o = 0; o < m->nopt; o++) fprintf(f, "---|");
    fprintf(f, "\n");
    for (int pi = 0; pi < m->np; pi++) {
      fprintf(f, "| %s |", md(m->p[pi].name, en, sizeof en));
      for (int o = 0; o < m->nopt; o++) {
        double t = INFINITY;
        int present = 0;
        for (int oi = 0; oi < m->p[pi].no; oi++)
          if (m->p[pi].o[oi].color == o) t = m->p[pi].o[oi].best_ttt, present = 1;
        if (!present) fprintf(f, " not run |");
        else if (isfinite(t)) fprintf(f, " %.6g |", t);
        else fprintf(f, " missed |");
      }
      fprintf(f, "\n");
    }
    fprintf(f, "\n| optimizer |");
    for (int i = 0; i < NTAU; i++) fprintf(f, " rho(%g) |", taus[i]);
    fprintf(f, "\n|---|");
    for (int i = 0; i < NTAU; i++) fprintf(f, "---|");
    fprintf(f, "\n");
    for (int o = 0; o < m->nopt; o++) {
      fprintf(f, "| %s |", md(m->opt_names[o], en, sizeof en));
      for (int i = 0; i < NTAU; i++) fprintf(f, " %.4f |", ds_rep_profile_rho(m, o, taus[i]));
      fprintf(f, "\n");
    }
    fprintf(f, "\n![performance profile](profile.svg)\n");
  }
  return 0;
}

static int join(char *out, size_t len, const char *dir, const char *name) {
  return snprintf(out, len, "%s/%s", dir, name) < (int)len ? 0 : -1;
}

int ds_report_write(const ds_rep_set *set, const ds_rep_options *opt, char *err, size_t errlen) {
  rep_model m;
  ds_rep_model_build(set, opt->metric, &m);
  char path[DS_PATH_MAX];
  int rc = 0;
  for (int pi = 0; pi < m.np && rc == 0; pi++) {
    char name[256];
    snprintf(name, sizeof name, "%s-lr.svg", m.p[pi].slug);
    if (join(path, sizeof path, opt->dir, name) != 0 || ds_rep_svg_lr(path, set, &m, &m.p[pi], err, errlen) != 0)
      rc = DS_EXIT_RUNTIME;
    snprintf(name, sizeof name, "%s-curves.svg", m.p[pi].slug);
    if (rc == 0 && (join(path, sizeof path, opt->dir, name) != 0 ||
                    ds_rep_svg_curves(path, set, &m, &m.p[pi], err, errlen) != 0))
      rc = DS_EXIT_RUNTIME;
  }
  md_ctx c = {set, &m, opt, m.np > 1};
  if (rc == 0 && c.has_profile &&
      (join(path, sizeof path, opt->dir, "profile.svg") != 0 || ds_rep_svg_profile(path, &m, err, errlen) != 0))
    rc = DS_EXIT_RUNTIME;
  if (rc == 0 && opt->deepobs) {
    int nfiles = 0;
    rc = ds_rep_deepobs_write(opt->dir, set, &m, opt->deepobs_stamp, &nfiles, err, errlen);
  }
  if (rc == 0 && (join(path, sizeof path, opt->dir, "report.md") != 0 ||
                  ds_rep_write_file(path, draw_md, &c, err, errlen) != 0))
    rc = DS_EXIT_RUNTIME;
  ds_rep_model_free(&m);
  return rc;
}
