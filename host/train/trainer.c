/* The trainer: flat buffers on a backend, forward, backward, one update,
 * evaluation. Everything numerical goes through the backend table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "descent/common.h"
#include "descent/philox.h"
#include "descent/train.h"
#include "dist/dist.h"
#include "train/monitor.h"

/* The validation split's shuffle has its own Philox stream, next to the
 * sampler's (DS_STREAM_SAMPLER, and | 0x8000 for replacement draws). */
#define DS_STREAM_SPLIT (DS_STREAM_SAMPLER + 1u)

void ds_train_config_defaults(ds_train_config *c) {
  memset(c, 0, sizeof *c);
  ds_mlp_spec_defaults(&c->model);
  c->model.n_hidden = 2; /* 784-256-128-10 on MNIST-shaped data */
  c->model.hidden[0] = 256;
  c->model.hidden[1] = 128;
  ds_optim_defaults(&c->optim, DS_OPT_SGD);
  c->epochs = 10;
  c->batch_size = 64;
  c->sampling = DS_SAMPLE_SHUFFLE;
  c->accum = 1;
  c->seed = 1;
  c->init_seed = c->data_seed = c->dropout_seed = DS_SEED_FROM_SEED;
  c->eval_batch = 1000;
}

static float *alloc_floats(const ds_backend *be, size_t n, const char *what) {
  return (float *)be->alloc(n * sizeof(float), what);
}

static void alloc_workspace(ds_trainer *t) {
  const ds_backend *be = t->be;
  const ds_mlp_spec *s = &t->model.spec;
  size_t rows = (size_t)t->max_batch;
  t->x = alloc_floats(be, rows * (size_t)t->d, "the input batch");
  if (s->input_dropout > 0.0f) t->x_drop = alloc_floats(be, rows * (size_t)t->d, "the input-dropout batch");
  for (int l = 0; l < t->model.n_layers; l++) {
    const ds_layer *L = &t->model.layers[l];
    ds_layer_ws *w = &t->ws[l];
    size_t n = rows * (size_t)L->out;
    w->z = alloc_floats(be, n, "linear outputs");
    w->dz = alloc_floats(be, n, "linear output gradients");
    if (!L->hidden) continue;
    w->a = alloc_floats(be, n, "activations");
    w->da = alloc_floats(be, n, "activation gradients");
    if (s->batchnorm) {
      w->bn_mean = alloc_floats(be, (size_t)L->out, "batchnorm means");
      w->bn_rstd = alloc_floats(be, (size_t)L->out, "batchnorm rstd");
    }
    if (s->dropout > 0.0f) w->o = alloc_floats(be, n, "dropout outputs");
  }
  t->d_labels = (int32_t *)be->alloc(rows * sizeof(int32_t), "batch labels");
  size_t eval_rows = (size_t)t->cfg.eval_batch;
  t->d_eval_indices = (int32_t *)be->alloc(eval_rows * sizeof(int32_t), "evaluation batch indices");
  t->h_eval_indices = ds_xcalloc(eval_rows, sizeof(int32_t), "evaluation batch indices");
  t->d_acc = (double *)be->alloc(2 * sizeof(double), "loss accumulators");
  t->d_eval_acc = (double *)be->alloc(2 * sizeof(double), "loss accumulators");
}

/* What a run will allocate on the backend, in bytes (a lower bound: the
 * library workspaces and the step block are left out). */
static double backend_bytes(const ds_trainer *t, const ds_dataset *train, const ds_dataset *test, int n_val) {
  const ds_mlp_spec *s = &t->model.spec;
  const ds_train_config *c = &t->cfg;
  ds_optim_roles ro = ds_optim_state_roles(&c->optim);
  double np = (double)t->model.n_params, ns = (double)t->model.n_stats;
  /* params, grads, state, monitoring's copy; early stopping keeps one more of each */
  double per_param = 3.0 + ro.m + ro.v + ro.vmax + ro.gavg;
  if (c->early_stop > 0) per_param += 1.0 + ro.m + ro.v + ro.vmax + ro.gavg;
  double floats = np * per_param + 2.0 * ns;
  double rows = (double)t->max_batch;
  floats += rows * (double)t->d * (s->input_dropout > 0.0f ? 2.0 : 1.0);
  for (int l = 0; l < t->model.n_layers; l++) {
    const ds_layer *L = &t->model.layers[l];
    floats += rows * (double)L->out * (L->hidden ? 4.0 + (s->dropout > 0.0f) : 2.0);
  }
  double data = ((double)train->n + (double)test->n + (double)n_val) * ((double)train->d + 1.0);
  return 4.0 * floats + data;
}

static size_t round_up8(size_t x) { return (x + 7) & ~(size_t)7; }

/* The step block (see ds_trainer): scalars, accum dropout keys, accum batches
 * of indices, one buffer on each side. */
static void alloc_step_block(ds_trainer *t, int accum, int batch_rows) {
  t->accum = accum;
  t->batch_rows = batch_rows;
  t->step_keys_offset = round_up8(sizeof(ds_step_scalars));
  t->step_indices_offset = t->step_keys_offset + (size_t)accum * sizeof(uint64_t);
  t->step_bytes = t->step_indices_offset + (size_t)accum * (size_t)batch_rows * sizeof(int32_t);
  t->d_step = t->be->alloc(t->step_bytes, "the per-update scalars and batch indices");
  t->h_step = ds_xcalloc(1, t->step_bytes, "the per-update scalars and batch indices");
  t->d_scalars = (ds_step_scalars *)t->d_step;
  t->h_scalars = (ds_step_scalars *)t->h_step;
  t->d_keys = (uint64_t *)(t->d_step + t->step_keys_offset);
  t->h_keys = (uint64_t *)(t->h_step + t->step_keys_offset);
  t->d_indices = (int32_t *)(t->d_step + t->step_indices_offset);
  t->h_indices = (int32_t *)(t->h_step + t->step_indices_offset);
  t->rows = ds_xcalloc((size_t)accum, sizeof(int), "micro-batch sizes");
}

/* DESCENT_FAULT_AT_UPDATE=N (tests): the device faults just before the
 * optimizer step of update N, as a kernel error or a lost device would. */
static long fault_injection_update(void) {
  const char *v = getenv("DESCENT_FAULT_AT_UPDATE");
  if (!v || !*v) return 0;
  long n;
  if (ds_parse_long(v, &n) != 0 || n < 1)
    ds_fatal(DS_EXIT_USAGE, "DESCENT_FAULT_AT_UPDATE=%s: expected an update number >= 1", v);
  return n;
}

/* Several processes (host/dist): the global batch B splits evenly; the last,
 * shorter batch of an epoch splits as evenly as it goes and is dropped (as
 * --drop-last) when a process would get fewer rows than it needs (1; 2 for a
 * BatchNorm over its own slice). Returns drop_last. */
static int dist_split(ds_trainer *t, const ds_train_config *cfg, int n, int B, int drop_last) {
  int N = t->dist_size;
  int need = cfg->model.batchnorm && !cfg->sync_bn ? 2 : 1;
  if (B % N != 0)
    ds_fatal(DS_EXIT_USAGE, "--batch-size %d%s (the global batch) is not divisible by the %d processes", B,
             cfg->batch_size != B ? " (all the training rows)" : "", N);
  if (B / N < need)
    ds_fatal(DS_EXIT_USAGE, "--batch-size %d: %d row%s for each of the %d processes; --batchnorm over each process's "
             "slice needs 2 (add --sync-bn, or a larger batch)", B, B / N, B / N == 1 ? "" : "s", N);
  int rest = n % B;
  if (cfg->sampling != DS_SAMPLE_REPLACEMENT && !drop_last && rest != 0 && rest < need * N) {
    ds_note("the last batch of each epoch would hold %d row%s for %d processes; dropping it (as --drop-last)", rest,
            rest == 1 ? "" : "s", N);
    drop_last = 1;
  }
  t->sync_bn = cfg->model.batchnorm && cfg->sync_bn;
  return drop_last;
}

/* This process's slice of a micro-batch of G rows: its first row in *lo, its row count returned. */
static int dist_slice(const ds_trainer *t, int G, long *lo) {
  long a = (long)G * t->dist_rank / t->dist_size, b = (long)G * (t->dist_rank + 1) / t->dist_size;
  *lo = a;
  return (int)(b - a);
}

/* Hold out round(fraction * n) items for validation: a Fisher-Yates shuffle
 * keyed by the seed picks them (the same items for every run with that seed),
 * and both parts keep the file's order. fit and val get their own copies. */
static void split_validation(const ds_dataset *all, float fraction, uint64_t seed, ds_dataset *fit,
                             ds_dataset *val) {
  int n = all->n, n_val = (int)((double)n * fraction + 0.5);
  if (n_val < 1 || n_val >= n)
    ds_fatal(DS_EXIT_USAGE, "--val-fraction %g: leaves %d validation and %d training items of %d",
             (double)fraction, n_val, n - n_val, n);
  if (n - n_val < 10)
    ds_note("--val-fraction %g: leaves only %d training row%s of %d", (double)fraction, n - n_val,
            n - n_val == 1 ? "" : "s", n);
  int32_t *perm = ds_xcalloc((size_t)n, sizeof *perm, "the validation split");
  for (int i = 0; i < n; i++) perm[i] = i;
  for (int i = n - 1; i > 0; i--) {
    uint32_t w = ds_philox_word(seed, DS_STREAM_SPLIT, 0, (uint64_t)i);
    int j = (int)(((uint64_t)w * (uint32_t)(i + 1)) >> 32); /* uniform in [0, i] */
    int32_t tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
  uint8_t *is_val = ds_xcalloc((size_t)n, 1, "the validation split");
  for (int i = 0; i < n_val; i++) is_val[perm[i]] = 1;
  free(perm);
  *fit = *all;
  *val = *all;
  fit->n = n - n_val;
  val->n = n_val;
  size_t d = (size_t)all->d;
  fit->images = ds_xmalloc((size_t)fit->n * d, "the training images");
  fit->labels = ds_xmalloc((size_t)fit->n, "the training labels");
  val->images = ds_xmalloc((size_t)n_val * d, "the validation images");
  val->labels = ds_xmalloc((size_t)n_val, "the validation labels");
  int a = 0, b = 0;
  for (int i = 0; i < n; i++) {
    ds_dataset *dst = is_val[i] ? val : fit;
    int k = is_val[i] ? b++ : a++;
    memcpy(dst->images + (size_t)k * d, all->images + (size_t)i * d, d);
    dst->labels[k] = all->labels[i];
  }
  free(is_val);
}

/* x = (byte/255 - mean) / std as one multiply-add: scale = 1/(255 std), shift = -mean/std */
static void input_scaling(ds_trainer *t, const ds_dataset *train) {
  t->scale = 1.0f / 255.0f;
  t->shift = 0.0f;
  if (t->cfg.norm_std > 0.0f) { /* given constants (--normalize) */
    t->scale = (float)(1.0 / (255.0 * t->cfg.norm_std));
    t->shift = (float)(-(double)t->cfg.norm_mean / t->cfg.norm_std);
    return;
  }
  if (!t->cfg.standardize) return;
  double sum = 0.0, ss = 0.0;
  size_t n = (size_t)train->n * (size_t)train->d;
  for (size_t i = 0; i < n; i++) {
    double v = train->images[i] / 255.0;
    sum += v;
    ss += v * v;
  }
  double mean = sum / (double)n, var = ss / (double)n - mean * mean;
  double std = sqrt(var > 1e-12 ? var : 1e-12);
  t->scale = (float)(1.0 / (255.0 * std));
  t->shift = (float)(-mean / std);
}

/* CRC-32 (zlib) of the images, then the labels: a resume on other data of
 * the same size is told apart from one on the same data. */
static uint32_t data_crc(const ds_dataset *d) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const Bytef *parts[2] = {d->images, d->labels};
  size_t sizes[2] = {(size_t)d->n * (size_t)d->d, (size_t)d->n};
  for (int k = 0; k < 2; k++)
    for (size_t off = 0; off < sizes[k];) {
      uInt n = sizes[k] - off > (1u << 30) ? (1u << 30) : (uInt)(sizes[k] - off);
      crc = crc32(crc, parts[k] + off, n);
      off += n;
    }
  return (uint32_t)crc;
}

void ds_trainer_init(ds_trainer *t, const ds_backend *be, const ds_train_config *cfg,
                     const ds_dataset *all_train, const ds_dataset *test) {
  memset(t, 0, sizeof *t);
  ds_dataset split[2];
  const ds_dataset *train = all_train;
  if (cfg->val_fraction > 0.0f) {
    split_validation(all_train, cfg->val_fraction, cfg->data_seed == DS_SEED_FROM_SEED ? cfg->seed : cfg->data_seed,
                     &split[0], &split[1]);
    train = &split[0];
  }
  t->be = be;
  t->cfg = *cfg;
  if (t->cfg.init_seed == DS_SEED_FROM_SEED) t->cfg.init_seed = cfg->seed;
  if (t->cfg.data_seed == DS_SEED_FROM_SEED) t->cfg.data_seed = cfg->seed;
  if (t->cfg.dropout_seed == DS_SEED_FROM_SEED) t->cfg.dropout_seed = cfg->seed;
  char err[256];
  if (ds_mlp_layout(&t->model, &cfg->model, train->d, train->n_classes, err, sizeof err) != 0)
    ds_fatal(DS_EXIT_USAGE, "%s", err);
  if (ds_optim_validate(&cfg->optim, err, sizeof err) != 0) ds_fatal(DS_EXIT_USAGE, "%s", err);
  int B = cfg->batch_size <= 0 || cfg->batch_size > train->n ? train->n : cfg->batch_size;
  if (cfg->batch_size > train->n)
    ds_note("--batch-size %d: more than the %d training rows; using %d (full-batch gradient descent)",
            cfg->batch_size, train->n, train->n);
  int drop_last = cfg->drop_last;
  if (cfg->model.batchnorm) {
    if (B < 2) ds_fatal(DS_EXIT_USAGE, "--batch-size: --batchnorm needs batches of at least 2 samples (as torch.nn.BatchNorm1d in training)");
    if (cfg->sampling != DS_SAMPLE_REPLACEMENT && train->n % B == 1 && !drop_last) {
      ds_note("--batchnorm: the last batch of each epoch would hold 1 sample; dropping it (as --drop-last)");
      drop_last = 1;
    }
  }
  if (cfg->sync_bn && !cfg->model.batchnorm) ds_fatal(DS_EXIT_USAGE, "--sync-bn: needs --batchnorm");
  t->dist_rank = ds_dist_rank();
  t->dist_size = ds_dist_size();
  if (t->dist_size > 1) drop_last = dist_split(t, cfg, train->n, B, drop_last);
  t->n_train = train->n;
  t->n_test = test->n;
  t->d = train->d;
  int eval_rows = cfg->eval_batch < 1 ? 1000 : cfg->eval_batch;
  if (eval_rows > test->n) eval_rows = test->n;
  t->cfg.eval_batch = eval_rows;
  t->max_batch = B > eval_rows ? B : eval_rows;
  size_t avail = be->memory_available ? be->memory_available() : 0;
  double need = backend_bytes(t, train, test, train != all_train ? split[1].n : 0);
  if (avail > 0 && need > (double)avail)
    ds_fatal(DS_EXIT_RUNTIME, "the run needs about %.1f GiB of %s memory (parameters, gradients, optimizer state, "
             "activations, data) and %.1f GiB is available; use a smaller --hidden or --batch-size",
             need / 1073741824.0, strcmp(be->name, "cpu") == 0 ? "host" : "GPU", (double)avail / 1073741824.0);
  ds_sampler_init(&t->sampler, train->n, B, cfg->sampling, drop_last, t->cfg.data_seed);
  alloc_step_block(t, cfg->accum < 1 ? 1 : cfg->accum, B);
  t->use_graph = be->graph_begin != NULL && !cfg->no_graph && ds_dist_graph_safe(be);
  t->fault_at = fault_injection_update();
  if (be->set_tf32) be->set_tf32(cfg->tf32);
  if (be->set_deterministic) be->set_deterministic(cfg->deterministic);

  /* flat buffers: parameters, gradients, statistics, optimizer state by role */
  size_t np = t->model.n_params, ns = t->model.n_stats;
  t->params = alloc_floats(be, np, "parameters");
  t->grads = alloc_floats(be, np, "gradients");
  t->stats = alloc_floats(be, ns ? ns : 1, "batchnorm running statistics");
  ds_optim_roles roles = ds_optim_state_roles(&cfg->optim);
  t->opt.param = t->params;
  t->opt.grad = t->grads;
  t->opt.m = roles.m ? alloc_floats(be, np, "optimizer state (momentum / first moment)") : NULL;
  t->opt.v = roles.v ? alloc_floats(be, np, "optimizer state (second moment)") : NULL;
  t->opt.vmax = roles.vmax ? alloc_floats(be, np, "optimizer state (amsgrad max)") : NULL;
  t->opt.gavg = roles.gavg ? alloc_floats(be, np, "optimizer state (gradient average)") : NULL;
  const ds_optim_config *oc = &cfg->optim;
  if (oc->kind == DS_OPT_SGD && oc->nesterov && oc->nesterov_form == DS_NESTEROV_LOOKAHEAD &&
      oc->momentum_form == DS_MOMENTUM_PYTORCH)
    t->lookahead = alloc_floats(be, np, "look-ahead parameters");

  float *h_params = ds_xcalloc(np, sizeof(float), "parameters");
  float *h_stats = ds_xcalloc(ns ? ns : 1, sizeof(float), "statistics");
  ds_mlp_init_params(&t->model, h_params, h_stats, t->cfg.init_seed);
  be->upload(t->params, h_params, np * sizeof(float));
  be->upload(t->stats, h_stats, ns * sizeof(float));
  if (t->opt.v && oc->kind == DS_OPT_ADAGRAD && oc->initial_accumulator != 0.0f) {
    for (size_t i = 0; i < np; i++) h_params[i] = oc->initial_accumulator;
    be->upload(t->opt.v, h_params, np * sizeof(float));
  }
  free(h_params);
  free(h_stats);

  /* the dataset goes up once, as bytes */
  size_t tr = (size_t)train->n * (size_t)train->d, te = (size_t)test->n * (size_t)test->d;
  t->train_images = be->alloc(tr, "the training images");
  t->train_labels = be->alloc((size_t)train->n, "the training labels");
  t->test_images = be->alloc(te, "the test images");
  t->test_labels = be->alloc((size_t)test->n, "the test labels");
  be->upload(t->train_images, train->images, tr);
  be->upload(t->train_labels, train->labels, (size_t)train->n);
  be->upload(t->test_images, test->images, te);
  be->upload(t->test_labels, test->labels, (size_t)test->n);
  if (train != all_train) {
    const ds_dataset *val = &split[1];
    t->n_val = val->n;
    t->val_images = be->alloc((size_t)val->n * (size_t)val->d, "the validation images");
    t->val_labels = be->alloc((size_t)val->n, "the validation labels");
    be->upload(t->val_images, val->images, (size_t)val->n * (size_t)val->d);
    be->upload(t->val_labels, val->labels, (size_t)val->n);
  }
  input_scaling(t, train); /* the training part only: validation stays unseen */
  t->data_crc = data_crc(train);
  if (train != all_train) {
    for (int i = 0; i < 2; i++) ds_dataset_free(&split[i]);
  }
  alloc_workspace(t);
  if (t->sync_bn) {
    int widest = 1;
    for (int l = 0; l < t->model.n_layers; l++)
      if (t->model.layers[l].hidden && t->model.layers[l].out > widest) widest = t->model.layers[l].out;
    t->d_bn_sums = (double *)be->alloc(2 * (size_t)widest * sizeof(double), "--sync-bn: the BatchNorm sums");
  }
  /* the non-finite records start empty (update -1) */
  t->d_nonfinite = (int64_t *)be->alloc(6 * sizeof(int64_t), "the non-finite record");
  int64_t none[6] = {-1, -1, 0, -1, -1, 0};
  be->upload(t->d_nonfinite, none, sizeof none);
  /* stop mode: the gradient's scan rides on the optimizer step's own pass
     over it (descent/optim.h), on a backend that has the scan at all */
  if (cfg->on_nonfinite == DS_NONFINITE_STOP && be->monitor_nonfinite) {
    t->opt.nonfinite = t->d_nonfinite;
    t->opt.update = &t->d_scalars->update;
  }
  if (cfg->on_nonfinite == DS_NONFINITE_SKIP) {
    if (ns) t->stats_backup = alloc_floats(be, ns, "batchnorm statistics (skip mode)");
    t->d_acc_backup = (double *)be->alloc(2 * sizeof(double), "loss accumulators (skip mode)");
  }
}

void ds_trainer_free(ds_trainer *t) {
  const ds_backend *be = t->be;
  if (t->graph) be->graph_free(t->graph);
  void *bufs[] = {t->params, t->grads, t->stats, t->opt.m, t->opt.v, t->opt.vmax, t->opt.gavg,
                  t->lookahead, t->train_images, t->train_labels, t->test_images, t->test_labels,
                  t->d_step, t->d_eval_indices, t->d_labels, t->x, t->x_drop, t->d_acc, t->d_eval_acc,
                  t->val_images, t->val_labels, t->d_nonfinite, t->stats_backup, t->d_acc_backup, t->d_bn_sums};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    if (bufs[i]) be->free(bufs[i]);
  for (int l = 0; l < t->model.n_layers; l++) {
    ds_layer_ws *w = &t->ws[l];
    void *wb[] = {w->z, w->dz, w->a, w->o, w->da, w->bn_mean, w->bn_rstd};
    for (size_t i = 0; i < sizeof wb / sizeof wb[0]; i++)
      if (wb[i]) be->free(wb[i]);
  }
  ds_sampler_free(&t->sampler);
  free(t->h_step);
  free(t->h_eval_indices);
  free(t->rows);
  memset(t, 0, sizeof *t);
}

/* What layer l reads: the (dropped-out) batch, or the previous layer's output. */
static const float *layer_input(const ds_trainer *t, int l) {
  if (l == 0) return t->x_drop ? t->x_drop : t->x;
  const ds_layer_ws *p = &t->ws[l - 1];
  return p->o ? p->o : p->a;
}

/* What hidden layer l does after its linear map. */
static ds_hidden_spec hidden_spec(const ds_trainer *t, int l) {
  const ds_mlp_spec *s = &t->model.spec;
  ds_hidden_spec h = {0};
  h.batchnorm = s->batchnorm;
  h.bn_momentum = s->bn_momentum;
  h.bn_eps = s->bn_eps;
  h.act = s->activation;
  h.slope = s->leaky_slope;
  h.p = s->dropout;
  h.form = s->dropout_form;
  h.seed = t->cfg.dropout_seed;
  h.stream = DS_STREAM_DROPOUT + (uint32_t)(l + 1);
  h.element0 = (uint64_t)t->row0 * (uint64_t)t->model.layers[l].out; /* masks keyed by the global row */
  return h;
}

/* --sync-bn under several processes: hidden_forward in its phases, the
 * BatchNorm sums all-reduced between them (descent/backend.h, batchnorm_sums). */
static void hidden_forward_synced(ds_trainer *t, const float *params, int l, int B, const ds_hidden_spec *hs,
                                  const uint64_t *key) {
  const ds_backend *be = t->be;
  const ds_layer *L = &t->model.layers[l];
  ds_layer_ws *w = &t->ws[l];
  int C = L->out, G = t->global_rows;
  size_t n = (size_t)B * (size_t)C;
  double *sums = t->d_bn_sums;
  be->batchnorm_sums(sums, w->z, B, C, 0, G);
  ds_dist_allreduce_double(be, sums, (size_t)C);
  be->batchnorm_sums(sums, w->z, B, C, 1, G);
  ds_dist_allreduce_double(be, sums + C, (size_t)C);
  be->batchnorm_forward_synced(w->a, w->bn_mean, w->bn_rstd, t->stats + L->running_mean.offset,
                               t->stats + L->running_var.offset, w->z, params + L->gamma.offset,
                               params + L->beta.offset, sums, B, C, G, hs->bn_momentum, hs->bn_eps);
  be->activation_forward(w->a, w->a, n, hs->act, hs->slope);
  if (w->o) be->dropout_forward(w->o, w->a, n, hs->p, hs->form, 1, hs->seed, hs->stream, hs->element0, key);
}

/* Its backward (hidden_backward's order: dropout, activation, BatchNorm). */
static void hidden_backward_synced(ds_trainer *t, const float *params, int l, int B, const ds_hidden_spec *hs,
                                   const uint64_t *key) {
  const ds_backend *be = t->be;
  const ds_layer *L = &t->model.layers[l];
  ds_layer_ws *w = &t->ws[l];
  int C = L->out, G = t->global_rows;
  size_t n = (size_t)B * (size_t)C;
  double *sums = t->d_bn_sums;
  if (w->o) be->dropout_backward(w->da, w->da, n, hs->p, hs->form, hs->seed, hs->stream, hs->element0, key);
  be->activation_backward(w->da, w->da, w->a, n, hs->act, hs->slope);
  be->batchnorm_backward_sums(sums, t->grads + L->gamma.offset, t->grads + L->beta.offset, w->da, w->z, w->bn_mean,
                              w->bn_rstd, B, C);
  ds_dist_allreduce_double(be, sums, 2 * (size_t)C);
  be->batchnorm_backward_synced(w->dz, w->da, w->z, w->bn_mean, w->bn_rstd, params + L->gamma.offset, sums, B, C, G);
}

void ds_trainer_forward(ds_trainer *t, const float *params, int B, int training, const uint64_t *key) {
  const ds_backend *be = t->be;
  const ds_mlp_spec *s = &t->model.spec;
  if (t->x_drop)
    be->dropout_forward(t->x_drop, t->x, (size_t)B * t->d, s->input_dropout, s->dropout_form,
                        training, t->cfg.dropout_seed, DS_STREAM_DROPOUT + 0, (uint64_t)t->row0 * (uint64_t)t->d, key);
  for (int l = 0; l < t->model.n_layers; l++) {
    const ds_layer *L = &t->model.layers[l];
    ds_layer_ws *w = &t->ws[l];
    be->linear_forward(w->z, layer_input(t, l), params + L->weight.offset, params + L->bias.offset,
                       B, L->in, L->out);
    if (!L->hidden) break;
    /* BatchNorm -> activation -> dropout, one op (one kernel on the GPU) */
    ds_hidden_spec hs = hidden_spec(t, l);
    if (t->sync_bn && training) {
      hidden_forward_synced(t, params, l, B, &hs, key);
      continue;
    }
    int bn = s->batchnorm;
    be->hidden_forward(w->a, w->o, w->bn_mean, w->bn_rstd, bn ? t->stats + L->running_mean.offset : NULL,
                       bn ? t->stats + L->running_var.offset : NULL, w->z, bn ? params + L->gamma.offset : NULL,
                       bn ? params + L->beta.offset : NULL, B, L->out, training, &hs, key);
  }
}

void ds_trainer_backward(ds_trainer *t, const float *params, int B, const uint64_t *key) {
  const ds_backend *be = t->be;
  int bn = t->model.spec.batchnorm;
  for (int l = t->model.n_layers - 1; l >= 0; l--) {
    const ds_layer *L = &t->model.layers[l];
    ds_layer_ws *w = &t->ws[l];
    if (L->hidden) { /* da (gradient of the layer output) -> dz, through dropout, activation, BatchNorm */
      ds_hidden_spec hs = hidden_spec(t, l);
      if (t->sync_bn) hidden_backward_synced(t, params, l, B, &hs, key);
      else be->hidden_backward(w->dz, bn ? t->grads + L->gamma.offset : NULL, bn ? t->grads + L->beta.offset : NULL,
                          w->da, w->a, w->z, w->bn_mean, w->bn_rstd, bn ? params + L->gamma.offset : NULL, B,
                          L->out, w->o != NULL, &hs, key);
    }
    float *dinp = l > 0 ? t->ws[l - 1].da : NULL;
    be->linear_backward(dinp, t->grads + L->weight.offset, t->grads + L->bias.offset, w->dz,
                        layer_input(t, l), params + L->weight.offset, B, L->in, L->out);
  }
}

/* Gather rows indices[0..B) (backend memory) of a byte set into t->x / t->d_labels. */
static void gather(ds_trainer *t, const uint8_t *images, const uint8_t *labels, const int32_t *indices, int B) {
  t->be->gather_forward(t->x, t->d_labels, images, labels, indices, B, t->d, t->scale, t->shift);
}

/* ---- one update: a host part, then a device part --------------------------- */

/* Host part: draw up to k micro-batches into the step block, write the
 * update's scalars and dropout keys, upload the block. Returns the number of
 * micro-batches drawn (0: the epoch is exhausted); their sizes go to t->rows. */
static int prepare_update(ds_trainer *t, int k) {
  int n_micro = 0;
  for (int i = 0; i < k; i++) {
    int B = ds_sampler_next(&t->sampler, t->h_indices + (size_t)i * (size_t)t->batch_rows);
    if (B == 0) break;
    t->rows[n_micro++] = B;
  }
  if (n_micro == 0) return 0;
  t->h_scalars->optim = ds_optim_scalars_at(&t->cfg.optim, t->step, t->epoch, t->step - t->skipped);
  t->h_scalars->update = t->step + 1;
  for (int i = 0; i < n_micro; i++) t->h_keys[i] = (uint64_t)t->micro_step + (uint64_t)i;
  size_t used = t->step_indices_offset + (size_t)n_micro * (size_t)t->batch_rows * sizeof(int32_t);
  t->be->upload(t->d_step, t->h_step, used);
  return n_micro;
}

/* Device part, first half: t->grads = the mean gradient over n_micro
 * micro-batches (each scaled by 1/(rows * k), k the micro-batches asked for). */
static void device_gradients(ds_trainer *t, int n_micro, int k) {
  const ds_backend *be = t->be;
  size_t np = t->model.n_params;
  be->zero(t->grads, np * sizeof(float));
  const float *params = t->params;
  if (t->lookahead) { /* gradient at the look-ahead point w - mu*v */
    be->axpy(t->lookahead, t->params, -t->cfg.optim.momentum, t->opt.m, np);
    params = t->lookahead;
  }
  const ds_layer_ws *out = &t->ws[t->model.n_layers - 1];
  for (int i = 0; i < n_micro; i++) {
    /* this process's slice of the micro-batch (all of it for one process),
       scaled by the whole micro-batch's rows: the sum over processes is the mean */
    int G = t->rows[i];
    int B = dist_slice(t, G, &t->row0);
    t->global_rows = G;
    const uint64_t *key = t->d_keys + i;
    gather(t, t->train_images, t->train_labels, t->d_indices + (size_t)i * (size_t)t->batch_rows + t->row0, B);
    ds_trainer_forward(t, params, B, 1, key);
    be->softmax_xent(out->dz, t->d_acc, out->z, t->d_labels, B, t->model.n_classes, 1.0f / ((float)G * (float)k));
    ds_trainer_backward(t, params, B, key);
  }
  t->row0 = 0;
  ds_dist_allreduce_float(be, t->grads, np); /* several processes: one all-reduce per update */
}

/* Device part, second half: the optimizer step, with the stop-mode
 * non-finite scan of the gradient in it (t->opt.nonfinite: recorded on the
 * backend, read at the next log point: no sync). */
static void device_apply(ds_trainer *t) {
  t->be->optim_step(&t->opt, t->model.n_params, t->model.n_decay, &t->cfg.optim, &t->d_scalars->optim);
}

/* Whether this update can be the replay of the captured graph: a full update
 * (cfg.accum micro-batches of batch_rows each), which is every update but an
 * epoch's last, shorter one. */
static int graph_fits(const ds_trainer *t, int n_micro, int k) {
  if (!t->use_graph || k != t->accum || n_micro != k) return 0;
  for (int i = 0; i < n_micro; i++)
    if (t->rows[i] != t->batch_rows) return 0;
  return 1;
}

/* Skip mode: the decision needs the scan's result on the host (one sync per
 * update; the plan for doing it on the device is at the top of host/train/monitor.c).
 * Returns 1 when the update was skipped (state restored). */
static int skip_nonfinite(ds_trainer *t, int samples) {
  const ds_backend *be = t->be;
  int64_t rec[3] = {-1, -1, 0};
  double acc[2];
  be->upload(t->d_nonfinite, rec, sizeof rec);
  ds_mon_nonfinite(be, t->d_nonfinite, t->grads, t->model.n_params, &t->d_scalars->update);
  be->download(rec, t->d_nonfinite, sizeof rec);
  be->download(acc, t->d_acc, sizeof acc);
  /* the gradient is all-reduced, the loss is this process's: decide together */
  if (!ds_dist_any(rec[0] >= 0 || !isfinite(acc[0]))) return 0;
  if (rec[0] < 0) rec[0] = t->step + 1, rec[1] = -1, rec[2] = isnan(acc[0]) ? 1 : 2; /* the loss */
  if (t->stats_backup) be->copy(t->stats, t->stats_backup, t->model.n_stats * sizeof(float));
  be->copy(t->d_acc, t->d_acc_backup, 2 * sizeof(double));
  memcpy(t->last_skip, rec, sizeof rec);
  t->skipped++;
  t->skipped_samples += samples;
  return 1;
}

/* A log point's statistics after the optimizer step (host/train/monitor.c). */
static void monitor_after_update(ds_trainer *t, int applied) {
  const float *acts[DS_MAX_LAYERS];
  for (int l = 0; l < t->model.n_layers; l++) acts[l] = t->ws[l].a;
  ds_monitor_after_update(t->mon, t->params, t->grads, acts, t->last_batch, applied);
}

int ds_trainer_update(ds_trainer *t, int k) {
  const ds_backend *be = t->be;
  if (k < 1 || k > t->accum)
    ds_fatal(DS_EXIT_RUNTIME, "ds_trainer_update: %d micro-batches asked, the step block holds %d (cfg.accum)", k,
             t->accum);
  int n_micro = prepare_update(t, k);
  if (n_micro == 0) return 0;
  int samples = 0;
  for (int i = 0; i < n_micro; i++) samples += t->rows[i];
  long lo;
  t->last_batch = dist_slice(t, t->rows[n_micro - 1], &lo); /* the rows in the workspace */
  int64_t update = t->step + 1; /* 1-based, as the logs count */
  int capture = t->mon && t->capture;
  int skip_mode = t->cfg.on_nonfinite == DS_NONFINITE_SKIP;
  int inject = t->fault_at == update;
  int full = !capture && !skip_mode && !inject && graph_fits(t, n_micro, k);
  if (full && t->graph_warm) {
    if (!t->graph) { /* the second full update: record it, then replay it like every later one */
      be->graph_begin();
      device_gradients(t, n_micro, k);
      device_apply(t);
      t->graph = be->graph_end();
    }
    be->graph_launch(t->graph);
    t->graph_replays++;
    t->micro_step += n_micro;
    t->step++;
    return samples;
  }
  /* eagerly: log points (statistics around the update), skip mode (a host
   * decision between backward and update), short batches, --no-graph */
  if (skip_mode) { /* what a skipped update must leave as it was, besides params and state */
    if (t->stats_backup) be->copy(t->stats_backup, t->stats, t->model.n_stats * sizeof(float));
    be->copy(t->d_acc_backup, t->d_acc, 2 * sizeof(double));
  }
  device_gradients(t, n_micro, k);
  t->micro_step += n_micro;
  if (skip_mode && skip_nonfinite(t, samples)) {
    t->step++;
    if (capture) monitor_after_update(t, 0);
    return samples;
  }
  if (capture) ds_monitor_before_update(t->mon, t->params);
  if (inject) be->inject_fault("optim_step");
  device_apply(t);
  /* the first full update runs eagerly: the libraries' first-call setup
     (cuBLASLt heuristics, lazy kernel loading) then happens outside a capture */
  if (full) t->graph_warm = 1;
  t->step++;
  if (capture) monitor_after_update(t, 1);
  return samples;
}

void ds_trainer_evaluate(ds_trainer *t, const uint8_t *images, const uint8_t *labels, int n,
                         double *loss, double *accuracy) {
  const ds_backend *be = t->be;
  const ds_layer_ws *out = &t->ws[t->model.n_layers - 1];
  be->zero(t->d_eval_acc, 2 * sizeof(double));
  long first;
  int share = dist_slice(t, n, &first); /* this process's share of the rows (all of them for one) */
  int end = (int)first + share;
  for (int start = (int)first; start < end; start += t->cfg.eval_batch) {
    int B = end - start < t->cfg.eval_batch ? end - start : t->cfg.eval_batch;
    for (int b = 0; b < B; b++) t->h_eval_indices[b] = start + b;
    be->upload(t->d_eval_indices, t->h_eval_indices, (size_t)B * sizeof(int32_t));
    gather(t, images, labels, t->d_eval_indices, B);
    ds_trainer_forward(t, t->params, B, 0, NULL);
    be->softmax_xent(NULL, t->d_eval_acc, out->z, t->d_labels, B, t->model.n_classes, 0.0f);
  }
  double acc[2];
  be->download(acc, t->d_eval_acc, sizeof acc);
  ds_dist_sum_host(acc, 2);
  *loss = acc[0] / n;
  *accuracy = acc[1] / n;
}

/* ---- non-finite values ------------------------------------------------------ */

void ds_trainer_read_acc(ds_trainer *t, double acc[2]) {
  t->be->download(acc, t->d_acc, 2 * sizeof(double));
  ds_dist_sum_host(acc, 2);
}

void ds_trainer_check_finite(ds_trainer *t, double loss_sum) {
  const ds_backend *be = t->be;
  size_t np = t->model.n_params;
  if (t->dist_size > 1) { /* log points and checkpoints: one model on every process */
    if (t->model.n_stats && !t->sync_bn) ds_dist_average(be, t->stats, t->model.n_stats);
    ds_dist_check_identical(be, t->params, np, t->step);
  }
  int64_t rec[6];
  be->download(rec, t->d_nonfinite, sizeof rec);
  char name[64];
  if (t->cfg.on_nonfinite == DS_NONFINITE_STOP) {
    /* without the per-step op, the gradient of the last update is all we have */
    if (rec[0] < 0 && !be->monitor_nonfinite && t->step > 0) {
      ds_mon_nonfinite(be, t->d_nonfinite, t->grads, np, &t->d_scalars->update); /* the last update's number */
      be->download(rec, t->d_nonfinite, sizeof rec);
    }
    if (rec[0] >= 0) {
      ds_mlp_param_name(&t->model, (size_t)rec[1], name, sizeof name);
      ds_fatal(DS_EXIT_RUNTIME, "training diverged: the gradient of %s is %s at update %lld (index %lld); "
               "lower --lr, add --clip-norm, or --on-nonfinite skip",
               name, rec[2] == 1 ? "NaN" : "Inf", (long long)rec[0], (long long)rec[1]);
    }
  }
  /* parameters: a finite gradient times a huge learning rate can still overflow */
  int64_t none[3] = {-1, -1, 0};
  be->upload(t->d_nonfinite + 3, none, sizeof none);
  ds_mon_nonfinite(be, t->d_nonfinite + 3, t->params, np, &t->d_scalars->update); /* rec[3] >= 0: found */
  be->download(rec + 3, t->d_nonfinite + 3, 3 * sizeof(int64_t));
  if (rec[3] >= 0) {
    ds_mlp_param_name(&t->model, (size_t)rec[4], name, sizeof name);
    ds_fatal(DS_EXIT_RUNTIME, "training diverged: the parameters of %s hold %s by update %ld (index %lld): "
             "an update overflowed; lower --lr or add --clip-norm",
             name, rec[5] == 1 ? "NaN" : "Inf", t->step, (long long)rec[4]);
  }
  if (!isfinite(loss_sum))
    ds_fatal(DS_EXIT_RUNTIME, "training diverged: the training loss is %s by update %ld; lower --lr or add --clip-norm",
             isnan(loss_sum) ? "NaN" : "Inf", t->step);
}
