/* Training statistics at log points, and the non-finite checks.
 *
 * At a log point the trainer captures, for the update it has just applied:
 *   grad_norm_<layer>    L2 norm of the layer's gradient (weight, bias, BN gamma
 *                        and beta) as the optimizer received it: averaged over
 *                        --accum, before clipping and decay; grad_norm is the
 *                        global norm (the one --clip-norm clips), so
 *                        grad_norm^2 = sum of grad_norm_<layer>^2
 *   update_ratio_<layer> ||W_after - W_before|| / ||W_before|| of the layer's
 *                        weight matrix (the rule of thumb: about 1e-3)
 *   act_mean_<layer>, act_std_<layer>   mean and (population) standard
 *                        deviation of the hidden layer's activation output over
 *                        the last micro-batch, before dropout
 *   dead_<layer>         (relu, leaky_relu) fraction of units whose output is
 *                        <= 0 for every row of that batch
 *   saturated_<layer>    (tanh, sigmoid) fraction of the activations in the flat
 *                        tails: |tanh| >= 0.99, sigmoid <= 0.01 or >= 0.99
 * Layers are named fc1 .. fcL from the input; fcL is the output layer (no
 * activation statistics). The reductions run on the backend (the monitor ops
 * of descent/backend.h) and are downloaded once, by ds_monitor_read. */
#ifndef DS_MONITOR_H
#define DS_MONITOR_H

#include <stddef.h>
#include <stdint.h>

#include "descent/backend.h"
#include "descent/model.h"

/* Healthy ranges; a value outside them is a warning (log and stderr). */
#define DS_MON_RATIO_LOW 1e-4     /* update ratio: a factor 10 below the usual 1e-3..1e-1 band */
#define DS_MON_RATIO_HIGH 1.0     /* ... and 10 above it: the update is as large as the weights */
#define DS_MON_GRAD_TINY 1e-7     /* a layer's gradient norm below this has vanished */
#define DS_MON_GRAD_RELATIVE 1e-4 /* ... or below this times the largest layer's */
#define DS_MON_GRAD_HUGE 1e3      /* the global norm above this is exploding (the loss is a batch mean) */
#define DS_MON_GRAD_GROWTH 100.0  /* ... or above this times its value at the first log point */
#define DS_MON_DEAD_MAX 0.5       /* more than half of a ReLU layer's units dead */
#define DS_MON_SATURATED_MAX 0.5  /* more than half of tanh/sigmoid outputs saturated */
#define DS_MON_MIN_ROWS 16        /* dead/saturated warnings only for batches of at least this many rows */

#define DS_MON_SLOTS 7            /* per layer: grad ss, weight ss, update ss, 4 activation stats */
#define DS_MON_MAX_WARNINGS (4 * DS_MAX_LAYERS + 2)

typedef enum { DS_UNITS_DEAD, DS_UNITS_SATURATED } ds_unit_stat;

typedef struct {
  char key[40];            /* the column it is about, e.g. "dead_fc2" */
  char text[200];          /* "dead_fc2 = 0.62: more than half ... " */
} ds_mon_warning;

typedef struct ds_monitor {
  const ds_backend *be;
  const ds_mlp *model;     /* the layout the statistics are taken over (not owned) */
  int n_layers;
  char name[DS_MAX_LAYERS][16];
  ds_unit_stat unit_stat;
  float lo, hi;            /* saturation bounds passed to monitor_stats */
  double *d_stats;         /* backend [n_layers * DS_MON_SLOTS] */
  float *prev_params;      /* backend [n_params]: parameters before the captured update */
  int pending;             /* a capture waits for ds_monitor_read */
  int applied;             /* the captured update was applied (not skipped) */
  int rows;                /* rows of the captured batch */
  double lr, lr0;          /* the captured update's learning rate and the base one (set by the loop): the
                              warnings' advice, and no low-ratio warning where a schedule shrank the lr */
  int width[DS_MAX_LAYERS];/* units of each hidden layer (0: the output layer) */
  /* the values of the last capture (NaN where not measured) */
  double grad_norm_total;
  double grad_norm[DS_MAX_LAYERS], update_ratio[DS_MAX_LAYERS];
  double act_mean[DS_MAX_LAYERS], act_std[DS_MAX_LAYERS], units[DS_MAX_LAYERS];
  /* warning state */
  double first_grad_norm;  /* grad_norm at the first log point (NaN before) */
  char active[DS_MON_MAX_WARNINGS][40]; /* keys warned about at the previous log point */
  int n_active;
} ds_monitor;

/* Allocate the statistics on backend `be` for the layout `model`, which must
 * outlive the monitor (the trainer's). */
void ds_monitor_init(ds_monitor *m, const ds_backend *be, const ds_mlp *model);
void ds_monitor_free(ds_monitor *m);

/* Called by ds_trainer_update around the optimizer step of a captured update
 * (t->capture); all pointers are backend memory laid out by `model`: params
 * and grads [n_params], acts[l] the hidden layer l's activation output
 * [rows, out] (rows of the last micro-batch; the output layer's entry is not
 * read). `applied`: 0 when the update was skipped (no update ratio).
 * Neither synchronises: they only queue backend ops. */
void ds_monitor_before_update(ds_monitor *m, const float *params);
void ds_monitor_after_update(ds_monitor *m, const float *params, const float *grads,
                             const float *const *acts, int rows, int applied);

/* Download the captured reductions and derive the values above. */
void ds_monitor_read(ds_monitor *m);

/* The values outside their healthy ranges, as warnings; returns the count.
 * `fresh[i]` is set when warnings[i] was not active at the previous call
 * (print those on stderr; log them all). */
int ds_monitor_warnings(ds_monitor *m, ds_mon_warning *out, int *fresh, int max);

/* The monitor ops through a backend table, with a host fallback for tables
 * that leave them NULL (download, run the CPU op, upload the result). */
void ds_mon_stats(const ds_backend *be, double *out, const float *x, int B, int C, float lo, float hi);
void ds_mon_sumsq(const ds_backend *be, double *out, const float *x, const float *y, size_t n);
void ds_mon_nonfinite(const ds_backend *be, int64_t *rec, const float *x, size_t n, const int64_t *step);

#endif
