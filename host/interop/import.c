/* Weights in: a safetensors file's tensors into a trainer, every name, shape
 * and dtype checked against the model the flags describe
 * (include/descent/interop.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descent/common.h"
#include "descent/interop.h"

static void shape_text(char *buf, size_t len, const ds_tensor *t) {
  size_t n = (size_t)snprintf(buf, len, "[");
  for (int d = 0; d < t->ndim && n < len; d++)
    n += (size_t)snprintf(buf + n, len - n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
  if (n < len) snprintf(buf + n, len - n, "]");
}

static const ds_tensor *find(const ds_safetensors *st, const char *name) {
  for (int i = 0; i < st->n; i++)
    if (strcmp(st->t[i].name, name) == 0) return &st->t[i];
  return NULL;
}

int ds_model_tensors_load(ds_trainer *t, const ds_safetensors *st, char *err, size_t errlen) {
  const ds_mlp *m = &t->model;
  size_t np = m->n_params, ns = m->n_stats;
  float *params = ds_xcalloc(np, sizeof(float), "the loaded parameters");
  float *stats = ds_xcalloc(ns ? ns : 1, sizeof(float), "the loaded statistics");
  ds_model_tensors want;
  ds_model_tensors_build(&want, m, params, stats, 0, t->scale, t->shift, 0);
  int rc = -1;
  char a[96], b[96];
  long nbt = -1;
  /* 1. every tensor of the model, in order: present, same dtype and shape */
  for (int i = 0; i < want.n; i++) {
    const ds_tensor *w = &want.t[i], *g = find(st, w->name);
    shape_text(a, sizeof a, w);
    if (!g) {
      snprintf(err, errlen, "tensor '%s' %s is missing (the model from the flags has it)", w->name, a);
      goto out;
    }
    if (g->dtype != w->dtype) {
      snprintf(err, errlen, "tensor '%s' is %s, the model from the flags needs %s", w->name,
               g->dtype == DS_DTYPE_I64 ? "I64" : "F32", w->dtype == DS_DTYPE_I64 ? "I64" : "F32");
      goto out;
    }
    int same = g->ndim == w->ndim;
    for (int d = 0; same && d < w->ndim; d++) same = g->shape[d] == w->shape[d];
    if (!same) {
      shape_text(b, sizeof b, g);
      snprintf(err, errlen, "tensor '%s' has shape %s, the model from the flags needs %s", w->name, b, a);
      goto out;
    }
  }
  /* 2. nothing else */
  for (int i = 0; i < st->n; i++) {
    int known = 0;
    for (int j = 0; j < want.n && !known; j++) known = strcmp(st->t[i].name, want.t[j].name) == 0;
    if (!known) {
      snprintf(err, errlen, "tensor '%s' is not part of the model the flags describe", st->t[i].name);
      goto out;
    }
  }
  /* 3. the values: the same walk as ds_model_tensors_build */
  int k = 0;
  for (int l = 0; l < m->n_layers; l++) {
    const ds_layer *L = &m->layers[l];
    struct { float *dst; size_t n; } parts[6] = {
      {params + L->weight.offset, L->weight.size}, {params + L->bias.offset, L->bias.size},
      {params + L->gamma.offset, L->gamma.size}, {params + L->beta.offset, L->beta.size},
      {stats + L->running_mean.offset, L->running_mean.size}, {stats + L->running_var.offset, L->running_var.size}};
    int n_parts = L->gamma.size ? 6 : 2;
    for (int p = 0; p < n_parts; p++, k++) {
      const ds_tensor *g = find(st, want.t[k].name);
      memcpy(parts[p].dst, g->data, parts[p].n * sizeof(float));
      for (size_t e = 0; e < parts[p].n; e++)
        if (!isfinite(parts[p].dst[e])) {
          snprintf(err, errlen, "tensor '%s' holds %s at index %zu", g->name, isnan(parts[p].dst[e]) ? "NaN" : "Inf", e);
          goto out;
        }
      if (p == 5)
        for (size_t e = 0; e < parts[p].n; e++)
          if (parts[p].dst[e] < 0.0f) {
            snprintf(err, errlen, "tensor '%s' holds a negative variance at index %zu", g->name, e);
            goto out;
          }
    }
    if (n_parts == 6) { /* num_batches_tracked */
      const ds_tensor *g = find(st, want.t[k++].name);
      int64_t v;
      memcpy(&v, g->data, 8);
      if (v < 0 || (nbt >= 0 && v != nbt)) {
        snprintf(err, errlen, "tensor '%s' is %lld: num_batches_tracked must be >= 0 and the same in every layer",
                 g->name, (long long)v);
        goto out;
      }
      nbt = (long)v;
    }
  }
  t->be->upload(t->params, params, np * sizeof(float));
  if (ns) t->be->upload(t->stats, stats, ns * sizeof(float));
  /* the BatchNorm layers have seen nbt training batches: continue counting
   * from there, as PyTorch's counter does (it also keys dropout masks) */
  if (nbt >= 0) t->micro_step = nbt;
  rc = 0;
out:
  for (char *c = err; rc != 0 && *c; c++) /* names come from the file: one line */
    if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
  ds_model_tensors_free(&want);
  free(params);
  free(stats);
  return rc;
}

void ds_init_from_or_die(ds_trainer *t, const char *path, int resumed) {
  if (resumed) ds_fatal(DS_EXIT_USAGE, "train: --init-from and --resume: choose one (a resumed run has its weights)");
  ds_safetensors st;
  char err[1024];
  if (!ds_path_has_suffix(path, ".safetensors"))
    ds_fatal(DS_EXIT_USAGE, "train: --init-from %s: expected a .safetensors file (descent export writes one)", path);
  if (ds_safetensors_read(path, &st, err, sizeof err) != 0) ds_fatal(DS_EXIT_USAGE, "train: --init-from %s", err);
  if (ds_model_tensors_load(t, &st, err, sizeof err) != 0) {
    ds_safetensors_free(&st);
    ds_fatal(DS_EXIT_USAGE, "train: --init-from %s: %s", path, err);
  }
  const char *scale = ds_safetensors_meta(&st, "descent.input_scale");
  const char *shift = ds_safetensors_meta(&st, "descent.input_shift");
  char s1[32], s2[32];
  if (scale && shift &&
      (strcmp(scale, ds_format_shortest(s1, sizeof s1, t->scale)) || strcmp(shift, ds_format_shortest(s2, sizeof s2, t->shift))))
    ds_note("--init-from %s: the weights were trained on inputs scaled by %s and shifted by %s; this run scales by %s "
            "and shifts by %s (--standardize and the training data decide it)", path, scale, shift, s1, s2);
  ds_safetensors_free(&st);
}
