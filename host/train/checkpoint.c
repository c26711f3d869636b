/* Checkpoints: save and verify a trainer's whole state (layout in
 * include/descent/checkpoint.h). One function, header_fields(), both writes and
 * reads the header, so the two directions cannot drift apart. */
#define _POSIX_C_SOURCE 200809L
#include "descent/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "descent/common.h"

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

static void header_fields(codec *c, ds_checkpoint *ck, uint32_t *n_tensors) {
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
  uint32_t nt = n_tensors_of(ck), version = DS_CKPT_VERSION;
  header_fields(&c, &copy, &nt);
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

/* fsync the folder holding path, so the rename itself survives a crash.
 * Filesystems that cannot sync a folder (EINVAL) are not an error. */
static int sync_parent(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == path) snprintf(dir, sizeof dir, "/");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  int fd = open(dir, O_RDONLY);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  if (rc != 0 && (errno == EINVAL || errno == EROFS)) rc = 0;
  close(fd);
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
  size_t plen = strlen(path);
  char *tmp = ds_xmalloc(plen + 5, "a file name");
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp", 5);
  const char *stage = "create";
  FILE *f = fopen(tmp, "wb");
  int rc = f ? 0 : -1;
  if (rc == 0) {
    stage = "write";
    rc = write_body(f, ck);
    if (rc == 0 && fflush(f) != 0) rc = -1;
    if (rc == 0 && fsync(fileno(f)) != 0) { stage = "sync"; rc = -1; }
  }
  int saved_errno = errno;
  if (f && fclose(f) != 0 && rc == 0) { stage = "close"; rc = -1; saved_errno = errno; }
  if (rc == 0 && rename(tmp, path) != 0) { stage = "rename"; rc = -1; saved_errno = errno; }
  if (rc != 0) {
    unlink(tmp); /* the previous checkpoint at path is untouched */
    snprintf(err, errlen, "%s: cannot save the checkpoint (%s %s: %s)", path, stage, tmp, strerror(saved_errno));
    free(tmp);
    return DS_CKPT_EIO;
  }
  free(tmp);
  if (sync_parent(path) != 0) {
    snprintf(err, errlen, "%s: saved, but syncing its folder failed: %s", path, strerror(errno));
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
      (unsigned)s->init > DS_INIT_PYTORCH || (unsigned)o->kind > DS_OPT_ADAMW ||
      (unsigned)o->momentum_form > DS_MOMENTUM_KERAS || (unsigned)o->nesterov_form > DS_NESTEROV_LOOKAHEAD ||
      (unsigned)o->schedule > DS_SCHED_COSINE || (unsigned)ck->cfg.sampling > DS_SAMPLE_SEQUENTIAL)
    return snprintf(why, len, "an enumerated setting is out of range"), -1;
  if (ck->step < 0 || ck->epoch < 0 || ck->micro_step < 0) return snprintf(why, len, "negative step/epoch counters"), -1;
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
  if (version != DS_CKPT_VERSION) {
    snprintf(why, sizeof why, "version %u, this descent reads version %u", version, DS_CKPT_VERSION);
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
  header_fields(&c, ck, &nt);
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
  ck->step = t->step;
  ck->epoch = t->epoch;
  ck->micro_step = t->micro_step;
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
    return snprintf(err, errlen, "the optimizer state differs (%s in the checkpoint, %s from --optimizer and its flags)",
                    ds_optim_name(ck->cfg.optim.kind), ds_optim_name(t->cfg.optim.kind)), -1;
  return 0;
}

static void upload(ds_trainer *t, float *dst, const float *src, size_t n) {
  if (dst && src && n) t->be->upload(dst, src, n * sizeof(float));
}

void ds_checkpoint_restore(ds_trainer *t, const ds_checkpoint *ck) {
  upload(t, t->params, ck->params, ck->n_params);
  upload(t, t->stats, ck->stats, ck->n_stats);
  upload(t, t->opt.m, ck->m, ck->n_params);
  upload(t, t->opt.v, ck->v, ck->n_params);
  upload(t, t->opt.vmax, ck->vmax, ck->n_params);
  upload(t, t->opt.gavg, ck->gavg, ck->n_params);
  t->step = ck->step;
  t->epoch = ck->epoch;
  t->micro_step = ck->micro_step;
}

void ds_checkpoint_save_or_die(const ds_trainer *t, const char *path) {
  ds_checkpoint ck;
  ds_checkpoint_capture(&ck, t);
  char err[1024];
  int rc = ds_checkpoint_write(path, &ck, err, sizeof err);
  ds_checkpoint_free(&ck);
  if (rc != DS_CKPT_OK) ds_fatal(DS_EXIT_RUNTIME, "%s", err);
}

void ds_checkpoint_resume_or_die(ds_trainer *t, const char *path) {
  ds_checkpoint ck;
  char err[1024];
  if (ds_checkpoint_read(path, &ck, err, sizeof err) != DS_CKPT_OK) ds_fatal(DS_EXIT_USAGE, "%s", err);
  char why[512];
  if (ds_checkpoint_check(&ck, t, why, sizeof why) != 0) {
    ds_checkpoint_free(&ck);
    ds_fatal(DS_EXIT_USAGE, "%s: does not fit this run: %s", path, why);
  }
  ds_checkpoint_restore(t, &ck);
  ds_checkpoint_free(&ck);
}
