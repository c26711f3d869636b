/* The model as the state_dict of the equivalent torch.nn.Sequential: names,
 * shapes and the metadata that rebuilds it (include/descent/interop.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descent/common.h"
#include "descent/interop.h"

#define META_TEXT 8192

void ds_sequential_indices(const ds_mlp_spec *spec, int n_layers, int *linear_index, int *bn_index) {
  int idx = spec->input_dropout > 0.0f ? 1 : 0; /* Dropout on the input first */
  for (int l = 0; l < n_layers; l++) {
    int hidden = l < spec->n_hidden;
    linear_index[l] = idx++;
    bn_index[l] = hidden && spec->batchnorm ? idx++ : -1;
    if (hidden) {
      idx++; /* the activation */
      if (spec->dropout > 0.0f) idx++;
    }
  }
}

static const char *act_module(char *buf, size_t len, const ds_mlp_spec *s) {
  char v[32];
  switch (s->activation) {
    case DS_ACT_LEAKY_RELU:
      snprintf(buf, len, "LeakyReLU(negative_slope=%s)", ds_format_shortest(v, sizeof v, s->leaky_slope));
      break;
    case DS_ACT_TANH: snprintf(buf, len, "Tanh()"); break;
    case DS_ACT_SIGMOID: snprintf(buf, len, "Sigmoid()"); break;
    default: snprintf(buf, len, "ReLU()"); break;
  }
  return buf;
}

/* "Dropout(p=0.2), Linear(784, 256), BatchNorm1d(256, eps=1e-05, momentum=0.1), ReLU(), ..." */
static void modules_text(char *buf, size_t len, const ds_mlp *m) {
  const ds_mlp_spec *s = &m->spec;
  char a[32], b[32], act[64];
  size_t n = 0;
#define ADD(...) do { if (n < len) n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__); } while (0)
  if (s->input_dropout > 0.0f) ADD("Dropout(p=%s), ", ds_format_shortest(a, sizeof a, s->input_dropout));
  for (int l = 0; l < m->n_layers; l++) {
    const ds_layer *L = &m->layers[l];
    ADD("Linear(%d, %d)", L->in, L->out);
    if (!L->hidden) break;
    if (s->batchnorm)
      ADD(", BatchNorm1d(%d, eps=%s, momentum=%s)", L->out, ds_format_shortest(a, sizeof a, s->bn_eps),
          ds_format_shortest(b, sizeof b, s->bn_momentum));
    ADD(", %s", act_module(act, sizeof act, s));
    if (s->dropout > 0.0f) ADD(", Dropout(p=%s)", ds_format_shortest(a, sizeof a, s->dropout));
    ADD(", ");
  }
#undef ADD
}

typedef struct {
  ds_model_tensors *mt;
  char *text;
  size_t used;
} meta_writer;

static void meta_add(meta_writer *w, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void meta_add(meta_writer *w, const char *key, const char *fmt, ...) {
  ds_model_tensors *mt = w->mt;
  if (mt->n_meta >= (int)(sizeof mt->meta / sizeof mt->meta[0])) ds_fatal(DS_EXIT_RUNTIME, "too many metadata keys");
  char *v = w->text + w->used;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(v, META_TEXT - w->used, fmt, ap);
  va_end(ap);
  if (k < 0 || (size_t)k >= META_TEXT - w->used) ds_fatal(DS_EXIT_RUNTIME, "model metadata too long");
  w->used += (size_t)k + 1;
  mt->meta[mt->n_meta++] = (ds_meta){key, v};
}

static void add_tensor(ds_model_tensors *mt, char **data, int index, const char *what, ds_dtype dtype, int ndim,
                       int64_t d0, int64_t d1, const void *src, size_t bytes) {
  ds_tensor *t = &mt->t[mt->n++];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%d.%s", index, what);
  t->dtype = dtype;
  t->ndim = ndim;
  t->shape[0] = d0;
  t->shape[1] = d1;
  memcpy(*data, src, bytes);
  t->data = *data;
  t->bytes = bytes;
  *data += (bytes + 7) & ~(size_t)7;
}

void ds_model_tensors_build(ds_model_tensors *mt, const ds_mlp *m, const float *params, const float *stats,
                            long forward_passes, float scale, float shift, long steps) {
  memset(mt, 0, sizeof *mt);
  const ds_mlp_spec *s = &m->spec;
  size_t data_bytes = 0;
  for (int l = 0; l < m->n_layers; l++) {
    const ds_layer *L = &m->layers[l];
    data_bytes += (L->weight.size + L->bias.size + 2 * L->gamma.size + 2 * L->running_mean.size) * 4 + 8 * 8;
  }
  mt->arena = ds_xmalloc(data_bytes + META_TEXT, "the exported model");
  char *data = mt->arena + META_TEXT;
  int lin[DS_MAX_LAYERS], bn[DS_MAX_LAYERS];
  ds_sequential_indices(s, m->n_layers, lin, bn);
  int64_t nbt = forward_passes;
  for (int l = 0; l < m->n_layers; l++) {
    const ds_layer *L = &m->layers[l];
    add_tensor(mt, &data, lin[l], "weight", DS_DTYPE_F32, 2, L->out, L->in, params + L->weight.offset, L->weight.size * 4);
    add_tensor(mt, &data, lin[l], "bias", DS_DTYPE_F32, 1, L->out, 0, params + L->bias.offset, L->bias.size * 4);
    if (bn[l] < 0) continue;
    add_tensor(mt, &data, bn[l], "weight", DS_DTYPE_F32, 1, L->out, 0, params + L->gamma.offset, L->gamma.size * 4);
    add_tensor(mt, &data, bn[l], "bias", DS_DTYPE_F32, 1, L->out, 0, params + L->beta.offset, L->beta.size * 4);
    add_tensor(mt, &data, bn[l], "running_mean", DS_DTYPE_F32, 1, L->out, 0, stats + L->running_mean.offset,
               L->running_mean.size * 4);
    add_tensor(mt, &data, bn[l], "running_var", DS_DTYPE_F32, 1, L->out, 0, stats + L->running_var.offset,
               L->running_var.size * 4);
    add_tensor(mt, &data, bn[l], "num_batches_tracked", DS_DTYPE_I64, 0, 0, 0, &nbt, 8);
  }
  meta_writer w = {mt, mt->arena, 0};
  char a[32], b[32], text[4096];
  modules_text(text, sizeof text, m);
  meta_add(&w, "format", "pt");
  meta_add(&w, "descent.version", "%s", DESCENT_VERSION);
  meta_add(&w, "descent.modules", "%s", text);
  size_t n = (size_t)snprintf(text, sizeof text, "%d", m->n_inputs);
  for (int l = 0; l < m->n_layers && n < sizeof text; l++)
    n += (size_t)snprintf(text + n, sizeof text - n, "-%d", m->layers[l].out);
  meta_add(&w, "descent.architecture", "%s", text);
  meta_add(&w, "descent.inputs", "%d", m->n_inputs);
  meta_add(&w, "descent.classes", "%d", m->n_classes);
  meta_add(&w, "descent.activation", "%s", ds_activation_name(s->activation));
  meta_add(&w, "descent.leaky_slope", "%s", ds_format_shortest(a, sizeof a, s->leaky_slope));
  meta_add(&w, "descent.batchnorm", "%s", s->batchnorm ? "true" : "false");
  meta_add(&w, "descent.bn_eps", "%s", ds_format_shortest(a, sizeof a, s->bn_eps));
  meta_add(&w, "descent.bn_momentum", "%s", ds_format_shortest(b, sizeof b, s->bn_momentum));
  meta_add(&w, "descent.running_var", "unbiased");
  meta_add(&w, "descent.dropout", "%s", ds_format_shortest(a, sizeof a, s->dropout));
  meta_add(&w, "descent.input_dropout", "%s", ds_format_shortest(a, sizeof a, s->input_dropout));
  meta_add(&w, "descent.dropout_form", "%s", s->dropout_form == DS_DROPOUT_SCALE_AT_TEST ? "scale-at-test" : "inverted");
  meta_add(&w, "descent.input_scale", "%s", ds_format_shortest(a, sizeof a, scale));
  meta_add(&w, "descent.input_shift", "%s", ds_format_shortest(b, sizeof b, shift));
  meta_add(&w, "descent.input", "x = byte * input_scale + input_shift, pixels in row-major order");
  meta_add(&w, "descent.steps", "%ld", steps);
}

int ds_model_tensors_from_checkpoint(ds_model_tensors *mt, const ds_checkpoint *ck, char *err, size_t errlen) {
  float scale = 1.0f / 255.0f, shift = 0.0f; /* descent's default scaling */
  if (ck->has_scaling) scale = ck->scale, shift = ck->shift;
  else if (ck->cfg.standardize) {
    snprintf(err, errlen, "a version-1 checkpoint trained with --standardize does not store its input scaling; "
             "resume it for 0 more updates with --save to write a version-2 checkpoint");
    return -1;
  }
  ds_mlp m;
  char why[256];
  if (ds_mlp_layout(&m, &ck->cfg.model, ck->n_inputs, ck->n_classes, why, sizeof why) != 0 ||
      m.n_params != ck->n_params || m.n_stats != ck->n_stats) {
    snprintf(err, errlen, "the model does not match its parameter count");
    return -1;
  }
  ds_model_tensors_build(mt, &m, ck->params, ck->stats, ck->micro_step, scale, shift, ck->step);
  return 0;
}

void ds_model_tensors_free(ds_model_tensors *mt) {
  free(mt->arena);
  memset(mt, 0, sizeof *mt);
}
