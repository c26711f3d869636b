/* The optimizer playground: toy functions, the runner over the backend's
 * optim_step and the CSV rows (see playground.h; the pictures are
 * host/plot/playground_svg.c). */
#include "playground/playground.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "descent/common.h"

/* ---- the toy functions (f and its analytic gradient, in double) -------- */

static double parabola_f(const double *x) { return x[0] * x[0]; }
static void parabola_g(double *g, const double *x) { g[0] = 2.0 * x[0]; }

static double bowl_f(const double *x) { return x[0] * x[0] + x[1] * x[1]; }
static void bowl_g(double *g, const double *x) {
  g[0] = 2.0 * x[0];
  g[1] = 2.0 * x[1];
}

/* Hessian [[1, 1], [1, 4]]: eigenvalues (5 +- sqrt(13))/2 = 4.303, 0.697 */
static double ellipse_f(const double *x) {
  return 0.5 * x[0] * x[0] + 2.0 * x[1] * x[1] + x[0] * x[1];
}
static void ellipse_g(double *g, const double *x) {
  g[0] = x[0] + x[1];
  g[1] = 4.0 * x[1] + x[0];
}

static double saddle_f(const double *x) { return x[0] * x[0] - x[1] * x[1]; }
static void saddle_g(double *g, const double *x) {
  g[0] = 2.0 * x[0];
  g[1] = -2.0 * x[1];
}

static double rosenbrock_f(const double *x) {
  double a = 1.0 - x[0], b = x[1] - x[0] * x[0];
  return a * a + 100.0 * b * b;
}
static void rosenbrock_g(double *g, const double *x) {
  double b = x[1] - x[0] * x[0];
  g[0] = -2.0 * (1.0 - x[0]) - 400.0 * x[0] * b;
  g[1] = 200.0 * b;
}

static const ds_toy_fn toys[] = {
  {"parabola", "f(x) = x²", 1, {8.7, 0}, 20, {0, 0}, 1, {0, 0}, 1.0, DS_LEVELS_QUADRATIC,
   parabola_f, parabola_g},
  {"bowl", "f(x) = x₁² + x₂²", 2, {8.7, -7.9}, 50, {0, 0}, 1, {0, 0}, 1.0, DS_LEVELS_QUADRATIC,
   bowl_f, bowl_g},
  {"ellipse", "f(x) = 0.5·x₁² + 2·x₂² + x₁·x₂", 2, {8.7, -7.9}, 50, {0, 0}, 1, {0, 0}, 1.0,
   DS_LEVELS_QUADRATIC, ellipse_f, ellipse_g},
  {"saddle", "f(x) = x₁² − x₂²", 2, {1, 1e-3}, 50, {0, 0}, 0, {0, 0}, 1.0, DS_LEVELS_SIGNED,
   saddle_f, saddle_g},
  {"rosenbrock", "f(x) = (1 − x₁)² + 100·(x₂ − x₁²)²", 2, {-1.2, 1}, 2000, {1, 1}, 1, {0, 1}, 2.0,
   DS_LEVELS_LOG, rosenbrock_f, rosenbrock_g},
};

const char *const ds_toy_names[] = {"parabola", "bowl", "ellipse", "saddle", "rosenbrock", NULL};

const ds_toy_fn *ds_toy_find(const char *name) {
  for (size_t i = 0; i < sizeof toys / sizeof toys[0]; i++)
    if (strcmp(toys[i].name, name) == 0) return &toys[i];
  return NULL;
}

/* ---- the runner ---------------------------------------------------------- */

static int fits_float(double v) { return isfinite(v) && fabs(v) <= FLT_MAX; }

/* Gradient descent's look-ahead form takes the gradient at w - mu*v; this is
 * exactly when optim_math.h's ds_optim_element uses the look-ahead update. */
static int uses_lookahead(const ds_optim_config *c) {
  return c->kind == DS_OPT_SGD && c->momentum != 0.0f && c->nesterov &&
         c->nesterov_form == DS_NESTEROV_LOOKAHEAD && c->momentum_form != DS_MOMENTUM_KERAS;
}

static void record(ds_trajectory *tr, const ds_toy_fn *fn, const ds_optim_config *cfg,
                   const float *x) {
  long t = tr->n;
  double xd[2] = {x[0], fn->dim > 1 ? x[1] : 0.0}, g[2] = {0, 0};
  fn->grad(g, xd);
  for (int i = 0; i < fn->dim; i++) tr->x[t * fn->dim + i] = x[i];
  tr->f[t] = fn->f(xd);
  tr->gnorm[t] = sqrt(g[0] * g[0] + g[1] * g[1]);
  tr->lr[t] = ds_optim_scalars_at(cfg, t, t, t).lr;
  tr->n = t + 1;
}

void ds_playground_run(const ds_backend *be, const ds_toy_fn *fn, const ds_optim_config *cfg,
                       const double *x0, long steps, ds_trajectory *tr) {
  int d = fn->dim;
  size_t bytes = (size_t)d * sizeof(float), rows = (size_t)steps + 1;
  memset(tr, 0, sizeof *tr);
  tr->dim = d;
  tr->x = ds_xcalloc(rows * d, sizeof(float), "playground trajectory");
  tr->f = ds_xcalloc(rows, sizeof(double), "playground trajectory");
  tr->gnorm = ds_xcalloc(rows, sizeof(double), "playground trajectory");
  tr->lr = ds_xcalloc(rows, sizeof(float), "playground trajectory");

  ds_optim_roles roles = ds_optim_state_roles(cfg);
  ds_optim_buffers buf = {0};
  buf.param = be->alloc(bytes, "playground parameters");
  buf.grad = be->alloc(bytes, "playground gradient");
  if (roles.m) buf.m = be->alloc(bytes, "playground optimizer state (m)");
  if (roles.v) buf.v = be->alloc(bytes, "playground optimizer state (v)");
  if (roles.vmax) buf.vmax = be->alloc(bytes, "playground optimizer state (vmax)");
  if (roles.gavg) buf.gavg = be->alloc(bytes, "playground optimizer state (gradient average)");
  float *look = uses_lookahead(cfg) ? be->alloc(bytes, "playground look-ahead point") : NULL;
  ds_optim_scalars *d_sc = be->alloc(sizeof(ds_optim_scalars), "playground step scalars");

  float x[2] = {(float)x0[0], d > 1 ? (float)x0[1] : 0.0f}, gp[2], gf[2];
  be->upload(buf.param, x, bytes);
  if (buf.v && cfg->kind == DS_OPT_ADAGRAD && cfg->initial_accumulator != 0.0f) {
    float s0[2] = {cfg->initial_accumulator, cfg->initial_accumulator};
    be->upload(buf.v, s0, bytes);
  }
  record(tr, fn, cfg, x);
  if (!fits_float(tr->f[0])) { /* row 0 is kept: it is the start the user gave */
    tr->stopped = 1;
    snprintf(tr->why, sizeof tr->why, "f(x0) overflows float");
    steps = 0;
  }
  for (long t = 0; t < steps; t++) {
    const float *at = x;
    if (look) { /* the gradient is taken at w - mu*v, computed by the backend as the trainer does */
      be->axpy(look, buf.param, -cfg->momentum, buf.m, (size_t)d);
      be->download(gp, look, bytes);
      at = gp;
    }
    double xd[2] = {at[0], d > 1 ? at[1] : 0.0}, g[2] = {0, 0};
    fn->grad(g, xd);
    int ok = 1;
    for (int i = 0; i < d; i++) {
      ok = ok && fits_float(g[i]);
      gf[i] = (float)g[i];
    }
    if (!ok) {
      tr->stopped = 1;
      tr->stopped_at = t + 1;
      snprintf(tr->why, sizeof tr->why, "the gradient overflowed float");
      break;
    }
    be->upload(buf.grad, gf, bytes);
    ds_optim_scalars sc = ds_optim_scalars_at(cfg, t, t, t);
    be->upload(d_sc, &sc, sizeof sc); /* the op reads its scalars from backend memory */
    be->optim_step(&buf, (size_t)d, (size_t)d, cfg, d_sc);
    be->download(x, buf.param, bytes);
    double xn[2] = {x[0], d > 1 ? x[1] : 0.0};
    if (!fits_float(xn[0]) || !fits_float(xn[1])) {
      snprintf(tr->why, sizeof tr->why, "|x| overflowed float");
    } else if (!fits_float(fn->f(xn))) {
      snprintf(tr->why, sizeof tr->why, "f(x) overflowed float");
    } else {
      record(tr, fn, cfg, x);
      continue;
    }
    tr->stopped = 1;
    tr->stopped_at = t + 1;
    break;
  }
  void *bufs[] = {buf.param, buf.grad, buf.m, buf.v, buf.vmax, buf.gavg, look, d_sc};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    if (bufs[i]) be->free(bufs[i]);
}

void ds_trajectory_free(ds_trajectory *tr) {
  free(tr->x);
  free(tr->f);
  free(tr->gnorm);
  free(tr->lr);
  memset(tr, 0, sizeof *tr);
}

/* ---- CSV ------------------------------------------------------------------ */

void ds_playground_csv_header(FILE *f, int dim) {
  fprintf(f, dim > 1 ? "optimizer,step,x1,x2,f,grad_norm,lr\n" : "optimizer,step,x1,f,grad_norm,lr\n");
}

/* The shortest text that reads back bit for bit (8.7, not 8.69999981). */
void ds_playground_csv_rows(FILE *f, const char *label, const ds_trajectory *tr) {
  for (long t = 0; t < tr->n; t++) {
    char a[40], b[40], c[40], d[40];
    fprintf(f, "%s,%ld,%s", label, t, ds_format_shortest(a, sizeof a, (double)tr->x[t * tr->dim]));
    if (tr->dim > 1) fprintf(f, ",%s", ds_format_shortest(a, sizeof a, (double)tr->x[t * tr->dim + 1]));
    fprintf(f, ",%s,%s,%s\n", ds_format_shortest(b, sizeof b, tr->f[t]), ds_format_shortest(c, sizeof c, tr->gnorm[t]),
            ds_format_shortest(d, sizeof d, (double)tr->lr[t]));
  }
}

void ds_playground_label(char *buf, size_t len, const char *name, const ds_optim_config *c) {
  int k = snprintf(buf, len, "%s, lr %g", name, (double)c->lr);
  if (k > 0 && (size_t)k < len && c->momentum > 0.0f)
    snprintf(buf + k, len - (size_t)k, ", μ %g", (double)c->momentum);
}
