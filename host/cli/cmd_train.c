/* `descent train`: parse flags, load data, build the trainer, run, report. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/presets.h"
#include "descent/checkpoint.h"
#include "descent/common.h"
#include "descent/interop.h"
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

/* --eval-every N | Kepochs: cfg.log_every (updates) or cfg.log_every_epochs */
static int parse_eval_every(const char *value, void *ptr, char *err, size_t errlen) {
  ds_train_config *c = ptr;
  char num[32];
  size_t n = strspn(value, "0123456789");
  const char *unit = value + n;
  long v;
  if (n == 0 || n >= sizeof num) goto bad;
  memcpy(num, value, n);
  num[n] = '\0';
  if (ds_parse_long(num, &v) != 0 || v < 1 || v > 1000000000L) goto bad;
  if (*unit == '\0') {
    c->log_every = v, c->log_every_epochs = 0;
    return 0;
  }
  if (strcmp(unit, "epoch") == 0 || strcmp(unit, "epochs") == 0) {
    c->log_every = 0, c->log_every_epochs = v;
    return 0;
  }
bad:
  snprintf(err, errlen, "expected N (updates) or Nepochs (for example 100 or 2epochs)");
  return -1;
}

static void format_eval_every(const void *ptr, char *buf, size_t len) {
  const ds_train_config *c = ptr;
  if (c->log_every > 0) snprintf(buf, len, "%ld", c->log_every);
  else snprintf(buf, len, "%ldepoch%s", c->log_every_epochs > 0 ? c->log_every_epochs : 1, c->log_every_epochs > 1 ? "s" : "");
}

/* The data's name for the JSON's "problem": --dataset, the --data folder, or the training images' file. */
static void dataset_label(const ds_data_source *src, char *buf, size_t len) {
  const char *s = src->dataset ? src->dataset : src->data_dir ? src->data_dir : src->train_images ? src->train_images
                                                                                                  : "fashion-mnist";
  if (src->dataset || (!src->data_dir && !src->train_images)) {
    snprintf(buf, len, "%s", s);
    return;
  }
  size_t n = strlen(s);
  while (n > 1 && s[n - 1] == '/') n--; /* "dir/" names dir */
  size_t b = n;
  while (b > 0 && s[b - 1] != '/') b--;
  /* "t10k-images-idx3-ubyte.gz" names t10k */
  static const char *const suffixes[] = {".gz", "-images-idx3-ubyte", "-images.idx3-ubyte"};
  for (int i = 0; i < 3; i++) {
    size_t k = strlen(suffixes[i]);
    if (n - b > k && strncmp(s + n - k, suffixes[i], k) == 0) n -= k;
  }
  snprintf(buf, len, "%.*s", (int)(n - b), s + b);
}

/* "fashion-mnist/784-256-128-10", or the preset's name */
static void problem_label(const char *preset, const ds_data_source *src, const ds_mlp *m, char *buf, size_t len) {
  if (preset) {
    snprintf(buf, len, "%s", preset);
    return;
  }
  char data[128];
  dataset_label(src, data, sizeof data);
  size_t n = (size_t)snprintf(buf, len, "%s/%d", data, m->n_inputs);
  for (int l = 0; l < m->n_layers && n < len; l++) n += (size_t)snprintf(buf + n, len - n, "-%d", m->layers[l].out);
}

/* The flags that say where output goes, not what is trained: left out of "config". */
static const char *const not_config[] = {"--json", "--quiet", "--save", "--save-every", "--resume", "--log",
                                         "--dry-run", NULL};

static void print_curve(const ds_train_result *r) {
  char a[32], b[32], c[32], d[32], e[32], f[32], g[32], h[32], l[32];
  fputs("[", stdout);
  for (long i = 0; i < r->n_curve; i++) {
    const ds_eval_point *p = &r->curve[i];
    printf("%s{\"step\":%ld,\"epoch\":%s,\"lr\":%s,\"train_seconds\":%s,\"train_loss\":%s,\"train_accuracy\":%s,"
           "\"val_loss\":%s,\"val_accuracy\":%s,\"test_loss\":%s,\"test_accuracy\":%s}",
           i ? "," : "", p->step, ds_json_number(a, sizeof a, p->epoch), ds_json_float(l, sizeof l, (float)p->lr),
           ds_json_number(b, sizeof b, p->train_seconds), ds_json_number(c, sizeof c, p->train_loss),
           ds_json_number(d, sizeof d, p->train_accuracy), ds_json_number(e, sizeof e, p->val_loss),
           ds_json_number(f, sizeof f, p->val_accuracy), ds_json_number(g, sizeof g, p->test_loss),
           ds_json_number(h, sizeof h, p->test_accuracy));
  }
  fputs("]", stdout);
}

/* The time-to-target part of the JSON (AlgoPerf's protocol). */
static void print_timing(const ds_train_config *cfg, const ds_trainer *t, const ds_train_result *r, const char *stopped) {
  char a[32], b[32], c[32], d[32];
  if (cfg->target_accuracy > 0.0)
    printf("\"target\":{\"metric\":\"%s\",\"value\":%s},", t->n_val > 0 ? "val_accuracy" : "test_accuracy",
           ds_json_number(a, sizeof a, cfg->target_accuracy));
  else
    printf("\"target\":null,");
  if (r->steps_to_target >= 0) snprintf(d, sizeof d, "%ld", r->steps_to_target);
  else snprintf(d, sizeof d, "null");
  printf("\"train_seconds\":%s,\"eval_seconds\":%s,\"time_to_target\":%s,\"steps_to_target\":%s,\"stopped\":\"%s\",",
         ds_json_number(a, sizeof a, r->train_seconds), ds_json_number(b, sizeof b, r->eval_seconds),
         ds_json_number(c, sizeof c, r->time_to_target), d, stopped ? stopped : r->stopped ? r->stopped : "error");
}

/* What --json prints, at the end or from ds_fatal's hook. */
typedef struct {
  const ds_flag *flags;
  const ds_train_config *cfg;
  const ds_trainer *t;
  const ds_train_result *r;
  const ds_data_source *src;
  const char *preset, *optimizer;
} json_run;

static const json_run *json_now;

/* One JSON object on stdout: the results, or with error set the figures of
 * the last log point, "stopped" "diverged" or "error", and the message. */
static void print_json(const char *error, int exit_code) {
  const json_run *j = json_now;
  const ds_train_config *cfg = j->cfg;
  const ds_trainer *t = j->t;
  const ds_train_result *r = j->r;
  char tl[32], ta[32], vl[32], va[32], extra[256], problem[256], pj[300], msg[2100];
  problem_label(j->preset, j->src, &t->model, problem, sizeof problem);
  printf("{\"problem\":%s,\"config\":", ds_json_string(pj, sizeof pj, problem));
  ds_flags_json(stdout, j->flags, not_config);
  printf(",");
  print_timing(cfg, t, r, error ? (strncmp(error, "training diverged", 17) == 0 ? "diverged" : "error") : NULL);
  printf("\"curve\":");
  print_curve(r);
  if (error) printf(",\"error\":%s,\"exit_code\":%d", ds_json_string(msg, sizeof msg, error), exit_code);
  printf(",\"backend\":\"%s\",\"device\":\"%s\",\"optimizer\":\"%s\",\"params\":%zu,\"epochs\":%.6g,"
         "\"steps\":%ld,\"batch_size\":%d,\"train_loss\":%s,\"train_accuracy\":%s,"
         "\"test_loss\":%s,\"test_accuracy\":%s,\"eval_step\":%ld,\"eval_epochs\":%.6g,%s\"graph_updates\":%ld,"
         "\"interrupted\":%s,\"seconds\":%.3f,\"samples_per_second\":%.1f}\n",
         t->be->name, t->be->device, j->optimizer, t->model.n_params, r->epochs, r->steps, t->sampler.batch_size,
         ds_json_number(tl, sizeof tl, r->train_loss), ds_json_number(ta, sizeof ta, r->train_accuracy),
         ds_json_number(vl, sizeof vl, r->test_loss), ds_json_number(va, sizeof va, r->test_accuracy), r->eval_step,
         r->eval_epochs, json_monitoring(extra, sizeof extra, cfg, r), t->graph_replays,
         r->interrupted ? "true" : "false", r->seconds, r->samples_per_second);
}

static void json_on_fatal(int code, const char *message) {
  print_json(message, code);
  fflush(stdout);
}

int ds_cmd_train(int argc_given, char **argv_given) {
  ds_dist_init(); /* under mpirun: join the job (host/dist) */
  /* --preset NAME: its flags first, the user's after them (and instead of them) */
  const char *preset_name = ds_preset_scan(argc_given, argv_given);
  const ds_preset *preset = NULL;
  int argc = argc_given;
  char **argv = argv_given, *expanded[512];
  if (preset_name) {
    preset = ds_preset_find(preset_name);
    if (!preset)
      ds_fatal(DS_EXIT_USAGE, "train: --preset: unknown preset '%s' (expected %s)", preset_name, ds_preset_names());
    argc = ds_preset_expand(preset, argc_given, argv_given, expanded, (int)(sizeof expanded / sizeof expanded[0]));
    argv = expanded;
  }
  ds_train_config cfg;
  ds_train_config_defaults(&cfg);
  ds_data_source src = {0};
  const char *backend = "auto";
  const char *optimizer = "sgd";
  int device = 0, json = 0, dry_run = 0;
  const char *resume = NULL, *init_from = NULL;

  ds_flag flags[96];
  int n = ds_cli_data_flags(flags, &src);
  n += ds_cli_model_flags(flags + n, &cfg);
  n += ds_cli_optim_flags(flags + n, &cfg.optim, &optimizer);
  ds_flag loop[] = {
    {"--epochs", DS_FLAG_LONG, &cfg.epochs, "N", "passes over the training set", "[0,1e9]", .group = "Training loop"},
    {"--steps", DS_FLAG_LONG, &cfg.steps, "N", "stop after N updates instead (0 = use --epochs)", "[0,inf)"},
    {"--batch-size", DS_FLAG_CUSTOM, &cfg.batch_size, "N|full", "samples per batch; 1 = pure SGD, full = batch gradient descent", .parse = ds_cli_parse_batch, .format = ds_cli_format_batch, .default_text = "64"},
    {"--sampling", DS_FLAG_CHOICE, &cfg.sampling, NULL, "shuffle each epoch, draw with replacement, or keep file order", .choices = ds_cli_samplings},
    {"--drop-last", DS_FLAG_BOOL, &cfg.drop_last, NULL, "drop the last, smaller batch of an epoch"},
    {"--accum", DS_FLAG_INT, &cfg.accum, "K", "average the gradients of K batches per update", "[1,inf)"},
    {"--seed", DS_FLAG_U64, &cfg.seed, "S", "seed of init, data order (and validation split) and dropout"},
    {"--init-seed", DS_FLAG_U64, &cfg.init_seed, "S", "seed of the parameter initialisation only", .default_text = "--seed"},
    {"--data-seed", DS_FLAG_U64, &cfg.data_seed, "S", "seed of the batch order and the validation split only", .default_text = "--seed"},
    {"--dropout-seed", DS_FLAG_U64, &cfg.dropout_seed, "S", "seed of the dropout masks only", .default_text = "--seed"},
    {"--preset", DS_FLAG_STRING, &preset_name, "NAME", "a benchmark's test problem as defaults (flags given win): deepobs-fmnist-mlp, deepobs-mnist-mlp, algoperf-mnist (README, Benchmarking optimizers)"},
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
    {"--init-from", DS_FLAG_STRING, &init_from, "FILE.safetensors", "start from these weights and BatchNorm statistics (descent export, or a torch.nn.Sequential state_dict); every name, shape and dtype must match the model the flags describe"},
    {"--resume", DS_FLAG_STRING, &resume, "FILE", "continue a run from its checkpoint, inside an epoch too (--epochs/--steps count from the run's start; a setting that changes the stored state is refused)"},
    {"--log", DS_FLAG_STRING, &cfg.log_path, "FILE.csv|FILE.jsonl", "one row per log point: losses, accuracies, lr, samples/s, per-layer gradient norms, update ratios, activation statistics, warnings", .group = "Monitoring"},
    {"--log-every", DS_FLAG_LONG, &cfg.log_every, "N", "a log point (evaluation, log row, stderr line) every N updates (0 = at the end of each epoch)", "[0,inf)"},
    {"--val-fraction", DS_FLAG_FLOAT, &cfg.val_fraction, "F", "hold out F of the training set (seeded shuffle) for validation: val_loss, val_accuracy", "[0,1)"},
    {"--early-stop", DS_FLAG_INT, &cfg.early_stop, "P", "stop when val_loss has not improved for P log points; keep (and --save) the best state (needs --val-fraction)", "[0,inf)"},
    {"--on-nonfinite", DS_FLAG_CHOICE, &cfg.on_nonfinite, NULL, "a NaN/Inf loss or gradient: stop (exit 1 naming the update and layer) or skip the update", .choices = ds_cli_nonfinite_modes},
    {"--eval-every", DS_FLAG_CUSTOM, &cfg, "N|Kepochs", "evaluate (a log point) every N updates or every K epochs; its time is left out of the training clock", .parse = parse_eval_every, .format = format_eval_every, .default_text = "1epoch", .group = "Time to target"},
    {"--target-accuracy", DS_FLAG_DOUBLE, &cfg.target_accuracy, "A", "stop at the first evaluation whose accuracy (validation with --val-fraction, else test) reaches A; the JSON gives time_to_target and steps_to_target", "(0,1]", .default_text = "off"},
    {"--max-seconds", DS_FLAG_DOUBLE, &cfg.max_seconds, "S", "stop when the training clock (evaluation excluded) reaches S seconds", "(0,inf)", .default_text = "off"},
    {"--dry-run", DS_FLAG_BOOL, &dry_run, NULL, "check every flag, output and input file (that it opens; it is not read), print the effective configuration as JSON and exit"},
    {NULL},
  };
  memcpy(flags + n, loop, sizeof loop);
  ds_flags_parse("train", flags, argc, argv, NULL, 0, "[flags]", train_summary);
  if (ds_flag_given(flags, "--eval-every") && ds_flag_given(flags, "--log-every"))
    ds_fatal(DS_EXIT_USAGE, "train: --eval-every and --log-every set the same thing (a log point is an evaluation); give one");
  /* the effective seeds, so that the JSON says them */
  if (!ds_flag_given(flags, "--init-seed")) cfg.init_seed = cfg.seed;
  if (!ds_flag_given(flags, "--data-seed")) cfg.data_seed = cfg.seed;
  if (!ds_flag_given(flags, "--dropout-seed")) cfg.dropout_seed = cfg.seed;
  if (cfg.standardize && cfg.norm_std > 0.0f)
    ds_fatal(DS_EXIT_USAGE, "train: --standardize and --normalize both set the input scaling; give one");
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

  if (dry_run) { /* the effective configuration, as a sweep records it */
    ds_data_check(&src); /* the files open (not read) */
    if (strcmp(backend, "cuda") == 0 && !ds_cuda_compiled())
      ds_fatal(DS_EXIT_NOGPU, "train: --backend cuda: this descent was built without CUDA (rebuild where nvcc is found)");
    if (init_from) {
      FILE *f = fopen(init_from, "rb");
      if (!f) ds_fatal(DS_EXIT_USAGE, "train: --init-from %s: cannot open: %s", init_from, strerror(errno));
      fclose(f);
    }
    if (ds_flags_json(stdout, flags, not_config) != 0 || putchar('\n') == EOF || fflush(stdout) != 0)
      ds_fatal(DS_EXIT_RUNTIME, "cannot write to standard output");
    return DS_EXIT_OK;
  }
  if (cfg.epochs == 0 && cfg.steps == 0 && !resume)
    ds_note("--epochs 0: nothing is trained; the initial model is evaluated");
  const ds_backend *be = ds_backend_select(backend, device);
  ds_dist_use_backend(be);
  if (cfg.tf32 && !be->set_tf32 && !cfg.quiet) ds_note("--tf32 has no effect on the %s backend (FP32 throughout)", be->name);
  ds_dataset train, test;
  ds_data_load(&src, &train, &test);
  ds_trainer t;
  ds_trainer_init(&t, be, &cfg, &train, &test);
  if (init_from) ds_init_from_or_die(&t, init_from, resume != NULL);
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
  memset(&r, 0, sizeof r);
  json_run jr = {flags, &cfg, &t, &r, &src, preset ? preset->name : NULL, optimizer};
  if (json) { /* a run that fails (it diverged, a write failed) still prints what it has */
    json_now = &jr;
    ds_set_fatal_hook(json_on_fatal);
  }
  ds_train_run(&t, &r);
  ds_set_fatal_hook(NULL);
  if (r.interrupted)
    fprintf(stderr, "descent: interrupted after update %ld%s%s\n", r.steps, cfg.save_path ? "; checkpoint written to " : "",
            cfg.save_path ? cfg.save_path : "");
  if (r.skipped > 0 && !cfg.quiet) ds_note("--on-nonfinite skip: skipped %ld of %ld updates", r.skipped, r.steps);
  char ep[48], eval_ep[48];
  epochs_text(ep, sizeof ep, r.epochs);
  epochs_text(eval_ep, sizeof eval_ep, r.eval_epochs);
  if (json) {
    print_json(NULL, DS_EXIT_OK);
  } else if (!r.interrupted && ds_dist_writes()) {
    if (strcmp(r.stopped, "target") == 0 && !cfg.quiet) {
      char v[32];
      fprintf(stderr, "descent: stopped at the target: %s %s >= %s at update %ld, after %.2f s of training "
              "(evaluation excluded)\n", t.n_val > 0 ? "val_accuracy" : "test_accuracy",
              ds_format_number(v, sizeof v, t.n_val > 0 ? r.val_accuracy : r.test_accuracy), "--target-accuracy",
              r.steps_to_target, r.time_to_target);
    } else if (strcmp(r.stopped, "max_seconds") == 0 && !cfg.quiet) {
      fprintf(stderr, "descent: stopped at --max-seconds: %.2f s of training (evaluation excluded) after update %ld\n",
              r.train_seconds, r.steps);
    } else if (cfg.target_accuracy > 0.0 && !cfg.quiet) {
      fprintf(stderr, "descent: the target (--target-accuracy %g) was not reached\n", cfg.target_accuracy);
    }
    char state[128] = "";
    if (r.eval_step != r.steps)
      snprintf(state, sizeof state, "; the figures are of the state after update %ld (%s)", r.eval_step, eval_ep);
    char a[32], l[32];
    printf("test_accuracy %s  test_loss %s  (%s, %ld update%s, %.1f s%s)\n", ds_format_number(a, sizeof a, r.test_accuracy),
           ds_format_number(l, sizeof l, r.test_loss), ep, r.steps, r.steps == 1 ? "" : "s", r.seconds, state);
  }
  if (fflush(stdout) != 0) ds_fatal(DS_EXIT_RUNTIME, "cannot write to standard output");
  ds_dist_dump_params(be, t.params, t.model.n_params);
  ds_train_result_free(&r);
  ds_trainer_free(&t);
  ds_dataset_free(&train);
  ds_dataset_free(&test);
  ds_dist_finalize(cfg.quiet);
  return r.interrupted ? DS_EXIT_INTERRUPTED : DS_EXIT_OK;
}
