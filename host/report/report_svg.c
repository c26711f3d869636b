/* The report's pictures: learning-rate sensitivity (log lr axis, mean over
 * seeds with a min-max band), learning curves at each optimizer's best
 * setting (median over seeds with a min-max band) and the performance
 * profile (a step plot on a log tau axis). Each optimizer's drawing is one
 * <g class="series" data-optimizer="NAME"> group. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "descent/common.h"
#include "plot/svg_plot.h"
#include "report/report_model.h"

#define W 860.0
#define H 500.0
#define ML 80.0
#define MR 200.0
#define MT 64.0
#define MB 64.0

typedef struct {
  double x, mean, lo, hi;
} pt;

static int cmp_pt(const void *a, const void *b) {
  double x = ((const pt *)a)->x, y = ((const pt *)b)->x;
  return x < y ? -1 : x > y;
}

static void series_open(FILE *f, const char *name) {
  fputs("<g class=\"series\" data-optimizer=\"", f);
  ds_svg_escape(f, name);
  fputs("\">\n", f);
}

/* Draw one optimizer's points: band, line, dots. */
static void draw_pts(ds_svg *s, const pt *q, int n, const char *color, int dots) {
  double *x = ds_xmalloc((size_t)(n + 1) * sizeof *x, "a series"), *lo = ds_xmalloc((size_t)(n + 1) * sizeof *lo, "a series");
  double *hi = ds_xmalloc((size_t)(n + 1) * sizeof *hi, "a series"), *xy = ds_xmalloc((size_t)(2 * n + 2) * sizeof *xy, "a series");
  for (int i = 0; i < n; i++) {
    x[i] = q[i].x;
    lo[i] = q[i].lo;
    hi[i] = q[i].hi;
    xy[2 * i] = q[i].x;
    xy[2 * i + 1] = q[i].mean;
  }
  ds_svg_band(s, x, lo, hi, (size_t)n, color, 0.18);
  ds_svg_polyline(s, xy, (size_t)n, color, 2.2, NULL, 0.95);
  if (dots)
    for (int i = 0; i < n; i++) ds_svg_marker_at(s, q[i].x, q[i].mean, DS_MARK_DOT, 6, color, NULL);
  free(x);
  free(lo);
  free(hi);
  free(xy);
}

/* The hyperparameters of a trial other than lr, as one string. */
static void others(const ds_rep_trial *t, char *out, size_t len) {
  size_t k = 0;
  out[0] = '\0';
  for (int i = 0; i < t->nhp && k + 1 < len; i++) {
    if (strcmp(t->hp[i].name, "lr") == 0) continue;
    if (t->hp[i].str) k += (size_t)snprintf(out + k, len - k, "%s=%s;", t->hp[i].name, t->hp[i].str);
    else k += (size_t)snprintf(out + k, len - k, "%s=%.17g;", t->hp[i].name, t->hp[i].num);
  }
}

typedef struct {
  const ds_rep_set *set;
  const rep_model *m;
  const rep_problem *p;
  pt **q;   /* per optimizer of p */
  int *nq;
  int *best_q; /* the point of the best setting, -1 */
} pic;

static void ranges(const pic *c, double *x0, double *x1, double *y0, double *y1) {
  *x0 = INFINITY, *x1 = -INFINITY, *y0 = INFINITY, *y1 = -INFINITY;
  for (int oi = 0; oi < c->p->no; oi++)
    for (int i = 0; i < c->nq[oi]; i++) {
      const pt *q = &c->q[oi][i];
      if (isfinite(q->x)) *x0 = fmin(*x0, q->x), *x1 = fmax(*x1, q->x);
      if (isfinite(q->lo)) *y0 = fmin(*y0, q->lo);
      if (isfinite(q->hi)) *y1 = fmax(*y1, q->hi);
    }
  if (!isfinite(*x0)) *x0 = 0, *x1 = 1;
  if (!isfinite(*y0)) *y0 = 0, *y1 = 1;
}

static void legend(ds_svg *s, const pic *c) {
  ds_svg_legend_item it[64];
  int n = 0;
  for (int oi = 0; oi < c->p->no && n < 64; oi++)
    if (c->nq[oi] > 0) it[n++] = (ds_svg_legend_item){c->p->o[oi].name, ds_rep_color(c->p->o[oi].color), 1, DS_MARK_NONE, NULL, NULL};
  ds_svg_legend(s, it, n);
}

static void free_pic(pic *c) {
  for (int oi = 0; oi < c->p->no; oi++) free(c->q[oi]);
  free(c->q);
  free(c->nq);
  free(c->best_q);
}

static void alloc_pic(pic *c) {
  c->q = ds_xcalloc((size_t)c->p->no + 1, sizeof *c->q, "a picture");
  c->nq = ds_xcalloc((size_t)c->p->no + 1, sizeof *c->nq, "a picture");
  c->best_q = ds_xcalloc((size_t)c->p->no + 1, sizeof *c->best_q, "a picture");
}

/* ---- lr sensitivity --------------------------------------------------- */

static void lr_points(pic *c) {
  const ds_rep_set *set = c->set;
  alloc_pic(c);
  for (int oi = 0; oi < c->p->no; oi++) {
    const rep_opt *o = &c->p->o[oi];
    c->best_q[oi] = -1;
    if (o->best < 0) continue;
    char want[2048], have[2048];
    others(&set->t[o->s[o->best].idx[0]], want, sizeof want);
    c->q[oi] = ds_xcalloc((size_t)o->ns + 1, sizeof(pt), "a picture");
    for (int si = 0; si < o->ns; si++) {
      const rep_setting *st = &o->s[si];
      if (st->n == 0) continue;
      const ds_rep_trial *t0 = &set->t[st->idx[0]];
      others(t0, have, sizeof have);
      if (strcmp(want, have) != 0 || !(t0->lr > 0)) continue;
      pt q = {log10(t0->lr), 0, INFINITY, -INFINITY};
      int k = 0;
      for (int j = 0; j < st->n; j++) {
        double v = ds_rep_score(&set->t[st->idx[j]], c->p->metric);
        if (!isfinite(v)) continue;
        q.mean += v, k++;
        q.lo = fmin(q.lo, v), q.hi = fmax(q.hi, v);
      }
      if (k == 0) continue;
      q.mean /= k;
      c->q[oi][c->nq[oi]++] = q;
    }
    qsort(c->q[oi], (size_t)c->nq[oi], sizeof(pt), cmp_pt);
    double bx = log10(set->t[o->s[o->best].idx[0]].lr);
    for (int i = 0; i < c->nq[oi]; i++)
      if (c->q[oi][i].x == bx) c->best_q[oi] = i;
  }
}

static int draw_lr(FILE *f, const void *ctx) {
  const pic *c = ctx;
  double x0, x1, y0, y1;
  ranges(c, &x0, &x1, &y0, &y1);
  x0 -= 0.15, x1 += 0.15;
  double pad = (y1 - y0) * 0.05;
  ds_svg_range_fix(&y0, &y1);
  ds_svg s;
  ds_svg_begin(&s, f, W, H, ML, MR, MT, MB, x0, x1, y0 - pad, y1 + pad);
  char sub[512];
  snprintf(sub, sizeof sub, "final %s against lr: mean over seeds, band min-max; other hyperparameters at their best",
           ds_rep_metric_names[c->p->metric]);
  ds_svg_title(&s, c->p->name, sub);
  ds_svg_axes_logx(&s, "learning rate (log scale)", ds_rep_metric_names[c->p->metric]);
  for (int oi = 0; oi < c->p->no; oi++) {
    if (c->nq[oi] == 0) continue;
    const char *col = ds_rep_color(c->p->o[oi].color);
    series_open(f, c->p->o[oi].name);
    draw_pts(&s, c->q[oi], c->nq[oi], col, 1);
    if (c->best_q[oi] >= 0) {
      const pt *b = &c->q[oi][c->best_q[oi]];
      ds_svg_marker_at(&s, b->x, b->mean, DS_MARK_CIRCLE, 13, col, "none");
    }
    ds_svg_group_end(&s);
  }
  legend(&s, c);
  return ds_svg_end(&s);
}

int ds_rep_svg_lr(const char *path, const ds_rep_set *set, const rep_model *m, const rep_problem *p, char *err,
                  size_t errlen) {
  pic c = {set, m, p, NULL, NULL, NULL};
  lr_points(&c);
  int rc = ds_rep_write_file(path, draw_lr, &c, err, errlen);
  free_pic(&c);
  return rc;
}

/* ---- learning curves ---------------------------------------------------- */

static void curve_points(pic *c) {
  const ds_rep_set *set = c->set;
  alloc_pic(c);
  for (int oi = 0; oi < c->p->no; oi++) {
    const rep_opt *o = &c->p->o[oi];
    c->best_q[oi] = -1;
    if (o->best < 0) continue;
    const rep_setting *st = &o->s[o->best];
    int total = 0;
    for (int j = 0; j < st->n; j++) total += set->t[st->idx[j]].ncurve;
    double *steps = ds_xcalloc((size_t)total + 1, sizeof *steps, "a picture");
    int ns = 0;
    for (int j = 0; j < st->n; j++) {
      const ds_rep_trial *t = &set->t[st->idx[j]];
      for (int i = 0; i < t->ncurve; i++) steps[ns++] = t->curve[i].step;
    }
    c->q[oi] = ds_xcalloc((size_t)ns + 1, sizeof(pt), "a picture");
    double *v = ds_xcalloc((size_t)st->n + 1, sizeof *v, "a picture");
    for (int a = 0; a < ns; a++) {
      int dup = 0;
      for (int b = 0; b < a && !dup; b++) dup = steps[b] == steps[a];
      if (dup) continue;
      int k = 0;
      for (int j = 0; j < st->n; j++) {
        const ds_rep_trial *t = &set->t[st->idx[j]];
        for (int i = 0; i < t->ncurve; i++)
          if (t->curve[i].step == steps[a] && isfinite(ds_rep_curve_value(&t->curve[i], c->p->metric))) {
            v[k++] = ds_rep_curve_value(&t->curve[i], c->p->metric);
            break;
          }
      }
      if (k == 0) continue;
      pt q = {steps[a], ds_rep_median(v, k), INFINITY, -INFINITY};
      for (int i = 0; i < k; i++) q.lo = fmin(q.lo, v[i]), q.hi = fmax(q.hi, v[i]);
      c->q[oi][c->nq[oi]++] = q;
    }
    qsort(c->q[oi], (size_t)c->nq[oi], sizeof(pt), cmp_pt);
    free(v);
    free(steps);
  }
}

static int draw_curves(FILE *f, const void *ctx) {
  const pic *c = ctx;
  double x0, x1, y0, y1;
  /* the target, when the problem's trials share one on this metric */
  double target = NAN;
  int one = 1;
  for (int i = 0; i < c->set->n; i++) {
    const ds_rep_trial *t = &c->set->t[i];
    if (t->failed || !t->has_target || strcmp(t->problem, c->p->name) != 0) continue;
    if (t->target_metric != (int)c->p->metric || (!isnan(target) && t->target_value != target)) one = 0;
    target = t->target_value;
  }
  ranges(c, &x0, &x1, &y0, &y1);
  if (x0 > 0) x0 = 0;
  if (one && isfinite(target)) y0 = fmin(y0, target), y1 = fmax(y1, target);
  double pad = (y1 - y0) * 0.05;
  ds_svg_range_fix(&x0, &x1);
  ds_svg_range_fix(&y0, &y1);
  ds_svg s;
  ds_svg_begin(&s, f, W, H, ML, MR, MT, MB, x0, x1, y0 - pad, y1 + pad);
  char sub[512];
  snprintf(sub, sizeof sub, "%s at each optimizer's best setting: median over seeds, band min-max",
           ds_rep_metric_names[c->p->metric]);
  ds_svg_title(&s, c->p->name, sub);
  ds_svg_axes(&s, "update (step)", ds_rep_metric_names[c->p->metric]);
  if (one && isfinite(target)) {
    double xy[4] = {x0, target, x1, target};
    char lab[64];
    fputs("<g class=\"target\">\n", f);
    ds_svg_polyline(&s, xy, 2, "#555", 1.2, "6 4", 0.9);
    snprintf(lab, sizeof lab, "target %g", target);
    ds_svg_text(&s, x0, target, 6, -6, lab, 12, "#555");
    ds_svg_group_end(&s);
  }
  for (int oi = 0; oi < c->p->no; oi++) {
    if (c->nq[oi] == 0) continue;
    series_open(f, c->p->o[oi].name);
    draw_pts(&s, c->q[oi], c->nq[oi], ds_rep_color(c->p->o[oi].color), c->nq[oi] <= 40);
    ds_svg_group_end(&s);
  }
  legend(&s, c);
  return ds_svg_end(&s);
}

int ds_rep_svg_curves(const char *path, const ds_rep_set *set, const rep_model *m, const rep_problem *p, char *err,
                      size_t errlen) {
  pic c = {set, m, p, NULL, NULL, NULL};
  curve_points(&c);
  int rc = ds_rep_write_file(path, draw_curves, &c, err, errlen);
  free_pic(&c);
  return rc;
}

/* ---- performance profile ------------------------------------------------ */

/* ratio of optimizer o on problem p to the fastest there (+inf: missed) */
static double ratio(const rep_model *m, int pi, int o) {
  const rep_problem *p = &m->p[pi];
  double fastest = INFINITY, mine = INFINITY;
  for (int oi = 0; oi < p->no; oi++) {
    if (p->o[oi].best_ttt < fastest) fastest = p->o[oi].best_ttt;
    if (p->o[oi].color == o) mine = p->o[oi].best_ttt;
  }
  return isfinite(mine) ? mine / fastest : INFINITY;
}

static int draw_profile(FILE *f, const void *ctx) {
  const rep_model *m = ctx;
  double tmax = 2.0;
  for (int pi = 0; pi < m->np; pi++)
    for (int o = 0; o < m->nopt; o++) {
      double r = ratio(m, pi, o);
      if (isfinite(r) && r * 1.5 > tmax) tmax = r * 1.5;
    }
  ds_svg s;
  ds_svg_begin(&s, f, W, H, ML, MR, MT, MB, 0.0, log10(tmax), -0.03, 1.03);
  ds_svg_title(&s, "Performance profile",
               "fraction of problems where the best time to target is within tau of the fastest optimizer's");
  ds_svg_axes_logx(&s, "tau (log scale)", "fraction of problems");
  ds_svg_legend_item it[64];
  int nit = 0;
  double *r = ds_xcalloc((size_t)m->np + 1, sizeof *r, "a profile");
  double *xy = ds_xcalloc((size_t)(4 * m->np + 8), sizeof *xy, "a profile");
  for (int o = 0; o < m->nopt; o++) {
    int n = 0, k = 0;
    for (int pi = 0; pi < m->np; pi++) {
      double v = ratio(m, pi, o);
      if (isfinite(v)) r[n++] = v;
    }
    for (int i = 1; i < n; i++) /* insertion sort: a handful of problems */
      for (int j = i; j > 0 && r[j] < r[j - 1]; j--) {
        double t = r[j];
        r[j] = r[j - 1], r[j - 1] = t;
      }
    double rho;
    xy[k++] = 0.0;
    xy[k++] = ds_rep_profile_rho(m, o, 1.0);
    for (int i = 0; i < n; i++) {
      if (r[i] <= 1.0) continue;
      double x = log10(r[i]), before = xy[k - 1];
      rho = ds_rep_profile_rho(m, o, r[i]);
      xy[k] = x, xy[k + 1] = before, xy[k + 2] = x, xy[k + 3] = rho;
      k += 4;
    }
    xy[k] = log10(tmax);
    xy[k + 1] = xy[k - 1];
    k += 2;
    series_open(f, m->opt_names[o]);
    ds_svg_polyline(&s, xy, (size_t)k / 2, ds_rep_color(o), 2.4, NULL, 0.9);
    ds_svg_group_end(&s);
    if (nit < 64) it[nit++] = (ds_svg_legend_item){m->opt_names[o], ds_rep_color(o), 1, DS_MARK_NONE, NULL, NULL};
  }
  free(r);
  free(xy);
  ds_svg_legend(&s, it, nit);
  return ds_svg_end(&s);
}

int ds_rep_svg_profile(const char *path, const rep_model *m, char *err, size_t errlen) {
  return ds_rep_write_file(path, draw_profile, m, err, errlen);
}
