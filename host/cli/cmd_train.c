/* `descent train`: parse flags, load data, build the trainer, run, report. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "descent/checkpoint.h"
#include "descent/common.h"
#include "descent/train.h"
#include "dist/dist.h"
#include "train/log.h"


/* The JSON keys of validation, early stopping and skipped updates. */
static const char *json_monitoring(char *buf, size_t len, const ds_train_config *cfg, const ds_train_result *r) {
  char a[32], b[32], c[32];
  int n = snprintf(buf, len, "\"skipped_steps\":%ld,", r->skipped);
  if (cfg->val_fraction > 0.0f)
    n += snprintf(buf + n, len - (size_t)n, "\"val_loss\":%s,\"val_accuracy\":%s,", ds_json_number(a, sizeof a, r->val_loss),
                  ds_json_number(b, sizeof b, r->val_accuracy));
  if (cfg->early_stop > 0) {
    if (r->best_step >= 0) snprintf(c, sizeof c, "%ld", r->best_step);
    else snprintf(c, sizeof c, "null");
    snprintf(buf + n, len - (size_t)n, "\"stopped_early\":%s,\"best_step\":%s,", r->stopped_early ? "true" : "false", c);
  }
  return buf;
}

/* "1 epoch", "2 epochs", "0.25 epochs" */
static const char *epochs_text(char *buf, size_t len, double epochs) {
  snprintf(buf, len, "%.4g epoch%s", epochs, epochs == 1.0 ? "" : "s");
  return buf;
}

static const char *train_summary =
    "Train a multilayer perceptron on an image-classification dataset (IDX files) and\n"
    "evaluate it on the test set after every epoch. A hidden layer is\n"
    "Linear -> [BatchNorm1d] -> activation -> [Dropout]; the loss is softmax cross-entropy.\n"
    "Progress and one line per log point go to stderr; --json prints one JSON object on stdout.";

int ds_cmd_train(int argc, char **argv) {
  ds_dist_init(); /* under mpirun: join the job (host/dist) */
  ds_train_config cfg;
  ds_train_config_defaults(&cfg);
  ds_data_source src = {0};
  const char *backend = "auto";
  const char *optimizer = "sgd";
  int device = 0, json = 0;
  const char *resume = NULL;

  ds_flag flags[96];
  int n = ds_cli_data_flags(flags, &src);
  n += ds_cli_model_flags(flags + n, &cfg);
  n += ds_cli_optim_flags(flags + n, &cfg.optim, &optimizer);
  ds_flag loop[] = {
    {"--epochs", DS_FLAG_LONG, &cfg.epochs, "N", "passes over the training set", "[0,1e9]", .group = "Training loop"},
    {"--steps", DS_FLAG_LONG, &cfg.steps, "N", "stop after N updates instead (0 = use --epochs)", "[0,inf)"},
    {"--batch-size", DS_FLAG_CUSTOM, &cfg.batch_size, "N|full", "samples per batch; 1 = pure SGD, full = batch gradient descent", .parse = ds_cli_parse_batch, .default_text = "64"},
    {"--sampling", DS_FLAG_CHOICE, &cfg.sampling, NULL, "shuffle each epoch, draw with replacement, or keep file order", .choices = ds_cli_samplings},
    {"--drop-last", DS_FLAG_BOOL, &cfg.drop_last, NULL, "drop the last, smaller batch of an epoch"},
    {"--accum", DS_FLAG_INT, &cfg.accum, "K", "average the gradients of K batches per update", "[1,inf)"},
    {"--seed", DS_FLAG_U64, &cfg.seed, "S", "seed of init, shuffling and dropout"},
    {"--eval-batch", DS_FLAG_INT, &cfg.eval_batch, "N", "rows per evaluation batch", "[1,inf)"},
    {"--classes", DS_FLAG_INT, &src.classes, "N", "the class count (labels 0..N-1); default: the largest label + 1, every class up to it present", "[2,256]", .default_text = "from the labels"},
    {"--backend", DS_FLAG_STRING, &backend, "auto|cpu|cuda", "where the math runs (auto: CUDA when a GPU is present)", .group = "Run"},
    {"--device", DS_FLAG_INT, &device, "N", "CUDA device index", "[0,inf)"},
    {"--tf32", DS_FLAG_BOOL, &cfg.tf32, NULL, "CUDA: TF32 tensor-core GEMMs (10-bit mantissa inputs; default full FP32)"},
    {"--deterministic", DS_FLAG_BOOL, &cfg.deterministic, NULL, "bit-identical runs for the same flags, GPU model and library versions; both backends always give them (see README, Determinism)"},
    {"--no-graph", DS_FLAG_BOOL, &cfg.no_graph, NULL, "CUDA: run every op eagerly instead of replaying the training step as one captured CUDA graph (debugging)"},
    {"--sync-bn", DS_FLAG_BOOL, &cfg.sync_bn, NULL, "under mpirun: BatchNorm statistics of the whole global batch (all-reduced), not of each process's slice"},
    {"--json", DS_FLAG_BOOL, &json, NULL, "print one JSON object with the results as the last line of stdout"},
    {"--quiet", DS_FLAG_BOOL, &cfg.quiet, NULL, "nothing on stderr but errors: no progress bar, log-point lines, warnings or notes"},
    {"--save", DS_FLAG_STRING, &cfg.save_path, "FILE", "write a checkpoint at the end (atomically: FILE.tmp, then rename)", .group = "Checkpoints"},
    {"--save-every", DS_FLAG_LONG, &cfg.save_every, "N", "also write it every N epochs (0 = only at the end)", "[0,inf)"},
    {"--resume", DS_FLAG_STRING, &resume, "FILE", "continue a run from its checkpoint, inside an epoch too (--epochs/--steps count from the run's start; a setting that changes the stored state is refused)"},
    {"--log", DS_FLAG_STRING, &cfg.log_path, "FILE.csv|FILE.jsonl", "one row per log point: losses, accuracies, lr, samples/s, per-layer gradient norms, update ratios, activation statistics, warnings", .group = "Monitoring"},
    {"--log-every", DS_FLAG_LONG, &cfg.log_every, "N", "a log point (evaluation, log row, stderr line) every N updates (0 = at the end of each epoch)", "[0,inf)"},
    {"--val-fraction", DS_FLAG_FLOAT, &cfg.val_fraction, "F", "hold out F of the training set (seeded shuffle) for validation: val_loss, val_accuracy", "[0,1)"},
    {"--early-stop", DS_FLAG_INT, &cfg.early_stop, "P", "stop when val_loss has not improved for P log points; keep (and --save) the best state (needs --val-fraction)", "[0,inf)"},
    {"--on-nonfinite", DS_FLAG_CHOICE, &cfg.on_nonfinite, NULL, "a NaN/Inf loss or gradient: stop (exit 1 naming the update and layer) or skip the update", .choices = ds_cli_nonfinite_modes},
    {NULL},
  };
  memcpy(flags + n, loop, sizeof loop);
  ds_flags_parse("train", flags, argc, argv, NULL, 0, "[flags]", train_summary);
  ds_set_quiet(cfg.quiet);
  ds_cli_optim_resolve("train", flags, &cfg.optim, optimizer);
  const ds_optim_config *resolved = &cfg.optim;
  ds_cli_optim_check_flags("train", flags, &resolved, 1);
  ds_dist_train_setup(&cfg, &src, backend, resume, optimizer, &json, &device); /* several processes: checks, rank 0 writes */
  if (cfg.save_every > 0 && !cfg.save_path) ds_fatal(DS_EXIT_USAGE, "train: --save-every: needs --save FILE");
  /* the outputs now, before the data loads and any update runs */
  char err[1024];
  int code;
  if (cfg.log_path && ds_log_check(cfg.log_path, &code, err, sizeof err) != 0) ds_fatal(code, "train: %s", err);
  if (cfg.save_path && ds_dist_writes() && (code = ds_output_check("--save", cfg.save_path, err, sizeof err)) != 0)
    ds_fatal(code, "train: %s", err);
  if (cfg.log_path && cfg.save_path && ds_same_output(cfg.log_path, cfg.save_path))
    ds_fatal(DS_EXIT_USAGE, "train: --log %s and --save %s name the same file", cfg.log_path, cfg.save_path);
  if (cfg.early_stop > 0 && cfg.val_fraction <= 0.0f)
    ds_fatal(DS_EXIT_USAGE, "train: --early-stop: needs --val-fraction F (stopping on the test set would leak it into training)");
  if (strcmp(backend, "auto") && strcmp(backend, "cpu") && strcmp(backend, "cuda"))
    ds_fatal(DS_EXIT_USAGE, "train: --backend: expected auto, cpu or cuda, got '%s'", backend);

  if (cfg.epochs == 0 && cfg.steps == 0 && !resume)
    ds_note("--epochs 0: nothing is trained; the initial model is evaluated");
  const ds_backend *be = ds_backend_select(backend, device);
  ds_dist_use_backend(be);
  if (cfg.tf32 && !be->set_tf32 && !cfg.quiet) ds_note("--tf32 has no effect on the %s backend (FP32 throughout)", be->name);
  ds_dataset train, test;
  ds_data_load(&src, &train, &test);
  ds_trainer t;
  ds_trainer_init(&t, be, &cfg, &train, &test);
  if (resume) {
    ds_checkpoint_resume_or_die(&t, resume);
    int done = cfg.steps > 0 ? t.step >= cfg.steps : t.epoch >= cfg.epochs;
    if (done && !cfg.quiet)
      ds_note("--resume %s: nothing left to do: the checkpoint is after %ld updates (epoch %ld) and %s %ld asks for "
              "no more (it counts from the start of the run); evaluating it as it is", resume, t.step, t.epoch,
              cfg.steps > 0 ? "--steps" : "--epochs", cfg.steps > 0 ? cfg.steps : cfg.epochs);
  }
  if (!cfg.quiet) {
    char desc[256];
    ds_mlp_describe(&t.model, desc, sizeof desc);
    char val[48] = "";
    if (t.n_val > 0) snprintf(val, sizeof val, " / %d validation", t.n_val);
    fprintf(stderr, "descent: %s on %s; %d train%s / %d test samples; %s lr %g, batch %d\n", desc, be->device,
            t.n_train, val, test.n, optimizer, (double)cfg.optim.lr, t.sampler.batch_size);
  }
  ds_train_result r;
  ds_train_run(&t, &r);
  if (r.interrupted)
    fprintf(stderr, "descent: interrupted after update %ld%s%s\n", r.steps, cfg.save_path ? "; checkpoint written to " : "",
            cfg.save_path ? cfg.save_path : "");
  if (r.skipped > 0 && !cfg.quiet) ds_note("--on-nonfinite skip: skipped %ld of %ld updates", r.skipped, r.steps);
  char ep[48], eval_ep[48];
  epochs_text(ep, sizeof ep, r.epochs);
  epochs_text(eval_ep, sizeof eval_ep, r.eval_epochs);
  if (json) {
    char tl[32], ta[32], vl[32], va[32], extra[256];
    printf("{\"backend\":\"%s\",\"device\":\"%s\",\"optimizer\":\"%s\",\"params\":%zu,\"epochs\":%.6g,"
           "\"steps\":%ld,\"batch_size\":%d,\"train_loss\":%s,\"train_accuracy\":%s,"
           "\"test_loss\":%s,\"test_accuracy\":%s,\"eval_step\":%ld,\"eval_epochs\":%.6g,%s\"graph_updates\":%ld,"
           "\"interrupted\":%s,\"seconds\":%.3f,\"samples_per_second\":%.1f}\n",
           be->name, be->device, optimizer, t.model.n_params, r.epochs, r.steps, t.sampler.batch_size,
           ds_json_number(tl, sizeof tl, r.train_loss), ds_json_number(ta, sizeof ta, r.train_accuracy),
           ds_json_number(vl, sizeof vl, r.test_loss), ds_json_number(va, sizeof va, r.test_accuracy), r.eval_step,
           r.eval_epochs, json_monitoring(extra, sizeof extra, &cfg, &r), t.graph_replays,
           r.interrupted ? "true" : "false", r.seconds, r.samples_per_second);
  } else if (!r.interrupted && ds_dist_writes()) {
    char state[128] = "";
    if (r.eval_step != r.steps)
      snprintf(state, sizeof state, "; the figures are of the state after update %ld (%s)", r.eval_step, eval_ep);
    char a[32], l[32];
    printf("test_accuracy %s  test_loss %s  (%s, %ld update%s, %.1f s%s)\n", ds_format_number(a, sizeof a, r.test_accuracy),
           ds_format_number(l, sizeof l, r.test_loss), ep, r.steps, r.steps == 1 ? "" : "s", r.seconds, state);
  }
  if (fflush(stdout) != 0) ds_fatal(DS_EXIT_RUNTIME, "cannot write to standard output");
  ds_dist_dump_params(be, t.params, t.model.n_params);
  ds_trainer_free(&t);
  ds_dataset_free(&train);
  ds_dataset_free(&test);
  ds_dist_finalize(cfg.quiet);
  return r.interrupted ? DS_EXIT_INTERRUPTED : DS_EXIT_OK;
}
