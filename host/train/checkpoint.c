/* Checkpoints: save and verify a trainer's whole state (layout in
 * include/descent/checkpoint.h). One function, header_fields(), both writes and
 * reads the header, so the two directions cannot drift apart. */
#define _POSIX_C_SOURCE 200809L
#include "descent/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "descent/common.h"
#include "descent/data.h"
#include "dist/dist.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint tensors are stored as little-endian floats; add byte swapping for this host"
#endif

#define MAGIC_LEN 8
#define MAX_HEADER_BYTES 4096u   /* the header is ~300 bytes; anything larger is damage */

enum { ROLE_PARAMS, ROLE_STATS, ROLE_M, ROLE_V, ROLE_VMAX, ROLE_GAVG, N_ROLES };
static const char *const role_names[N_ROLES] = {"parameters", "running statistics", "optimizer m",
                                                "optimizer v", "optimizer vmax", "optimizer gavg"};

/* ---- a byte codec: writes into a growing buffer, or reads with bounds checks */
typedef struct {
  uint8_t *buf;
  size_t len, cap, pos;
  int reading, bad;
} codec;

static void io_bytes(codec *c, void *p, size_t n) {
  if (c->reading) {
    if (c->bad || n > c->len - c->pos) {
      c->bad = 1;
      memset(p, 0, n);
      return;
    }
    memcpy(p, c->buf + c->pos, n);
    c->pos += n;
    return;
  }
  if (c->len + n > c->cap) {
    c->cap = (c->len + n) * 2;
    uint8_t *nb = realloc(c->buf, c->cap);
    if (!nb) ds_fatal(DS_EXIT_RUNTIME, "out of host memory writing a checkpoint header");
    c->buf = nb;
  }
  memcpy(c->buf + c->len, p, n);
  c->len += n;
}

static void put_le(uint8_t *b, uint64_t v, int n) {
  for (int i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_le(const uint8_t *b, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v |= (uint64_t)b[i] << (8 * i);
  return v;
}
static void io_u32(codec *c, uint32_t *v) {
  uint8_t b[4];
  put_le(b, *v, 4);
  io_bytes(c, b, 4);
  *v = (uint32_t)get_le(b, 4);
}
static void io_u64(codec *c, uint64_t *v) {
  uint8_t b[8];
  put_le(b, *v, 8);
  io_bytes(c, b, 8);
  *v = get_le(b, 8);
}
static void io_f32(codec *c, float *v) {
  uint32_t u;
  memcpy(&u, v, 4);
  io_u32(c, &u);
  memcpy(v, &u, 4);
}
/* ints, enums and flags as i32; longs as i64 */
#define IO_INT(c, lv) do { uint32_t u_ = (uint32_t)(int32_t)(lv); io_u32(c, &u_); (lv) = (int32_t)u_; } while (0)
#define IO_LONG(c, lv) do { uint64_t u_ = (uint64_t)(int64_t)(lv); io_u64(c, &u_); (lv) = (long)(int64_t)u_; } while (0)

static uint32_t n_tensors_of(const ds_checkpoint *ck) {
  return 1u + (ck->n_stats > 0) + !!ck->m + !!ck->v + !!ck->vmax + !!ck->gavg;
}

/* Version 1 ends at micro_step; version 2 adds what makes a resume exact
 * anywhere inside an epoch and an evaluation the same model as training;
 * version 3 the separate init / data / dropout seeds, --normalize and the
 * truncated-normal init's std. */
static void header_fields(codec *c, ds_checkpoint *ck, uint32_t version, uint32_t *n_tensors) {
  ds_mlp_spec *s = &ck->cfg.model;
  ds_optim_config *o = &ck->cfg.optim;
  ds_train_config *t = &ck->cfg;
  IO_INT(c, ck->n_inputs);
  IO_INT(c, ck->n_classes);
  IO_INT(c, s->n_hidden);
  if (s->n_hidden < 0 || s->n_hidden > DS_MAX_LAYERS - 1) { /* damaged: stop before indexing */
    c->bad = 1;
    return;
  }
  for (int i = 0; i < s->n_hidden; i++) IO_INT(c, s->hidden[i]);
  IO_INT(c, s->activation);
  io_f32(c, &s->leaky_slope);
  IO_INT(c, s->batchnorm);
  io_f32(c, &s->bn_momentum);
  io_f32(c, &s->bn_eps);
  io_f32(c, &s->dropout);
  io_f32(c, &s->input_dropout);
  IO_INT(c, s->dropout_form);
  IO_INT(c, s->init);
  IO_INT(c, o->kind);
  io_f32(c, &o->lr);
  io_f32(c, &o->momentum);
  io_f32(c, &o->dampening);
  IO_INT(c, o->nesterov);
  IO_INT(c, o->momentum_form);
  IO_INT(c, o->nesterov_form);
  io_f32(c, &o->lr_decay);
  io_f32(c, &o->initial_accumulator);
  io_f32(c, &o->alpha);
  IO_INT(c, o->centered);
  io_f32(c, &o->beta1);
  io_f32(c, &o->beta2);
  IO_INT(c, o->amsgrad);
  io_f32(c, &o->eps);
  IO_INT(c, o->eps_in_sqrt);
  io_f32(c, &o->weight_decay);
  io_f32(c, &o->l1);
  IO_INT(c, o->decay_all);
  io_f32(c, &o->clip_value);
  io_f32(c, &o->clip_norm);
  IO_INT(c, o->schedule);
  IO_LONG(c, o->step_size);
  io_f32(c, &o->gamma);
  io_f32(c, &o->decay);
  IO_LONG(c, o->t_max);
  io_f32(c, &o->lr_min);
  IO_LONG(c, o->warmup);
  IO_INT(c, o->schedule_per_epoch);
  IO_LONG(c, t->epochs);
  IO_LONG(c, t->steps);
  IO_INT(c, t->batch_size);
  IO_INT(c, t->sampling);
  IO_INT(c, t->drop_last);
  IO_INT(c, t->accum);
  io_u64(c, &t->seed);
  IO_INT(c, t->standardize);
  IO_INT(c, t->eval_batch);
  IO_LONG(c, ck->step);
  IO_LONG(c, ck->epoch);
  IO_LONG(c, ck->micro_step);
  if (version >= 2) {
    IO_LONG(c, ck->epoch_batches);
    IO_LONG(c, ck->skipped);
    IO_INT(c, ck->n_train);
    IO_INT(c, ck->n_val);
    io_f32(c, &t->val_fraction);
    IO_INT(c, t->on_nonfinite);
    io_f32(c, &ck->scale);
    io_f32(c, &ck->shift);
    IO_INT(c, ck->cpu_threads);
    io_u32(c, &ck->data_crc);
    ck->has_scaling = 1;
  }
  if (version >= 3) {
    io_u64(c, &t->init_seed);
    io_u64(c, &t->data_seed);
    io_u64(c, &t->dropout_seed);
    io_f32(c, &t->norm_mean);
    io_f32(c, &t->norm_std);
    io_f32(c, &s->init_std);
  } else { /* one seed for everything, no constant normalisation, no truncated normal */
    t->init_seed = t->data_seed = t->dropout_seed = t->seed;
    t->norm_mean = t->norm_std = 0.0f;
    s->init_std = 0.0f;
  }
  uint64_t np = ck->n_params, ns = ck->n_stats;
  io_u64(c, &np);
  io_u64(c, &ns);
  ck->n_params = (size_t)np;
  ck->n_stats = (size_t)ns;
  io_u32(c, n_tensors);
}

static uint32_t crc_of(const void *data, size_t bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const Bytef *p = data;
  while (bytes > 0) { /* zlib takes uInt lengths */
    uInt n = bytes > (1u << 30) ? (1u << 30) : (uInt)bytes;
    crc = crc32(crc, p, n);
    p += n;
    bytes -= n;
  }
  return (uint32_t)crc;
}

/* The tensors in file order; count 0 / NULL where absent. */
static void tensor_list(const ds_checkpoint *ck, float *const *ptrs[N_ROLES], size_t counts[N_ROLES]) {
  ptrs[ROLE_PARAMS] = &ck->params;
  ptrs[ROLE_STATS] = &ck->stats;
  ptrs[ROLE_M] = &ck->m;
  ptrs[ROLE_V] = &ck->v;
  ptrs[ROLE_VMAX] = &ck->vmax;
  ptrs[ROLE_GAVG] = &ck->gavg;
  counts[ROLE_PARAMS] = ck->n_params;
  counts[ROLE_STATS] = ck->n_stats;
  for (int r = ROLE_M; r < N_ROLES; r++) counts[r] = ck->n_params;
}

void ds_checkpoint_free(ds_checkpoint *ck) {
  free(ck->params);
  free(ck->stats);
  free(ck->m);
  free(ck->v);
  free(ck->vmax);
  free(ck->gavg);
  memset(ck, 0, sizeof *ck);
}

/* ---- writing */

static int write_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

static int write_body(FILE *f, const ds_checkpoint *ck) {
  codec c = {0};
  ds_checkpoint copy = *ck;
  /* the version it was read as (a round trip keeps a file's bytes), else the current one */
  uint32_t nt = n_tensors_of(ck), version = ck->version >= 1 && ck->version <= DS_CKPT_VERSION ? ck->version : DS_CKPT_VERSION;
  header_fields(&c, &copy, version, &nt);
  uint8_t pre[MAGIC_LEN + 8];
  memcpy(pre, DS_CKPT_MAGIC, MAGIC_LEN);
  put_le(pre + MAGIC_LEN, version, 4);
  put_le(pre + MAGIC_LEN + 4, c.len, 4);
  uLong crc = crc32(crc32(crc32(0L, Z_NULL, 0), pre, sizeof pre), c.buf, (uInt)c.len);
  uint8_t crcb[4];
  put_le(crcb, crc, 4);
  int rc = write_all(f, pre, sizeof pre) | write_all(f, c.buf, c.len) | write_all(f, crcb, 4);
  free(c.buf);
  float *const *ptrs[N_ROLES];
  size_t counts[N_ROLES];
  tensor_list(ck, ptrs, counts);
  for (int r = 0; r < N_ROLES && rc == 0; r++) {
    const float *data = *ptrs[r];
    if (!data || counts[r] == 0) continue;
    uint8_t th[16];
    put_le(th, (uint64_t)r, 4);
    put_le(th + 4, counts[r], 8);
    put_le(th + 12, crc_of(data, counts[r] * sizeof(float)), 4);
    rc |= write_all(f, th, sizeof th) | write_all(f, data, counts[r] * sizeof(float));
  }
  return rc;
}

int ds_checkpoint_write(const char *path, const ds_checkpoint *ck, char *err, size_t errlen) {
  float *const *ptrs[N_ROLES];
  size_t counts[N_ROLES];
  tensor_list(ck, ptrs, counts);
  for (int r = 0; r < N_ROLES; r++) {
    const float *data = *ptrs[r];
    if (!data) continue;
    for (size_t i = 0; i < counts[r]; i++)
      if (!isfinite(data[i])) {
        snprintf(err, errlen, "%s: not saved: the %s hold a non-finite value (%s at index %zu)", path,
                 role_names[r], isnan(data[i]) ? "NaN" : "Inf", i);
        return DS_CKPT_ENONFINITE;
      }
  }
  /* PATH.tmp beside the file (through a symbolic link: beside its target),
     fsync, rename over it, fsync the folder */
  ds_atomic_file af;
  char why[1024];
  if (ds_atomic_open(&af, path, why, sizeof why) != 0) {
    snprintf(err, errlen, "%s: cannot save the checkpoint (%s)", path, why);
    return DS_CKPT_EIO;
  }
  int rc = write_body(af.f, ck);
  if (ds_atomic_commit(&af, rc != 0, why, sizeof why) != 0) {
    snprintf(err, errlen, "%s: cannot save the checkpoint (%s)", path, why);
    return DS_CKPT_EIO;
  }
  return DS_CKPT_OK;
}

/* ---- reading */

static int bad(char *err, size_t errlen, const char *path, const char *what) {
  snprintf(err, errlen, "%s: not a valid descent checkpoint: %s", path, what);
  return DS_CKPT_EBAD;
}

/* The header's own consistency: enums in range, widths and counters sane, and
 * the sizes it announces equal to the layout its model implies. */
static int check_header(const ds_checkpoint *ck, uint32_t nt, char *why, size_t len) {
  const ds_mlp_spec *s = &ck->cfg.model;
  const ds_optim_config *o = &ck->cfg.optim;
  if (ck->n_inputs < 1 || ck->n_inputs > DS_CKPT_MAX_WIDTH) return snprintf(why, len, "n_inputs %d out of range", ck->n_inputs), -1;
  if (ck->n_classes < 2 || ck->n_classes > DS_CKPT_MAX_WIDTH) return snprintf(why, len, "n_classes %d out of range", ck->n_classes), -1;
  for (int i = 0; i < s->n_hidden; i++)
    if (s->hidden[i] < 1 || s->hidden[i] > DS_CKPT_MAX_WIDTH) return snprintf(why, len, "hidden width %d out of range", s->hidden[i]), -1;
  if ((unsigned)s->activation > DS_ACT_SIGMOID || (unsigned)s->dropout_form > DS_DROPOUT_SCALE_AT_TEST ||
      (unsigned)s->init > DS_INIT_TRUNC_NORMAL || (unsigned)o->kind > DS_OPT_ADAMW ||
      (unsigned)o->momentum_form > DS_MOMENTUM_KERAS || (unsigned)o->nesterov_form > DS_NESTEROV_LOOKAHEAD ||
      (unsigned)o->schedule > DS_SCHED_COSINE || (unsigned)ck->cfg.sampling > DS_SAMPLE_SEQUENTIAL)
    return snprintf(why, len, "an enumerated setting is out of range"), -1;
  const long big = 1L << 50; /* counters no run reaches: damage, or a hand-made file */
  if (ck->step < 0 || ck->epoch < 0 || ck->micro_step < 0 || ck->epoch_batches < 0 || ck->skipped < 0 ||
      ck->skipped > ck->step || ck->step > big || ck->epoch > big || ck->micro_step > big ||
      ck->epoch_batches > (long)DS_IDX_MAX_ITEMS)
    return snprintf(why, len, "negative or inconsistent step/epoch counters"), -1;
  if (ck->n_train < 0 || ck->n_val < 0 || ck->cpu_threads < 0 || !isfinite(ck->cfg.val_fraction) || ck->cfg.val_fraction < 0.0f ||
      ck->cfg.val_fraction >= 1.0f || (unsigned)ck->cfg.on_nonfinite > DS_NONFINITE_SKIP)
    return snprintf(why, len, "a data or run setting is out of range"), -1;
  if (!isfinite(s->init_std) || s->init_std < 0.0f || (s->init == DS_INIT_TRUNC_NORMAL) != (s->init_std > 0.0f) ||
      !isfinite(ck->cfg.norm_mean) || !isfinite(ck->cfg.norm_std) || ck->cfg.norm_std < 0.0f)
    return snprintf(why, len, "an init or input-normalisation setting is out of range"), -1;
  if (ck->has_scaling && (!isfinite(ck->scale) || !(ck->scale > 0.0f) || !isfinite(ck->shift)))
    return snprintf(why, len, "a non-finite or non-positive input scaling"), -1;
  /* the settings `descent eval` rebuilds the model from: what the flags could
   * not have produced is damage (or a hand-made file), not a model */
  const float fl[] = {s->leaky_slope, s->bn_momentum, s->bn_eps, s->dropout, s->input_dropout, o->lr, o->momentum,
                      o->dampening, o->lr_decay, o->initial_accumulator, o->alpha, o->beta1, o->beta2, o->eps,
                      o->weight_decay, o->l1, o->clip_value, o->clip_norm, o->gamma, o->decay, o->lr_min};
  for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++)
    if (!isfinite(fl[i])) return snprintf(why, len, "a non-finite setting (field %zu)", i), -1;
  if (!(s->leaky_slope >= 0 && s->leaky_slope < 1) || !(s->bn_momentum >= 0 && s->bn_momentum <= 1) ||
      !(s->bn_eps > 0) || !(s->dropout >= 0 && s->dropout < 1) || !(s->input_dropout >= 0 && s->input_dropout < 1))
    return snprintf(why, len, "a model setting is out of range"), -1;
  if (ck->cfg.batch_size < 0 || ck->cfg.accum < 1 || ck->cfg.eval_batch < 0 || ck->cfg.epochs < 0 || ck->cfg.steps < 0 ||
      o->step_size < 0 || o->t_max < 0 || o->warmup < 0)
    return snprintf(why, len, "a loop or schedule setting is out of range"), -1;
  const int sw[] = {s->batchnorm, o->nesterov, o->centered, o->amsgrad, o->eps_in_sqrt, o->decay_all,
                    o->schedule_per_epoch, ck->cfg.drop_last, ck->cfg.standardize};
  for (size_t i = 0; i < sizeof sw / sizeof sw[0]; i++)
    if (sw[i] != 0 && sw[i] != 1) return snprintf(why, len, "a switch is %d, not 0 or 1 (field %zu)", sw[i], i), -1;
  char oe[256];
  if (ds_optim_validate(o, oe, sizeof oe) != 0) return snprintf(why, len, "optimizer: %s", oe), -1;
  if (ck->n_params == 0 || ck->n_params > DS_CKPT_MAX_PARAMS || ck->n_stats > DS_CKPT_MAX_PARAMS)
    return snprintf(why, len, "absurd tensor sizes (%zu parameters, %zu statistics)", ck->n_params, ck->n_stats), -1;
  ds_mlp m;
  char e[256];
  if (ds_mlp_layout(&m, s, ck->n_inputs, ck->n_classes, e, sizeof e) != 0) return snprintf(why, len, "model: %s", e), -1;
  if (m.n_params != ck->n_params || m.n_stats != ck->n_stats)
    return snprintf(why, len, "sizes (%zu parameters, %zu statistics) do not match its model (%zu, %zu)", ck->n_params,
                    ck->n_stats, m.n_params, m.n_stats), -1;
  ds_optim_roles ro = ds_optim_state_roles(o);
  uint32_t want = 1u + (ck->n_stats > 0) + !!ro.m + !!ro.v + !!ro.vmax + !!ro.gavg;
  if (nt != want) return snprintf(why, len, "%u tensors where its optimizer needs %u", nt, want), -1;
  return 0;
}

int ds_checkpoint_read(const char *path, ds_checkpoint *ck, char *err, size_t errlen) {
  memset(ck, 0, sizeof *ck);
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open the checkpoint: %s", path, strerror(errno));
    return DS_CKPT_EIO;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    snprintf(err, errlen, "%s: not a regular file", path);
    return DS_CKPT_EIO;
  }
  uint64_t file_size = (uint64_t)st.st_size;
  int rc = DS_CKPT_OK;
  char why[320];
  uint8_t pre[MAGIC_LEN + 8];
  uint8_t *hdr = NULL;
  if (fread(pre, 1, sizeof pre, f) != sizeof pre) { rc = bad(err, errlen, path, "truncated before the header"); goto out; }
  if (memcmp(pre, DS_CKPT_MAGIC, MAGIC_LEN) != 0) { rc = bad(err, errlen, path, "wrong magic (expected DSCKPT01)"); goto out; }
  uint32_t version = (uint32_t)get_le(pre + MAGIC_LEN, 4), hlen = (uint32_t)get_le(pre + MAGIC_LEN + 4, 4);
  if (version < 1 || version > DS_CKPT_VERSION) {
    snprintf(why, sizeof why, "version %u, this descent reads versions 1 to %u", version, DS_CKPT_VERSION);
    rc = bad(err, errlen, path, why);
    goto out;
  }
  if (hlen > MAX_HEADER_BYTES || hlen + 4 > file_size - sizeof pre) { rc = bad(err, errlen, path, "absurd header size"); goto out; }
  hdr = ds_xmalloc(hlen + 4, "a checkpoint header");
  if (fread(hdr, 1, hlen + 4, f) != hlen + 4) { rc = bad(err, errlen, path, "truncated header"); goto out; }
  uLong crc = crc32(crc32(crc32(0L, Z_NULL, 0), pre, sizeof pre), hdr, hlen);
  if ((uint32_t)crc != (uint32_t)get_le(hdr + hlen, 4)) { rc = bad(err, errlen, path, "header checksum mismatch"); goto out; }
  codec c = {.buf = hdr, .len = hlen, .reading = 1};
  uint32_t nt = 0;
  ds_train_config_defaults(&ck->cfg);
  header_fields(&c, ck, version, &nt);
  ck->version = version;
  if (c.bad || c.pos != c.len) { rc = bad(err, errlen, path, "malformed header"); goto out; }
  if (check_header(ck, nt, why, sizeof why) != 0) { rc = bad(err, errlen, path, why); goto out; }
  ds_optim_roles ro = ds_optim_state_roles(&ck->cfg.optim);
  int present[N_ROLES] = {1, ck->n_stats > 0, ro.m, ro.v, ro.vmax, ro.gavg};
  float *const *ptrs[N_ROLES];
  size_t counts[N_ROLES];
  tensor_list(ck, ptrs, counts);
  uint64_t offset = sizeof pre + hlen + 4;
  for (int r = 0; r < N_ROLES; r++) {
    if (!present[r]) continue;
    uint8_t th[16];
    if (fread(th, 1, sizeof th, f) != sizeof th) {
      snprintf(why, sizeof why, "truncated before the %s", role_names[r]);
      rc = bad(err, errlen, path, why);
      goto out;
    }
    offset += sizeof th;
    uint32_t role = (uint32_t)get_le(th, 4);
    uint64_t count = get_le(th + 4, 8);
    if (role != (uint32_t)r || count != counts[r]) {
      snprintf(why, sizeof why, "tensor %u of %llu values where the %s (%zu values) belong", role,
               (unsigned long long)count, role_names[r], counts[r]);
      rc = bad(err, errlen, path, why);
      goto out;
    }
    if (count * sizeof(float) > file_size - offset) { /* before allocating */
      snprintf(why, sizeof why, "truncated in the %s", role_names[r]);
      rc = bad(err, errlen, path, why);
      goto out;
    }
    float *data = ds_xmalloc(count * sizeof(float), role_names[r]);
    *(float **)ptrs[r] = data;
    if (fread(data, sizeof(float), count, f) != count) {
      snprintf(why, sizeof why, "truncated in the %s", role_names[r]);
      rc = bad(err, errlen, path, why);
      goto out;
    }
    offset += count * sizeof(float);
    if (crc_of(data, count * sizeof(float)) != (uint32_t)get_le(th + 12, 4)) {
      snprintf(why, sizeof why, "checksum mismatch in the %s", role_names[r]);
      rc = bad(err, errlen, path, why);
      goto out;
    }
    for (size_t i = 0; i < count; i++)
      if (!isfinite(data[i])) {
        snprintf(why, sizeof why, "non-finite value in the %s", role_names[r]);
        rc = bad(err, errlen, path, why);
        goto out;
      }
  }
  if (offset != file_size) rc = bad(err, errlen, path, "trailing bytes after the last tensor");
out:
  free(hdr);
  fclose(f);
  if (rc != DS_CKPT_OK) ds_checkpoint_free(ck);
  return rc;
}

/* ---- the trainer */

static float *download(const ds_trainer *t, const float *src, size_t n) {
  if (!src || n == 0) return NULL;
  float *h = ds_xmalloc(n * sizeof(float), "a checkpoint tensor");
  t->be->download(h, src, n * sizeof(float));
  return h;
}

void ds_checkpoint_capture(ds_checkpoint *ck, const ds_trainer *t) {
  memset(ck, 0, sizeof *ck);
  ck->cfg = t->cfg;
  ck->cfg.save_path = NULL;
  ck->cfg.save_every = 0;
  ck->n_inputs = t->model.n_inputs;
  ck->n_classes = t->model.n_classes;
  ck->version = DS_CKPT_VERSION;
  ck->step = t->step;
  ck->epoch = t->epoch;
  ck->micro_step = t->micro_step;
  ck->epoch_batches = t->epoch_batches;
  ck->skipped = t->skipped;
  ck->n_train = t->n_train;
  ck->n_val = t->n_val;
  ck->scale = t->scale;
  ck->shift = t->shift;
  ck->cpu_threads = strcmp(t->be->name, "cpu") == 0 ? ds_backend_cpu_threads() : 0;
  ck->data_crc = t->data_crc;
  ck->has_scaling = 1;
  ck->n_params = t->model.n_params;
  ck->n_stats = t->model.n_stats;
  ck->params = download(t, t->params, ck->n_params);
  ck->stats = download(t, t->stats, ck->n_stats);
  ck->m = download(t, t->opt.m, ck->n_params);
  ck->v = download(t, t->opt.v, ck->n_params);
  ck->vmax = download(t, t->opt.vmax, ck->n_params);
  ck->gavg = download(t, t->opt.gavg, ck->n_params);
}

int ds_checkpoint_check(const ds_checkpoint *ck, const ds_trainer *t, char *err, size_t errlen) {
  const ds_mlp_spec *a = &ck->cfg.model, *b = &t->model.spec;
  if (ck->n_inputs != t->model.n_inputs)
    return snprintf(err, errlen, "n_inputs is %d in the checkpoint, %d in the data", ck->n_inputs, t->model.n_inputs), -1;
  if (ck->n_classes != t->model.n_classes)
    return snprintf(err, errlen, "n_classes is %d in the checkpoint, %d in the data", ck->n_classes, t->model.n_classes), -1;
  if (a->n_hidden != b->n_hidden)
    return snprintf(err, errlen, "the number of hidden layers is %d in the checkpoint, %d from --hidden", a->n_hidden, b->n_hidden), -1;
  for (int i = 0; i < a->n_hidden; i++)
    if (a->hidden[i] != b->hidden[i])
      return snprintf(err, errlen, "hidden layer %d has width %d in the checkpoint, %d from --hidden", i + 1, a->hidden[i], b->hidden[i]), -1;
  if (a->batchnorm != b->batchnorm)
    return snprintf(err, errlen, "batchnorm is %s in the checkpoint, %s from the flags", a->batchnorm ? "on" : "off", b->batchnorm ? "on" : "off"), -1;
  if (ck->n_params != t->model.n_params || ck->n_stats != t->model.n_stats)
    return snprintf(err, errlen, "parameter count %zu in the checkpoint, %zu from the flags", ck->n_params, t->model.n_params), -1;
  if (!!ck->m != !!t->opt.m || !!ck->v != !!t->opt.v || !!ck->vmax != !!t->opt.vmax || !!ck->gavg != !!t->opt.gavg)
    return snprintf(err, errlen, "the optimizer state differs (buffers m/v/vmax/gavg: %d%d%d%d in the checkpoint, "
                    "%d%d%d%d from --optimizer %s and its flags)", !!ck->m, !!ck->v, !!ck->vmax, !!ck->gavg,
                    !!t->opt.m, !!t->opt.v, !!t->opt.vmax, !!t->opt.gavg, ds_optim_name(t->cfg.optim.kind)), -1;
  return 0;
}

static void upload(ds_trainer *t, float *dst, const float *src, size_t n) {
  if (dst && src && n) t->be->upload(dst, src, n * sizeof(float));
}

void ds_checkpoint_restore(ds_trainer *t, const ds_checkpoint *ck) {
  float *v = ck->v;
  const ds_optim_config *o = &ck->cfg.optim;
  if (ck->version == 1 && o->kind == DS_OPT_RMSPROP && o->centered && ck->v && ck->gavg) {
    /* version 1 kept torch's square_avg; descent now keeps the variance (optim_math.h) */
    v = ds_xmalloc(ck->n_params * sizeof(float), "the rmsprop state");
    for (size_t i = 0; i < ck->n_params; i++) {
      float var = ck->v[i] - ck->gavg[i] * ck->gavg[i];
      v[i] = var > 0.0f ? var : 0.0f;
    }
  }
  upload(t, t->params, ck->params, ck->n_params);
  upload(t, t->stats, ck->stats, ck->n_stats);
  upload(t, t->opt.m, ck->m, ck->n_params);
  upload(t, t->opt.v, v, ck->n_params);
  if (v != ck->v) free(v);
  upload(t, t->opt.vmax, ck->vmax, ck->n_params);
  upload(t, t->opt.gavg, ck->gavg, ck->n_params);
  t->step = ck->step;
  t->epoch = ck->epoch;
  t->micro_step = ck->micro_step;
  t->epoch_batches = ck->epoch_batches;
  t->skipped = ck->skipped;
  if (ck->has_scaling) t->scale = ck->scale, t->shift = ck->shift;
}

void ds_checkpoint_save_or_die(const ds_trainer *t, const char *path) {
  if (!ds_dist_writes()) return; /* several processes: rank 0 writes, the state is the same on all */
  ds_checkpoint ck;
  ds_checkpoint_capture(&ck, t);
  char err[1024];
  int rc = ds_checkpoint_write(path, &ck, err, sizeof err);
  ds_checkpoint_free(&ck);
  if (rc != DS_CKPT_OK) ds_fatal(DS_EXIT_RUNTIME, "%s", err);
}

/* ---- may a trainer continue a checkpoint's run? */

typedef struct {
  char *buf;
  size_t len, used;
  int n;
} difflist;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void diff_add(difflist *d, const char *fmt, ...) {
  if (!d->buf || d->len == 0) return;
  if (d->used + 3 >= d->len) return;
  if (d->n++ > 0) d->used += (size_t)snprintf(d->buf + d->used, d->len - d->used, "; ");
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(d->buf + d->used, d->len - d->used, fmt, ap);
  va_end(ap);
  if (k > 0) d->used = d->used + (size_t)k < d->len ? d->used + (size_t)k : d->len - 1;
}

static const char *on_off(int v) { return v ? "on" : "off"; }

static void widths(char *buf, size_t len, const ds_mlp_spec *s) {
  int k = snprintf(buf, len, "%s", s->n_hidden ? "" : "none");
  for (int i = 0; i < s->n_hidden && k >= 0 && (size_t)k < len; i++)
    k += snprintf(buf + k, len - (size_t)k, "%s%d", i ? "," : "", s->hidden[i]);
}

/* The flag that set the data seed: --seed unless --data-seed was given apart from it. */
static const char *data_seed_flag(const ds_train_config *a, const ds_train_config *b) {
  return a->data_seed == a->seed && b->data_seed == b->seed ? "--seed" : "--data-seed";
}

int ds_checkpoint_check_resume(const ds_checkpoint *ck, const ds_trainer *t, char *err, size_t errlen,
                               char *changed, size_t changed_len) {
  static const char *const dropout_forms[] = {"inverted", "scale-at-test"};
  static const char *const momentum_forms[] = {"pytorch", "ema", "keras"};
  static const char *const nesterov_forms[] = {"pytorch", "lookahead"};
  static const char *const samplings[] = {"shuffle", "replacement", "sequential"};
  const ds_mlp_spec *a = &ck->cfg.model, *b = &t->model.spec;
  const ds_optim_config *oa = &ck->cfg.optim, *ob = &t->cfg.optim;
  const ds_train_config *ca = &ck->cfg, *cb = &t->cfg;
  difflist bad = {err, errlen, 0, 0}, chg = {changed, changed_len, 0, 0};
  if (err && errlen) err[0] = '\0';
  if (changed && changed_len) changed[0] = '\0';
#define BAD(...) diff_add(&bad, __VA_ARGS__)
  /* the data and the model */
  if (ck->n_inputs != t->model.n_inputs) BAD("input size: %d in the checkpoint, %d in the data", ck->n_inputs, t->model.n_inputs);
  if (ck->n_classes != t->model.n_classes) BAD("classes: %d in the checkpoint, %d in the data", ck->n_classes, t->model.n_classes);
  char wa[160], wb[160];
  widths(wa, sizeof wa, a);
  widths(wb, sizeof wb, b);
  if (strcmp(wa, wb) != 0) BAD("--hidden: %s in the checkpoint, %s now", wa, wb);
  if (a->activation != b->activation)
    BAD("--activation: %s in the checkpoint, %s now", ds_activation_name(a->activation), ds_activation_name(b->activation));
  else if (a->activation == DS_ACT_LEAKY_RELU && a->leaky_slope != b->leaky_slope)
    BAD("--leaky-slope: %g in the checkpoint, %g now", (double)a->leaky_slope, (double)b->leaky_slope);
  if (a->batchnorm != b->batchnorm) BAD("--batchnorm: %s in the checkpoint, %s now", on_off(a->batchnorm), on_off(b->batchnorm));
  if (a->batchnorm && b->batchnorm && a->bn_eps != b->bn_eps)
    BAD("--bn-eps: %g in the checkpoint, %g now (it normalises with the running statistics)", (double)a->bn_eps,
        (double)b->bn_eps);
  if (a->dropout_form != b->dropout_form)
    BAD("--dropout-form: %s in the checkpoint, %s now", dropout_forms[a->dropout_form], dropout_forms[b->dropout_form]);
  /* the optimizer and every flag that selects its form */
  if (oa->kind != ob->kind) {
    BAD("--optimizer: %s in the checkpoint, %s now", ds_optim_name(oa->kind), ds_optim_name(ob->kind));
  } else {
    if (oa->nesterov != ob->nesterov) BAD("--nesterov: %s in the checkpoint, %s now", on_off(oa->nesterov), on_off(ob->nesterov));
    if (oa->momentum_form != ob->momentum_form)
      BAD("--momentum-form: %s in the checkpoint, %s now", momentum_forms[oa->momentum_form], momentum_forms[ob->momentum_form]);
    if (oa->nesterov_form != ob->nesterov_form)
      BAD("--nesterov-form: %s in the checkpoint, %s now", nesterov_forms[oa->nesterov_form], nesterov_forms[ob->nesterov_form]);
    if (oa->amsgrad != ob->amsgrad) BAD("--amsgrad: %s in the checkpoint, %s now", on_off(oa->amsgrad), on_off(ob->amsgrad));
    if (oa->centered != ob->centered) BAD("--centered: %s in the checkpoint, %s now", on_off(oa->centered), on_off(ob->centered));
    if (oa->eps_in_sqrt != ob->eps_in_sqrt)
      BAD("--eps-in-sqrt: %s in the checkpoint, %s now", on_off(oa->eps_in_sqrt), on_off(ob->eps_in_sqrt));
    if ((oa->momentum > 0.0f) != (ob->momentum > 0.0f))
      BAD("--momentum: %g in the checkpoint, %g now (with and without a momentum buffer)", (double)oa->momentum,
          (double)ob->momentum);
  }
  /* the inputs and the validation split */
  if (ca->standardize != cb->standardize)
    BAD("--standardize: %s in the checkpoint, %s now", on_off(ca->standardize), on_off(cb->standardize));
  if (ca->norm_mean != cb->norm_mean || ca->norm_std != cb->norm_std) {
    if (ca->norm_std > 0.0f && cb->norm_std > 0.0f)
      BAD("--normalize: %g,%g in the checkpoint, %g,%g now", (double)ca->norm_mean, (double)ca->norm_std,
          (double)cb->norm_mean, (double)cb->norm_std);
    else
      BAD("--normalize: %s in the checkpoint, %s now", on_off(ca->norm_std > 0.0f), on_off(cb->norm_std > 0.0f));
  }
  if (ck->version >= 2) {
    if (ca->val_fraction != cb->val_fraction)
      BAD("--val-fraction: %g in the checkpoint, %g now", (double)ca->val_fraction, (double)cb->val_fraction);
    else if (ca->val_fraction > 0.0f && ca->data_seed != cb->data_seed)
      BAD("%s: %llu in the checkpoint, %llu now (it picks the validation split)", data_seed_flag(ca, cb),
          (unsigned long long)ca->data_seed, (unsigned long long)cb->data_seed);
    if (ck->n_train != t->n_train || ck->n_val != t->n_val)
      BAD("the training data: %d training and %d validation rows in the checkpoint, %d and %d now", ck->n_train,
          ck->n_val, t->n_train, t->n_val);
    else if (ck->data_crc != t->data_crc)
      BAD("the training data: other images or labels (CRC-32 %08x in the checkpoint, %08x now)", ck->data_crc,
          t->data_crc);
    else if (ca->standardize == cb->standardize && ca->norm_std == cb->norm_std && (ck->scale != t->scale || ck->shift != t->shift))
      BAD("the input scaling: x = byte * %.9g + %.9g in the checkpoint, * %.9g + %.9g now (other training images)",
          (double)ck->scale, (double)ck->shift, (double)t->scale, (double)t->shift);
  }
  /* inside an epoch the position counts batches of the stored size and order */
  long bpe = ds_sampler_batches_per_epoch(&t->sampler);
  if (ck->epoch_batches > 0 && ck->epoch_batches >= bpe && ca->batch_size == cb->batch_size)
    BAD("the position in the epoch: batch %ld of an epoch of %ld (a damaged checkpoint?)", ck->epoch_batches, bpe);
  if (ck->epoch_batches > 0) {
    const char *where = "the checkpoint is inside an epoch; this may change at an epoch boundary only";
    if (ca->batch_size != cb->batch_size) BAD("--batch-size: %d in the checkpoint, %d now (%s)", ca->batch_size, cb->batch_size, where);
    if (ca->accum != cb->accum) BAD("--accum: %d in the checkpoint, %d now (%s)", ca->accum, cb->accum, where);
    if (ca->sampling != cb->sampling)
      BAD("--sampling: %s in the checkpoint, %s now (%s)", samplings[ca->sampling], samplings[cb->sampling], where);
    if (ca->drop_last != cb->drop_last) BAD("--drop-last: %s in the checkpoint, %s now (%s)", on_off(ca->drop_last), on_off(cb->drop_last), where);
    if (ca->data_seed != cb->data_seed && ca->val_fraction <= 0.0f)
      BAD("%s: %llu in the checkpoint, %llu now (%s: it orders the batches)", data_seed_flag(ca, cb),
          (unsigned long long)ca->data_seed, (unsigned long long)cb->data_seed, where);
  }
#undef BAD
  if (bad.n > 0) return -1;
  /* what may change, said once */
#define CHG_F(flag, x, y) if ((x) != (y)) diff_add(&chg, "%s %g (%g in the checkpoint)", flag, (double)(y), (double)(x))
  CHG_F("--lr", oa->lr, ob->lr);
  CHG_F("--momentum", oa->momentum, ob->momentum);
  CHG_F("--beta1", oa->beta1, ob->beta1);
  CHG_F("--beta2", oa->beta2, ob->beta2);
  CHG_F("--eps", oa->eps, ob->eps);
  CHG_F("--weight-decay", oa->weight_decay, ob->weight_decay);
  CHG_F("--l1", oa->l1, ob->l1);
  CHG_F("--clip-norm", oa->clip_norm, ob->clip_norm);
  CHG_F("--clip-value", oa->clip_value, ob->clip_value);
  CHG_F("--dropout", a->dropout, b->dropout);
  CHG_F("--bn-momentum", a->bn_momentum, b->bn_momentum);
  CHG_F("--alpha", oa->alpha, ob->alpha);
  CHG_F("--lr-decay", oa->lr_decay, ob->lr_decay);
  CHG_F("--initial-accumulator", oa->initial_accumulator, ob->initial_accumulator);
  CHG_F("--dampening", oa->dampening, ob->dampening);
  CHG_F("--decay-all", oa->decay_all, ob->decay_all);
  CHG_F("--schedule-per-epoch", oa->schedule_per_epoch, ob->schedule_per_epoch);
  CHG_F("--drop-last", ca->drop_last, cb->drop_last);
  CHG_F("--sampling (0 shuffle, 1 replacement, 2 sequential)", ca->sampling, cb->sampling);
  if (ck->version >= 2) CHG_F("--on-nonfinite (0 stop, 1 skip)", ca->on_nonfinite, cb->on_nonfinite);
  CHG_F("--input-dropout", a->input_dropout, b->input_dropout);
  CHG_F("--batch-size", ca->batch_size, cb->batch_size);
  CHG_F("--accum", ca->accum, cb->accum);
  if (oa->schedule != ob->schedule || oa->warmup != ob->warmup || oa->step_size != ob->step_size ||
      oa->gamma != ob->gamma || oa->decay != ob->decay || oa->t_max != ob->t_max || oa->lr_min != ob->lr_min)
    diff_add(&chg, "the learning-rate schedule");
  if (ca->seed != cb->seed) diff_add(&chg, "--seed %llu (%llu in the checkpoint)", (unsigned long long)cb->seed,
                                     (unsigned long long)ca->seed);
  if (ca->init_seed != cb->init_seed)
    diff_add(&chg, "--init-seed %llu (%llu in the checkpoint; the parameters come from the checkpoint)",
             (unsigned long long)cb->init_seed, (unsigned long long)ca->init_seed);
  if (ca->dropout_seed != cb->dropout_seed)
    diff_add(&chg, "--dropout-seed %llu (%llu in the checkpoint)", (unsigned long long)cb->dropout_seed,
             (unsigned long long)ca->dropout_seed);
  if (ca->data_seed != cb->data_seed && ca->val_fraction <= 0.0f && ck->epoch_batches == 0)
    diff_add(&chg, "--data-seed %llu (%llu in the checkpoint)", (unsigned long long)cb->data_seed,
             (unsigned long long)ca->data_seed);
  int threads = strcmp(t->be->name, "cpu") == 0 ? ds_backend_cpu_threads() : 0;
  if (ck->version >= 2 && ck->cpu_threads > 0 && threads > 0 && ck->cpu_threads != threads)
    diff_add(&chg, "%d GEMM threads (%d in the checkpoint: the continuation is not bit-identical to a run on %d)",
             threads, ck->cpu_threads, ck->cpu_threads);
#undef CHG_F
  return 0;
}

void ds_checkpoint_resume_or_die(ds_trainer *t, const char *path) {
  ds_checkpoint ck;
  char err[1024];
  if (ds_checkpoint_read(path, &ck, err, sizeof err) != DS_CKPT_OK) ds_fatal(DS_EXIT_USAGE, "%s", err);
  char why[2048], changed[1024];
  if (ds_checkpoint_check_resume(&ck, t, why, sizeof why, changed, sizeof changed) != 0) {
    ds_checkpoint_free(&ck);
    ds_fatal(DS_EXIT_USAGE, "--resume %s: cannot continue that run with these settings: %s", path, why);
  }
  if (changed[0] && !t->cfg.quiet) ds_note("--resume %s: continuing with changed settings: %s", path, changed);
  ds_checkpoint_restore(t, &ck);
  ds_checkpoint_free(&ck);
}
