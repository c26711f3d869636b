/* The epoch loop: updates, evaluation after each epoch, one summary line per
 * epoch on stderr. Loss and accuracy accumulate on the backend and are read
 * back only at the end of an epoch. */
#include <math.h>
#include <stdio.h>

#include "descent/checkpoint.h"
#include "descent/common.h"
#include "descent/train.h"

void ds_train_run(ds_trainer *t, ds_train_result *res) {
  const ds_backend *be = t->be;
  const ds_train_config *c = &t->cfg;
  long bpe = ds_sampler_batches_per_epoch(&t->sampler);
  long accum = c->accum < 1 ? 1 : c->accum;
  long updates_per_epoch = (bpe + accum - 1) / accum;
  long total = c->steps > 0 ? c->steps : c->epochs * updates_per_epoch;
  double t0 = ds_now_seconds(), train_seconds = 0.0;
  long samples_total = 0;
  res->train_loss = res->train_accuracy = NAN;
  res->test_loss = res->test_accuracy = NAN;
  long first_epoch = t->epoch; /* > 0 when resumed */
  while (t->step < total) {
    double te = ds_now_seconds();
    ds_sampler_begin_epoch(&t->sampler, t->epoch);
    be->zero(t->d_acc, 2 * sizeof(double));
    long left = bpe, samples = 0;
    while (left > 0 && t->step < total) {
      int k = (int)(left < accum ? left : accum);
      samples += ds_trainer_update(t, k);
      left -= k;
    }
    double acc[2];
    be->download(acc, t->d_acc, sizeof acc); /* synchronises */
    double epoch_seconds = ds_now_seconds() - te;
    train_seconds += epoch_seconds;
    samples_total += samples;
    t->epoch++;
    res->train_loss = acc[0] / (double)samples;
    res->train_accuracy = acc[1] / (double)samples;
    if (!isfinite(res->train_loss))
      ds_fatal(DS_EXIT_RUNTIME, "training diverged: the training loss is %s in epoch %ld (update %ld); try a lower --lr or --clip-norm",
               isnan(res->train_loss) ? "NaN" : "infinite", t->epoch, t->step);
    ds_trainer_evaluate(t, t->test_images, t->test_labels, t->n_test, &res->test_loss, &res->test_accuracy);
    if (!c->quiet)
      fprintf(stderr, "epoch %3ld  step %7ld  lr %.4g  train_loss %.4f  train_acc %.4f  test_loss %.4f  test_acc %.4f  %.0f samples/s\n",
              t->epoch, t->step, (double)ds_optim_scalars_at(&c->optim, t->step > 0 ? t->step - 1 : 0, t->epoch - 1).lr,
              res->train_loss, res->train_accuracy, res->test_loss, res->test_accuracy,
              (double)samples / epoch_seconds);
    /* checkpoints at epoch boundaries only: resume then restarts the sampler
       at epoch t->epoch exactly (host/checkpoint.c) */
    if (c->save_path && (t->step >= total || (c->save_every > 0 && t->epoch % c->save_every == 0)))
      ds_checkpoint_save_or_die(t, c->save_path);
  }
  if (c->save_path && t->epoch == first_epoch) /* nothing ran: save the start */
    ds_checkpoint_save_or_die(t, c->save_path);
  if (t->epoch == first_epoch) /* no updates ran (or a finished run was resumed): still report the test numbers */
    ds_trainer_evaluate(t, t->test_images, t->test_labels, t->n_test, &res->test_loss, &res->test_accuracy);
  res->epochs = t->epoch;
  res->steps = t->step;
  res->samples = samples_total;
  res->seconds = ds_now_seconds() - t0;
  res->samples_per_second = train_seconds > 0 ? (double)samples_total / train_seconds : 0.0;
}
