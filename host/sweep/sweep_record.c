/* The result file's line for one trial (format "descent-sweep/1", see
 * README: Benchmarking optimizers), built from `descent train --json`'s
 * object, whose members are copied as text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descent/common.h"
#include "sweep/sweep.h"

/* Skip whitespace, then one JSON value starting at p (< end): the position
 * after it, or NULL when malformed. Strings honour escapes; objects and
 * arrays nest. */
static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

static const char *skip_string(const char *p, const char *end) {
  for (p++; p < end; p++) {
    if (*p == '\\') p++;
    else if (*p == '"') return p + 1;
  }
  return NULL;
}

static const char *skip_value(const char *p, const char *end) {
  p = skip_ws(p, end);
  if (p >= end) return NULL;
  if (*p == '"') return skip_string(p, end);
  if (*p == '{' || *p == '[') {
    int depth = 0;
    while (p < end) {
      if (*p == '"') {
        p = skip_string(p, end);
        if (!p) return NULL;
        continue;
      }
      if (*p == '{' || *p == '[') depth++;
      else if (*p == '}' || *p == ']') {
        if (--depth == 0) return p + 1;
      }
      p++;
    }
    return NULL;
  }
  const char *s = p; /* a number, true, false or null */
  while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n') p++;
  return p > s ? p : NULL;
}

int ds_json_whole(const char *text, size_t len) {
  const char *end = text + len, *p = skip_ws(text, end);
  if (p >= end || *p != '{') return 0;
  p = skip_value(p, end);
  return p && skip_ws(p, end) == end;
}

int ds_json_member(const char *obj, size_t len, const char *key, const char **val, size_t *vlen) {
  const char *end = obj + len, *p = skip_ws(obj, end);
  if (p >= end || *p != '{') return -1;
  p = skip_ws(p + 1, end);
  size_t klen = strlen(key);
  while (p < end && *p == '"') {
    const char *k = p + 1, *ke = skip_string(p, end);
    if (!ke) return -1;
    p = skip_ws(ke, end);
    if (p >= end || *p != ':') return -1;
    const char *v = skip_ws(p + 1, end), *ve = skip_value(v, end);
    if (!ve) return -1;
    if ((size_t)(ke - 1 - k) == klen && memcmp(k, key, klen) == 0) {
      *val = v;
      *vlen = (size_t)(ve - v);
      return 0;
    }
    p = skip_ws(ve, end);
    if (p < end && *p == ',') p = skip_ws(p + 1, end);
  }
  return -1;
}

static void puts_(ds_strbuf *b, const char *s) { ds_strbuf_add(b, s, strlen(s)); }

/* The member's text, or `fallback` when absent. */
static void put_member(ds_strbuf *b, const char *json, size_t len, const char *key, const char *fallback) {
  const char *v;
  size_t vl;
  if (json && ds_json_member(json, len, key, &v, &vl) == 0) ds_strbuf_add(b, v, vl);
  else puts_(b, fallback);
}

/* A number as a JSON number when it reads as one ("0.001"), else a string. */
static void put_value(ds_strbuf *b, const char *v) {
  double d;
  if (ds_parse_double(v, &d) == 0) {
    char tmp[64];
    puts_(b, ds_json_number(tmp, sizeof tmp, d));
  } else if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0) {
    puts_(b, strcmp(v, "on") == 0 ? "true" : "false");
  } else {
    ds_strbuf_json_string(b, v);
  }
}

/* "final": the child's members other than the curve and the configuration. */
static void put_final(ds_strbuf *b, const char *json, size_t len) {
  static const char *const left_out[] = {"problem", "config", "target", "curve", "error", "exit_code", NULL};
  const char *end = json + len, *p = skip_ws(json, end);
  puts_(b, "{");
  int first = 1, have_val = 0;
  p = skip_ws(p + 1, end);
  while (p < end && *p == '"') {
    const char *k = p, *ke = skip_string(p, end);
    const char *v = skip_ws(skip_ws(ke, end) + 1, end); /* after ':' (ds_json_member parsed the object) */
    const char *ve = skip_value(v, end);
    int skip = 0;
    for (int i = 0; left_out[i]; i++) {
      size_t kl = strlen(left_out[i]);
      skip |= (size_t)(ke - k - 2) == kl && memcmp(k + 1, left_out[i], kl) == 0;
    }
    have_val |= (size_t)(ke - k - 2) == 12 && memcmp(k + 1, "val_accuracy", 12) == 0;
    if (!skip) {
      if (!first) puts_(b, ",");
      ds_strbuf_add(b, k, (size_t)(ke - k));
      puts_(b, ":");
      ds_strbuf_add(b, v, (size_t)(ve - v));
      first = 0;
    }
    p = skip_ws(ve, end);
    if (p < end && *p == ',') p = skip_ws(p + 1, end);
  }
  if (!have_val) puts_(b, first ? "\"val_loss\":null,\"val_accuracy\":null" : ",\"val_loss\":null,\"val_accuracy\":null");
  puts_(b, "}");
}

char *ds_sweep_record(const ds_trial *t, const char *json, size_t len, int exit_code, const char *error) {
  const char *v;
  size_t vl;
  int parsed = json && ds_json_member(json, len, "config", &v, &vl) == 0;
  if (!parsed) json = NULL;
  const char *stopped = "";
  char stop_buf[32] = "";
  if (json && ds_json_member(json, len, "stopped", &v, &vl) == 0 && vl < sizeof stop_buf) {
    memcpy(stop_buf, v, vl);
    stopped = stop_buf;
  }
  /* a diverged run finished (its result is divergence); any other failure did not */
  int ok = json && (exit_code == 0 || strcmp(stopped, "\"diverged\"") == 0);
  ds_strbuf b = {0};
  char num[64];
  puts_(&b, "{\"format\":\"descent-sweep/1\",\"trial\":\"");
  puts_(&b, t->id);
  puts_(&b, "\",\"problem\":");
  put_member(&b, json, len, "problem", "null");
  puts_(&b, ",\"optimizer\":");
  put_member(&b, json, len, "optimizer", "null");
  snprintf(num, sizeof num, ",\"seed\":%llu,\"hyperparameters\":{", (unsigned long long)t->seed);
  puts_(&b, num);
  for (int i = 0; i < t->n_hyper; i++) {
    if (i) puts_(&b, ",");
    ds_strbuf_json_string(&b, t->hyper_names[i]);
    puts_(&b, ":");
    put_value(&b, t->hyper_values[i]);
  }
  puts_(&b, "},\"args\":[");
  for (int i = 0; i < t->n_args; i++) {
    if (i) puts_(&b, ",");
    ds_strbuf_json_string(&b, t->args[i]);
  }
  puts_(&b, "],\"config\":");
  put_member(&b, json, len, "config", "null");
  puts_(&b, ",\"target\":");
  put_member(&b, json, len, "target", "null");
  puts_(&b, ",\"curve\":");
  put_member(&b, json, len, "curve", "[]");
  puts_(&b, ",\"final\":");
  if (json) put_final(&b, json, len);
  else puts_(&b, "null");
  snprintf(num, sizeof num, ",\"status\":\"%s\",\"exit_code\":%d,\"error\":", ok ? "ok" : "failed", exit_code);
  puts_(&b, num);
  if (error && *error) ds_strbuf_json_string(&b, error);
  else puts_(&b, "null");
  puts_(&b, "}\n");
  return b.s;
}
