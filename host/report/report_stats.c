/* The statistics of a report: metric access, medians, means and sample
 * standard deviations, the grouping of trials into problems, optimizers and
 * settings, the best setting, and the performance profile (report_model.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "descent/common.h"
#include "report/report_model.h"

const char *const ds_rep_metric_names[] = {"val_accuracy", "val_loss", "test_accuracy", "test_loss",
                                           "train_accuracy", "train_loss", NULL};

double ds_rep_metric_value(const ds_rep_eval *e, ds_rep_metric m) {
  switch (m) {
    case DS_MET_VAL_ACCURACY: return e->val_accuracy;
    case DS_MET_VAL_LOSS: return e->val_loss;
    case DS_MET_TEST_ACCURACY: return e->test_accuracy;
    case DS_MET_TEST_LOSS: return e->test_loss;
    case DS_MET_TRAIN_ACCURACY: return e->train_accuracy;
    case DS_MET_TRAIN_LOSS: return e->train_loss;
  }
  return NAN;
}

double ds_rep_curve_value(const ds_rep_eval *e, ds_rep_metric m) { return ds_rep_metric_value(e, m); }

int ds_rep_metric_higher_better(ds_rep_metric m) {
  return m == DS_MET_VAL_ACCURACY || m == DS_MET_TEST_ACCURACY || m == DS_MET_TRAIN_ACCURACY;
}

ds_rep_metric ds_rep_metric_loss(ds_rep_metric m) {
  switch (m) {
    case DS_MET_VAL_ACCURACY: case DS_MET_VAL_LOSS: return DS_MET_VAL_LOSS;
    case DS_MET_TEST_ACCURACY: case DS_MET_TEST_LOSS: return DS_MET_TEST_LOSS;
    default: return DS_MET_TRAIN_LOSS;
  }
}

double ds_rep_score(const ds_rep_trial *t, ds_rep_metric m) {
  double v = ds_rep_metric_value(&t->fin, m);
  int hb = ds_rep_metric_higher_better(m);
  if (t->diverged || !isfinite(v)) return hb ? 0.0 : INFINITY;
  return v;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

double ds_rep_median(const double *v, int n) {
  if (n <= 0) return NAN;
  double *c = ds_xmalloc((size_t)n * sizeof *c, "a median");
  memcpy(c, v, (size_t)n * sizeof *c);
  qsort(c, (size_t)n, sizeof *c, cmp_double);
  double r = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
  free(c);
  return r;
}

void ds_rep_mean_sd(const double *v, int n, double *mean, double *sd) {
  double s = 0;
  for (int i = 0; i < n; i++) s += v[i];
  *mean = n > 0 ? s / n : NAN;
  if (n < 2) {
    *sd = NAN;
    return;
  }
  double q = 0;
  for (int i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
  *sd = sqrt(q / (n - 1));
}

/* ---- grouping ------------------------------------------------------------ */

static int find_name(const char **names, int n, const char *s) {
  for (int i = 0; i < n; i++)
    if (strcmp(names[i], s) == 0) return i;
  return -1;
}

static void slug(char *out, size_t len, const char *name) {
  size_t k = 0;
  for (const char *p = name; *p && k + 1 < len; p++) {
    char ch = *p;
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
             ch == '_' || ch == '-';
    out[k++] = ok ? ch : '-';
  }
  out[k] = '\0';
}

void ds_rep_model_build(const ds_rep_set *set, ds_rep_metric metric, rep_model *m) {
  memset(m, 0, sizeof *m);
  m->p = ds_xcalloc((size_t)set->n + 1, sizeof *m->p, "report problems");
  m->opt_names = ds_xcalloc((size_t)set->n + 1, sizeof *m->opt_names, "report optimizers");
  for (int i = 0; i < set->n; i++) {
    const ds_rep_trial *t = &set->t[i];
    if (find_name(m->opt_names, m->nopt, t->optimizer) < 0) m->opt_names[m->nopt++] = t->optimizer;
    int pi;
    for (pi = 0; pi < m->np && strcmp(m->p[pi].name, t->problem) != 0; pi++) {}
    rep_problem *p = &m->p[pi];
    if (pi == m->np) {
      m->np++;
      p->name = t->problem;
      slug(p->slug, sizeof p->slug, t->problem);
      for (int j = 0; j < pi; j++) /* two names with one file name: number the later one */
        if (strcmp(m->p[j].slug, p->slug) == 0) {
          char tmp[128];
          snprintf(tmp, sizeof tmp, "%.100s-%d", p->slug, pi + 1);
          snprintf(p->slug, sizeof p->slug, "%s", tmp);
        }
      p->o = ds_xcalloc((size_t)set->n + 1, sizeof *p->o, "report optimizers");
    }
    if (t->has_target) p->has_target = 1;
    int oi;
    for (oi = 0; oi < p->no && strcmp(p->o[oi].name, t->optimizer) != 0; oi++) {}
    rep_opt *o = &p->o[oi];
    if (oi == p->no) {
      p->no++;
      o->name = t->optimizer;
      o->color = find_name(m->opt_names, m->nopt, t->optimizer);
      o->s = ds_xcalloc((size_t)set->n + 1, sizeof *o->s, "report settings");
    }
    int si;
    for (si = 0; si < o->ns && strcmp(o->s[si].key, t->setting) != 0; si++) {}
    rep_setting *s = &o->s[si];
    if (si == o->ns) {
      o->ns++;
      s->key = t->setting;
      s->label = t->label;
      s->idx = ds_xcalloc((size_t)set->n + 1, sizeof *s->idx, "report trials");
    }
    if (t->failed) s->nfailed++;
    else s->idx[s->n++] = i;
  }
  /* the metric per problem: the validation figure unless no trial has one */
  for (int pi = 0; pi < m->np; pi++) {
    rep_problem *p = &m->p[pi];
    p->metric = metric;
    if (metric == DS_MET_VAL_ACCURACY || metric == DS_MET_VAL_LOSS) {
      int any = 0;
      for (int i = 0; i < set->n; i++)
        if (!set->t[i].failed && strcmp(set->t[i].problem, p->name) == 0 &&
            isfinite(ds_rep_metric_value(&set->t[i].fin, metric)))
          any = 1;
      if (!any) p->metric = metric == DS_MET_VAL_ACCURACY ? DS_MET_TEST_ACCURACY : DS_MET_TEST_LOSS;
    }
    int hb = ds_rep_metric_higher_better(p->metric);
    ds_rep_metric lm = ds_rep_metric_loss(p->metric);
    for (int oi = 0; oi < p->no; oi++) {
      rep_opt *o = &p->o[oi];
      o->best = -1;
      o->best_ttt = INFINITY;
      for (int si = 0; si < o->ns; si++) {
        rep_setting *s = &o->s[si];
        double sc = 0, ls = 0;
        double *tt = ds_xcalloc((size_t)s->n + 1, sizeof *tt, "times");
        for (int k = 0; k < s->n; k++) {
          const ds_rep_trial *t = &set->t[s->idx[k]];
          sc += ds_rep_score(t, p->metric);
          double l = ds_rep_metric_value(&t->fin, lm);
          ls += t->diverged || !isfinite(l) ? INFINITY : l;
          tt[k] = t->has_target && isfinite(t->time_to_target) ? t->time_to_target : INFINITY;
        }
        s->score = s->n ? sc / s->n : NAN;
        s->loss = s->n ? ls / s->n : NAN;
        s->ttt = s->n ? ds_rep_median(tt, s->n) : NAN;
        free(tt);
        if (s->n == 0) continue;
        if (s->ttt < o->best_ttt) o->best_ttt = s->ttt;
        if (o->best < 0) {
          o->best = si;
          continue;
        }
        const rep_setting *b = &o->s[o->best];
        int better = hb ? s->score > b->score : s->score < b->score;
        if (s->score == b->score && s->loss < b->loss) better = 1; /* ties: the lower mean loss */
        if (better) o->best = si;
      }
    }
  }
}

void ds_rep_model_free(rep_model *m) {
  for (int pi = 0; pi < m->np; pi++) {
    for (int oi = 0; oi < m->p[pi].no; oi++) {
      for (int si = 0; si < m->p[pi].o[oi].ns; si++) free(m->p[pi].o[oi].s[si].idx);
      free(m->p[pi].o[oi].s);
    }
    free(m->p[pi].o);
  }
  free(m->p);
  free(m->opt_names);
  memset(m, 0, sizeof *m);
}

double ds_rep_profile_rho(const rep_model *m, int o, double tau) {
  int hits = 0;
  for (int pi = 0; pi < m->np; pi++) {
    const rep_problem *p = &m->p[pi];
    double fastest = INFINITY, mine = INFINITY;
    for (int oi = 0; oi < p->no; oi++) {
      if (p->o[oi].best_ttt < fastest) fastest = p->o[oi].best_ttt;
      if (p->o[oi].color == o) mine = p->o[oi].best_ttt;
    }
    if (isfinite(mine) && mine <= tau * fastest) hits++;
  }
  return m->np ? (double)hits / m->np : NAN;
}

const char *ds_rep_color(int i) {
  static const char *const pal[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                    "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
  return pal[i % 10];
}
