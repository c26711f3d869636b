/* `descent verify`: the same training steps on the CPU reference and on the
 * GPU, from the same initial state and the same batches (the sampler, the
 * initialisation and the dropout masks are all keyed Philox streams, so two
 * trainers with one configuration draw the same numbers), comparing after
 * every update the loss and every tensor: parameters, gradients, optimizer
 * state and BatchNorm running statistics. Prints the largest error per tensor
 * over all steps; exits 0 within tolerance, 1 beyond, 77 without a GPU. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "descent/common.h"
#include "descent/train.h"
#ifdef DS_HAVE_CUDA
#endif


/* Default tolerances on rel (see verify_summary for the reasoning). */
#define TOL_PARAMS_SGD 1e-5
#define TOL_PARAMS_ADAPTIVE 1e-4
#define TOL_GRADS 1e-4
#define TOL_LOSS 1e-5
#define TOL_PARAMS_TF32 1e-2
#define TOL_PARAMS_TF32_ADAPTIVE 5e-2
#define TOL_GRADS_TF32 1e-1
#define TOL_LOSS_TF32 1e-2

static const char *verify_summary =
    "Run the same training steps on the CPU reference and on the GPU, from the same\n"
    "initial parameters and the same batches (dropout masks are identical on both),\n"
    "and after every update compare the loss and every tensor: parameters, gradients,\n"
    "optimizer state and BatchNorm running statistics. Prints, per tensor, the largest\n"
    "absolute error max |gpu - cpu| and the largest relative error over all steps,\n"
    "  rel = rms(gpu - cpu) / max(rms(cpu), 1% of rms(cpu) over the whole buffer)\n"
    "(rms: root mean square over the tensor's elements; buffer: all parameters, all\n"
    "gradients, ...). Element-wise ratios are meaningless for entries near 0, and a\n"
    "linear layer's bias before BatchNorm has gradient 0 in exact arithmetic, so both\n"
    "sides hold only rounding noise there: hence the floor.\n"
    "Exit 0 when every tensor is within tolerance, 1 when one is not, 77 without a GPU.\n"
    "\n"
    "Tolerances on rel, FP32 GEMMs (the default): parameters and running statistics\n"
    "1e-5 (1e-4 for adagrad, rmsprop, adam, adamw), gradients and optimizer state 1e-4,\n"
    "each step's loss 1e-5. The backends sum in different orders and the GPU fuses\n"
    "multiply-adds: about 1e-7 relative per operation, which 20 updates grow by one to\n"
    "two orders of magnitude. Adaptive optimizers amplify rounding in near-zero\n"
    "gradients (Adam's first step is about lr * sign(g)), hence their wider tolerance.\n"
    "Exempt (shown, not judged): the biases of linear layers followed by BatchNorm,\n"
    "whose gradient is 0 in exact arithmetic, and with adaptive optimizers, which turn\n"
    "that noise into lr-sized steps, running_mean. With --tf32 (GEMM inputs rounded to\n"
    "10 mantissa bits): parameters 1e-2 (5e-2 adaptive), gradients 1e-1, loss 1e-2.\n"
    "Defaults differ from train's: --batchnorm and --dropout 0.2 are on (the ops worth\n"
    "checking) and --activation is tanh. With relu, a pre-activation within rounding\n"
    "error of 0 can take different branches on the two backends, after which the runs\n"
    "legitimately differ by more than rounding: check relu with --activation relu,\n"
    "loosening --rtol-* if that happens.";

/* One compared tensor: a view (offset, size) into one flat buffer. */
enum { BUF_PARAMS, BUF_GRADS, BUF_M, BUF_V, BUF_VMAX, BUF_GAVG, BUF_STATS, BUF_COUNT };

typedef struct {
  char name[64];
  int buffer;
  size_t offset, size;
  double tol;
  int exempt;              /* shown, not judged (see verify_summary) */
  double rel, abs, ref;    /* worst step so far: its rel, max |gpu-cpu|, max |cpu| */
  long step;
} tensor_row;

/* torch.optim's name for each state role of each optimizer. */
static const char *state_name(ds_optimizer kind, int buffer) {
  switch (buffer) {
    case BUF_M: return kind == DS_OPT_ADAM || kind == DS_OPT_ADAMW ? "exp_avg" : "momentum_buffer";
    case BUF_V:
      return kind == DS_OPT_ADAGRAD ? "sum" : (kind == DS_OPT_RMSPROP ? "square_avg" : "exp_avg_sq");
    case BUF_VMAX: return "max_exp_avg_sq";
    default: return "grad_avg";
  }
}

static void add_row(tensor_row *rows, int *n, const char *name, int buffer, ds_view v, double tol, int exempt) {
  tensor_row *r = &rows[(*n)++];
  memset(r, 0, sizeof *r);
  snprintf(r->name, sizeof r->name, "%s", name);
  r->buffer = buffer;
  r->offset = v.offset;
  r->size = v.size;
  r->tol = tol;
  r->exempt = exempt;
  r->rel = -1.0;
}

/* Every parameter view with its gradient and optimizer state, then the
 * statistics. The biases of linear layers followed by BatchNorm (with their
 * gradient and state) are shown but not judged: BatchNorm subtracts the batch
 * mean, so their gradient is 0 in exact arithmetic and both sides hold rounding
 * noise. With `adaptive`, the optimizer turns that noise into lr-sized steps,
 * which running_mean follows: it is not judged either. */
static int build_rows(tensor_row *rows, const ds_mlp *m, const int have_state[BUF_COUNT], ds_optimizer kind,
                      double tol_params, double tol_grads, int adaptive) {
  int n = 0;
  for (int l = 0; l < m->n_layers; l++) {
    const ds_layer *L = &m->layers[l];
    struct { const char *fmt; ds_view v; int exempt; } views[4] = {
      {"fc%d.weight", L->weight, 0},
      {"fc%d.bias", L->bias, L->gamma.size > 0},
      {"bn%d.weight", L->gamma, 0},
      {"bn%d.bias", L->beta, 0}};
    for (int k = 0; k < 4; k++) {
      if (views[k].v.size == 0) continue;
      char base[40], name[64];
      snprintf(base, sizeof base, views[k].fmt, l);
      add_row(rows, &n, base, BUF_PARAMS, views[k].v, tol_params, views[k].exempt);
      snprintf(name, sizeof name, "%s.grad", base);
      add_row(rows, &n, name, BUF_GRADS, views[k].v, tol_grads, views[k].exempt);
      for (int b = BUF_M; b <= BUF_GAVG; b++)
        if (have_state[b]) {
          snprintf(name, sizeof name, "%s.%s", base, state_name(kind, b));
          add_row(rows, &n, name, b, views[k].v, tol_grads, views[k].exempt);
        }
    }
  }
  for (int l = 0; l < m->n_layers; l++) {
    const ds_layer *L = &m->layers[l];
    if (L->running_mean.size == 0) continue;
    char name[64];
    snprintf(name, sizeof name, "bn%d.running_mean", l);
    add_row(rows, &n, name, BUF_STATS, L->running_mean, tol_params, adaptive);
    snprintf(name, sizeof name, "bn%d.running_var", l);
    add_row(rows, &n, name, BUF_STATS, L->running_var, tol_params, 0);
  }
  return n;
}

/* Root mean square of x[0, n). */
static double rms(const float *x, size_t n) {
  double ss = 0.0;
  for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
  return n ? sqrt(ss / (double)n) : 0.0;
}

/* Fold this step's errors of one tensor into its row and return this step's
 * rel = rms(gpu - cpu) / max(rms(cpu), scale_floor); NaN or inf on either
 * side counts as an infinite error (NaN on both as none). */
static double compare_row(tensor_row *r, const float *cpu, const float *gpu, double scale_floor, long step) {
  double ss = 0.0, max_err = 0.0;
  for (size_t i = 0; i < r->size; i++) {
    double c = cpu[r->offset + i], g = gpu[r->offset + i];
    double e = fabs(g - c);
    if (!(e <= DBL_MAX)) e = isnan(g) && isnan(c) ? 0.0 : INFINITY;
    ss += e * e;
    if (e > max_err) max_err = e;
  }
  double err = r->size ? sqrt(ss / (double)r->size) : 0.0;
  double ref = rms(cpu + r->offset, r->size);
  double scale = ref > scale_floor ? ref : scale_floor;
  double rel = scale > 0.0 ? err / scale : (err > 0.0 ? INFINITY : 0.0);
  if (rel > r->rel) {
    r->rel = rel;
    r->abs = max_err;
    r->ref = ref;
    r->step = step;
  }
  return rel;
}

static int row_ok(const tensor_row *r) { return r->exempt || r->rel <= r->tol; }

/* The next update on a trainer, starting a new epoch when the sampler runs dry. */
static int next_update(ds_trainer *t, int accum) {
  int samples = ds_trainer_update(t, accum);
  if (samples == 0) {
    t->epoch++;
    ds_sampler_begin_epoch(&t->sampler, t->epoch);
    samples = ds_trainer_update(t, accum);
  }
  return samples;
}

int ds_cmd_verify(int argc, char **argv) {
  ds_train_config cfg;
  ds_train_config_defaults(&cfg);
  cfg.model.batchnorm = 1;
  cfg.model.dropout = 0.2f;
  cfg.model.activation = DS_ACT_TANH;
  ds_data_source src = {0};
  const char *optimizer = "sgd";
  int device = 0, tf32 = 0, no_bn = 0, quiet = 0;
  long steps = 20;
  float rtol_params = 0.0f, rtol_grads = 0.0f, rtol_loss = 0.0f; /* 0: the defaults below */

  ds_flag flags[96];
  int n = ds_cli_data_flags(flags, &src);
  n += ds_cli_model_flags(flags + n, &cfg);
  flags[n++] = (ds_flag){"--no-batchnorm", DS_FLAG_BOOL, &no_bn, NULL, "no BatchNorm1d (verify turns --batchnorm on by default)"};
  n += ds_cli_optim_flags(flags + n, &cfg.optim, &optimizer);
  ds_flag loop[] = {
    {"--steps", DS_FLAG_LONG, &steps, "K", "updates to run and compare", "[1,inf)", .group = "Steps"},
    {"--batch-size", DS_FLAG_CUSTOM, &cfg.batch_size, "N|full", "samples per batch", .parse = ds_cli_parse_batch, .default_text = "64"},
    {"--sampling", DS_FLAG_CHOICE, &cfg.sampling, NULL, "shuffle each epoch, draw with replacement, or keep file order", .choices = ds_cli_samplings},
    {"--drop-last", DS_FLAG_BOOL, &cfg.drop_last, NULL, "drop the last, smaller batch of an epoch"},
    {"--accum", DS_FLAG_INT, &cfg.accum, "K", "average the gradients of K batches per update", "[1,inf)"},
    {"--seed", DS_FLAG_U64, &cfg.seed, "S", "seed of init, shuffling and dropout"},
    {"--on-nonfinite", DS_FLAG_CHOICE, &cfg.on_nonfinite, NULL, "both sides: stop at a NaN/Inf, or skip such updates (the skip path: a host decision between backward and update)", .choices = ds_cli_nonfinite_modes},
    {"--device", DS_FLAG_INT, &device, "N", "CUDA device index", "[0,inf)", .group = "Comparison"},
    {"--tf32", DS_FLAG_BOOL, &tf32, NULL, "TF32 tensor-core GEMMs on the GPU (and the TF32 tolerances)"},
    {"--no-graph", DS_FLAG_BOOL, &cfg.no_graph, NULL, "run the GPU's updates eagerly instead of replaying the captured CUDA graph"},
    {"--rtol-params", DS_FLAG_FLOAT, &rtol_params, "R", "tolerance on rel for parameters and running statistics", "(0,inf)", .default_text = "1e-5 sgd, 1e-4 adaptive; --tf32: 1e-2, 5e-2"},
    {"--rtol-grads", DS_FLAG_FLOAT, &rtol_grads, "R", "tolerance on rel for gradients and optimizer state", "(0,inf)", .default_text = "1e-4; 1e-1 --tf32"},
    {"--rtol-loss", DS_FLAG_FLOAT, &rtol_loss, "R", "tolerance on |gpu - cpu| / |cpu| of each step's loss", "(0,inf)", .default_text = "1e-5; 1e-2 --tf32"},
    {"--quiet", DS_FLAG_BOOL, &quiet, NULL, "no per-step lines on stderr (the table still goes to stdout)"},
    {NULL},
  };
  memcpy(flags + n, loop, sizeof loop);
  ds_flags_parse("verify", flags, argc, argv, NULL, 0, "[flags]", verify_summary);
  ds_set_quiet(quiet);
  ds_cli_optim_resolve("verify", flags, &cfg.optim, optimizer);
  const ds_optim_config *resolved = &cfg.optim;
  ds_cli_optim_check_flags("verify", flags, &resolved, 1);
  if (no_bn) cfg.model.batchnorm = 0;
  int adaptive = cfg.optim.kind != DS_OPT_SGD;
  if (!ds_flag_given(flags, "--rtol-params"))
    rtol_params = (float)(tf32 ? (adaptive ? TOL_PARAMS_TF32_ADAPTIVE : TOL_PARAMS_TF32)
                               : (adaptive ? TOL_PARAMS_ADAPTIVE : TOL_PARAMS_SGD));
  if (!ds_flag_given(flags, "--rtol-grads")) rtol_grads = (float)(tf32 ? TOL_GRADS_TF32 : TOL_GRADS);
  if (!ds_flag_given(flags, "--rtol-loss")) rtol_loss = (float)(tf32 ? TOL_LOSS_TF32 : TOL_LOSS);
  cfg.steps = steps;
  cfg.quiet = 1;

  /* the GPU first: without one there is nothing to verify (77), and no data is read */
  char why[256] = "";
  const ds_backend *gpu = ds_backend_cuda(device, why, sizeof why);
  if (!gpu) ds_fatal(DS_EXIT_NOGPU, "verify: %s", why);
  const ds_backend *cpu = ds_backend_cpu();
  cfg.tf32 = tf32; /* ds_trainer_init sets it on the backend */

  ds_dataset train, test;
  ds_data_load(&src, &train, &test);
  ds_trainer tc, tg;
  ds_trainer_init(&tc, cpu, &cfg, &train, &test);
  ds_trainer_init(&tg, gpu, &cfg, &train, &test);

  /* Both trainers initialised the same parameters from the seed; copy the
   * CPU's state over anyway, so that the comparison starts from identical
   * bits by construction. (CPU backend memory is host memory.) */
  size_t np = tc.model.n_params, ns = tc.model.n_stats;
  float *cpu_buf[BUF_COUNT] = {tc.params, tc.grads, tc.opt.m, tc.opt.v, tc.opt.vmax, tc.opt.gavg, tc.stats};
  float *gpu_dev[BUF_COUNT] = {tg.params, tg.grads, tg.opt.m, tg.opt.v, tg.opt.vmax, tg.opt.gavg, tg.stats};
  size_t buf_len[BUF_COUNT] = {np, np, np, np, np, np, ns};
  int have[BUF_COUNT];
  float *gpu_host[BUF_COUNT];
  for (int b = 0; b < BUF_COUNT; b++) {
    have[b] = cpu_buf[b] != NULL && gpu_dev[b] != NULL && buf_len[b] > 0;
    gpu_host[b] = have[b] ? ds_xcalloc(buf_len[b], sizeof(float), "a downloaded buffer") : NULL;
    if (have[b] && b != BUF_GRADS) gpu->upload(gpu_dev[b], cpu_buf[b], buf_len[b] * sizeof(float));
  }

  int max_rows = tc.model.n_layers * 4 * 6 + tc.model.n_layers * 2;
  tensor_row *rows = ds_xcalloc((size_t)max_rows, sizeof *rows, "the comparison table");
  int n_rows = build_rows(rows, &tc.model, have, cfg.optim.kind, rtol_params, rtol_grads, adaptive);
  double loss_rel = -1.0, loss_cpu_worst = 0.0, loss_gpu_worst = 0.0;
  long loss_step = 0;

  ds_sampler_begin_epoch(&tc.sampler, 0);
  ds_sampler_begin_epoch(&tg.sampler, 0);
  char desc[256];
  ds_mlp_describe(&tc.model, desc, sizeof desc);
  if (!quiet)
    fprintf(stderr, "descent: verify: %s, %s lr %g, batch %d, %ld steps; CPU (%s) vs %s (%s GEMMs)\n", desc,
            optimizer, (double)cfg.optim.lr, tc.sampler.batch_size, steps, cpu->device, gpu->device,
            tf32 ? "TF32" : "FP32");
  int accum = cfg.accum < 1 ? 1 : cfg.accum;
  for (long step = 1; step <= steps; step++) {
    cpu->zero(tc.d_acc, 2 * sizeof(double));
    gpu->zero(tg.d_acc, 2 * sizeof(double));
    int samples_c = next_update(&tc, accum);
    int samples_g = next_update(&tg, accum);
    if (samples_c != samples_g || samples_c == 0)
      ds_fatal(DS_EXIT_RUNTIME, "verify: step %ld used %d samples on the CPU and %d on the GPU", step, samples_c,
               samples_g);
    double acc_c[2], acc_g[2];
    cpu->download(acc_c, tc.d_acc, sizeof acc_c);
    gpu->download(acc_g, tg.d_acc, sizeof acc_g);
    double loss_c = acc_c[0] / samples_c, loss_g = acc_g[0] / samples_g;
    double lrel = fabs(loss_g - loss_c) / (fabs(loss_c) > 0.0 ? fabs(loss_c) : 1.0);
    if (!(lrel <= DBL_MAX)) lrel = INFINITY;
    if (lrel > loss_rel) {
      loss_rel = lrel;
      loss_cpu_worst = loss_c;
      loss_gpu_worst = loss_g;
      loss_step = step;
    }
    for (int b = 0; b < BUF_COUNT; b++)
      if (have[b]) gpu->download(gpu_host[b], gpu_dev[b], buf_len[b] * sizeof(float));
    double scale_floor[BUF_COUNT] = {0}; /* 1% of each buffer's rms */
    for (int b = 0; b < BUF_COUNT; b++)
      if (have[b]) scale_floor[b] = 1e-2 * rms(cpu_buf[b], buf_len[b]);
    double worst = 0.0;
    const char *worst_name = "-";
    for (int r = 0; r < n_rows; r++) {
      int b = rows[r].buffer;
      double rel = compare_row(&rows[r], cpu_buf[b], gpu_host[b], scale_floor[b], step);
      if (!rows[r].exempt && !(rel / rows[r].tol <= worst)) {
        worst = rel / rows[r].tol;
        worst_name = rows[r].name;
      }
    }
    if (!quiet)
      fprintf(stderr, "step %3ld  loss cpu %.7f gpu %.7f (rel %.1e)  correct cpu %.0f gpu %.0f  closest to its tolerance: %s (%.2g of it)\n",
              step, loss_c, loss_g, lrel, acc_c[1], acc_g[1], worst_name, worst);
  }

  /* the table */
  int failed = 0, exempt = 0;
  printf("%-34s %10s %11s %11s %10s %5s %8s\n", "tensor", "elements", "rms(cpu)", "max abs err", "rel err", "step",
         "tol");
  for (int r = 0; r < n_rows; r++) {
    const tensor_row *row = &rows[r];
    int ok = row_ok(row);
    failed += !ok;
    exempt += row->exempt;
    printf("%-34s %10zu %11.3e %11.3e %10.2e %5ld %8.0e%s\n", row->name, row->size, row->ref, row->abs, row->rel,
           row->step, row->tol, row->exempt ? "  exempt" : ok ? "" : "  FAIL");
  }
  int loss_ok = loss_rel <= rtol_loss;
  failed += !loss_ok;
  printf("%-34s %10d %11.3e %11.3e %10.2e %5ld %8.0e%s\n", "loss (per step)", 1, fabs(loss_cpu_worst),
         fabs(loss_gpu_worst - loss_cpu_worst), loss_rel, loss_step, (double)rtol_loss, loss_ok ? "" : "  FAIL");
  if (exempt)
    printf("exempt (shown, not judged): the biases of linear layers followed by BatchNorm have gradient 0 in\n"
           "exact arithmetic, so both sides hold rounding noise%s (see descent verify --help)\n",
           adaptive ? "; adaptive optimizers turn it into lr-sized steps, which running_mean follows" : "");
  printf("GPU updates replayed from the captured CUDA graph: %ld of %ld%s\n", tg.graph_replays, steps,
         cfg.no_graph ? " (--no-graph)" : "");
  if (failed)
    printf("verify: FAILED: %d of %d judged tensors beyond tolerance after %ld steps (%s vs the CPU reference, %s GEMMs)\n",
           failed, n_rows + 1 - exempt, steps, gpu->device, tf32 ? "TF32" : "FP32");
  else
    printf("verify: OK: all %d judged tensors within tolerance over %ld steps (%s vs the CPU reference, %s GEMMs)\n",
           n_rows + 1 - exempt, steps, gpu->device, tf32 ? "TF32" : "FP32");
  if (fflush(stdout) != 0) ds_fatal(DS_EXIT_RUNTIME, "cannot write to standard output");

  for (int b = 0; b < BUF_COUNT; b++) free(gpu_host[b]);
  free(rows);
  ds_trainer_free(&tc);
  ds_trainer_free(&tg);
  ds_dataset_free(&train);
  ds_dataset_free(&test);
  return failed ? DS_EXIT_RUNTIME : DS_EXIT_OK;
}
