/* Checkpoints: round trip of a tiny trained model (bit-exact), the file layout
 * checked against an independent parse (sizes, zlib CRC32 of the parameters),
 * every kind of damage rejected with DS_CKPT_EBAD, non-finite values refused,
 * and failing saves leaving the previous file untouched. CPU backend only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "descent/checkpoint.h"

static char dir[256];

static void make_data(ds_dataset *d, int n, unsigned salt) {
  memset(d, 0, sizeof *d);
  d->n = n;
  d->d = 6;
  d->rows = 2;
  d->cols = 3;
  d->n_classes = 3;
  d->images = malloc((size_t)n * 6);
  d->labels = malloc((size_t)n);
  for (int i = 0; i < n; i++) {
    d->labels[i] = (uint8_t)((i * 7 + salt) % 3);
    for (int j = 0; j < 6; j++) d->images[i * 6 + j] = (uint8_t)((i * 31 + j * 17 + salt * 5 + d->labels[i] * 60) & 255);
  }
}

static void config(ds_train_config *c) {
  ds_train_config_defaults(c);
  c->model.n_hidden = 2;
  c->model.hidden[0] = 5;
  c->model.hidden[1] = 4;
  c->model.batchnorm = 1;
  c->model.dropout = 0.1f;
  ds_optim_defaults(&c->optim, DS_OPT_ADAM);
  c->optim.amsgrad = 1; /* adds the vmax buffer: 5 tensors */
  c->batch_size = 4;
  c->seed = 11;
  c->quiet = 1;
}

static size_t read_file(const char *path, unsigned char **out) {
  FILE *f = fopen(path, "rb");
  if (!f) { *out = NULL; return 0; }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  *out = malloc((size_t)n + 1);
  size_t got = fread(*out, 1, (size_t)n, f);
  fclose(f);
  return got;
}

static void write_file(const char *path, const unsigned char *b, size_t n) {
  FILE *f = fopen(path, "wb");
  fwrite(b, 1, n, f);
  fclose(f);
}

static int same_floats(const float *a, const float *b, size_t n) {
  if (!a || !b) return a == b;
  return memcmp(a, b, n * sizeof(float)) == 0;
}

static uint64_t le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* a damaged copy must be refused as EBAD, with a message naming the file */
static void expect_bad(const char *what, const unsigned char *bytes, size_t n) {
  char path[400], err[1024] = "";
  snprintf(path, sizeof path, "%s/damaged.ckpt", dir);
  write_file(path, bytes, n);
  ds_checkpoint ck;
  int rc = ds_checkpoint_read(path, &ck, err, sizeof err);
  CHECK(rc == DS_CKPT_EBAD, "%s: rejected as bad (rc %d)", what, rc);
  CHECK(strstr(err, path) != NULL, "%s: the message names the file: %s", what, err);
  CHECK(ck.params == NULL, "%s: nothing left allocated", what);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/test_checkpoint.XXXXXX");
  if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
  const ds_backend *be = ds_backend_cpu();
  ds_dataset train, test;
  make_data(&train, 22, 0);
  make_data(&test, 9, 1);
  ds_train_config cfg;
  config(&cfg);
  ds_trainer t;
  ds_trainer_init(&t, be, &cfg, &train, &test);
  ds_sampler_begin_epoch(&t.sampler, 0);
  for (int i = 0; i < 3; i++) ds_trainer_update(&t, 1);
  t.epoch = 1;

  /* ---- round trip */
  char path[400], err[1024];
  snprintf(path, sizeof path, "%s/a.ckpt", dir);
  ds_checkpoint saved, loaded;
  ds_checkpoint_capture(&saved, &t);
  CHECK(saved.m && saved.v && saved.vmax && !saved.gavg && saved.stats, "adam+amsgrad+bn: m, v, vmax, stats captured");
  int rc = ds_checkpoint_write(path, &saved, err, sizeof err);
  CHECK(rc == DS_CKPT_OK, "write ok: %s", rc ? err : "");
  struct stat st;
  char tmpname[420];
  snprintf(tmpname, sizeof tmpname, "%s.tmp", path);
  CHECK(stat(tmpname, &st) != 0, "no .tmp left after a successful save");
  rc = ds_checkpoint_read(path, &loaded, err, sizeof err);
  CHECK(rc == DS_CKPT_OK, "read ok: %s", rc ? err : "");
  if (rc == DS_CKPT_OK) {
    CHECK(loaded.n_params == t.model.n_params && loaded.n_stats == t.model.n_stats, "sizes");
    CHECK(loaded.step == 3 && loaded.epoch == 1 && loaded.micro_step == 3, "counters %ld %ld %ld", loaded.step,
          loaded.epoch, loaded.micro_step);
    CHECK(loaded.n_inputs == 6 && loaded.n_classes == 3 && loaded.cfg.model.n_hidden == 2 &&
              loaded.cfg.model.hidden[0] == 5 && loaded.cfg.model.hidden[1] == 4,
          "model shape");
    CHECK(loaded.cfg.model.batchnorm == 1 && loaded.cfg.model.dropout == 0.1f && loaded.cfg.optim.kind == DS_OPT_ADAM &&
              loaded.cfg.optim.amsgrad == 1 && loaded.cfg.optim.beta2 == cfg.optim.beta2 && loaded.cfg.seed == 11 &&
              loaded.cfg.batch_size == 4,
          "configuration");
    CHECK(same_floats(saved.params, loaded.params, saved.n_params) && same_floats(saved.stats, loaded.stats, saved.n_stats) &&
              same_floats(saved.m, loaded.m, saved.n_params) && same_floats(saved.v, loaded.v, saved.n_params) &&
              same_floats(saved.vmax, loaded.vmax, saved.n_params) && loaded.gavg == NULL,
          "tensors bit-identical");
    /* restore into a fresh trainer and read the backend buffers back */
    ds_trainer t2;
    ds_trainer_init(&t2, be, &cfg, &train, &test);
    CHECK(ds_checkpoint_check(&loaded, &t2, err, sizeof err) == 0, "fits the same flags");
    ds_checkpoint_restore(&t2, &loaded);
    ds_checkpoint again;
    ds_checkpoint_capture(&again, &t2);
    CHECK(again.step == 3 && again.epoch == 1 && again.micro_step == 3, "restored counters");
    CHECK(same_floats(again.params, saved.params, saved.n_params) && same_floats(again.v, saved.v, saved.n_params),
          "restored tensors bit-identical");
    ds_checkpoint_free(&again);
    ds_trainer_free(&t2);
    /* a different width is a shape mismatch naming the layer */
    ds_train_config other = cfg;
    other.model.hidden[1] = 7;
    ds_trainer t3;
    ds_trainer_init(&t3, be, &other, &train, &test);
    CHECK(ds_checkpoint_check(&loaded, &t3, err, sizeof err) != 0 && strstr(err, "hidden layer 2"),
          "width mismatch named: %s", err);
    ds_trainer_free(&t3);
    ds_checkpoint_free(&loaded);
  }

  /* ---- the layout, parsed independently: sizes and zlib crc32 of the parameters */
  unsigned char *bytes;
  size_t n = read_file(path, &bytes);
  size_t hlen = (size_t)le(bytes + 12, 4);
  size_t np = t.model.n_params, ns = t.model.n_stats;
  CHECK(memcmp(bytes, "DSCKPT01", 8) == 0 && le(bytes + 8, 4) == DS_CKPT_VERSION, "magic and version %u", DS_CKPT_VERSION);
  CHECK(n == 16 + hlen + 4 + 16 * 5 + 4 * (4 * np + ns), "file size %zu = header + 5 tensors", n);
  const unsigned char *tp = bytes + 16 + hlen + 4;
  CHECK(le(tp, 4) == 0 && le(tp + 4, 8) == np, "first tensor: params, %zu values", np);
  CHECK(le(tp + 12, 4) == (uint32_t)crc32(0L, (const Bytef *)saved.params, (uInt)(np * sizeof(float))),
        "params crc32 equals zlib's");
  uLong hcrc = crc32(0L, bytes, (uInt)(16 + hlen));
  CHECK(le(bytes + 16 + hlen, 4) == (uint32_t)hcrc, "header crc32 equals zlib's");

  /* ---- damage */
  unsigned char *copy = malloc(n);
  memcpy(copy, bytes, n);
  copy[n - 5] ^= 0x01; /* last tensor's data */
  expect_bad("flipped byte in a tensor", copy, n);
  memcpy(copy, bytes, n);
  copy[16 + 8] ^= 0x40; /* inside the header payload */
  expect_bad("flipped byte in the header", copy, n);
  memcpy(copy, bytes, n);
  copy[16 + hlen + 4 + 5] ^= 0x01; /* a tensor's count */
  expect_bad("flipped byte in a tensor count", copy, n);
  expect_bad("truncated by 3 bytes", bytes, n - 3);
  expect_bad("truncated in the header", bytes, 30);
  expect_bad("empty", bytes, 0);
  memcpy(copy, bytes, n);
  copy[0] = 'X';
  expect_bad("wrong magic", copy, n);
  memcpy(copy, bytes, n);
  copy[8] = (unsigned char)(DS_CKPT_VERSION + 1);
  expect_bad("a version from the future", copy, n);
  memcpy(copy, bytes, n);
  copy[8] = 0;
  expect_bad("version 0", copy, n);
  memcpy(copy, bytes, n);
  copy = realloc(copy, n + 1);
  copy[n] = 0;
  expect_bad("trailing byte", copy, n + 1);
  char missing[420];
  snprintf(missing, sizeof missing, "%s/none.ckpt", dir);
  ds_checkpoint tmpck;
  CHECK(ds_checkpoint_read(missing, &tmpck, err, sizeof err) == DS_CKPT_EIO && strstr(err, missing), "missing file: EIO");

  /* ---- non-finite values are never saved */
  char nanpath[420];
  snprintf(nanpath, sizeof nanpath, "%s/nan.ckpt", dir);
  saved.params[2] = NAN;
  CHECK(ds_checkpoint_write(nanpath, &saved, err, sizeof err) == DS_CKPT_ENONFINITE && stat(nanpath, &st) != 0,
        "NaN parameter refused, no file: %s", err);
  saved.params[2] = INFINITY;
  CHECK(ds_checkpoint_write(path, &saved, err, sizeof err) == DS_CKPT_ENONFINITE, "Inf parameter refused");
  saved.params[2] = 0.5f;

  /* ---- failing saves leave the old file intact */
  char bad_path[420];
  snprintf(bad_path, sizeof bad_path, "%s/no/such/dir/x.ckpt", dir);
  CHECK(ds_checkpoint_write(bad_path, &saved, err, sizeof err) == DS_CKPT_EIO && strstr(err, bad_path),
        "missing folder: EIO naming the path: %s", err);
  /* path.tmp is a folder: the temporary cannot be created (works as root too) */
  mkdir(tmpname, 0700);
  CHECK(ds_checkpoint_write(path, &saved, err, sizeof err) == DS_CKPT_EIO, "unwritable temporary: EIO: %s", err);
  rmdir(tmpname);
  unsigned char *after;
  size_t n2 = read_file(path, &after);
  CHECK(n2 == n && memcmp(after, bytes, n) == 0, "old checkpoint untouched after a failed save");
  free(after);
  /* path.tmp -> /dev/full: every write fails with ENOSPC at flush */
  if (symlink("/dev/full", tmpname) == 0) {
    CHECK(ds_checkpoint_write(path, &saved, err, sizeof err) == DS_CKPT_EIO && strstr(err, "No space"),
          "/dev/full: EIO: %s", err);
    n2 = read_file(path, &after);
    CHECK(n2 == n && memcmp(after, bytes, n) == 0, "old checkpoint untouched after a full disk");
    free(after);
    CHECK(lstat(tmpname, &st) != 0, "the temporary is removed");
    unlink(tmpname);
  }

  free(copy);
  free(bytes);
  ds_checkpoint_free(&saved);
  ds_trainer_free(&t);
  ds_dataset_free(&train);
  ds_dataset_free(&test);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", dir);
  return check_finish("test_checkpoint");
}
