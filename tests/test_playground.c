/* The playground: toy functions, the runner over the CPU backend's
 * optim_step, the SVG writer's marching squares, and the pictures read back
 * as SVG text (layer order, legend inside the canvas, marks where a path
 * leaves the frame, the colour key, equal paths told apart). References are
 * closed forms and double-precision re-implementations written here. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "descent/backend.h"
#include "playground/playground.h"
#include "plot/playground_svg.h"
#include "plot/svg_plot.h"

static const ds_backend *be;

static ds_optim_config sgd(double lr) {
  ds_optim_config c;
  ds_optim_defaults(&c, DS_OPT_SGD);
  c.lr = (float)lr;
  return c;
}

/* 1. Analytic gradients against central differences (double). h = 1e-5
 * leaves an O(h^2 * f''') truncation error (~1e-8 here, f''' <= 2400 on the
 * points drawn for rosenbrock) plus O(eps * f / h) rounding (~1e-9). */
static void test_gradients(void) {
  const char *names[] = {"parabola", "bowl", "ellipse", "saddle", "rosenbrock"};
  for (int k = 0; k < 5; k++) {
    const ds_toy_fn *fn = ds_toy_find(names[k]);
    CHECK(fn != NULL && strcmp(fn->name, names[k]) == 0, "ds_toy_find(%s)", names[k]);
    if (!fn) continue;
    for (int trial = 0; trial < 20; trial++) {
      double x[2] = {2 * check_uniform(), 2 * check_uniform()}, g[2] = {0, 0};
      fn->grad(g, x);
      for (int i = 0; i < fn->dim; i++) {
        const double h = 1e-5;
        double xp[2] = {x[0], x[1]}, xm[2] = {x[0], x[1]};
        xp[i] += h;
        xm[i] -= h;
        double fd = (fn->f(xp) - fn->f(xm)) / (2 * h);
        CHECK_CLOSE(g[i], fd, 1e-6, 1e-6, "%s: df/dx%d at (%g, %g)", names[k], i + 1, x[0], x[1]);
      }
    }
  }
  CHECK(ds_toy_find("nope") == NULL, "unknown function name");
}

/* 2. x^2 with step a: x_{t+1} = (1 - 2a) x_t. Per update the float path
 * rounds lr (|da| <= a*2^-24), lr*g and the subtraction (half an ulp each,
 * the first relative to 2a|x|, not |1-2a||x|); for the lecture's steps that
 * is below 3*FLT_EPSILON relative per update, so after t updates the error
 * is within (t+1)*3*FLT_EPSILON (the +1: x0 = 8.7 rounded to float). */
static void test_parabola(void) {
  const ds_toy_fn *fn = ds_toy_find("parabola");
  const double steps_a[3] = {0.2, 0.9, 1.05};
  for (int k = 0; k < 3; k++) {
    double a = steps_a[k], x0 = 8.7, ref = x0;
    ds_optim_config c = sgd(a);
    ds_trajectory tr;
    ds_playground_run(be, fn, &c, &x0, 20, &tr);
    CHECK(tr.n == 21 && !tr.stopped, "lr %g: 21 rows, got %ld (stopped %d)", a, tr.n, tr.stopped);
    for (long t = 0; t < tr.n; t++) {
      double x = tr.x[t];
      CHECK_CLOSE(x, ref, 0.0, (t + 1) * 3 * FLT_EPSILON, "lr %g: x_%ld = (1-2a)^t x0", a, t);
      CHECK_CLOSE(tr.f[t], x * x, 0.0, 1e-15, "lr %g: f_%ld", a, t);
      CHECK_CLOSE(tr.gnorm[t], fabs(2 * x), 0.0, 1e-15, "lr %g: grad_norm_%ld", a, t);
      ref *= 1.0 - 2.0 * a;
      if (t == 0) continue;
      double prev = tr.x[t - 1];
      /* the lecture: 0.2 keeps the sign and shrinks; 0.9 flips the sign and
       * shrinks; 1.05 flips the sign and grows */
      if (a < 0.5) CHECK(x > 0 && x < prev, "lr %g: x_%ld = %g keeps its sign and shrinks", a, t, x);
      else CHECK(x * prev < 0, "lr %g: x_%ld = %g flips sign from %g", a, t, x, prev);
      if (a > 0.5 && a < 1.0) CHECK(fabs(x) < fabs(prev), "lr %g: |x_%ld| shrinks", a, t);
      if (a > 1.0) CHECK(fabs(x) > fabs(prev), "lr %g: |x_%ld| grows", a, t);
    }
    ds_trajectory_free(&tr);
  }

  /* 1.05 run long: |x| grows by 1.1 a step until f = x^2 no longer fits a
   * float; the run stops there and keeps only finite rows. */
  double x0 = 8.7;
  ds_optim_config c = sgd(1.05);
  ds_trajectory tr;
  ds_playground_run(be, fn, &c, &x0, 1000, &tr);
  CHECK(tr.stopped == 1, "lr 1.05 for 1000 updates stops on overflow");
  CHECK(tr.n < 1001 && tr.n > 400, "lr 1.05: %ld rows kept", tr.n);
  CHECK(tr.stopped_at == tr.n, "stopped at update %ld = rows kept %ld", tr.stopped_at, tr.n);
  for (long t = 0; t < tr.n; t++)
    if (!(isfinite(tr.x[t]) && tr.f[t] <= FLT_MAX)) {
      CHECK(0, "row %ld not finite", t);
      break;
    }
  double last = tr.x[tr.n - 1];
  /* the next point, -1.1*last, squared must be past FLT_MAX (factor 1.21 a
   * step: no rounding can move the crossing by a step) */
  CHECK(last * last <= FLT_MAX && (1.1 * last) * (1.1 * last) > FLT_MAX,
        "stopped exactly when f overflowed: last x %g", last);
  /* closed form for where that happens: 8.7 * 1.1^t, f > FLT_MAX */
  long want = (long)ceil(log(sqrt((double)FLT_MAX) / 8.7) / log(1.1));
  CHECK(labs(tr.stopped_at - want) <= 1, "stopped at update %ld, closed form %ld", tr.stopped_at, want);
  ds_trajectory_free(&tr);
}

/* Gradient descent on a quadratic f = x^T H x / 2 in double. */
static void gd_quadratic(double *x, const double H[2][2], double lr) {
  double g0 = H[0][0] * x[0] + H[0][1] * x[1], g1 = H[1][0] * x[0] + H[1][1] * x[1];
  x[0] -= lr * g0;
  x[1] -= lr * g1;
}

/* 3. Bowl and ellipse: GD is stable for lr < 2/lambda_max of the Hessian. */
static void test_stability(void) {
  struct { const char *name; double H[2][2]; } q[2] = {
    {"bowl", {{2, 0}, {0, 2}}},
    {"ellipse", {{1, 1}, {1, 4}}},
  };
  for (int k = 0; k < 2; k++) {
    const ds_toy_fn *fn = ds_toy_find(q[k].name);
    double tr2 = (q[k].H[0][0] + q[k].H[1][1]) / 2, det = q[k].H[0][0] * q[k].H[1][1] - q[k].H[0][1] * q[k].H[1][0];
    double lmax = tr2 + sqrt(tr2 * tr2 - det), bound = 2.0 / lmax;
    if (k == 1) CHECK_CLOSE(bound, 4.0 / (5.0 + sqrt(13.0)), 0, 1e-12, "ellipse bound");
    double x0[2] = {8.7, -7.9}, r0 = hypot(x0[0], x0[1]);
    for (int side = 0; side < 2; side++) {
      double lr = bound * (side == 0 ? 0.95 : 1.05);
      ds_optim_config c = sgd(lr);
      ds_trajectory tr;
      ds_playground_run(be, fn, &c, x0, 3000, &tr);
      /* the first 40 updates against the double recurrence; 1e-5 of |x0|
       * covers 40 updates of float rounding (~40 * 3 * 6e-8 relative) */
      double ref[2] = {x0[0], x0[1]};
      for (long t = 0; t < 40 && t < tr.n; t++) {
        CHECK_CLOSE(tr.x[2 * t], ref[0], 1e-5 * r0, 0, "%s lr %.4f: x1 at %ld", q[k].name, lr, t);
        CHECK_CLOSE(tr.x[2 * t + 1], ref[1], 1e-5 * r0, 0, "%s lr %.4f: x2 at %ld", q[k].name, lr, t);
        gd_quadratic(ref, q[k].H, (float)lr);
      }
      if (side == 0) {
        double r = hypot(tr.x[2 * (tr.n - 1)], tr.x[2 * (tr.n - 1) + 1]);
        CHECK(!tr.stopped && tr.n == 3001 && r < 1e-6 * r0,
              "%s lr %.4f (inside 2/lambda_max = %.4f) converges: |x| = %g", q[k].name, lr, bound, r);
      } else {
        CHECK(tr.stopped && tr.n < 3001,
              "%s lr %.4f (outside 2/lambda_max = %.4f) diverges: stopped %d after %ld rows", q[k].name,
              lr, bound, tr.stopped, tr.n);
      }
      ds_trajectory_free(&tr);
    }
  }
}

/* 4. Saddle x1^2 - x2^2, lr 0.1: x1 <- 0.8 x1, x2 <- 1.2 x2. */
static void test_saddle(void) {
  const ds_toy_fn *fn = ds_toy_find("saddle");
  ds_optim_config c = sgd(0.1);
  ds_trajectory tr;
  double on_axis[2] = {1, 0};
  ds_playground_run(be, fn, &c, on_axis, 200, &tr);
  double x1 = tr.x[2 * 200], x2 = tr.x[2 * 200 + 1];
  CHECK(!tr.stopped && x2 == 0.0 && fabs(x1) < 1e-15 && tr.gnorm[200] < 1e-14,
        "from (1, 0) GD converges to the saddle point: (%g, %g), |g| %g", x1, x2, tr.gnorm[200]);
  ds_trajectory_free(&tr);

  double off[2] = {1, 1e-3};
  ds_playground_run(be, fn, &c, off, 60, &tr);
  double r1 = 1.0, r2 = (double)1e-3f;
  for (long t = 0; t <= 60; t++) {
    CHECK_CLOSE(tr.x[2 * t], r1, 0, (t + 1) * 3 * FLT_EPSILON, "saddle x1_%ld = 0.8^t", t);
    CHECK_CLOSE(tr.x[2 * t + 1], r2, 0, (t + 1) * 3 * FLT_EPSILON, "saddle x2_%ld = 1.2^t 1e-3", t);
    r1 *= 1.0 - 2 * 0.1;
    r2 *= 1.0 + 2 * 0.1;
  }
  CHECK(tr.x[2 * 60 + 1] > 1.0 && fabs(tr.x[2 * 60]) < 1e-5 && tr.f[60] < -1.0,
        "from (1, 1e-3) GD escapes along x2: (%g, %g)", tr.x[120], tr.x[121]);
  long sgd_escape = -1;
  for (long t = 0; t <= 60 && sgd_escape < 0; t++)
    if (tr.x[2 * t + 1] > 1.0) sgd_escape = t;
  ds_trajectory_free(&tr);

  /* heavy ball (torch form: b = mu b + g, first b = g; w -= lr b) in double */
  ds_optim_config m = sgd(0.1);
  m.momentum = 0.9f;
  ds_playground_run(be, fn, &m, off, 25, &tr);
  double w[2] = {1.0, (double)1e-3f}, b[2] = {0, 0};
  long mom_escape = -1;
  for (long t = 0; t <= 25; t++) {
    double scale = fabs(w[0]) + fabs(w[1]);
    /* momentum sums past steps: rounding relative to the running scale */
    CHECK_CLOSE(tr.x[2 * t], w[0], 1e-5 * scale, 0, "momentum x1_%ld", t);
    CHECK_CLOSE(tr.x[2 * t + 1], w[1], 1e-5 * scale, 0, "momentum x2_%ld", t);
    if (mom_escape < 0 && tr.x[2 * t + 1] > 1.0) mom_escape = t;
    double g[2] = {2 * w[0], -2 * w[1]};
    for (int i = 0; i < 2; i++) {
      b[i] = t == 0 ? g[i] : 0.9 * b[i] + g[i];
      w[i] -= (double)0.1f * b[i];
    }
  }
  CHECK(mom_escape > 0 && mom_escape < sgd_escape, "momentum escapes sooner: update %ld vs %ld",
        mom_escape, sgd_escape);
  ds_trajectory_free(&tr);
}

/* 5. Nesterov look-ahead (gradient at w - mu v) and Adam against double
 * re-implementations; the step schedule and global-norm clipping. */
static void test_optimizers(void) {
  const ds_toy_fn *ell = ds_toy_find("ellipse");
  double x0[2] = {8.7, -7.9};
  ds_trajectory tr;

  ds_optim_config n = sgd(0.05);
  n.momentum = 0.9f;
  n.nesterov = 1;
  n.nesterov_form = DS_NESTEROV_LOOKAHEAD;
  ds_playground_run(be, ell, &n, x0, 30, &tr);
  double w[2] = {(float)8.7, (float)-7.9}, v[2] = {0, 0}, mu = (double)0.9f, lr = (double)0.05f;
  for (long t = 0; t <= 30; t++) {
    CHECK_CLOSE(tr.x[2 * t], w[0], 1e-5 * 12, 0, "lookahead x1_%ld", t);
    CHECK_CLOSE(tr.x[2 * t + 1], w[1], 1e-5 * 12, 0, "lookahead x2_%ld", t);
    double p[2] = {w[0] - mu * v[0], w[1] - mu * v[1]}, g[2];
    ell->grad(g, p);
    for (int i = 0; i < 2; i++) {
      v[i] = mu * v[i] + lr * g[i];
      w[i] -= v[i];
    }
  }
  ds_trajectory_free(&tr);

  ds_optim_config a;
  ds_optim_defaults(&a, DS_OPT_ADAM);
  a.lr = 0.5f;
  ds_playground_run(be, ell, &a, x0, 30, &tr);
  double wa[2] = {(float)8.7, (float)-7.9}, m1[2] = {0, 0}, m2[2] = {0, 0};
  double b1 = (double)0.9f, b2 = (double)0.999f, lra = (double)0.5f;
  for (long t = 0; t <= 30; t++) {
    /* Adam's step is ~lr per coordinate whatever the gradient's size, so the
     * float path stays within ~t ulps of 12 (|x| scale): 1e-4 absolute */
    CHECK_CLOSE(tr.x[2 * t], wa[0], 1e-4, 0, "adam x1_%ld", t);
    CHECK_CLOSE(tr.x[2 * t + 1], wa[1], 1e-4, 0, "adam x2_%ld", t);
    double g[2];
    ell->grad(g, wa);
    for (int i = 0; i < 2; i++) {
      m1[i] = b1 * m1[i] + (1 - b1) * g[i];
      m2[i] = b2 * m2[i] + (1 - b2) * g[i] * g[i];
      double bc1 = 1 - pow(b1, t + 1), bc2 = 1 - pow(b2, t + 1);
      wa[i] -= lra / bc1 * m1[i] / (sqrt(m2[i]) / sqrt(bc2) + 1e-8);
    }
  }
  ds_trajectory_free(&tr);

  ds_optim_config s = sgd(0.1);
  s.schedule = DS_SCHED_STEP;
  s.step_size = 2;
  s.gamma = 0.5f;
  ds_playground_run(be, ds_toy_find("bowl"), &s, x0, 6, &tr);
  for (long t = 0; t <= 6; t++)
    CHECK_CLOSE(tr.lr[t], 0.1 * pow(0.5, (double)(t / 2)), 0, 1e-6, "step schedule lr at %ld", t);
  /* bowl, x <- x - lr(t)*2x: the scheduled rate is the one applied */
  double xs = (float)8.7;
  for (long t = 0; t < 6; t++) xs *= 1.0 - 2.0 * 0.1 * pow(0.5, (double)(t / 2));
  CHECK_CLOSE(tr.x[2 * 6], xs, 0, 1e-5, "bowl under the step schedule");
  ds_trajectory_free(&tr);

  ds_optim_config cl = sgd(0.1);
  cl.clip_norm = 1.0f;
  ds_playground_run(be, ds_toy_find("bowl"), &cl, x0, 10, &tr);
  for (long t = 0; t < 10; t++) {
    double d = hypot(tr.x[2 * t + 2] - tr.x[2 * t], tr.x[2 * t + 3] - tr.x[2 * t + 1]);
    /* |grad| >= 2 here, so the clipped step has length lr * 1 * |g|/(|g|+1e-6) */
    CHECK(tr.gnorm[t] > 1.0, "bowl gradient above the clip norm at %ld", t);
    CHECK_CLOSE(d, 0.1 * tr.gnorm[t] / (tr.gnorm[t] + 1e-6), 0, 1e-5, "clipped step length at %ld", t);
  }
  ds_trajectory_free(&tr);
}

/* ---- marching squares ------------------------------------------------------ */

typedef struct {
  int lines, closed;
  size_t points;
  double max_err;      /* circle: | |p| - r | */
  int mixed_quadrant;  /* hyperbola: a line with points in two quadrants */
  int on_border;       /* open lines: both ends on the border */
  double r;
  int kind;            /* 0 circle, 1 hyperbola */
} contour_stats;

static void collect(void *p, const double *xy, size_t n) {
  contour_stats *s = p;
  s->lines++;
  s->points += n;
  if (n > 2 && xy[0] == xy[2 * (n - 1)] && xy[1] == xy[2 * (n - 1) + 1]) s->closed++;
  else {
    for (int e = 0; e < 2; e++) {
      const double *q = xy + (e ? 2 * (n - 1) : 0);
      if (fabs(fabs(q[0]) - 1.0) < 1e-12 || fabs(fabs(q[1]) - 1.0) < 1e-12) s->on_border++;
    }
  }
  for (size_t i = 0; i < n; i++) {
    double x = xy[2 * i], y = xy[2 * i + 1];
    if (s->kind == 0) {
      double e = fabs(hypot(x, y) - s->r);
      if (e > s->max_err) s->max_err = e;
    } else if ((x > 0) != (xy[0] > 0) || (y > 0) != (xy[1] > 0)) {
      s->mixed_quadrant = 1;
    }
  }
}

static void test_contours(void) {
  enum { N = 81 };
  static double z[N * N];
  double h = 2.0 / (N - 1);
  for (int j = 0; j < N; j++)
    for (int i = 0; i < N; i++) {
      double x = -1 + i * h, y = -1 + j * h;
      z[j * N + i] = x * x + y * y;
    }
  /* a circle inside the grid: one closed line; linear interpolation along an
   * edge of length h misplaces the crossing by at most ~h^2/(8r) */
  contour_stats s = {0};
  s.r = 0.6;
  int n = ds_contour_lines(z, N, N, -1, 1, -1, 1, 0.36, collect, &s);
  CHECK(n == 1 && s.lines == 1 && s.closed == 1, "circle: one closed line, got %d (%d closed)", s.lines, s.closed);
  CHECK(s.max_err < h * h / (8 * 0.6) + 1e-12, "circle points within h^2/8r of r: %g", s.max_err);
  CHECK(s.points > 2 * 3.14159 * 0.6 / h, "circle has enough points: %zu", s.points);
  /* radius 1.2 leaves the square [-1,1]^2: four open arcs, ends on the border */
  contour_stats o = {0};
  o.r = 1.2;
  n = ds_contour_lines(z, N, N, -1, 1, -1, 1, 1.44, collect, &o);
  CHECK(n == 4 && o.closed == 0 && o.on_border == 8, "corner arcs: %d lines, %d closed, %d ends on border",
        n, o.closed, o.on_border);
  CHECK(o.max_err < h * h / (8 * 1.2) + 1e-12, "arcs within h^2/8r: %g", o.max_err);

  /* z = x*y at level 0.002 on an even grid (no node on the axes): the
   * centre cell has alternating corners. Its mean (0) is below the level, so
   * the two positive corners must be cut off separately: each line stays in
   * one quadrant (Q1 or Q3) instead of jumping across the origin. */
  enum { M = 20 };
  static double w[M * M];
  double hm = 2.0 / (M - 1);
  for (int j = 0; j < M; j++)
    for (int i = 0; i < M; i++) w[j * M + i] = (-1 + i * hm) * (-1 + j * hm);
  contour_stats hy = {0};
  hy.kind = 1;
  n = ds_contour_lines(w, M, M, -1, 1, -1, 1, 0.002, collect, &hy);
  CHECK(n == 2 && !hy.mixed_quadrant, "hyperbola xy = 0.002: %d lines, mixed quadrant %d", n, hy.mixed_quadrant);

  CHECK_CLOSE(ds_nice_step(10.0, 5), 2.0, 0, 1e-12, "nice step 10/5");
  CHECK_CLOSE(ds_nice_step(17.0, 6), 2.0, 0, 1e-12, "nice step 17/6");
  CHECK_CLOSE(ds_nice_step(1.0, 6), 0.2, 0, 1e-12, "nice step 1/6");
  CHECK_CLOSE(ds_nice_step(0.03, 6), 0.005, 0, 1e-12, "nice step 0.03/6");
}

/* The picture: well-formed enough, escaped labels, a path per series. */
static void test_svg(void) {
  const ds_toy_fn *fn = ds_toy_find("ellipse");
  double x0[2] = {8.7, -7.9};
  ds_optim_config c = sgd(0.2);
  ds_trajectory tr;
  ds_playground_run(be, fn, &c, x0, 10, &tr);
  ds_plot_series s = {"a<b & \"c\"", &tr};
  FILE *f = tmpfile();
  CHECK(f != NULL, "tmpfile");
  if (!f) return;
  CHECK(ds_playground_svg(f, fn, &s, 1, "title", "sub") == 0, "svg written");
  long len = ftell(f);
  rewind(f);
  char *buf = calloc((size_t)len + 1, 1);
  CHECK(fread(buf, 1, (size_t)len, f) == (size_t)len, "read back");
  fclose(f);
  CHECK(strncmp(buf, "<?xml", 5) == 0 && strstr(buf, "</svg>\n") != NULL, "svg document");
  CHECK(strstr(buf, "a&lt;b &amp; &quot;c&quot;") != NULL, "legend label escaped");
  CHECK(strstr(buf, "a<b") == NULL, "no raw '<' from the label");
  int paths = 0;
  for (const char *p = buf; (p = strstr(p, "<path")) != NULL; p++) paths++;
  CHECK(paths >= 10, "contour paths and the trajectory: %d paths", paths);
  free(buf);
  ds_trajectory_free(&tr);
}

/* ---- the pictures, read back as text ---------------------------------------- */

/* An optimizer as the CLI makes it: the name's defaults, then lr (when > 0). */
static ds_optim_config named(const char *name, double lr) {
  ds_optim_config c, kind = {0};
  ds_optim_parse_name(name, &kind);
  ds_optim_defaults(&c, kind.kind);
  ds_optim_parse_name(name, &c);
  if (lr > 0) c.lr = (float)lr;
  return c;
}

typedef struct {
  int n;
  ds_trajectory tr[8];
  ds_plot_series s[8];
  char label[8][96];
} runs;

/* Run each named optimizer on fn from its default start (lr 0: each one's
 * default lr), labelled as the CLI does. */
static void run_all(runs *r, const ds_toy_fn *fn, const char *const *names, int n, double lr, long steps) {
  r->n = n;
  for (int k = 0; k < n; k++) {
    ds_optim_config c = named(names[k], lr);
    ds_playground_run(be, fn, &c, fn->x0, steps, &r->tr[k]);
    ds_playground_label(r->label[k], sizeof r->label[k], names[k], &c);
    r->s[k].label = r->label[k];
    r->s[k].tr = &r->tr[k];
  }
}

static void runs_free(runs *r) {
  for (int k = 0; k < r->n; k++) ds_trajectory_free(&r->tr[k]);
}

/* The picture as a string (free it), or NULL. */
static char *picture(const ds_toy_fn *fn, const ds_plot_series *s, int n) {
  FILE *f = tmpfile();
  CHECK(f != NULL, "tmpfile");
  if (!f) return NULL;
  int rc = ds_playground_svg(f, fn, s, n, "title", "sub");
  CHECK(rc == 0, "%s: svg written", fn->name);
  long len = ftell(f);
  char *buf = NULL;
  if (len > 0 && fseek(f, 0, SEEK_SET) == 0) {
    buf = calloc((size_t)len + 1, 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
      free(buf);
      buf = NULL;
    }
  }
  CHECK(buf != NULL, "%s: svg read back", fn->name);
  fclose(f);
  return buf;
}

/* The numeric attribute `name` of the element starting at el (NAN if absent). */
static double attr(const char *el, const char *name) {
  char key[32];
  snprintf(key, sizeof key, " %s=\"", name);
  const char *end = strchr(el, '>'), *p = strstr(el, key);
  if (!p || (end && p > end)) return NAN;
  return strtod(p + strlen(key), NULL);
}

/* Whether the element starting at el has attribute name="value". */
static int has_attr(const char *el, const char *name, const char *value) {
  char key[64];
  snprintf(key, sizeof key, " %s=\"%s\"", name, value);
  const char *end = strchr(el, '>'), *p = strstr(el, key);
  return p && (!end || p < end);
}

/* The layer <g class="cls">: its first element and its end ("</g>"), or NULL. */
static const char *layer(const char *svg, const char *cls, const char **end) {
  char key[64];
  snprintf(key, sizeof key, "<g class=\"%s\">", cls);
  const char *p = svg ? strstr(svg, key) : NULL;
  if (!p) return NULL;
  p += strlen(key);
  *end = strstr(p, "</g>");
  return *end ? p : NULL;
}

/* The pixel bounding box of a drawn shape (circle, rect, polygon, path);
 * 0 for anything else. */
static int bbox(const char *el, double b[4]) {
  if (strncmp(el, "<circle", 7) == 0) {
    double cx = attr(el, "cx"), cy = attr(el, "cy"), r = attr(el, "r");
    b[0] = cx - r, b[1] = cy - r, b[2] = cx + r, b[3] = cy + r;
    return 1;
  }
  if (strncmp(el, "<rect", 5) == 0) {
    b[0] = attr(el, "x"), b[1] = attr(el, "y");
    b[2] = b[0] + attr(el, "width"), b[3] = b[1] + attr(el, "height");
    return 1;
  }
  const char *p = NULL;
  if (strncmp(el, "<polygon", 8) == 0 && (p = strstr(el, "points=\"")) != NULL) p += 8;
  else if (strncmp(el, "<path", 5) == 0 && (p = strstr(el, " d=\"")) != NULL) p += 4;
  if (!p) return 0;
  b[0] = b[1] = INFINITY;
  b[2] = b[3] = -INFINITY;
  for (int i = 0; *p && *p != '"'; i++) {
    while (*p && strchr("MLZ, ", *p)) p++;
    char *e;
    double v = strtod(p, &e);
    if (e == p) break;
    p = e;
    b[i % 2] = fmin(b[i % 2], v);
    b[2 + i % 2] = fmax(b[2 + i % 2], v);
  }
  return isfinite(b[0]);
}

/* Text of the element starting at el, up to '<' (UTF-8 code points counted). */
static size_t text_chars(const char *el, char *out, size_t outlen) {
  const char *p = strchr(el, '>');
  size_t n = 0, cps = 0;
  for (p = p ? p + 1 : el; *p && *p != '<'; p++) {
    if (n + 1 < outlen) out[n++] = *p;
    cps += ((unsigned char)*p & 0xC0) != 0x80;
  }
  out[n] = '\0';
  return cps;
}

/* 6. Markers over paths, and never one filled marker over another: every
 * marker comes after every trajectory; one that overlaps an earlier marker
 * is hollow. The cases: the README's ellipse (the paths crossed the
 * minimum's star) and rosenbrock (Adam's end square covered it). */
static void check_marker_layer(const char *what, const char *svg) {
  /* whatever the layout: the star after every series' path (2 px lines in
   * the series colours), and nothing filled drawn over it afterwards */
  const char *star_el = svg ? strstr(svg, "fill=\"#FFD23F\"") : NULL;
  while (star_el && star_el > svg && *star_el != '<') star_el--;
  CHECK(star_el != NULL, "%s: the minimum's star is drawn", what);
  if (!star_el) return;
  static const char *const series_colour[] = {"#D55E00", "#0072B2", "#009E73", "#CC79A7"};
  for (int k = 0; k < 4; k++) {
    char key[96];
    snprintf(key, sizeof key, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2.00\"", series_colour[k]);
    const char *last = NULL;
    for (const char *p = svg; (p = strstr(p, key)) != NULL; p++) last = p;
    CHECK(!last || last < star_el, "%s: the path in %s is drawn over the minimum's star", what, series_colour[k]);
  }
  double sb[4];
  CHECK(bbox(star_el, sb), "%s: the star's outline", what);
  for (const char *p = strchr(star_el + 1, '<'); p; p = strchr(p + 1, '<')) {
    double b[4];
    if (!bbox(p, b) || !(b[0] < sb[2] && sb[0] < b[2] && b[1] < sb[3] && sb[1] < b[3])) continue;
    CHECK(has_attr(p, "fill", "none"), "%s: a filled marker drawn over the minimum's star: %.60s", what, p);
  }
  const char *tend, *mend, *xend;
  const char *traj = layer(svg, "trajectories", &tend), *marks = layer(svg, "markers", &mend);
  const char *exits = layer(svg, "exits", &xend);
  CHECK(traj && marks && exits, "%s: trajectory, marker and exit layers (%d %d %d)", what, traj != NULL,
        marks != NULL, exits != NULL);
  if (!traj || !marks || !exits) return;
  CHECK(marks > tend && exits > tend, "%s: markers and exit marks come after every trajectory", what);
  enum { MAXM = 64 };
  double box[MAXM][4];
  int nm = 0, star = -1;
  for (const char *p = marks; (p = strchr(p, '<')) != NULL && p < mend && nm < MAXM; p++) {
    double b[4];
    if (!bbox(p, b)) continue;
    int hollow = has_attr(p, "fill", "none");
    if (has_attr(p, "fill", "#FFD23F")) star = nm;
    for (int i = 0; i < nm; i++) {
      int overlap = b[0] < box[i][2] && box[i][0] < b[2] && b[1] < box[i][3] && box[i][1] < b[3];
      CHECK(!overlap || hollow, "%s: marker %d overlaps marker %d and is filled: %.40s", what, nm, i, p);
    }
    memcpy(box[nm++], b, sizeof b);
  }
  CHECK(star >= 0, "%s: the minimum's star is in the marker layer", what);
  CHECK(nm >= 3, "%s: %d markers", what, nm);
}

static void test_svg_layers(void) {
  const char *four[] = {"sgd", "momentum", "nesterov", "adam"};
  runs r;
  run_all(&r, ds_toy_find("ellipse"), four, 4, 0.1, 60);
  char *svg = picture(ds_toy_find("ellipse"), r.s, 4);
  check_marker_layer("ellipse", svg);
  /* momentum and nesterov end on the minimum: their squares frame the star */
  const char *end, *marks = layer(svg, "markers", &end);
  int framing = 0;
  for (const char *p = marks; p && (p = strstr(p, "<rect")) != NULL && p < end; p++)
    framing += has_attr(p, "fill", "none") && attr(p, "width") > 16;
  CHECK(framing >= 2, "ellipse: %d hollow end squares larger than the star", framing);
  free(svg);
  runs_free(&r);

  const char *two[] = {"adam", "rmsprop"};
  run_all(&r, ds_toy_find("rosenbrock"), two, 2, 0.02, 3000);
  const float *x = r.tr[0].x + 2 * (r.tr[0].n - 1);
  CHECK(fabs(x[0] - 1) < 0.02 && fabs(x[1] - 1) < 0.02, "rosenbrock: adam ends at the minimum (%g, %g)", x[0], x[1]);
  svg = picture(ds_toy_find("rosenbrock"), r.s, 2);
  check_marker_layer("rosenbrock", svg);
  free(svg);
  runs_free(&r);
}

/* 7. The legend stays on the canvas: seven optimizers, also when each
 * diverges (a note under each) and when the labels are long. Every text
 * right of the plot area (the legend's, the colour key's) fits the canvas,
 * its width estimated at 0.55 em a character; in 2-D the legend ends above
 * the colour key. */
static void check_legend(const char *what, const char *svg) {
  const char *root = svg ? strstr(svg, "<svg ") : NULL, *frame = svg ? strstr(svg, "<rect class=\"frame\"") : NULL;
  if (!frame && svg) { /* a frame without its class: the last unfilled rect of the axes */
    for (const char *p = svg; (p = strstr(p, "<rect x=")) != NULL; p++)
      if (has_attr(p, "stroke", "#333") && has_attr(p, "fill", "none")) frame = p;
  }
  CHECK(root && frame, "%s: the picture and its frame", what);
  if (!root || !frame) return;
  double width = attr(root, "width"), height = attr(root, "height");
  double right = attr(frame, "x") + attr(frame, "width");
  int texts = 0;
  for (const char *p = svg; (p = strstr(p, "<text")) != NULL; p++) {
    double x = attr(p, "x"), y = attr(p, "y"), fs = attr(p, "font-size");
    if (!(x > right + 5)) continue;
    if (!isfinite(fs)) fs = 12; /* inherited from a group: the axes' 12 */
    char text[256];
    double w = 0.55 * fs * (double)text_chars(p, text, sizeof text);
    if (has_attr(p, "text-anchor", "end")) x -= w;
    else if (has_attr(p, "text-anchor", "middle")) x -= w / 2;
    texts++;
    CHECK(x + w <= width, "%s: text '%s' (x %.0f to %.0f) runs off the canvas width %.0f", what, text, x, x + w, width);
    CHECK(y - fs >= 0 && y <= height, "%s: text '%s' at y %.0f outside the height %.0f", what, text, y, height);
    CHECK(fs >= 6, "%s: text '%s' readable (font %.1f)", what, text, fs);
  }
  CHECK(texts >= 9, "%s: %d legend texts", what, texts);
  const char *end, *leg = layer(svg, "legend", &end);
  CHECK(leg != NULL, "%s: a legend layer", what);
  if (!leg) return;
  const char *kend, *key = layer(svg, "colour-key", &kend);
  double key_top = key ? attr(strstr(key, "<text"), "y") - 12 : height;
  for (const char *p = leg; (p = strchr(p, '<')) != NULL && p < end; p++) {
    double b[4];
    if (bbox(p, b))
      CHECK(b[0] >= 0 && b[1] >= 0 && b[2] <= width && b[3] <= key_top, "%s: legend marker (%.0f,%.0f)-(%.0f,%.0f) "
            "outside %.0fx%.0f (key at %.0f)", what, b[0], b[1], b[2], b[3], width, height, key_top);
    if (strncmp(p, "<line", 5) == 0)
      CHECK(attr(p, "x2") <= width && attr(p, "y1") <= key_top, "%s: legend line outside the canvas", what);
    if (strncmp(p, "<text", 5) == 0)
      CHECK(attr(p, "y") <= key_top, "%s: legend text at y %.0f runs into the colour key at %.0f", what,
            attr(p, "y"), key_top);
  }
}

static void test_svg_legend(void) {
  const char *seven[] = {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"};
  runs r;
  run_all(&r, ds_toy_find("parabola"), seven, 7, 0, 200); /* the CLI's default function and lrs */
  char *svg = picture(ds_toy_find("parabola"), r.s, 7);
  check_legend("parabola, 7 optimizers", svg);
  free(svg);
  runs_free(&r);
  run_all(&r, ds_toy_find("ellipse"), seven, 7, 0, 200);
  svg = picture(ds_toy_find("ellipse"), r.s, 7);
  check_legend("ellipse, 7 optimizers", svg);
  free(svg);
  runs_free(&r);
  /* every one diverges: seven notes, and the diverged-point and exit items */
  run_all(&r, ds_toy_find("bowl"), seven, 7, 5.0, 200);
  int stopped = 0;
  for (int k = 0; k < 7; k++) stopped += r.tr[k].stopped;
  CHECK(stopped >= 3, "bowl, lr 5: %d of 7 diverge", stopped);
  static const char *const long_label = "nesterov, lr 0.001, μ 0.99, with a label far too long for the margin";
  r.s[2].label = long_label;
  svg = picture(ds_toy_find("bowl"), r.s, 7);
  check_legend("bowl lr 5, 7 optimizers", svg);
  free(svg);
  runs_free(&r);
}

/* Whether pixel (x, y) lies on the frame <rect class="frame">. */
static int on_frame(const char *svg, double x, double y) {
  const char *f = strstr(svg, "<rect class=\"frame\"");
  if (!f) return 0;
  double l = attr(f, "x"), t = attr(f, "y"), r = l + attr(f, "width"), b = t + attr(f, "height");
  const double tol = 0.6; /* coordinates are printed to 0.1 px */
  int in_x = x > l - tol && x < r + tol, in_y = y > t - tol && y < b + tol;
  return (in_y && (fabs(x - l) < tol || fabs(x - r) < tol)) || (in_x && (fabs(y - t) < tol || fabs(y - b) < tol));
}

/* 8. A path that leaves the frame is marked where it crosses it: x² at lr
 * 1.05 (out through the top) and the bowl at lr 1.1 (out at two corners). */
static void test_svg_exits(void) {
  struct { const char *fn; double lr; long steps; } cases[2] = {{"parabola", 1.05, 20}, {"bowl", 1.1, 50}};
  for (int c = 0; c < 2; c++) {
    const char *sgd_name[] = {"sgd"};
    runs r;
    run_all(&r, ds_toy_find(cases[c].fn), sgd_name, 1, cases[c].lr, cases[c].steps);
    char *svg = picture(ds_toy_find(cases[c].fn), r.s, 1);
    const char *end, *ex = layer(svg, "exits", &end);
    int marks = 0;
    for (const char *p = ex; p && (p = strstr(p, "<polygon points=\"")) != NULL && p < end; p++) {
      double tip[2];
      char *e;
      tip[0] = strtod(p + 17, &e);
      tip[1] = strtod(e + 1, NULL);
      marks++;
      CHECK(on_frame(svg, tip[0], tip[1]), "%s lr %g: exit mark's tip (%.1f, %.1f) on the frame", cases[c].fn,
            cases[c].lr, tip[0], tip[1]);
      CHECK(has_attr(p, "fill", "#D55E00"), "%s: the exit mark has the series' colour", cases[c].fn);
    }
    CHECK(marks >= 1, "%s lr %g: %d exit marks", cases[c].fn, cases[c].lr, marks);
    CHECK(svg && strstr(svg, "leaves the frame") != NULL, "%s: the legend explains the exit mark", cases[c].fn);
    free(svg);
    runs_free(&r);
  }
  /* a run that stays inside gets none */
  const char *sgd_name[] = {"sgd"};
  runs r;
  run_all(&r, ds_toy_find("bowl"), sgd_name, 1, 0.1, 30);
  char *svg = picture(ds_toy_find("bowl"), r.s, 1);
  const char *end, *ex = layer(svg, "exits", &end), *poly = ex ? strstr(ex, "<polygon") : NULL;
  CHECK(ex != NULL && (poly == NULL || poly > end), "bowl lr 0.1: no exit marks");
  CHECK(svg && strstr(svg, "leaves the frame") == NULL, "bowl lr 0.1: no exit legend item");
  free(svg);
  runs_free(&r);
}

/* 9. The contour colours are explained: a key with one swatch per contour
 * colour (each used by a contour line), saying low and high. 1-D has none. */
static void test_svg_colour_key(void) {
  const char *names[] = {"sgd"};
  const char *fns[] = {"ellipse", "saddle", "rosenbrock"};
  for (int c = 0; c < 3; c++) {
    runs r;
    run_all(&r, ds_toy_find(fns[c]), names, 1, 0.01, 20);
    char *svg = picture(ds_toy_find(fns[c]), r.s, 1);
    const char *kend, *key = layer(svg, "colour-key", &kend), *cend, *con = layer(svg, "contours", &cend);
    CHECK(key != NULL && con != NULL, "%s: a colour key and a contour layer", fns[c]);
    if (!key || !con) {
      free(svg);
      runs_free(&r);
      continue;
    }
    int swatches = 0, used = 0;
    for (const char *p = key; (p = strstr(p, "<rect")) != NULL && p < kend; p++) {
      const char *fill = strstr(p, "fill=\"#");
      if (!fill || fill > strchr(p, '>')) continue;
      char stroke[32];
      snprintf(stroke, sizeof stroke, "stroke=\"%.7s\"", fill + 6);
      swatches++;
      const char *hit = strstr(con, stroke);
      used += hit && hit < cend;
    }
    CHECK(swatches >= 8 && used == swatches, "%s: %d swatches, %d of them contour colours", fns[c], swatches, used);
    char keytext[512] = "";
    for (const char *p = key; (p = strstr(p, "<text")) != NULL && p < kend; p++) {
      char t[128];
      text_chars(p, t, sizeof t);
      strncat(keytext, t, sizeof keytext - strlen(keytext) - 2);
      strcat(keytext, "|");
    }
    CHECK(strstr(keytext, "low") && strstr(keytext, "high") && strstr(keytext, "f"), "%s: the key says f, low, high: %s",
          fns[c], keytext);
    free(svg);
    runs_free(&r);
  }
  const char *sgd_name[] = {"sgd"};
  runs r;
  run_all(&r, ds_toy_find("parabola"), sgd_name, 1, 0.2, 20);
  char *svg = picture(ds_toy_find("parabola"), r.s, 1);
  CHECK(svg && !strstr(svg, "colour-key"), "parabola (no contours): no colour key");
  free(svg);
  runs_free(&r);
}

/* 10. Equal paths stay apart: momentum 0 is sgd, drawn dashed over it and
 * named in the legend; different paths are not called equal. */
static void test_svg_same_path(void) {
  const ds_toy_fn *fn = ds_toy_find("ellipse");
  ds_optim_config a = named("sgd", 0.1), b = named("momentum", 0.1);
  b.momentum = 0.0f;
  ds_trajectory tr[2];
  ds_playground_run(be, fn, &a, fn->x0, 60, &tr[0]);
  ds_playground_run(be, fn, &b, fn->x0, 60, &tr[1]);
  ds_plot_series s[2] = {{"sgd, lr 0.1", &tr[0]}, {"momentum, lr 0.1", &tr[1]}};
  char *svg = picture(fn, s, 2);
  const char *end, *traj = layer(svg, "trajectories", &end);
  int solid = 0, dashed = 0;
  for (const char *p = traj; p && (p = strstr(p, "<path")) != NULL && p < end; p++) {
    const char *dash = strstr(p, "stroke-dasharray");
    if (dash && dash < strchr(p, '>')) dashed += has_attr(p, "stroke", "#0072B2");
    else solid += has_attr(p, "stroke", "#D55E00");
  }
  CHECK(solid == 1 && dashed == 1, "momentum 0 over sgd: sgd solid (%d), momentum dashed (%d)", solid, dashed);
  CHECK(svg && strstr(svg, "same path as sgd, lr 0.1") != NULL, "the legend says momentum follows sgd's path");
  free(svg);
  ds_trajectory_free(&tr[0]);
  ds_trajectory_free(&tr[1]);

  const char *four[] = {"sgd", "momentum", "nesterov", "adam"};
  runs r;
  run_all(&r, fn, four, 4, 0.1, 60);
  svg = picture(fn, r.s, 4);
  CHECK(svg && !strstr(svg, "same path") && !strstr(svg, "stroke-dasharray"), "different paths: none called equal");
  free(svg);
  runs_free(&r);
}

/* 11. Axis ranges: one value (a single log row, a constant loss) gets a
 * range around it, not an empty one or one ten digits wide; tick labels
 * that differ. */
static void test_ranges(void) {
  double lo = 250, hi = 250;
  ds_svg_range_fix(&lo, &hi);
  CHECK(lo == 0 && hi == 500, "one step 250: [%g, %g], want [0, 500]", lo, hi);
  lo = 0, hi = 0;
  ds_svg_range_fix(&lo, &hi);
  CHECK(lo == -1 && hi == 1, "one value 0: [%g, %g]", lo, hi);
  lo = 2.302585, hi = 2.302585 + 1e-12;
  ds_svg_range_fix(&lo, &hi);
  CHECK(hi - lo > 1, "a constant loss: [%g, %g]", lo, hi);
  lo = 1, hi = 2;
  ds_svg_range_fix(&lo, &hi);
  CHECK(lo == 1 && hi == 2, "a real range is kept: [%g, %g]", lo, hi);
  char a[64], b[64];
  ds_svg_tick_label(a, sizeof a, 1000000, 50, 1000000, 1000250);
  ds_svg_tick_label(b, sizeof b, 1000050, 50, 1000000, 1000250);
  CHECK(strcmp(a, b) != 0 && strcmp(b, "1000050") == 0, "ticks 50 apart at 1e6: '%s' and '%s'", a, b);
  ds_svg_tick_label(a, sizeof a, -1e-17, 0.2, -1, 1);
  CHECK(strcmp(a, "0") == 0, "rounding residue prints as 0: '%s'", a);
}

int main(void) {
  be = ds_backend_cpu();
  test_gradients();
  test_parabola();
  test_stability();
  test_saddle();
  test_optimizers();
  test_contours();
  test_svg();
  test_svg_layers();
  test_svg_legend();
  test_svg_exits();
  test_svg_colour_key();
  test_svg_same_path();
  test_ranges();
  return check_finish("test_playground");
}
