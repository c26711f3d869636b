/* The epoch loop: updates; at each log point the evaluation, the statistics
 * of host/train/monitor.c, a log row, a progress line and warnings; the non-finite
 * policy; early stopping; checkpoints; Ctrl-C.
 *
 * Loss and accuracy accumulate on the backend (d_acc, zeroed each epoch) and
 * are read back only at log points and epoch ends; on a terminal also for the
 * progress bar, at most ten times a second. Nothing else synchronises inside
 * an epoch (--on-nonfinite skip aside, see ds_trainer_update). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descent/checkpoint.h"
#include "descent/common.h"
#include "descent/train.h"
#include "train/log.h"
#include "train/monitor.h"

static volatile sig_atomic_t interrupt_requested = 0;
static void on_sigint(int sig) {
  (void)sig;
  interrupt_requested = 1; /* SA_RESETHAND: a second Ctrl-C ends the process at once */
}

/* ---- a copy of the trainer's state on the backend (early stopping) ---------- */

typedef struct {
  float *buf[6];           /* params, stats, m, v, vmax, gavg */
  long step, epoch, micro_step, epoch_batches, skipped;
  int valid;
} snapshot;

static void state_buffers(const ds_trainer *t, float *b[6], size_t n[6]) {
  b[0] = t->params, b[1] = t->stats, b[2] = t->opt.m, b[3] = t->opt.v, b[4] = t->opt.vmax, b[5] = t->opt.gavg;
  for (int i = 0; i < 6; i++) n[i] = i == 1 ? t->model.n_stats : t->model.n_params;
}

static void snapshot_alloc(snapshot *s, const ds_trainer *t) {
  float *b[6];
  size_t n[6];
  state_buffers(t, b, n);
  memset(s, 0, sizeof *s);
  for (int i = 0; i < 6; i++)
    if (b[i] && n[i]) s->buf[i] = t->be->alloc(n[i] * sizeof(float), "early stopping: the best state");
}

static void snapshot_take(snapshot *s, const ds_trainer *t) {
  float *b[6];
  size_t n[6];
  state_buffers(t, b, n);
  for (int i = 0; i < 6; i++)
    if (s->buf[i]) t->be->copy(s->buf[i], b[i], n[i] * sizeof(float));
  s->step = t->step, s->epoch = t->epoch, s->micro_step = t->micro_step;
  s->epoch_batches = t->epoch_batches, s->skipped = t->skipped;
  s->valid = 1;
}

static void snapshot_restore(const snapshot *s, ds_trainer *t) {
  float *b[6];
  size_t n[6];
  state_buffers(t, b, n);
  for (int i = 0; i < 6; i++)
    if (s->buf[i]) t->be->copy(b[i], s->buf[i], n[i] * sizeof(float));
  t->step = s->step, t->epoch = s->epoch, t->micro_step = s->micro_step;
  t->epoch_batches = s->epoch_batches, t->skipped = s->skipped;
}

static void snapshot_free(snapshot *s, const ds_trainer *t) {
  for (int i = 0; i < 6; i++)
    if (s->buf[i]) t->be->free(s->buf[i]);
  memset(s, 0, sizeof *s);
}

/* ---- the run ---------------------------------------------------------------- */

typedef struct {
  ds_trainer *t;
  const ds_train_config *c;
  ds_train_result *res;
  ds_monitor mon;
  ds_log log;
  ds_progress prog;
  long bpe;                      /* batches per epoch */
  /* d_acc and the epoch's sample counts at the last read, to take differences */
  double acc0[2];
  long samples0, skipped0;
  /* the interval since the last log point (it may span an epoch end) */
  double iv_loss, iv_correct;
  long iv_samples, iv_counted;   /* all samples, and those of applied updates */
  double iv_start;               /* wall clock when the interval's training began */
  double train_seconds;          /* training time so far, evaluation excluded */
  long eval_step;                /* update at which res's test numbers were taken (-1: none) */
  double eval_seconds;           /* spent in evaluations */
  double last_update_seconds;    /* the last update's duration (--max-seconds looks ahead by one) */
  const char *stopped;           /* why the loop ended early (NULL: it ran out of epochs or steps) */
  ds_eval_point *curve;          /* every log point */
  long n_curve, cap_curve;
  /* early stopping */
  snapshot best;
  double best_val;
  int bad_evals, stop;
} run;

/* Fold what d_acc gained since the last read into the interval. */
static void fold_acc(run *r, const double acc[2], long epoch_samples) {
  long skipped = r->t->skipped_samples;
  r->iv_loss += acc[0] - r->acc0[0];
  r->iv_correct += acc[1] - r->acc0[1];
  r->iv_samples += epoch_samples - r->samples0;
  r->iv_counted += (epoch_samples - r->samples0) - (skipped - r->skipped0);
  r->acc0[0] = acc[0], r->acc0[1] = acc[1];
  r->samples0 = epoch_samples;
  r->skipped0 = skipped;
}

static void evaluate(run *r) {
  ds_trainer *t = r->t;
  double e0 = ds_now_seconds();
  ds_trainer_evaluate(t, t->test_images, t->test_labels, t->n_test, &r->res->test_loss, &r->res->test_accuracy);
  if (t->n_val > 0)
    ds_trainer_evaluate(t, t->val_images, t->val_labels, t->n_val, &r->res->val_loss, &r->res->val_accuracy);
  r->eval_step = t->step;
  r->eval_seconds += ds_now_seconds() - e0;
}

/* The training clock: the updates so far, without evaluations and log points. */
static double train_clock(const run *r) {
  return r->train_seconds + (ds_now_seconds() - r->iv_start);
}

static void curve_add(run *r, const ds_eval_point *p) {
  if (r->n_curve == r->cap_curve) {
    r->cap_curve = r->cap_curve ? 2 * r->cap_curve : 64;
    r->curve = ds_xrealloc(r->curve, (size_t)r->cap_curve * sizeof *r->curve, "the learning curve");
  }
  r->curve[r->n_curve++] = *p;
}

/* --target-accuracy: the first log point whose accuracy (validation when
 * there is a split, else test) reaches the target ends the run. */
static void check_target(run *r) {
  const ds_train_config *c = r->c;
  ds_train_result *res = r->res;
  if (!(c->target_accuracy > 0.0) || res->steps_to_target >= 0) return;
  double acc = r->t->n_val > 0 ? res->val_accuracy : res->test_accuracy;
  if (!(acc >= c->target_accuracy)) return;
  res->steps_to_target = r->t->step;
  res->time_to_target = r->train_seconds;
  r->stop = 1;
  r->stopped = "target";
}

/* The learning rate of the last update (its step block), or of the first one. */
static double last_lr(const run *r) {
  const ds_trainer *t = r->t;
  if (t->step > 0 && t->h_scalars->update == t->step) return (double)t->h_scalars->optim.lr;
  return (double)ds_optim_scalars_at(&r->c->optim, t->step, t->epoch, t->step - t->skipped).lr;
}

/* Epochs completed, with the fraction of the one in progress. */
static double epochs_done(const run *r) {
  return (double)r->t->epoch + (r->bpe > 0 ? (double)r->t->epoch_batches / (double)r->bpe : 0.0);
}

/* Whether the run has more to do: cfg.steps updates in all, else cfg.epochs
 * epochs in all (counted from the start of the run a checkpoint continues). */
static int more_to_do(const ds_trainer *t) {
  return t->cfg.steps > 0 ? t->step < t->cfg.steps : t->epoch < t->cfg.epochs;
}

#define MAX_FIELDS (16 + 5 * DS_MAX_LAYERS)
/* A training loss this many times ln(classes) at a log point is a diverged run. */
#define DS_DIVERGED_LOSS 100.0

static int add(ds_log_field *f, int n, const char *name, const char *layer, double v) {
  if (layer) snprintf(f[n].name, sizeof f[n].name, "%s_%s", name, layer);
  else snprintf(f[n].name, sizeof f[n].name, "%s", name);
  f[n].value = v;
  return n + 1;
}

/* After the update that closes an interval: read, evaluate, check, log, print. */
static void log_point(run *r, long epoch_samples, double epoch_progress) {
  ds_trainer *t = r->t;
  const ds_train_config *c = r->c;
  ds_train_result *res = r->res;
  double acc[2];
  ds_trainer_read_acc(t, acc); /* synchronises: the interval's training ends here */
  double seconds = ds_now_seconds() - r->iv_start;
  r->train_seconds += seconds;
  fold_acc(r, acc, epoch_samples);
  ds_trainer_check_finite(t, acc[0]);
  ds_monitor_read(&r->mon);
  double train_loss = r->iv_counted > 0 ? r->iv_loss / (double)r->iv_counted : NAN;
  double train_acc = r->iv_counted > 0 ? r->iv_correct / (double)r->iv_counted : NAN;
  /* a finite loss can diverge too: far above what guessing uniformly scores (ln C) */
  double uniform = log((double)t->model.n_classes);
  if (isfinite(train_loss) && train_loss > DS_DIVERGED_LOSS * uniform) {
    char v[32];
    ds_fatal(DS_EXIT_RUNTIME, "training diverged: the training loss is %s at update %ld, over %g times ln(%d) = %.3g "
             "(what guessing uniformly scores); lower --lr or add --clip-norm", ds_format_number(v, sizeof v, train_loss),
             t->step, DS_DIVERGED_LOSS, t->model.n_classes, uniform);
  }
  double sps = seconds > 0 ? (double)r->iv_samples / seconds : 0.0;
  res->train_loss = train_loss, res->train_accuracy = train_acc;
  evaluate(r);
  ds_eval_point pt = {t->step, epoch_progress, last_lr(r), r->train_seconds, train_loss, train_acc,
                      t->n_val > 0 ? res->val_loss : NAN, t->n_val > 0 ? res->val_accuracy : NAN,
                      res->test_loss, res->test_accuracy};
  curve_add(r, &pt);
  /* what a failure after this point still reports (ds_set_fatal_hook) */
  res->curve = r->curve, res->n_curve = r->n_curve;
  res->train_seconds = r->train_seconds, res->eval_seconds = r->eval_seconds;
  res->steps = t->step, res->epochs = epoch_progress, res->eval_step = t->step, res->eval_epochs = epoch_progress;
  check_target(r);
  /* Stop mode: a loss that is not finite on held-out data means the forward
     pass overflows (cross-entropy is finite for finite logits), even while
     the gradient and the parameters are still finite numbers; the run has
     diverged, whatever early stopping would keep. (The learning curve above
     already holds the point, for --json.) */
  if (c->on_nonfinite == DS_NONFINITE_STOP) {
    int val_bad = t->n_val > 0 && !isfinite(res->val_loss);
    double bad = val_bad ? res->val_loss : res->test_loss;
    if (val_bad || !isfinite(res->test_loss))
      ds_fatal(DS_EXIT_RUNTIME, "training diverged: the %s loss is %s after update %ld (the forward pass overflows); "
               "lower --lr, add --clip-norm, or --on-nonfinite skip", val_bad ? "validation" : "test",
               isnan(bad) ? "NaN" : "Inf", t->step);
  }

  /* early stopping on the validation loss */
  char note[256] = "", vb[32];
  if (c->early_stop > 0 && t->n_val > 0) {
    if (res->val_loss < r->best_val) {
      r->best_val = res->val_loss;
      r->bad_evals = 0;
      snapshot_take(&r->best, t);
    } else if (++r->bad_evals >= c->early_stop && !r->stop) {
      r->stop = 1;
      r->stopped = "early_stop";
      if (r->best.valid)
        snprintf(note, sizeof note, "descent: note: early stop after update %ld: val_loss has not improved for %d "
                 "evaluations; keeping update %ld (val_loss %s)", t->step, c->early_stop, r->best.step,
                 ds_format_number(vb, sizeof vb, r->best_val));
      else
        snprintf(note, sizeof note, "descent: note: early stop after update %ld: val_loss has not been finite for %d "
                 "evaluations; keeping the last state (update %ld)", t->step, c->early_stop, t->step);
    }
  }

  ds_mon_warning warns[DS_MON_MAX_WARNINGS];
  int fresh[DS_MON_MAX_WARNINGS];
  r->mon.lr = last_lr(r);
  r->mon.lr0 = c->optim.lr;
  int nw = ds_monitor_warnings(&r->mon, warns, fresh, DS_MON_MAX_WARNINGS);

  if (r->log.f) {
    ds_log_field f[MAX_FIELDS];
    const ds_monitor *m = &r->mon;
    int n = 0;
    n = add(f, n, "epoch", NULL, epoch_progress);
    n = add(f, n, "step", NULL, (double)t->step);
    n = add(f, n, "lr", NULL, last_lr(r));
    n = add(f, n, "train_loss", NULL, train_loss);
    n = add(f, n, "train_accuracy", NULL, train_acc);
    if (t->n_val > 0) {
      n = add(f, n, "val_loss", NULL, res->val_loss);
      n = add(f, n, "val_accuracy", NULL, res->val_accuracy);
    }
    n = add(f, n, "test_loss", NULL, res->test_loss);
    n = add(f, n, "test_accuracy", NULL, res->test_accuracy);
    n = add(f, n, "samples_per_second", NULL, sps);
    n = add(f, n, "skipped", NULL, (double)t->skipped);
    /* CPU results are bit-identical for one GEMM thread count only: say which */
    if (strcmp(t->be->name, "cpu") == 0) n = add(f, n, "gemm_threads", NULL, (double)ds_backend_cpu_threads());
    n = add(f, n, "grad_norm", NULL, m->grad_norm_total);
    for (int l = 0; l < m->n_layers; l++) n = add(f, n, "grad_norm", m->name[l], m->grad_norm[l]);
    for (int l = 0; l < m->n_layers; l++) n = add(f, n, "update_ratio", m->name[l], m->update_ratio[l]);
    for (int l = 0; l < m->n_layers; l++)
      if (m->width[l] > 0) {
        n = add(f, n, "act_mean", m->name[l], m->act_mean[l]);
        n = add(f, n, "act_std", m->name[l], m->act_std[l]);
        n = add(f, n, m->unit_stat == DS_UNITS_DEAD ? "dead" : "saturated", m->name[l], m->units[l]);
      }
    const char *texts[DS_MON_MAX_WARNINGS];
    for (int i = 0; i < nw; i++) texts[i] = warns[i].text;
    ds_log_row(&r->log, f, n, texts, nw);
  }

  char line[512], n1[32], n2[32], n3[32];
  int len = snprintf(line, sizeof line, "epoch %3ld  step %7ld  lr %s  train_loss %s  train_acc %s  ",
                     (long)ceil(epoch_progress - 1e-9), t->step, ds_format_shortest(n3, sizeof n3, last_lr(r)),
                     ds_format_number(n1, sizeof n1, train_loss), ds_format_number(n2, sizeof n2, train_acc));
  if (t->n_val > 0)
    len += snprintf(line + len, sizeof line - (size_t)len, "val_loss %s  val_acc %s  ",
                    ds_format_number(n1, sizeof n1, res->val_loss), ds_format_number(n2, sizeof n2, res->val_accuracy));
  len += snprintf(line + len, sizeof line - (size_t)len, "test_loss %s  test_acc %s  %.0f samples/s",
                  ds_format_number(n1, sizeof n1, res->test_loss), ds_format_number(n2, sizeof n2, res->test_accuracy),
                  sps);
  if (t->skipped > 0) snprintf(line + len, sizeof line - (size_t)len, "  skipped %ld", t->skipped);
  ds_progress_line(&r->prog, line);
  for (int i = 0; i < nw; i++)
    if (fresh[i]) {
      char w[320];
      snprintf(w, sizeof w, "descent: warning: update %ld: %s", t->step, warns[i].text);
      ds_progress_line(&r->prog, w);
    }
  if (note[0]) ds_progress_line(&r->prog, note);

  r->iv_loss = r->iv_correct = 0.0;
  r->iv_samples = r->iv_counted = 0;
  r->iv_start = ds_now_seconds();
}

/* The progress bar: the epoch's running loss (a sync, at most 10 times a second). */
static void draw_bar(run *r, long done, long epoch_samples, long epoch_skipped0) {
  ds_trainer *t = r->t;
  double acc[2];
  t->be->download(acc, t->d_acc, sizeof acc);
  long counted = epoch_samples - (t->skipped_samples - epoch_skipped0);
  double since = ds_now_seconds() - r->iv_start;
  double iv = (double)r->iv_samples + (double)(epoch_samples - r->samples0);
  ds_progress_draw(&r->prog, done, t->step, counted > 0 ? acc[0] / (double)counted : NAN, last_lr(r),
                   since > 0 ? iv / since : 0.0);
}

void ds_train_run(ds_trainer *t, ds_train_result *res) {
  const ds_backend *be = t->be;
  const ds_train_config *c = &t->cfg;
  run r;
  memset(&r, 0, sizeof r);
  r.t = t;
  r.c = c;
  r.res = res;
  r.eval_step = -1;
  r.best_val = INFINITY;
  r.bpe = ds_sampler_batches_per_epoch(&t->sampler);
  long accum = c->accum < 1 ? 1 : c->accum;
  long updates_per_epoch = (r.bpe + accum - 1) / accum;
  memset(res, 0, sizeof *res);
  res->train_loss = res->train_accuracy = NAN;
  res->test_loss = res->test_accuracy = NAN;
  res->val_loss = res->val_accuracy = NAN;
  res->best_step = -1;
  res->steps_to_target = -1;
  res->time_to_target = NAN;
  if (t->epoch_batches >= r.bpe) t->epoch++, t->epoch_batches = 0; /* a checkpoint at an epoch's very end */
  if (c->log_path) {
    char err[512];
    int code = DS_EXIT_RUNTIME;
    if (ds_log_open(&r.log, c->log_path, t->step > 0, &code, err, sizeof err) != 0) ds_fatal(code, "%s", err);
  }
  ds_monitor_init(&r.mon, t->be, &t->model);
  t->mon = &r.mon;
  if (c->early_stop > 0) snapshot_alloc(&r.best, t);
  long epochs_total = c->steps > 0 ? (c->steps + updates_per_epoch - 1) / updates_per_epoch : c->epochs;
  ds_progress_init(&r.prog, c->quiet, epochs_total);

  struct sigaction sa, old_sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  interrupt_requested = 0;
  sigaction(SIGINT, &sa, &old_sa);

  double t0 = ds_now_seconds();
  long samples_total = 0;
  r.iv_start = ds_now_seconds();
  while (more_to_do(t) && !r.stop && !interrupt_requested) {
    /* the epoch's order, from where a resumed run stopped in it (0 otherwise) */
    ds_sampler_begin_epoch(&t->sampler, t->epoch);
    ds_sampler_skip(&t->sampler, t->epoch_batches);
    be->zero(t->d_acc, 2 * sizeof(double));
    r.acc0[0] = r.acc0[1] = 0.0;
    r.samples0 = 0;
    r.skipped0 = t->skipped_samples;
    long epoch_skipped0 = t->skipped_samples;
    long left = r.bpe - t->epoch_batches, samples = 0;
    long epoch_updates = (left + accum - 1) / accum;
    if (c->steps > 0 && c->steps - t->step < epoch_updates) epoch_updates = c->steps - t->step;
    ds_progress_begin_epoch(&r.prog, t->epoch + 1, epoch_updates);
    long done = 0;
    int last_logged = 0;
    while (left > 0 && more_to_do(t)) {
      int k = (int)(left < accum ? left : accum);
      long next = t->step + 1;
      int epoch_end = left <= k;
      int last = c->steps > 0 ? next == c->steps : epoch_end && t->epoch + 1 == c->epochs;
      /* --max-seconds: the update that would take the clock past it is the last (a log point) */
      int out_of_time = c->max_seconds > 0.0 && train_clock(&r) + r.last_update_seconds >= c->max_seconds;
      long every_epochs = c->log_every_epochs > 0 ? c->log_every_epochs : 1;
      t->capture = c->log_every > 0 ? (next % c->log_every == 0 || last)
                                    : (epoch_end && (t->epoch + 1) % every_epochs == 0) || last;
      if (out_of_time) t->capture = 1;
      double u0 = c->max_seconds > 0.0 ? ds_now_seconds() : 0.0;
      samples += ds_trainer_update(t, k);
      if (c->max_seconds > 0.0) r.last_update_seconds = ds_now_seconds() - u0;
      left -= k;
      done++;
      double progress = (double)t->epoch + (double)(r.bpe - left) / (double)r.bpe;
      t->epoch_batches = r.bpe - left;
      if (left == 0) t->epoch++, t->epoch_batches = 0; /* the epoch is complete */
      if (t->capture) log_point(&r, samples, progress);
      last_logged = t->capture;
      t->capture = 0;
      if (out_of_time && !r.stop) r.stop = 1, r.stopped = "max_seconds";
      if (r.stop || interrupt_requested) break;
      if (left > 0 && ds_progress_due(&r.prog)) draw_bar(&r, done, samples, epoch_skipped0);
    }
    /* an epoch that did not end at a log point keeps its bar's final state on screen */
    if (r.prog.tty && !last_logged && done > 0) draw_bar(&r, done, samples, epoch_skipped0);
    ds_progress_end_epoch(&r.prog);
    double acc[2];
    ds_trainer_read_acc(t, acc);
    fold_acc(&r, acc, samples);
    samples_total += samples;
    long counted = samples - (t->skipped_samples - epoch_skipped0);
    if (counted > 0) {
      res->train_loss = acc[0] / (double)counted;
      res->train_accuracy = acc[1] / (double)counted;
    }
    /* periodic checkpoints at epoch ends; the last one is written below,
       after early stopping has chosen the state */
    if (c->save_path && c->save_every > 0 && left == 0 && more_to_do(t) && !r.stop && !interrupt_requested &&
        t->epoch % c->save_every == 0) {
      ds_trainer_check_finite(t, acc[0]);
      ds_checkpoint_save_or_die(t, c->save_path);
    }
  }
  sigaction(SIGINT, &old_sa, NULL);
  res->interrupted = interrupt_requested != 0;
  if (r.iv_samples > 0) r.train_seconds += ds_now_seconds() - r.iv_start; /* after the last log point */
  res->stopped = res->interrupted ? "interrupted" : r.stopped ? r.stopped : c->steps > 0 ? "steps" : "epochs";
  res->steps = t->step;
  res->epochs = epochs_done(&r);
  res->skipped = t->skipped;

  /* early stopping keeps the best state (parameters, statistics, optimizer
     state and counters), also when the run ended without stopping early */
  res->stopped_early = r.stop;
  if (c->early_stop > 0 && r.best.valid) {
    res->best_step = r.best.step;
    if (r.best.step != t->step) {
      if (!r.stop && !res->interrupted) {
        char note[256];
        char vb[32];
        snprintf(note, sizeof note, "descent: note: keeping the state of update %ld, the best val_loss (%s), "
                 "not the last update's (%ld): --early-stop keeps the best", r.best.step,
                 ds_format_number(vb, sizeof vb, r.best_val), t->step);
        ds_progress_line(&r.prog, note);
      }
      snapshot_restore(&r.best, t);
    }
  }
  if (t->step != r.eval_step) evaluate(&r);
  res->eval_step = t->step;
  res->eval_epochs = epochs_done(&r);
  ds_trainer_check_finite(t, 0.0); /* never save a non-finite state */
  if (c->save_path) ds_checkpoint_save_or_die(t, c->save_path);

  t->mon = NULL;
  ds_monitor_free(&r.mon);
  if (c->early_stop > 0) snapshot_free(&r.best, t);
  ds_log_close(&r.log);
  res->samples = samples_total;
  res->train_seconds = r.train_seconds;
  res->eval_seconds = r.eval_seconds;
  res->curve = r.curve;
  res->n_curve = r.n_curve;
  res->seconds = ds_now_seconds() - t0;
  res->samples_per_second = r.train_seconds > 0 ? (double)samples_total / r.train_seconds : 0.0;
}

void ds_train_result_free(ds_train_result *r) {
  free(r->curve);
  r->curve = NULL;
  r->n_curve = 0;
}
