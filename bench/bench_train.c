/* bench_train — training throughput and time to accuracy.
 *
 * One case = model + optimizer + batch size on a backend. Throughput: after
 * --warmup updates, --steps updates are timed (the backend is synchronised
 * before the clock stops); samples/s, ms per step and ms per 60,000-sample
 * epoch follow. With --target A, training then continues epoch by epoch from
 * a fresh model until the test accuracy reaches A; the training wall time to
 * get there (evaluation excluded) is reported.
 *
 * GEMM floor (CPU): the step's GEMMs alone (forward, input gradient, weight
 * gradient of every layer, the shapes the step runs, through the engine's
 * own gemm_cpu on the same threads), timed in the same run, interleaved with
 * the timed updates: one update, then one round of its GEMMs. The ratio
 * (the median over updates of update / the GEMM round right after it) says
 * how far the step is from the hardware limit its GEMMs set; pairing each
 * update with its neighbouring round keeps a shared machine's slow spells
 * (which slow both) out of the ratio, the median its stalls. With OpenBLAS
 * the same GEMMs are also timed on OpenBLAS's own threads (after the
 * updates: its spinning workers would disturb them) and shown beside the
 * floor, so that a split of each GEMM between the engine's threads slower
 * than OpenBLAS's own threading would show. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "gemm_cpu.h"
#ifdef DS_HAVE_CBLAS
#include <cblas.h>
#endif
#include "descent/common.h"
#include "descent/train.h"
#include "cli/flags.h"

typedef struct {
  double samples_per_second, ms_per_step, seconds_to_target, accuracy_reached;
  double ms_median, gemm_ms; /* CPU: median update, median GEMM round (the floor); 0 when not measured */
  double gemm_blas_ms; /* the same round on OpenBLAS's threads (0: not measured) */
  double floor_ratio; /* median over i of update i / the GEMM round right after it */
  double faults_per_update; /* page faults (minor + major) of the process over the timed loop, per update */
  long epochs_to_target;
} bench_result;

/* Buffers of the GEMM floor: per layer the input, weight, output and their gradients. */
typedef struct {
  int n;
  float *x[DS_MAX_LAYERS], *w[DS_MAX_LAYERS], *y[DS_MAX_LAYERS], *dy[DS_MAX_LAYERS], *dx[DS_MAX_LAYERS],
      *dw[DS_MAX_LAYERS];
  int in[DS_MAX_LAYERS], out[DS_MAX_LAYERS];
} gemm_floor;

static void floor_init(gemm_floor *g, const ds_backend *be, const ds_mlp *m, int B) {
  g->n = m->n_layers;
  for (int l = 0; l < g->n; l++) {
    size_t in = (size_t)m->layers[l].in, out = (size_t)m->layers[l].out;
    g->in[l] = (int)in, g->out[l] = (int)out;
    g->x[l] = be->alloc(B * in * sizeof(float), "GEMM floor");
    g->dx[l] = be->alloc(B * in * sizeof(float), "GEMM floor");
    g->w[l] = be->alloc(in * out * sizeof(float), "GEMM floor");
    g->dw[l] = be->alloc(in * out * sizeof(float), "GEMM floor");
    g->y[l] = be->alloc(B * out * sizeof(float), "GEMM floor");
    g->dy[l] = be->alloc(B * out * sizeof(float), "GEMM floor");
  }
}

static void floor_free(gemm_floor *g, const ds_backend *be) {
  for (int l = 0; l < g->n; l++) {
    be->free(g->x[l]), be->free(g->dx[l]), be->free(g->w[l]);
    be->free(g->dw[l]), be->free(g->y[l]), be->free(g->dy[l]);
  }
}

/* One round of a step's GEMMs, as linear_forward/linear_backward issue them. */
static void floor_round(const gemm_floor *g, int B) {
  for (int l = 0; l < g->n; l++)
    gemm_cpu(0, 1, B, g->out[l], g->in[l], 1.0f, g->x[l], g->in[l], g->w[l], g->in[l], 1.0f, g->y[l], g->out[l]);
  for (int l = g->n - 1; l >= 0; l--) {
    if (l > 0)
      gemm_cpu(0, 0, B, g->in[l], g->out[l], 1.0f, g->dy[l], g->out[l], g->w[l], g->in[l], 0.0f, g->dx[l], g->in[l]);
    gemm_cpu(1, 0, g->out[l], g->in[l], B, 1.0f, g->dy[l], g->out[l], g->x[l], g->in[l], 1.0f, g->dw[l], g->in[l]);
  }
}

#ifdef DS_HAVE_CBLAS
/* The same round through cblas_sgemm on OpenBLAS's own threads. */
static void floor_round_blas(const gemm_floor *g, int B) {
  const CBLAS_TRANSPOSE N = CblasNoTrans, T = CblasTrans;
  for (int l = 0; l < g->n; l++)
    cblas_sgemm(CblasRowMajor, N, T, B, g->out[l], g->in[l], 1.0f, g->x[l], g->in[l], g->w[l], g->in[l], 1.0f,
                g->y[l], g->out[l]);
  for (int l = g->n - 1; l >= 0; l--) {
    if (l > 0)
      cblas_sgemm(CblasRowMajor, N, N, B, g->in[l], g->out[l], 1.0f, g->dy[l], g->out[l], g->w[l], g->in[l], 0.0f,
                  g->dx[l], g->in[l]);
    cblas_sgemm(CblasRowMajor, T, N, g->out[l], g->in[l], B, 1.0f, g->dy[l], g->out[l], g->x[l], g->in[l], 1.0f,
                g->dw[l], g->in[l]);
  }
}
#endif

/* Page faults of this process so far (minor and major: a buffer touched for
 * the first time, or brought back). */
static long page_faults(void) {
  struct rusage u;
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
  return u.ru_minflt + u.ru_majflt;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static double median(double *v, long n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One update, starting a new epoch when the sampler runs dry. */
static int update(ds_trainer *t) {
  int n = ds_trainer_update(t, 1);
  if (n == 0) {
    t->epoch++;
    ds_sampler_begin_epoch(&t->sampler, t->epoch);
    n = ds_trainer_update(t, 1);
  }
  return n;
}

static void throughput(const ds_backend *be, const ds_train_config *cfg, const ds_dataset *train,
                       const ds_dataset *test, long warmup, long steps, bench_result *r) {
  ds_trainer t;
  ds_trainer_init(&t, be, cfg, train, test);
  int cpu = strcmp(be->name, "cpu") == 0;
  gemm_floor g = {0};
  if (cpu) floor_init(&g, be, &t.model, cfg->batch_size);
  double *step_s = ds_xcalloc((size_t)steps, sizeof(double), "timings");
  double *gemm_s = ds_xcalloc((size_t)steps, sizeof(double), "timings");
  ds_sampler_begin_epoch(&t.sampler, 0);
  for (long i = 0; i < warmup; i++) {
    update(&t);
    if (cpu) floor_round(&g, cfg->batch_size);
  }
  be->synchronize();
  long samples = 0;
  double total = 0.0;
  long faults0 = page_faults();
  for (long i = 0; i < steps; i++) {
    double t0 = ds_now_seconds();
    samples += update(&t);
    be->synchronize();
    double t1 = ds_now_seconds();
    step_s[i] = t1 - t0;
    total += t1 - t0;
    if (cpu) {
      floor_round(&g, cfg->batch_size);
      gemm_s[i] = ds_now_seconds() - t1;
    }
  }
  r->faults_per_update = (double)(page_faults() - faults0) / (double)steps;
  int64_t rec[3];
  be->download(rec, t.d_nonfinite, sizeof rec);
  if (rec[0] >= 0) /* the timings stand, but of a run that diverged: say so */
    fprintf(stderr, "bench_train: note: batch %d: the gradient turned %s at update %lld; these timings are of a diverged run\n",
            cfg->batch_size, rec[2] == 1 ? "NaN" : "Inf", (long long)rec[0]);
  /* Each update against the GEMM round timed right after it: a machine shared
     with other work slows both alike, so the median of these paired ratios
     holds still where the ratio of two medians would not */
  double *paired = ds_xcalloc((size_t)steps, sizeof(double), "timings");
  for (long i = 0; cpu && i < steps; i++) paired[i] = step_s[i] / gemm_s[i];
  r->floor_ratio = cpu ? median(paired, steps) : 0.0; /* before median() sorts step_s and gemm_s */
  free(paired);
  r->samples_per_second = (double)samples / total;
  r->ms_per_step = 1e3 * total / (double)steps;
  r->ms_median = 1e3 * median(step_s, steps);
  r->gemm_ms = cpu ? 1e3 * median(gemm_s, steps) : 0.0;
#ifdef DS_HAVE_CBLAS
  if (cpu) {
    /* the same GEMMs on OpenBLAS's own threads, after the updates (its idle
       workers spin and would disturb them): shown beside the floor, not
       divided into it (a later stretch of a shared machine is not the same
       machine), so that a slow split of the GEMMs between the engine's
       threads would show */
    openblas_set_num_threads(gemm_cpu_threads()); /* the pool's count, on OpenBLAS's threads */
    floor_round_blas(&g, cfg->batch_size);
    for (long i = 0; i < steps; i++) {
      double t0 = ds_now_seconds();
      floor_round_blas(&g, cfg->batch_size);
      gemm_s[i] = ds_now_seconds() - t0;
    }
    openblas_set_num_threads(1); /* the engine's setting again */
    r->gemm_blas_ms = 1e3 * median(gemm_s, steps);
  }
#endif
  free(step_s);
  free(gemm_s);
  if (cpu) floor_free(&g, be);
  ds_trainer_free(&t);
}

static void time_to_target(const ds_backend *be, const ds_train_config *cfg, const ds_dataset *train,
                           const ds_dataset *test, double target, long max_epochs, bench_result *r) {
  ds_trainer t;
  ds_trainer_init(&t, be, cfg, train, test);
  double train_seconds = 0.0, loss = 0.0, acc = 0.0;
  r->seconds_to_target = -1.0;
  for (long e = 0; e < max_epochs; e++) {
    ds_sampler_begin_epoch(&t.sampler, e);
    be->synchronize();
    double t0 = ds_now_seconds();
    while (ds_trainer_update(&t, 1) > 0) {}
    be->synchronize();
    train_seconds += ds_now_seconds() - t0;
    t.epoch++;
    ds_trainer_evaluate(&t, t.test_images, t.test_labels, t.n_test, &loss, &acc);
    r->accuracy_reached = acc;
    r->epochs_to_target = e + 1;
    if (acc >= target) {
      r->seconds_to_target = train_seconds;
      break;
    }
  }
  ds_trainer_free(&t);
}

int main(int argc, char **argv) {
  ds_backend_cpu_blas_reexec(argv); /* as the descent binary: OpenBLAS's kernels for this CPU */
  ds_train_config cfg;
  ds_train_config_defaults(&cfg);
  cfg.quiet = 1;
  cfg.model.n_hidden = 2;
  cfg.model.hidden[0] = cfg.model.hidden[1] = 1024;
  cfg.model.batchnorm = 1;
  cfg.model.dropout = 0.2f;
  const char *backend = "cpu", *optimizer = "adam", *batches = "128,512,4096";
  long steps = 50, warmup = 5, max_epochs = 30;
  float target = 0.0f;
  int json = 0, no_bn = 0;
  ds_data_source src = {0};
  ds_flag flags[64] = {
    {"--backend", DS_FLAG_STRING, &backend, "cpu|cuda|auto", "where the steps run"},
    {"--data", DS_FLAG_STRING, &src.data_dir, "DIR", "IDX folder", .default_text = "Fashion-MNIST"},
    {"--hidden", DS_FLAG_CUSTOM, &cfg.model, "W1,W2,..", "hidden widths", .parse = ds_cli_parse_hidden, .default_text = "1024,1024"},
    {"--batch-size", DS_FLAG_STRING, &batches, "N[,N..]", "batch sizes, one case each"},
    {"--no-batchnorm", DS_FLAG_BOOL, &no_bn, NULL, "without BatchNorm (default: with)"},
    {"--dropout", DS_FLAG_FLOAT, &cfg.model.dropout, "P", "hidden dropout", "[0,1)"},
    {"--steps", DS_FLAG_LONG, &steps, "N", "timed updates per case", "[1,inf)"},
    {"--warmup-steps", DS_FLAG_LONG, &warmup, "N", "untimed updates first", "[0,inf)"},
    {"--target", DS_FLAG_FLOAT, &target, "A", "also time training to this test accuracy (0 = off)", "[0,1)"},
    {"--max-epochs", DS_FLAG_LONG, &max_epochs, "N", "give up on --target after N epochs", "[1,inf)"},
    {"--seed", DS_FLAG_U64, &cfg.seed, "S", "seed"},
    {"--tf32", DS_FLAG_BOOL, &cfg.tf32, NULL, "CUDA: TF32 tensor-core GEMMs (default: FP32)"},
    {"--json", DS_FLAG_BOOL, &json, NULL, "one JSON record per case instead of the Markdown table"},
  };
  int n = 0;
  while (flags[n].name) n++;
  n += ds_cli_optim_flags(flags + n, &cfg.optim, &optimizer);
  flags[n].name = NULL;
  ds_flags_parse("bench_train", flags, argc - 1, argv + 1, NULL, 0, "[flags]",
                 "Training throughput (samples/s, ms per step and per epoch) and time to a target test accuracy.");
  ds_cli_optim_resolve("bench_train", flags, &cfg.optim, optimizer);
  const ds_optim_config *resolved = &cfg.optim;
  ds_cli_optim_check_flags("bench_train", flags, &resolved, 1);
  if (no_bn) cfg.model.batchnorm = 0;
  if (cfg.optim.amsgrad) optimizer = "amsgrad"; /* the label of the records */
  { /* every batch size checked before anything is loaded, printed or run */
    char check[256];
    snprintf(check, sizeof check, "%s", batches);
    for (char *tok = strtok(check, ","); tok; tok = strtok(NULL, ",")) {
      long b;
      if (ds_parse_long(tok, &b) != 0 || b < 2 || b > 1000000)
        ds_fatal(DS_EXIT_USAGE, "bench_train: --batch-size: bad value '%s' (2 to 1000000)", tok);
    }
  }
  const ds_backend *be = ds_backend_select(backend, 0);
  ds_dataset train, test;
  ds_data_load(&src, &train, &test);

  if (!json) {
    printf("| backend | model | optimizer | batch | samples/s | ms/step | ms/epoch (60k) | GEMM floor ms | step / floor | OpenBLAS threads ms | page faults / update | s to target |\n");
    printf("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  }
  char list[256];
  snprintf(list, sizeof list, "%s", batches);
  for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
    long b;
    ds_parse_long(tok, &b); /* checked above */
    cfg.batch_size = (int)b;
    bench_result r = {0};
    throughput(be, &cfg, &train, &test, warmup, steps, &r);
    if (target > 0.0f) time_to_target(be, &cfg, &train, &test, target, max_epochs, &r);
    ds_mlp m;
    char err[128], desc[256];
    ds_mlp_layout(&m, &cfg.model, train.d, train.n_classes, err, sizeof err);
    ds_mlp_describe(&m, desc, sizeof desc);
    double ms_epoch = 60000.0 / r.samples_per_second * 1e3;
    if (json) {
      printf("{\"impl\":\"descent\",\"backend\":\"%s\",\"device\":\"%s\",\"model\":\"%s\",\"optimizer\":\"%s\","
             "\"tf32\":%d,\"batch_size\":%ld,\"steps\":%ld,\"samples_per_second\":%.1f,\"ms_per_step\":%.4f,"
             "\"ms_per_epoch\":%.1f",
             be->name, be->device, desc, optimizer, cfg.tf32, b, steps, r.samples_per_second, r.ms_per_step, ms_epoch);
      printf(",\"ms_per_step_median\":%.4f", r.ms_median);
      if (r.gemm_ms > 0.0)
        printf(",\"gemm_floor_ms\":%.4f,\"floor_ratio\":%.3f,\"gemm_pool_ms\":%.4f", r.gemm_ms,
               r.floor_ratio, r.gemm_ms); /* the floor is the engine's own round */
      if (r.gemm_blas_ms > 0.0) printf(",\"gemm_blas_threads_ms\":%.4f", r.gemm_blas_ms);
      printf(",\"page_faults_per_update\":%.2f", r.faults_per_update);
      if (target > 0.0f)
        printf(",\"target\":%.3f,\"seconds_to_target\":%.3f,\"epochs_to_target\":%ld,\"accuracy_reached\":%.4f",
               (double)target, r.seconds_to_target, r.epochs_to_target, r.accuracy_reached);
      printf("}\n");
    } else {
      char tt[64] = "-";
      if (target > 0.0f) {
        if (r.seconds_to_target >= 0) snprintf(tt, sizeof tt, "%.2f (%ld ep)", r.seconds_to_target, r.epochs_to_target);
        else snprintf(tt, sizeof tt, "not reached (%.4f)", r.accuracy_reached);
      }
      char fl[32] = "-", ratio[32] = "-", blas[32] = "-";
      if (r.gemm_ms > 0.0) {
        snprintf(fl, sizeof fl, "%.3f", r.gemm_ms);
        snprintf(ratio, sizeof ratio, "%.2fx", r.floor_ratio);
      }
      if (r.gemm_blas_ms > 0.0) snprintf(blas, sizeof blas, "%.3f", r.gemm_blas_ms);
      printf("| %s | %s | %s | %ld | %.0f | %.3f | %.0f | %s | %s | %s | %.2f | %s |\n", be->name, desc, optimizer, b,
             r.samples_per_second, r.ms_per_step, ms_epoch, fl, ratio, blas, r.faults_per_update, tt);
    }
    fflush(stdout);
  }
  ds_dataset_free(&train);
  ds_dataset_free(&test);
  return 0;
}
