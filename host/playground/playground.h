/* The optimizer playground: the course's toy functions (small enough to
 * draw), a runner that applies the engine's own optimizer step (the backend's
 * optim_step over a 1- or 2-element parameter buffer) to them, and the CSV
 * writer. The pictures are host/plot/playground_svg.h. */
#ifndef DS_PLAYGROUND_H
#define DS_PLAYGROUND_H

#include <stddef.h>
#include <stdio.h>

#include "descent/backend.h"
#include "descent/optim.h"

/* How contour levels are spaced in a picture. */
typedef enum {
  DS_LEVELS_QUADRATIC, /* fmin + (fmax-fmin)*(k/K)^2: evenly spaced rings for quadratics */
  DS_LEVELS_SIGNED,    /* 0 and +-A*(k/K)^2: both sheets of a saddle */
  DS_LEVELS_LOG        /* geometric above the minimum: narrow curved valleys */
} ds_level_style;

typedef struct {
  const char *name;     /* --fn value */
  const char *formula;  /* for titles (UTF-8) */
  int dim;              /* 1 or 2 */
  double x0[2];         /* default start */
  long steps;           /* default number of updates */
  double key[2];        /* the minimum, or the saddle point */
  int key_is_min;
  double view_center[2];
  double view_half;     /* smallest half-width of the picture around view_center */
  ds_level_style levels;
  double (*f)(const double *x);
  void (*grad)(double *g, const double *x); /* analytic gradient */
} ds_toy_fn;

/* The function called `name`, or NULL. */
const ds_toy_fn *ds_toy_find(const char *name);
/* NULL-terminated list of the names, in --fn's order. */
extern const char *const ds_toy_names[];

/* One optimizer's run. Row t holds the point after t updates (row 0 = x0). */
typedef struct {
  int dim;
  long n;            /* rows kept */
  float *x;          /* [n * dim] the parameter buffer after t updates */
  double *f;         /* [n] f at the row's point (double, from the float point) */
  double *gnorm;     /* [n] |grad f| at the row's point */
  float *lr;         /* [n] scheduled learning rate of the update made from this row */
  int stopped;       /* 1 when the run stopped because something overflowed */
  long stopped_at;   /* the update (1-based) whose result or gradient overflowed; 0: f(x0) */
  char why[96];      /* what overflowed */
} ds_trajectory;

/* Run `steps` updates of cfg on fn from x0 on backend be: per update the
 * analytic gradient is computed on the host (at w - mu*v for Nesterov
 * look-ahead), uploaded, and be->optim_step updates the buffers; the
 * schedule sees t = updates so far (and epoch = t: one update is a full pass
 * over this "data"). Stops early, with tr->stopped set, once x, f or the
 * gradient no longer fits in a float. Weight decay applies to every
 * coordinate. Free with ds_trajectory_free. */
void ds_playground_run(const ds_backend *be, const ds_toy_fn *fn, const ds_optim_config *cfg,
                       const double *x0, long steps, ds_trajectory *tr);
void ds_trajectory_free(ds_trajectory *tr);

/* CSV: header "optimizer,step,x1[,x2],f,grad_norm,lr", then one row per
 * kept step. */
void ds_playground_csv_header(FILE *f, int dim);
void ds_playground_csv_rows(FILE *f, const char *label, const ds_trajectory *tr);

/* "sgd, lr 0.1", "momentum, lr 0.1, μ 0.9", ... for legends. */
void ds_playground_label(char *buf, size_t len, const char *name, const ds_optim_config *cfg);

#endif
