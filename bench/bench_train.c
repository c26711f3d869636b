/* bench_train — training throughput and time to accuracy.
 *
 * One case = model + optimizer + batch size on a backend. Throughput: after
 * --warmup updates, --steps updates are timed (the backend is synchronised
 * before the clock stops); samples/s, ms per step and ms per 60,000-sample
 * epoch follow. With --target A, training then continues epoch by epoch from
 * a fresh model until the test accuracy reaches A; the training wall time to
 * get there (evaluation excluded) is reported. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "descent/common.h"
#include "descent/train.h"
#include "cli/flags.h"

typedef struct {
  double samples_per_second, ms_per_step, seconds_to_target, accuracy_reached;
  long epochs_to_target;
} bench_result;

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
  ds_sampler_begin_epoch(&t.sampler, 0);
  for (long i = 0; i < warmup; i++) update(&t);
  be->synchronize();
  long samples = 0;
  double t0 = ds_now_seconds();
  for (long i = 0; i < steps; i++) samples += update(&t);
  be->synchronize();
  double dt = ds_now_seconds() - t0;
  r->samples_per_second = (double)samples / dt;
  r->ms_per_step = 1e3 * dt / (double)steps;
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
  const ds_backend *be = ds_backend_select(backend, 0);
  ds_dataset train, test;
  ds_data_load(&src, &train, &test);

  if (!json) {
    printf("| backend | model | optimizer | batch | samples/s | ms/step | ms/epoch (60k) | s to target |\n");
    printf("|---|---|---|---:|---:|---:|---:|---:|\n");
  }
  char list[256];
  snprintf(list, sizeof list, "%s", batches);
  for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
    long b;
    if (ds_parse_long(tok, &b) != 0 || b < 2) ds_fatal(DS_EXIT_USAGE, "bench_train: --batch-size: bad value '%s'", tok);
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
      printf("| %s | %s | %s | %ld | %.0f | %.3f | %.0f | %s |\n", be->name, desc, optimizer, b,
             r.samples_per_second, r.ms_per_step, ms_epoch, tt);
    }
    fflush(stdout);
  }
  ds_dataset_free(&train);
  ds_dataset_free(&test);
  return 0;
}
