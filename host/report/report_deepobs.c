/* DeepOBS's result layout, so that DeepOBS's analyzer (deepobs.analyzer)
 * reads a descent sweep: DIR/deepobs/<testproblem>/<optimizer>/<setting>/
 * random_seed__<N>__<stamp>.json, the setting folder named as DeepOBS's
 * runner names it (num_epochs__E__batch_size__B[__weight_decay__W] then each
 * hyperparameter "__name__value", sorted, floats as "1.e-03"), per-epoch
 * lists from the evaluations at epoch ends (epoch 0 too when the curve has
 * it). Failed and diverged trials are left out (DeepOBS averages the lists
 * of every run in a folder, and a null would break its means). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "descent/common.h"
#include "report/report_model.h"

/* DeepOBS's float2str: "{:.10e}" with the mantissa's trailing zeros cut. */
static void float2str(char *out, size_t len, double v) {
  char b[64];
  snprintf(b, sizeof b, "%.10e", v);
  char *e = strchr(b, 'e');
  if (!e) {
    snprintf(out, len, "%s", b);
    return;
  }
  size_t m = (size_t)(e - b);
  while (m > 0 && b[m - 1] == '0') m--;
  snprintf(out, len, "%.*s%s", (int)m, b, e);
}

static void clean(char *out, size_t len, const char *s, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n && s[i] && k + 1 < len; i++) {
    char c = s[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    out[k++] = ok ? c : '-';
  }
  out[k] = '\0';
}

/* "fashion-mnist/784-1000-500-100-10" -> "fmnist_mlp" (DeepOBS's names for
 * its MLP); other problems keep their dataset and architecture: "mnist_784-256-10". */
static void testproblem(char *out, size_t len, const char *problem) {
  if (len > 201) len = 201; /* a folder name: well inside NAME_MAX */
  const char *slash = strchr(problem, '/');
  char ds[128], arch[128];
  if (!slash) {
    clean(out, len, problem, strlen(problem));
    return;
  }
  clean(ds, sizeof ds, problem, (size_t)(slash - problem));
  clean(arch, sizeof arch, slash + 1, strlen(slash + 1));
  if (strcmp(ds, "fashion-mnist") == 0) snprintf(ds, sizeof ds, "fmnist");
  if (strcmp(arch, "784-1000-500-100-10") == 0) snprintf(arch, sizeof arch, "mlp");
  size_t nd = strlen(ds);
  if (nd + 1 >= len) nd = len - 2;
  snprintf(out, len, "%.*s_", (int)nd, ds);
  snprintf(out + nd + 1, len - nd - 1, "%.*s", (int)(len - nd - 2), arch);
}

static int mkdir_one(const char *path, char *err, size_t errlen) {
  struct stat st;
  if (mkdir(path, 0777) == 0 || (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))) return 0;
  snprintf(err, errlen, "--format deepobs: cannot create the folder %s: %s", path,
           errno == EEXIST ? "a file of that name is in the way" : strerror(errno));
  return -1;
}

typedef struct {
  const ds_rep_trial *t;
  const char *tp;
  const ds_rep_eval **ep; /* the evaluation at each epoch end, 0..E (NULL: none) */
  int first, last;
} run_ctx;

static void list(FILE *f, const char *key, const run_ctx *c, int which) {
  char b[64];
  fprintf(f, ",\"%s\":[", key);
  for (int e = c->first, k = 0; e <= c->last; e++) {
    if (!c->ep[e]) continue;
    const ds_rep_eval *v = c->ep[e];
    double x = which == 0 ? v->train_loss : which == 1 ? v->val_loss : which == 2 ? v->test_loss
             : which == 3 ? v->train_accuracy : which == 4 ? v->val_accuracy : v->test_accuracy;
    fprintf(f, "%s%s", k++ ? "," : "", ds_json_number(b, sizeof b, x));
  }
  fputc(']', f);
}

static int draw_run(FILE *f, const void *vctx) {
  const run_ctx *c = vctx;
  const ds_rep_trial *t = c->t;
  char b[512];
  int n = 0, has_val = 0;
  for (int e = c->first; e <= c->last; e++)
    if (c->ep[e]) n++, has_val |= isfinite(c->ep[e]->val_loss);
  int num_epochs = c->ep[0] ? n - 1 : n;
  fprintf(f, "{\"testproblem\":%s", ds_json_string(b, sizeof b, c->tp));
  if (t->batch_size > 0) fprintf(f, ",\"batch_size\":%ld", t->batch_size);
  else fprintf(f, ",\"batch_size\":null");
  fprintf(f, ",\"num_epochs\":%d,\"random_seed\":%ld", num_epochs, t->seed);
  fprintf(f, ",\"weight_decay\":%s", ds_json_number(b, sizeof b, t->weight_decay));
  fprintf(f, ",\"optimizer_name\":%s,\"optimizer_hyperparams\":{", ds_json_string(b, sizeof b, t->optimizer));
  for (int k = 0; k < t->nhp; k++) {
    fprintf(f, "%s%s:", k ? "," : "", ds_json_string(b, sizeof b, t->hp[k].name));
    if (t->hp[k].str) fputs(ds_json_string(b, sizeof b, t->hp[k].str), f);
    else if (t->hp[k].is_int) fprintf(f, "%.0f", t->hp[k].num);
    else fprintf(f, "%.17g", t->hp[k].num);
  }
  fprintf(f, "},\"training_params\":{}");
  list(f, "train_losses", c, 0);
  if (has_val) list(f, "valid_losses", c, 1);
  list(f, "test_losses", c, 2);
  list(f, "train_accuracies", c, 3);
  if (has_val) list(f, "valid_accuracies", c, 4);
  list(f, "test_accuracies", c, 5);
  fprintf(f, ",\"minibatch_train_losses\":[");
  for (int i = 0; i < t->ncurve; i++) fprintf(f, "%s%s", i ? "," : "", ds_json_number(b, sizeof b, t->curve[i].train_loss));
  fprintf(f, "]}\n");
  return 0;
}

int ds_rep_deepobs_write(const char *dir, const ds_rep_set *set, const rep_model *m, const char *stamp, int *nfiles,
                         char *err, size_t errlen) {
  (void)m;
  char path[DS_PATH_MAX], tp[300];
  if (snprintf(path, sizeof path, "%s/deepobs", dir) >= (int)sizeof path || mkdir_one(path, err, errlen) != 0)
    return DS_EXIT_RUNTIME;
  int no_epoch_end = 0;
  for (int i = 0; i < set->n; i++) {
    const ds_rep_trial *t = &set->t[i];
    if (t->failed || t->diverged) continue;
    int emax = 0;
    for (int k = 0; k < t->ncurve; k++)
      if (t->curve[k].epoch > emax) emax = (int)floor(t->curve[k].epoch + 1e-9);
    const ds_rep_eval **ep = ds_xcalloc((size_t)emax + 2, sizeof *ep, "DeepOBS epochs");
    for (int k = 0; k < t->ncurve; k++) {
      double e = t->curve[k].epoch, r = floor(e + 0.5);
      if (isfinite(e) && fabs(e - r) < 1e-6 && r >= 0 && r <= emax) ep[(int)r] = &t->curve[k];
    }
    run_ctx c = {t, tp, ep, 0, emax};
    testproblem(tp, sizeof tp, t->problem);
    char opt[200], setting[2048], w[64];
    clean(opt, sizeof opt, t->optimizer, strlen(t->optimizer));
    int n = 0;
    for (int e = 0; e <= emax; e++) n += ep[e] != NULL;
    no_epoch_end += n == 0;
    size_t k = (size_t)snprintf(setting, sizeof setting, "num_epochs__%d__batch_size__", ep[0] ? n - 1 : n);
    if (t->batch_size > 0) k += (size_t)snprintf(setting + k, sizeof setting - k, "%ld", t->batch_size);
    else k += (size_t)snprintf(setting + k, sizeof setting - k, "None");
    if (isfinite(t->weight_decay)) {
      float2str(w, sizeof w, t->weight_decay);
      k += (size_t)snprintf(setting + k, sizeof setting - k, "__weight_decay__%s", w);
    }
    for (int h = 0; h < t->nhp && k < sizeof setting; h++) {
      char v[256];
      if (t->hp[h].str) clean(v, sizeof v, t->hp[h].str, strlen(t->hp[h].str));
      else if (t->hp[h].is_int) snprintf(v, sizeof v, "%.0f", t->hp[h].num);
      else float2str(v, sizeof v, t->hp[h].num);
      k += (size_t)snprintf(setting + k, sizeof setting - k, "__%s__%s", t->hp[h].name, v);
    }
    int rc = 0;
    if (strlen(setting) > 240) { /* a folder name must fit NAME_MAX (255): keep the start, add a hash of the rest */
      uint64_t h = 1469598103934665603ULL;
      for (const char *q = setting; *q; q++) h = (h ^ (unsigned char)*q) * 1099511628211ULL;
      snprintf(setting + 220, sizeof setting - 220, "__%016llx", (unsigned long long)h);
    }
    size_t dl = (size_t)snprintf(path, sizeof path, "%s/deepobs/%s", dir, tp);
    if (dl >= sizeof path || mkdir_one(path, err, errlen) != 0) rc = -1;
    if (rc == 0 && (snprintf(path + dl, sizeof path - dl, "/%s", opt) >= (int)(sizeof path - dl) ||
                    mkdir_one(path, err, errlen) != 0))
      rc = -1;
    dl = strlen(path);
    if (rc == 0 && (snprintf(path + dl, sizeof path - dl, "/%s", setting) >= (int)(sizeof path - dl) ||
                    mkdir_one(path, err, errlen) != 0))
      rc = -1;
    dl = strlen(path);
    if (rc == 0 && snprintf(path + dl, sizeof path - dl, "/random_seed__%ld__%s.json", t->seed, stamp) >=
                       (int)(sizeof path - dl)) {
      snprintf(err, errlen, "--format deepobs: a file name under %s is too long", dir);
      rc = -1;
    }
    if (rc == 0 && ds_rep_write_file(path, draw_run, &c, err, errlen) != 0) rc = -1;
    free(ep);
    if (rc != 0) return DS_EXIT_RUNTIME;
    (*nfiles)++;
  }
  if (no_epoch_end > 0)
    ds_note("report: --format deepobs: %d trial%s had no evaluation at an epoch end, so %s per-epoch lists are "
            "empty (sweep with --eval-every Kepochs, or N updates that divide an epoch, for DeepOBS files)",
            no_epoch_end, no_epoch_end == 1 ? "" : "s", no_epoch_end == 1 ? "its" : "their");
  return 0;
}
