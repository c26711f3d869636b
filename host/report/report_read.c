/* Reading sweep result files (docs/sweep-format.md) with Jansson (Debian
 * package libjansson-dev): one JSON object a line, checked key by key. A
 * build without Jansson keeps the entry points and says so. */
#include "report/report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "descent/common.h"

static void trial_free(ds_rep_trial *t) {
  free(t->problem);
  free(t->optimizer);
  free(t->trial);
  for (int k = 0; k < t->nhp; k++) {
    free(t->hp[k].name);
    free(t->hp[k].str);
  }
  free(t->hp);
  free(t->setting);
  free(t->label);
  free(t->curve);
}

int ds_report_dedup(ds_rep_set *set) {
  /* a trial's last line wins: a sweep rerun appends a new line for a trial
     that failed before (and a file given twice repeats every line) */
  int kept = 0, dropped = 0;
  for (int i = 0; i < set->n; i++) {
    int later = 0;
    for (int j = i + 1; j < set->n && !later; j++) later = strcmp(set->t[j].trial, set->t[i].trial) == 0;
    if (later) {
      trial_free(&set->t[i]);
      dropped++;
    } else {
      set->t[kept++] = set->t[i];
    }
  }
  set->n = kept;
  return dropped;
}

void ds_rep_set_free(ds_rep_set *set) {
  for (int i = 0; i < set->n; i++) trial_free(&set->t[i]);
  free(set->t);
  memset(set, 0, sizeof *set);
}

#ifndef DS_HAVE_JANSSON

int ds_report_json_available(void) { return 0; }

int ds_report_read(const char *path, ds_rep_set *set, int *partial, char *err, size_t errlen) {
  (void)set;
  (void)partial;
  snprintf(err, errlen, "%s: this descent was built without the JSON library", path);
  return DS_EXIT_RUNTIME;
}

#else

#include <jansson.h>

int ds_report_json_available(void) { return 1; }

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = ds_xmalloc(n, "a report string");
  memcpy(p, s, n);
  return p;
}

/* The reader's state for one line: file and line for the messages. */
typedef struct {
  const char *path;
  long line;
  char *err;
  size_t errlen;
} ctx;

#define BAD(...)                                                  \
  do {                                                            \
    int at_ = snprintf(c->err, c->errlen, "%s:%ld: ", c->path, c->line); \
    if (at_ > 0 && (size_t)at_ < c->errlen) snprintf(c->err + at_, c->errlen - at_, __VA_ARGS__); \
    return -1;                                                    \
  } while (0)

static json_t *need(ctx *c, json_t *obj, const char *where, const char *key) {
  json_t *v = json_object_get(obj, key);
  if (!v) {
    snprintf(c->err, c->errlen, "%s:%ld: %s has no \"%s\" (see docs/sweep-format.md)", c->path, c->line, where, key);
    return NULL;
  }
  return v;
}

/* A number or null (NAN); anything else is an error. */
static int num_or_null(ctx *c, json_t *obj, const char *where, const char *key, double *out) {
  json_t *v = need(c, obj, where, key);
  if (!v) return -1;
  if (json_is_null(v)) *out = NAN;
  else if (json_is_number(v)) *out = json_number_value(v);
  else BAD("%s.%s is not a number or null", where, key);
  return 0;
}

static int str_of(ctx *c, json_t *obj, const char *where, const char *key, const char **out) {
  json_t *v = need(c, obj, where, key);
  if (!v) return -1;
  if (!json_is_string(v) || json_string_length(v) == 0) BAD("%s.%s is not a non-empty string", where, key);
  *out = json_string_value(v);
  return 0;
}

static int read_eval(ctx *c, json_t *o, const char *where, ds_rep_eval *e, int final) {
  if (!json_is_object(o)) BAD("%s is not an object", where);
  static const char *const keys[] = {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
                                     "test_accuracy"};
  double *dst[] = {&e->train_loss, &e->train_accuracy, &e->val_loss, &e->val_accuracy, &e->test_loss,
                   &e->test_accuracy};
  for (int k = 0; k < 6; k++)
    if (num_or_null(c, o, where, keys[k], dst[k]) != 0) return -1;
  if (num_or_null(c, o, where, final ? "steps" : "step", &e->step) != 0 ||
      num_or_null(c, o, where, final ? "epochs" : "epoch", &e->epoch) != 0 ||
      num_or_null(c, o, where, "train_seconds", &e->train_seconds) != 0)
    return -1;
  if (!isfinite(e->step) || e->step < 0) BAD("%s.%s is not a count of updates", where, final ? "steps" : "step");
  return 0;
}

static int cmp_hp(const void *a, const void *b) {
  return strcmp(((const ds_rep_hp *)a)->name, ((const ds_rep_hp *)b)->name);
}

/* setting (exact) and label (for people) from the sorted hyperparameters */
static void name_setting(ds_rep_trial *t) {
  size_t cap = 64;
  for (int k = 0; k < t->nhp; k++) cap += strlen(t->hp[k].name) + (t->hp[k].str ? strlen(t->hp[k].str) : 0) + 40;
  t->setting = ds_xmalloc(cap, "a setting");
  t->label = ds_xmalloc(cap, "a setting");
  size_t a = 0, b = 0;
  t->setting[0] = t->label[0] = '\0';
  for (int k = 0; k < t->nhp; k++) {
    const ds_rep_hp *h = &t->hp[k];
    if (h->str) {
      a += (size_t)snprintf(t->setting + a, cap - a, "%s%s=\"%s\"", k ? "," : "", h->name, h->str);
      b += (size_t)snprintf(t->label + b, cap - b, "%s%s=%s", k ? ", " : "", h->name, h->str);
    } else {
      a += (size_t)snprintf(t->setting + a, cap - a, "%s%s=%.17g", k ? "," : "", h->name, h->num);
      b += (size_t)snprintf(t->label + b, cap - b, "%s%s=%.6g", k ? ", " : "", h->name, h->num);
    }
  }
  if (t->nhp == 0) snprintf(t->label, cap, "(none)");
}

static int read_trial(ctx *c, json_t *o, ds_rep_trial *t) {
  const char *s;
  if (!json_is_object(o)) BAD("not a JSON object");
  json_t *fmt = json_object_get(o, "format");
  if (!fmt || !json_is_string(fmt)) BAD("no \"format\": not a descent sweep result line (descent-sweep/1)");
  if (strcmp(json_string_value(fmt), "descent-sweep/1") != 0)
    BAD("format \"%s\", expected \"descent-sweep/1\"", json_string_value(fmt));
  if (str_of(c, o, "the line", "problem", &s) != 0) return -1;
  t->problem = xstrdup(s);
  if (str_of(c, o, "the line", "optimizer", &s) != 0) return -1;
  t->optimizer = xstrdup(s);
  if (str_of(c, o, "the line", "trial", &s) != 0) return -1;
  t->trial = xstrdup(s);
  json_t *v = need(c, o, "the line", "seed");
  if (!v) return -1;
  if (!json_is_integer(v)) BAD("\"seed\" is not an integer");
  t->seed = (long)json_integer_value(v);
  if (str_of(c, o, "the line", "status", &s) != 0) return -1;
  if (strcmp(s, "ok") != 0 && strcmp(s, "failed") != 0) BAD("\"status\" is \"%s\", expected \"ok\" or \"failed\"", s);
  t->failed = strcmp(s, "failed") == 0;

  json_t *hp = need(c, o, "the line", "hyperparameters");
  if (!hp) return -1;
  if (!json_is_object(hp)) BAD("\"hyperparameters\" is not an object");
  t->nhp = (int)json_object_size(hp);
  t->hp = ds_xcalloc((size_t)t->nhp + 1, sizeof *t->hp, "hyperparameters");
  const char *key;
  json_t *val;
  int k = 0;
  t->lr = NAN;
  json_object_foreach(hp, key, val) {
    ds_rep_hp *h = &t->hp[k++];
    h->name = xstrdup(key);
    h->num = NAN;
    if (json_is_number(val)) h->num = json_number_value(val), h->is_int = json_is_integer(val);
    else if (json_is_string(val)) h->str = xstrdup(json_string_value(val));
    else if (json_is_true(val) || json_is_false(val)) h->str = xstrdup(json_is_true(val) ? "true" : "false");
    else BAD("hyperparameters.%s is not a number or a string", key);
    if (strcmp(key, "lr") == 0 && !h->str) t->lr = h->num;
  }
  qsort(t->hp, (size_t)t->nhp, sizeof *t->hp, cmp_hp);
  name_setting(t);

  json_t *cfg = need(c, o, "the line", "config");
  if (!cfg) return -1;
  if (!json_is_object(cfg)) BAD("\"config\" is not an object");
  json_t *x = json_object_get(cfg, "lr");
  if (isnan(t->lr) && x && json_is_number(x)) t->lr = json_number_value(x);
  x = json_object_get(cfg, "batch_size");
  /* descent writes it as given ("64", or "full"); a number is read too */
  t->batch_size = x && json_is_integer(x) ? (long)json_integer_value(x)
                  : x && json_is_string(x) ? strtol(json_string_value(x), NULL, 10) : -1;
  if (t->batch_size <= 0) t->batch_size = -1;
  x = json_object_get(cfg, "weight_decay");
  t->weight_decay = x && json_is_number(x) ? json_number_value(x) : NAN;

  json_t *tg = need(c, o, "the line", "target");
  if (!tg) return -1;
  if (json_is_object(tg)) {
    if (num_or_null(c, tg, "target", "value", &t->target_value) != 0) return -1;
    json_t *tm = json_object_get(tg, "metric");
    t->target_metric = -1;
    for (int q = 0; tm && json_is_string(tm) && ds_rep_metric_names[q]; q++)
      if (strcmp(json_string_value(tm), ds_rep_metric_names[q]) == 0) t->target_metric = q;
    t->has_target = isfinite(t->target_value);
  } else if (!json_is_null(tg)) BAD("\"target\" is not an object or null");

  json_t *cv = need(c, o, "the line", "curve");
  if (!cv) return -1;
  if (!json_is_array(cv)) BAD("\"curve\" is not an array");
  t->ncurve = (int)json_array_size(cv);
  t->curve = ds_xcalloc((size_t)t->ncurve + 1, sizeof *t->curve, "a curve");
  for (int i = 0; i < t->ncurve; i++) {
    char where[32];
    snprintf(where, sizeof where, "curve[%d]", i);
    if (read_eval(c, json_array_get(cv, (size_t)i), where, &t->curve[i], 0) != 0) return -1;
    if (i > 0 && t->curve[i].step < t->curve[i - 1].step) BAD("curve[%d].step goes back", i);
  }
  json_t *fin = need(c, o, "the line", "final");
  if (!fin) return -1;
  if (read_eval(c, fin, "final", &t->fin, 1) != 0) return -1;
  if (num_or_null(c, fin, "final", "eval_seconds", &t->eval_seconds) != 0 ||
      num_or_null(c, fin, "final", "time_to_target", &t->time_to_target) != 0 ||
      num_or_null(c, fin, "final", "steps_to_target", &t->steps_to_target) != 0)
    return -1;
  if (str_of(c, fin, "final", "stopped", &s) != 0) return -1;
  t->diverged = strcmp(s, "diverged") == 0;
  return 0;
}

int ds_report_read(const char *path, ds_rep_set *set, int *partial, char *err, size_t errlen) {
  struct stat sb;
  if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) { /* a folder, a FIFO that would block, a device */
    snprintf(err, errlen, "%s: not a regular file (a sweep result file, FILE.jsonl)", path);
    return DS_EXIT_USAGE;
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return errno == ENOENT ? DS_EXIT_USAGE : DS_EXIT_RUNTIME;
  }
  char *buf = NULL;
  size_t cap = 0;
  ssize_t len;
  ctx c = {path, 0, err, errlen};
  int rc = 0;
  while ((len = getline(&buf, &cap, f)) >= 0) {
    c.line++;
    if (len == 0) continue;
    if (buf[len - 1] != '\n') { /* the last line, half written */
      (*partial)++;
      break;
    }
    if (memchr(buf, '\0', (size_t)len)) {
      snprintf(err, errlen, "%s:%ld: not a JSON line (a NUL byte)", path, c.line);
      rc = DS_EXIT_USAGE;
      break;
    }
    size_t k = 0;
    while (k < (size_t)len && (buf[k] == ' ' || buf[k] == '\t' || buf[k] == '\r' || buf[k] == '\n')) k++;
    if (k == (size_t)len) continue; /* blank */
    json_error_t je;
    json_t *o = json_loadb(buf, (size_t)len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
      snprintf(err, errlen, "%s:%ld: not JSON: %s (column %d)", path, c.line, je.text, je.column);
      rc = DS_EXIT_USAGE;
      break;
    }
    json_t *st = json_object_get(o, "status"), *pr = json_object_get(o, "problem");
    if (st && json_is_string(st) && strcmp(json_string_value(st), "failed") == 0 && pr && json_is_null(pr)) {
      set->failed_early++; /* it failed before it knew its problem: nothing to place it under */
      json_decref(o);
      continue;
    }
    if (set->n == set->cap) {
      int ncap = set->cap ? 2 * set->cap : 64;
      ds_rep_trial *nt = realloc(set->t, (size_t)ncap * sizeof *nt);
      if (!nt) ds_fatal(DS_EXIT_RUNTIME, "out of host memory reading %s", path);
      set->t = nt;
      set->cap = ncap;
    }
    ds_rep_trial *t = &set->t[set->n++];
    memset(t, 0, sizeof *t);
    t->file = path;
    t->line = c.line;
    int bad = read_trial(&c, o, t);
    json_decref(o);
    if (bad) {
      rc = DS_EXIT_USAGE;
      break;
    }
  }
  if (rc == 0 && ferror(f)) {
    snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
    rc = DS_EXIT_RUNTIME;
  }
  free(buf);
  fclose(f);
  return rc;
}

#endif
