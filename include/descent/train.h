/* descent — the trainer: flat buffers on a backend, forward, backward, update,
 * evaluation, and the epoch loop.
 *
 * Memory: in ds_trainer, pointers named h_* and the host state are host
 * memory; every other buffer (params, grads, stats, opt, the data, the
 * workspaces, d_*) is BACKEND memory (device memory on CUDA): read it with
 * be->download. Errors: the functions exit with one line on bad input
 * (2: a model or optimizer that cannot be built) and on runtime failures
 * (1: out of memory, a device error, a diverged run with
 * DS_NONFINITE_STOP). Thread safety: a trainer is used by one thread at a
 * time; with the CUDA backend, one thread in the process (backend.h);
 * ds_train_run handles SIGINT for the process while it runs. */
#ifndef DESCENT_TRAIN_H
#define DESCENT_TRAIN_H

#include <stdint.h>
#include "descent/backend.h"
#include "descent/data.h"
#include "descent/model.h"
#include "descent/optim.h"
#include "descent/sampler.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a non-finite loss or gradient does (--on-nonfinite). */
typedef enum {
  DS_NONFINITE_STOP,       /* end the run (exit 1) naming the update, the layer, NaN or Inf */
  DS_NONFINITE_SKIP        /* leave parameters, optimizer state and BN statistics as they were */
} ds_nonfinite_mode;

typedef struct {
  ds_mlp_spec model;
  ds_optim_config optim;
  long epochs;
  long steps;              /* > 0: stop after this many updates (overrides epochs) */
  int batch_size;          /* 0 = full batch */
  ds_sample_mode sampling;
  int drop_last;
  int accum;               /* micro-batches per update */
  uint64_t seed;           /* the default of the three below */
  /* Separate seeds, so that run-to-run variance can be attributed;
   * DS_SEED_FROM_SEED (the default) means `seed`. ds_trainer_init resolves
   * them into ds_trainer.cfg. */
  uint64_t init_seed;      /* parameter initialisation */
  uint64_t data_seed;      /* the batch order and the validation split */
  uint64_t dropout_seed;   /* the dropout masks */
  int standardize;         /* (x - mean) / std with the training set's statistics */
  float norm_mean, norm_std; /* norm_std > 0: x = (byte/255 - norm_mean) / norm_std (torchvision Normalize) */
  int eval_batch;
  int quiet;
  const char *save_path;   /* checkpoint (host/train/checkpoint.c) at the end, NULL = none */
  long save_every;         /* > 0: also every N epochs */
  const char *log_path;    /* --log FILE.csv | FILE.jsonl: one row per log point (host/train/log.c) */
  long log_every;          /* a log point every N updates; 0 = at the end of each epoch */
  float val_fraction;      /* hold out this part of the training set (seeded shuffle) */
  int early_stop;          /* > 0: stop after this many evaluations without a lower val_loss */
  ds_nonfinite_mode on_nonfinite;
  /* time to target (AlgoPerf's protocol): evaluation time is excluded from the training clock */
  double target_accuracy;  /* > 0: stop at the first log point whose accuracy (val, else test) reaches it */
  double max_seconds;      /* > 0: stop after the update during which the training clock reaches it */
  long log_every_epochs;   /* > 0 (and log_every 0): a log point every N epochs instead of every epoch */
  /* execution on the backend (CUDA; the CPU ignores them) */
  int no_graph;            /* run every op eagerly instead of replaying a captured CUDA graph */
  int tf32;                /* TF32 tensor-core GEMMs */
  int deterministic;       /* ask for bit-identical runs: both backends always give them (set_deterministic NULL) */
  /* several processes (host/dist, mpirun): BatchNorm statistics of the whole
     batch (all-reduced per-feature sums) instead of each process's slice */
  int sync_bn;
} ds_train_config;

#define DS_SEED_FROM_SEED UINT64_MAX

/* The command line's defaults: 784-style MLP 256,128 relu, SGD lr 0.1, 10
 * epochs, batch 64, shuffle, seed 1, eval batches of 1000, no logging, no
 * checkpoints. */
void ds_train_config_defaults(ds_train_config *c);

/* The per-update values the device part of an update reads from backend
 * memory. The host writes them before each update (one upload, with the
 * dropout keys and batch indices: see ds_trainer), so the ops take no
 * per-step arguments and a captured CUDA graph replays with new values. */
typedef struct {
  ds_optim_scalars optim;  /* lr after schedule, bias corrections, t */
  int64_t update;          /* 1-based number of this update (non-finite records) */
} ds_step_scalars;

/* Per-layer activation workspace, allocated on the backend for max_batch rows. */
typedef struct {
  float *z, *dz;           /* linear output and its gradient [B, out] */
  float *a;                /* activation output [B, out] (hidden layers) */
  float *o;                /* dropout output [B, out] (hidden layers with dropout) */
  float *da;               /* gradient w.r.t. the layer's output [B, out]
                              (scratch of hidden_backward) */
  float *bn_mean, *bn_rstd;/* saved batch statistics [out] */
} ds_layer_ws;

typedef struct {
  const ds_backend *be;
  ds_mlp model;
  ds_train_config cfg;
  int max_batch;
  /* flat buffers on the backend */
  float *params, *grads, *stats;
  ds_optim_buffers opt;    /* param/grad point at the above; state per role */
  float *lookahead;        /* w - mu*v for lookahead Nesterov, else NULL */
  /* data on the backend */
  uint8_t *train_images, *train_labels, *test_images, *test_labels;
  int n_train, n_test, d;
  uint32_t data_crc;       /* CRC-32 of the training part's images, then its labels (resume checks it) */
  float scale, shift;      /* gather: x = byte * scale + shift */
  /* The step block: one backend buffer written by the host before each update
   * (d_step, from its host twin h_step), laid out as
   *   ds_step_scalars | dropout keys [accum] (uint64) | batch indices [accum][batch_rows] (int32)
   * and the pointers into it (d_* on the backend, h_* on the host). */
  uint8_t *d_step, *h_step;
  size_t step_bytes, step_keys_offset, step_indices_offset;
  ds_step_scalars *d_scalars, *h_scalars;
  uint64_t *d_keys, *h_keys;     /* micro-batch i of the update uses key micro_step + i */
  int32_t *d_indices, *h_indices;/* micro-batch i: rows [i * batch_rows, i * batch_rows + rows[i]) */
  int accum;               /* micro-batches per update the block holds (cfg.accum) */
  int batch_rows;          /* the sampler's batch size */
  int *rows;               /* [accum] rows of each micro-batch of the current update */
  int32_t *d_eval_indices, *h_eval_indices; /* [eval_batch] */
  /* batch workspace */
  int32_t *d_labels;       /* [max_batch] */
  float *x, *x_drop;       /* [max_batch, d] gathered batch, input-dropout output */
  ds_layer_ws ws[DS_MAX_LAYERS];
  double *d_acc;           /* [2] loss sum, correct count (training) */
  double *d_eval_acc;      /* [2] evaluation */
  /* host state */
  ds_sampler sampler;
  long step;               /* updates applied */
  long micro_step;         /* training forward passes (keys the dropout masks) */
  long epoch;              /* epochs completed */
  long epoch_batches;      /* batches of epoch `epoch` drawn so far (0 at an epoch boundary):
                              where a resumed run continues */
  /* validation split (cfg.val_fraction): held-out training items, on the backend */
  uint8_t *val_images, *val_labels;
  int n_val;
  /* non-finite values (cfg.on_nonfinite) */
  int64_t *d_nonfinite;    /* [6]: first non-finite gradient {update, flat index, 1 NaN / 2 Inf}
                              (update -1: none), then the same for a parameter scan */
  float *stats_backup;     /* skip mode: BN running statistics before the update */
  double *d_acc_backup;    /* skip mode: d_acc before the update [2] */
  long skipped;            /* updates skipped (they still count in step) */
  long skipped_samples;    /* their samples, left out of the training loss */
  int64_t last_skip[3];    /* the record of the last skipped update */
  /* statistics at log points (host/train/monitor.c); NULL = none */
  struct ds_monitor *mon;
  int capture;             /* the next ds_trainer_update is a log point */
  int last_batch;          /* rows of the last training micro-batch */
  /* CUDA graph of a full update (accum micro-batches of batch_rows), captured
   * at the second such update (the first runs eagerly) and replayed; NULL
   * until then or without graphs */
  void *graph;
  int use_graph;           /* the backend has graphs and cfg.no_graph is off */
  int graph_warm;          /* a full update has run eagerly: the next one is captured */
  long graph_replays;      /* updates that ran as one graph launch */
  long fault_at;           /* DESCENT_FAULT_AT_UPDATE: inject a device fault at this update (0: never) */
  /* data parallel (host/dist): every process draws the same global batches
   * and computes rows [r*G/N, (r+1)*G/N) of each micro-batch of G rows;
   * the gradients are summed over the processes before the update */
  int dist_rank, dist_size;
  int sync_bn;             /* cfg.sync_bn with dist_size > 1: the split BatchNorm ops and all-reduced sums */
  double *d_bn_sums;       /* [2 * widest hidden layer] (sync_bn) */
  long row0;               /* first row of this process's slice of the current micro-batch */
  int global_rows;         /* rows of the whole current micro-batch (all processes) */
} ds_trainer;

/* Build the trainer on backend be: the model of cfg for train's image size
 * and class count, its initial parameters (seeded), the optimizer state,
 * the validation split, and the data (both sets uploaded as bytes: train
 * and test may be freed afterwards). Exits 2 on a configuration that cannot
 * be built (naming the flag), 1 when the backend's memory is too small
 * (checked before allocating). */
void ds_trainer_init(ds_trainer *t, const ds_backend *be, const ds_train_config *cfg,
                     const ds_dataset *train, const ds_dataset *test);
/* Free every buffer (host and backend); the struct is zeroed. */
void ds_trainer_free(ds_trainer *t);

/* Forward pass for B rows already gathered into t->x; leaves logits in the
 * last layer's z. `params` is the weight buffer to use (t->params or lookahead);
 * `key` (backend memory) is the dropout key of this micro-batch, read only in
 * training (NULL is fine for inference). */
void ds_trainer_forward(ds_trainer *t, const float *params, int B, int training, const uint64_t *key);
/* Backward pass from dlogits (in the last layer's dz); accumulates into t->grads. */
void ds_trainer_backward(ds_trainer *t, const float *params, int B, const uint64_t *key);

/* One update from `k` (<= cfg.accum) micro-batches drawn from the sampler;
 * returns the number of samples used (0 when the epoch is exhausted).
 * The host part draws the batches and writes the step block; the device part
 * (gather, forward, loss, backward, non-finite scan, optimizer) runs eagerly
 * or, on a backend with graphs, as one replay of a captured graph. */
int ds_trainer_update(ds_trainer *t, int k);

/* The training loss sum and correct count accumulated in d_acc since the
 * epoch began, summed over the processes (host/dist): acc[2] on the host.
 * Synchronises; every process must call it at the same point. */
void ds_trainer_read_acc(ds_trainer *t, double acc[2]);

/* Evaluate n rows of images[n, t->d] and labels[n] (BACKEND memory, e.g.
 * t->test_images, t->test_labels) in inference mode: *loss the mean
 * cross-entropy (nats), *accuracy the fraction whose first largest logit is
 * the label. Synchronises. */
void ds_trainer_evaluate(ds_trainer *t, const uint8_t *images, const uint8_t *labels, int n,
                         double *loss, double *accuracy);

/* Stop mode (and parameters in any mode): end the run with exit 1 and one line
 * naming the update and the tensor when a non-finite gradient was recorded,
 * or the parameters or loss_sum (the training loss summed since the epoch
 * began) are non-finite. Synchronises: call at log points, epoch ends and
 * before checkpoints only. */
void ds_trainer_check_finite(ds_trainer *t, double loss_sum);

/* One evaluation (log point) of a run: the learning curve of ds_train_result. */
typedef struct {
  long step;               /* updates applied */
  double epoch;            /* epochs completed, with the fraction of the one in progress */
  double lr;               /* the learning rate of the last update */
  double train_seconds;    /* the training clock at this point (evaluation time excluded) */
  double train_loss, train_accuracy;  /* means over the updates since the previous point */
  double val_loss, val_accuracy;      /* NaN without a validation split */
  double test_loss, test_accuracy;
} ds_eval_point;

typedef struct {
  double train_loss, train_accuracy, test_loss, test_accuracy;
  double epochs;           /* epochs completed, with the fraction of one in progress */
  long steps;              /* updates applied (skipped ones included) */
  double seconds, samples_per_second;
  long samples;
  double val_loss, val_accuracy;  /* NaN without --val-fraction */
  long skipped;            /* updates skipped by --on-nonfinite skip */
  int stopped_early;       /* --early-stop ended the run */
  long best_step;          /* --early-stop: the update whose state was kept (-1: none finite) */
  long eval_step;          /* the update whose state the test (and val) figures and --save belong to */
  double eval_epochs;      /* its epochs, as `epochs` */
  int interrupted;         /* SIGINT: the run stopped after finishing an update */
  double train_seconds;    /* the training clock: updates only, evaluation and log points excluded */
  double eval_seconds;     /* evaluations at log points (and the final one) */
  double time_to_target;   /* cfg.target_accuracy: train_seconds at the first log point reaching it; NaN: missed */
  long steps_to_target;    /* its update; -1: missed (or no target) */
  const char *stopped;     /* why the run ended: "epochs", "steps", "target", "max_seconds",
                              "early_stop" or "interrupted" (a static string) */
  ds_eval_point *curve;    /* [n_curve] every log point in order (heap; ds_train_result_free) */
  long n_curve;
} ds_train_result;

void ds_train_result_free(ds_train_result *r);

/* The whole run: epochs (or steps); at each log point (cfg.log_every) the
 * evaluation, the statistics of host/train/monitor.c, a row of cfg.log_path, a
 * progress line on stderr unless quiet; the non-finite policy; early stopping
 * on the validation loss; checkpoints; SIGINT stops after the current update
 * (res->interrupted, after the --save checkpoint is written). */
void ds_train_run(ds_trainer *t, ds_train_result *res);
/* The result owns its learning curve (res->curve, heap): free it with
 * ds_train_result_free(res) once done with the result. */

#ifdef __cplusplus
}
#endif
#endif
