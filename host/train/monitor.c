/* Training statistics at log points and the non-finite checks (monitor.h).
 * Everything numerical runs through the backend table's monitor ops.
 *
 * --on-nonfinite skip without a per-update host sync on the GPU (not done yet;
 * today skip mode reads the record back after every update):
 *   1. reset the record with an async memset of 0xFF (every int64 becomes -1),
 *      then run monitor_nonfinite over the gradients;
 *   2. give ds_optim_buffers a `const int64_t *skip` and let the optimizer
 *      kernel return at once when skip[0] >= 0;
 *   3. restore the BatchNorm statistics and the loss accumulators with a small
 *      "copy if rec[0] >= 0" kernel;
 *   4. count skips on the device (in the stamp kernel) and read the count at
 *      log points. */
#include "train/monitor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descent/common.h"

/* ---- the ops, with a host fallback --------------------------------------- */

static float *host_copy(const ds_backend *be, const float *x, size_t n) {
  float *h = ds_xmalloc(n * sizeof(float), "a monitoring buffer");
  be->download(h, x, n * sizeof(float));
  return h;
}

void ds_mon_stats(const ds_backend *be, double *out, const float *x, int B, int C, float lo, float hi) {
  if (be->monitor_stats) {
    be->monitor_stats(out, x, B, C, lo, hi);
    return;
  }
  size_t n = (size_t)B * (size_t)C;
  float *hx = host_copy(be, x, n);
  double acc[4];
  be->download(acc, out, sizeof acc);
  ds_backend_cpu()->monitor_stats(acc, hx, B, C, lo, hi);
  be->upload(out, acc, sizeof acc);
  free(hx);
}

void ds_mon_sumsq(const ds_backend *be, double *out, const float *x, const float *y, size_t n) {
  if (be->monitor_sumsq) {
    be->monitor_sumsq(out, x, y, n);
    return;
  }
  float *hx = host_copy(be, x, n), *hy = y ? host_copy(be, y, n) : NULL;
  double acc;
  be->download(&acc, out, sizeof acc);
  ds_backend_cpu()->monitor_sumsq(&acc, hx, hy, n);
  be->upload(out, &acc, sizeof acc);
  free(hx);
  free(hy);
}

void ds_mon_nonfinite(const ds_backend *be, int64_t *rec, const float *x, size_t n, const int64_t *step) {
  if (be->monitor_nonfinite) {
    be->monitor_nonfinite(rec, x, n, step);
    return;
  }
  int64_t r[3], hstep;
  be->download(r, rec, sizeof r);
  if (r[0] >= 0) return;
  be->download(&hstep, step, sizeof hstep);
  float *hx = host_copy(be, x, n);
  ds_backend_cpu()->monitor_nonfinite(r, hx, n, &hstep);
  be->upload(rec, r, sizeof r);
  free(hx);
}

/* ---- capture -------------------------------------------------------------- */

void ds_monitor_init(ds_monitor *m, const ds_backend *be, const ds_mlp *model) {
  memset(m, 0, sizeof *m);
  m->be = be;
  m->model = model;
  m->n_layers = model->n_layers;
  for (int l = 0; l < m->n_layers; l++) snprintf(m->name[l], sizeof m->name[l], "fc%d", l + 1);
  ds_activation a = model->spec.activation;
  m->unit_stat = a == DS_ACT_TANH || a == DS_ACT_SIGMOID ? DS_UNITS_SATURATED : DS_UNITS_DEAD;
  m->lo = -INFINITY;
  m->hi = INFINITY;
  if (a == DS_ACT_TANH) m->lo = -0.99f, m->hi = 0.99f;
  if (a == DS_ACT_SIGMOID) m->lo = 0.01f, m->hi = 0.99f;
  m->d_stats = be->alloc((size_t)m->n_layers * DS_MON_SLOTS * sizeof(double), "monitoring statistics");
  m->prev_params = be->alloc(model->n_params * sizeof(float), "monitoring: parameters before an update");
  m->first_grad_norm = NAN;
}

void ds_monitor_free(ds_monitor *m) {
  if (m->d_stats) m->be->free(m->d_stats);
  if (m->prev_params) m->be->free(m->prev_params);
  memset(m, 0, sizeof *m);
}

void ds_monitor_before_update(ds_monitor *m, const float *params) {
  m->be->copy(m->prev_params, params, m->model->n_params * sizeof(float));
}

/* Sum of squares of a view of a flat buffer (y: the same view of a second one). */
static void view_sumsq(const ds_backend *be, double *out, const float *x, const float *y, ds_view v) {
  if (v.size) ds_mon_sumsq(be, out, x + v.offset, y ? y + v.offset : NULL, v.size);
}

void ds_monitor_after_update(ds_monitor *m, const float *params, const float *grads,
                             const float *const *acts, int rows, int applied) {
  const ds_backend *be = m->be;
  be->zero(m->d_stats, (size_t)m->n_layers * DS_MON_SLOTS * sizeof(double));
  for (int l = 0; l < m->n_layers; l++) {
    const ds_layer *L = &m->model->layers[l];
    double *s = m->d_stats + (size_t)l * DS_MON_SLOTS;
    ds_view views[4] = {L->weight, L->bias, L->gamma, L->beta};
    for (int v = 0; v < 4; v++) view_sumsq(be, s + 0, grads, NULL, views[v]);
    if (applied) {
      view_sumsq(be, s + 1, m->prev_params, NULL, L->weight);
      view_sumsq(be, s + 2, params, m->prev_params, L->weight);
    }
    if (L->hidden && rows > 0) ds_mon_stats(be, s + 3, acts[l], rows, L->out, m->lo, m->hi);
  }
  m->pending = 1;
  m->applied = applied;
  m->rows = rows;
  for (int l = 0; l < m->n_layers; l++) m->width[l] = m->model->layers[l].hidden ? m->model->layers[l].out : 0;
}

void ds_monitor_read(ds_monitor *m) {
  for (int l = 0; l < DS_MAX_LAYERS; l++)
    m->grad_norm[l] = m->update_ratio[l] = m->act_mean[l] = m->act_std[l] = m->units[l] = NAN;
  m->grad_norm_total = NAN;
  if (!m->pending) return;
  m->pending = 0;
  double s[DS_MAX_LAYERS * DS_MON_SLOTS];
  m->be->download(s, m->d_stats, (size_t)m->n_layers * DS_MON_SLOTS * sizeof(double));
  double total = 0.0;
  for (int l = 0; l < m->n_layers; l++) {
    const double *q = s + (size_t)l * DS_MON_SLOTS;
    total += q[0];
    m->grad_norm[l] = sqrt(q[0]);
    if (m->applied) m->update_ratio[l] = q[1] > 0.0 ? sqrt(q[2]) / sqrt(q[1]) : NAN;
    if (m->width[l] > 0 && m->rows > 0) {
      double n = (double)m->rows * m->width[l];
      double mean = q[3] / n, var = q[4] / n - mean * mean;
      m->act_mean[l] = mean;
      m->act_std[l] = sqrt(var > 0.0 ? var : 0.0);
      m->units[l] = m->unit_stat == DS_UNITS_DEAD ? q[5] / m->width[l] : q[6] / n;
    }
  }
  m->grad_norm_total = sqrt(total);
  if (isnan(m->first_grad_norm) && isfinite(m->grad_norm_total)) m->first_grad_norm = m->grad_norm_total;
}

/* ---- warnings ------------------------------------------------------------- */

static int was_active(const ds_monitor *m, const char *key) {
  for (int i = 0; i < m->n_active; i++)
    if (strcmp(m->active[i], key) == 0) return 1;
  return 0;
}

int ds_monitor_warnings(ds_monitor *m, ds_mon_warning *out, int *fresh, int max) {
  int n = 0;
#define WARN(...)                                                        \
  do {                                                                   \
    if (n < max) {                                                       \
      snprintf(out[n].key, sizeof out[n].key, "%s", key);                \
      snprintf(out[n].text, sizeof out[n].text, __VA_ARGS__);            \
      n++;                                                               \
    }                                                                    \
  } while (0)
  char key[40];
  double gmax = 0.0;
  for (int l = 0; l < m->n_layers; l++)
    if (m->grad_norm[l] > gmax) gmax = m->grad_norm[l];
  double g = m->grad_norm_total;
  snprintf(key, sizeof key, "grad_norm");
  if (g > DS_MON_GRAD_HUGE)
    WARN("grad_norm = %.3g is above %g: the gradients are exploding (lower --lr, --clip-norm)", g, DS_MON_GRAD_HUGE);
  else if (g > DS_MON_GRAD_GROWTH * m->first_grad_norm)
    WARN("grad_norm = %.3g is over %g times its first logged value %.3g: the gradients are exploding "
         "(lower --lr, --clip-norm)", g, DS_MON_GRAD_GROWTH, m->first_grad_norm);
  for (int l = 0; l < m->n_layers; l++) {
    double gl = m->grad_norm[l];
    snprintf(key, sizeof key, "grad_norm_%s", m->name[l]);
    if (gl < DS_MON_GRAD_TINY)
      WARN("%s = %.3g is below %g: the gradient has vanished", key, gl, DS_MON_GRAD_TINY);
    else if (gl < DS_MON_GRAD_RELATIVE * gmax)
      WARN("%s = %.3g is below %g times the largest layer's (%.3g): the gradient vanishes on its way down",
           key, gl, DS_MON_GRAD_RELATIVE, gmax);
    double r = m->update_ratio[l];
    snprintf(key, sizeof key, "update_ratio_%s", m->name[l]);
    if (r < DS_MON_RATIO_LOW && m->lr0 > 0.0 && m->lr < 0.1 * m->lr0)
      ; /* the schedule (warmup, decay) made the steps small on purpose */
    else if (r < DS_MON_RATIO_LOW && m->lr > 1.0)
      WARN("%s = %.3g is below %g: the updates barely move the weights although --lr %g is large: the gradient has "
           "vanished (dead or saturated units)", key, r, DS_MON_RATIO_LOW, m->lr);
    else if (r < DS_MON_RATIO_LOW)
      WARN("%s = %.3g is below %g: the updates barely move the weights (--lr too low, or the gradient vanishing)", key, r, DS_MON_RATIO_LOW);
    else if (r > DS_MON_RATIO_HIGH)
      WARN("%s = %.3g is above %g: each update is as large as the weights (--lr too high)", key, r, DS_MON_RATIO_HIGH);
    double u = m->units[l];
    if (m->rows < DS_MON_MIN_ROWS) continue; /* "dead for the whole batch" means little for a handful of rows */
    if (m->unit_stat == DS_UNITS_DEAD) {
      snprintf(key, sizeof key, "dead_%s", m->name[l]);
      if (u > DS_MON_DEAD_MAX)
        WARN("%s = %.2f: more than half of the layer's ReLU units output 0 for the whole batch "
             "(lower --lr, another --init, leaky_relu)", key, u);
    } else {
      snprintf(key, sizeof key, "saturated_%s", m->name[l]);
      if (u > DS_MON_SATURATED_MAX)
        WARN("%s = %.2f: more than half of the activations are saturated (--standardize, --batchnorm, "
             "another --init)", key, u);
    }
  }
#undef WARN
  for (int i = 0; i < n; i++) fresh[i] = !was_active(m, out[i].key);
  m->n_active = n < DS_MON_MAX_WARNINGS ? n : DS_MON_MAX_WARNINGS;
  for (int i = 0; i < m->n_active; i++) snprintf(m->active[i], sizeof m->active[i], "%s", out[i].key);
  return n;
}
