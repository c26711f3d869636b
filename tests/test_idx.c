/* IDX reader and dataset loading (datasets/idx.c, datasets/data.c).
 *
 * Files are written here, byte by byte from the format's definition (magic,
 * big-endian dimensions, payload), raw and through zlib, into a mkdtemp
 * folder; the reader must give back exactly the bytes written, and reject
 * every malformed variant with a message that names the file. ds_data_load
 * exits the process on bad input, so those cases run in a forked child whose
 * exit status and stderr are checked. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "descent/data.h"

static char dir[256];

/* ---- writing IDX files ---------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* An IDX byte image: magic, ndim dims, then `payload` bytes of pattern data
 * (byte i = (i * 7 + salt) & 0xff, so content errors cannot hide). */
typedef struct { uint8_t *b; size_t len; } bytes_t;

static bytes_t idx_bytes(uint32_t magic, int ndim, const uint32_t *dims, size_t payload, int salt) {
  bytes_t r;
  r.len = 4 + 4 * (size_t)ndim + payload;
  r.b = malloc(r.len);
  put_be32(r.b, magic);
  for (int i = 0; i < ndim; i++) put_be32(r.b + 4 + 4 * i, dims[i]);
  uint8_t *p = r.b + 4 + 4 * ndim;
  for (size_t i = 0; i < payload; i++) p[i] = (uint8_t)((i * 7 + (size_t)salt) & 0xff);
  return r;
}

/* Images n x rows x cols with a correct payload. */
static bytes_t images_bytes(uint32_t n, uint32_t rows, uint32_t cols, int salt) {
  uint32_t d[3] = {n, rows, cols};
  return idx_bytes(DS_IDX_MAGIC_IMAGES, 3, d, (size_t)n * rows * cols, salt);
}

/* Labels: the given values. */
static bytes_t labels_bytes(const uint8_t *labels, uint32_t n) {
  uint32_t d[1] = {n};
  bytes_t r = idx_bytes(DS_IDX_MAGIC_LABELS, 1, d, n, 0);
  memcpy(r.b + 8, labels, n);
  return r;
}

static const char *path_of(const char *name) {
  static char bufs[8][512];
  static int k = 0;
  char *p = bufs[k++ % 8];
  snprintf(p, 512, "%s/%s", dir, name);
  return p;
}

static void write_raw(const char *path, const uint8_t *b, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(b, 1, len, f) != len || fclose(f) != 0) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(1);
  }
}

static void write_gz(const char *path, const uint8_t *b, size_t len) {
  gzFile g = gzopen(path, "wb");
  if (!g || (len && gzwrite(g, b, (unsigned)len) != (int)len) || gzclose(g) != Z_OK) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(1);
  }
}

static size_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

/* ---- reading ------------------------------------------------------------- */

/* Read `path` and expect success with exactly `want`'s header and payload. */
static void expect_good(const char *path, uint32_t magic, const bytes_t *want) {
  ds_idx idx;
  char err[512] = "";
  int rc = ds_idx_read(path, magic, &idx, err, sizeof err);
  CHECK(rc == 0, "%s: read failed: %s", path, err);
  if (rc != 0) return;
  int ndim = (int)(magic & 0xff);
  CHECK(idx.magic == magic && idx.ndim == ndim, "%s: magic 0x%08x ndim %d", path, idx.magic, idx.ndim);
  size_t item = 1;
  for (int i = 0; i < ndim; i++) {
    uint32_t d = ((uint32_t)want->b[4 + 4 * i] << 24) | ((uint32_t)want->b[5 + 4 * i] << 16) |
                 ((uint32_t)want->b[6 + 4 * i] << 8) | want->b[7 + 4 * i];
    CHECK(idx.dims[i] == d, "%s: dims[%d] = %u, want %u", path, i, idx.dims[i], d);
    if (i > 0) item *= d;
  }
  CHECK(idx.item_size == item, "%s: item_size %zu, want %zu", path, idx.item_size, item);
  size_t header = 4 + 4 * (size_t)ndim;
  CHECK(idx.data && memcmp(idx.data, want->b + header, want->len - header) == 0,
        "%s: payload differs from what was written", path);
  ds_idx_free(&idx);
  CHECK(idx.data == NULL, "ds_idx_free leaves data NULL");
}

/* Expect a failure whose message names `path` and contains `word`. */
static void expect_bad(const char *path, uint32_t magic, const char *word, const char *what) {
  ds_idx idx;
  char err[512] = "";
  int rc = ds_idx_read(path, magic, &idx, err, sizeof err);
  CHECK(rc == -1, "%s (%s): accepted", path, what);
  CHECK(strstr(err, path) != NULL, "%s (%s): message does not name the file: '%s'", path, what, err);
  CHECK(word == NULL || strstr(err, word) != NULL, "%s (%s): message lacks '%s': '%s'", path, what,
        word, err);
  CHECK(strchr(err, '\n') == NULL, "%s (%s): message is not one line", path, what);
  if (rc == 0) ds_idx_free(&idx);
}

/* The same file written raw and gzipped must both be rejected. */
static void expect_bad_both(const char *stem, const bytes_t *b, uint32_t magic, const char *word) {
  char name[128];
  snprintf(name, sizeof name, "%s", stem);
  const char *raw = path_of(name);
  write_raw(raw, b->b, b->len);
  expect_bad(raw, magic, word, stem);
  snprintf(name, sizeof name, "%s.gz", stem);
  const char *gz = path_of(name);
  write_gz(gz, b->b, b->len);
  expect_bad(gz, magic, word, stem);
}

static void test_good_files(void) {
  bytes_t im = images_bytes(37, 5, 3, 11);
  uint8_t lab[37];
  for (int i = 0; i < 37; i++) lab[i] = (uint8_t)(i % 10);
  bytes_t lb = labels_bytes(lab, 37);
  write_raw(path_of("good-images"), im.b, im.len);
  write_gz(path_of("good-images.gz"), im.b, im.len);
  write_raw(path_of("good-labels"), lb.b, lb.len);
  write_gz(path_of("good-labels.gz"), lb.b, lb.len);
  /* the gzip file really is compressed (so the gzip path was exercised) */
  CHECK(file_size(path_of("good-images.gz")) != im.len, "gz file has the raw size");
  expect_good(path_of("good-images"), DS_IDX_MAGIC_IMAGES, &im);
  expect_good(path_of("good-images.gz"), DS_IDX_MAGIC_IMAGES, &im);
  expect_good(path_of("good-labels"), DS_IDX_MAGIC_LABELS, &lb);
  expect_good(path_of("good-labels.gz"), DS_IDX_MAGIC_LABELS, &lb);

  /* a single item of the largest side allowed */
  bytes_t big = images_bytes(1, DS_IDX_MAX_SIDE, 3, 5);
  write_gz(path_of("big-side.gz"), big.b, big.len);
  expect_good(path_of("big-side.gz"), DS_IDX_MAGIC_IMAGES, &big);
  free(big.b);

  /* an MNIST-sized file through gzip (bigger than one 1 MiB read buffer) */
  bytes_t mn = images_bytes(2000, 28, 28, 3);
  write_gz(path_of("mnist-size.gz"), mn.b, mn.len);
  expect_good(path_of("mnist-size.gz"), DS_IDX_MAGIC_IMAGES, &mn);
  free(mn.b);
  free(im.b);
  free(lb.b);
}

static void test_bad_files(void) {
  bytes_t im = images_bytes(4, 3, 2, 1);

  /* bad magic: first bytes not 00 00, a labels file where images are expected
   * and vice versa, and the right type but the wrong number of dimensions */
  bytes_t b = im;
  b.b = malloc(im.len);
  memcpy(b.b, im.b, im.len);
  b.b[0] = 0x1f;
  expect_bad_both("magic-first-byte", &b, DS_IDX_MAGIC_IMAGES, "magic");
  memcpy(b.b, im.b, im.len);
  expect_bad_both("images-as-labels", &b, DS_IDX_MAGIC_LABELS, "magic");
  b.b[3] = 2; /* 00 00 08 02: two dimensions */
  expect_bad_both("wrong-ndim", &b, DS_IDX_MAGIC_IMAGES, "magic");

  /* wrong type byte: 0x0D (float) and 0x09 (signed byte) instead of 0x08 */
  memcpy(b.b, im.b, im.len);
  b.b[2] = 0x0D;
  expect_bad_both("type-float", &b, DS_IDX_MAGIC_IMAGES, "magic");
  b.b[2] = 0x09;
  expect_bad_both("type-signed", &b, DS_IDX_MAGIC_IMAGES, "magic");
  free(b.b);

  /* truncated header: under 4 bytes, and magic + some of the dims */
  bytes_t t = {im.b, 3};
  expect_bad_both("header-3-bytes", &t, DS_IDX_MAGIC_IMAGES, NULL);
  t.len = 10;
  expect_bad_both("header-10-bytes", &t, DS_IDX_MAGIC_IMAGES, "truncated");
  t.len = 16; /* header complete, payload empty */
  expect_bad_both("header-only", &t, DS_IDX_MAGIC_IMAGES, "header says 4x3x2");
  uint8_t lab_hdr[6] = {0, 0, 8, 1, 0, 0};
  t.b = lab_hdr;
  t.len = 6;
  expect_bad_both("labels-header-6-bytes", &t, DS_IDX_MAGIC_LABELS, "truncated");

  /* an empty file */
  t.len = 0;
  expect_bad_both("empty", &t, DS_IDX_MAGIC_IMAGES, NULL);

  /* truncated data: one byte short, and a whole item short */
  t.b = im.b;
  t.len = im.len - 1;
  expect_bad_both("data-short-1", &t, DS_IDX_MAGIC_IMAGES, "stray");
  t.len = im.len - 6;
  expect_bad_both("data-short-item", &t, DS_IDX_MAGIC_IMAGES, "holds 3 images");

  /* trailing bytes: one stray byte, and a whole extra item */
  bytes_t longer = images_bytes(5, 3, 2, 1); /* same pattern, one item more */
  put_be32(longer.b + 4, 4);                 /* ... but the header says 4 */
  t.b = longer.b;
  t.len = longer.len - 5;
  expect_bad_both("trailing-1", &t, DS_IDX_MAGIC_IMAGES, "stray");
  t.len = longer.len;
  expect_bad_both("trailing-item", &t, DS_IDX_MAGIC_IMAGES, "holds 5 images");
  free(longer.b);

  /* zero and absurd dimensions: caught from the header, before any allocation */
  const uint32_t dims_bad[][3] = {{0, 28, 28}, {10, 0, 28}, {10, 28, 0},
                                  {0xFFFFFFFFu, 28, 28}, {DS_IDX_MAX_ITEMS + 1u, 1, 1},
                                  {1, DS_IDX_MAX_SIDE + 1u, 1}, {1, 1, 0x80000000u}};
  for (size_t i = 0; i < sizeof dims_bad / sizeof dims_bad[0]; i++) {
    bytes_t h = idx_bytes(DS_IDX_MAGIC_IMAGES, 3, dims_bad[i], 8, 0);
    char stem[64];
    snprintf(stem, sizeof stem, "dims-%zu", i);
    expect_bad_both(stem, &h, DS_IDX_MAGIC_IMAGES, "dimension");
    free(h.b);
  }
  uint32_t zero_labels[1] = {0};
  bytes_t zl = idx_bytes(DS_IDX_MAGIC_LABELS, 1, zero_labels, 0, 0);
  expect_bad_both("labels-zero", &zl, DS_IDX_MAGIC_LABELS, "dimension");
  free(zl.b);

  /* a damaged gzip stream: cut in the middle, cut in the 8-byte trailer
   * (all data present, CRC/size missing), and a flipped CRC byte */
  bytes_t mn = images_bytes(200, 28, 28, 9);
  const char *whole = path_of("whole.gz");
  write_gz(whole, mn.b, mn.len);
  FILE *f = fopen(whole, "rb");
  size_t glen = file_size(whole);
  uint8_t *gz = malloc(glen);
  CHECK(f && fread(gz, 1, glen, f) == glen, "reread %s", whole);
  if (f) fclose(f);
  write_raw(path_of("cut-half.gz"), gz, glen / 2);
  expect_bad(path_of("cut-half.gz"), DS_IDX_MAGIC_IMAGES, NULL, "gzip cut in half");
  write_raw(path_of("cut-trailer.gz"), gz, glen - 3);
  expect_bad(path_of("cut-trailer.gz"), DS_IDX_MAGIC_IMAGES, NULL, "gzip trailer cut");
  gz[glen - 6] ^= 0x5a; /* inside the CRC32 */
  write_raw(path_of("bad-crc.gz"), gz, glen);
  expect_bad(path_of("bad-crc.gz"), DS_IDX_MAGIC_IMAGES, NULL, "gzip CRC flipped");
  free(gz);
  free(mn.b);

  /* a file that does not exist */
  expect_bad(path_of("no-such-file"), DS_IDX_MAGIC_IMAGES, NULL, "missing file");
  free(im.b);
}

static void test_parse_memory(void) {
  bytes_t im = images_bytes(6, 4, 4, 2);
  ds_idx idx;
  char err[256] = "";
  int rc = ds_idx_parse(im.b, im.len, "mem-images", DS_IDX_MAGIC_IMAGES, &idx, err, sizeof err);
  CHECK(rc == 0, "parse in memory: %s", err);
  if (rc == 0) {
    CHECK(idx.dims[0] == 6 && idx.dims[1] == 4 && idx.dims[2] == 4 && idx.item_size == 16,
          "parse dims %u %u %u", idx.dims[0], idx.dims[1], idx.dims[2]);
    CHECK(memcmp(idx.data, im.b + 16, 96) == 0, "parse payload");
    CHECK(idx.data != im.b + 16, "parse copies the payload (the input may be freed)");
    ds_idx_free(&idx);
  }
  /* every proper prefix is rejected, with the name in the message */
  int bad_prefix = 0;
  for (size_t len = 0; len < im.len; len++) {
    err[0] = '\0';
    if (ds_idx_parse(im.b, len, "mem-images", DS_IDX_MAGIC_IMAGES, &idx, err, sizeof err) == 0 ||
        strstr(err, "mem-images") == NULL) {
      bad_prefix++;
      if (idx.data) ds_idx_free(&idx);
    }
  }
  CHECK(bad_prefix == 0, "%d prefixes of a good file were accepted or unnamed", bad_prefix);
  /* labels parse, and the magic check works in memory */
  uint8_t lab[3] = {9, 0, 4};
  bytes_t lb = labels_bytes(lab, 3);
  rc = ds_idx_parse(lb.b, lb.len, "mem-labels", DS_IDX_MAGIC_LABELS, &idx, err, sizeof err);
  CHECK(rc == 0 && idx.dims[0] == 3 && idx.item_size == 1 && memcmp(idx.data, lab, 3) == 0,
        "labels parse: %s", err);
  if (rc == 0) ds_idx_free(&idx);
  rc = ds_idx_parse(lb.b, lb.len, "mem-labels", DS_IDX_MAGIC_IMAGES, &idx, err, sizeof err);
  CHECK(rc == -1 && strstr(err, "mem-labels") && strstr(err, "magic"), "labels as images: %s", err);
  free(im.b);
  free(lb.b);
}

/* ---- ds_data_load ---------------------------------------------------------- */

/* Run ds_data_load(src) in a child. Returns its exit status (or -1 if it died
 * of a signal) and leaves its stderr in msg. In the child a successful load
 * exits 0 after checking nothing (the success cases run in this process). */
static int load_in_child(const ds_data_source *src, char *msg, size_t msglen) {
  const char *errpath = path_of("child-stderr");
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(errpath, "w", stderr)) _exit(99);
    ds_dataset tr, te;
    ds_data_load(src, &tr, &te);
    fflush(stderr);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  msg[0] = '\0';
  FILE *f = fopen(errpath, "r");
  if (f) {
    size_t n = fread(msg, 1, msglen - 1, f);
    msg[n] = '\0';
    fclose(f);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void expect_load_fails(const ds_data_source *src, const char *name, const char *word,
                              const char *what) {
  char msg[1024];
  int code = load_in_child(src, msg, sizeof msg);
  CHECK(code == 2, "%s: exit status %d, want 2 (stderr: %s)", what, code, msg);
  CHECK(name == NULL || strstr(msg, name) != NULL, "%s: message does not name %s: '%s'", what, name, msg);
  CHECK(word == NULL || strstr(msg, word) != NULL, "%s: message lacks '%s': '%s'", what, word, msg);
  size_t len = strlen(msg);
  CHECK(len > 0 && strchr(msg, '\n') == msg + len - 1, "%s: message is not exactly one line: '%s'", what, msg);
}

static void write_pair(const char *images, const char *labels, uint32_t n, const uint8_t *lab, int salt,
                       int gz) {
  bytes_t im = images_bytes(n, 4, 4, salt);
  bytes_t lb = labels_bytes(lab, n);
  (gz ? write_gz : write_raw)(images, im.b, im.len);
  (gz ? write_gz : write_raw)(labels, lb.b, lb.len);
  free(im.b);
  free(lb.b);
}

static void test_data_load(void) {
  uint8_t lab[50];
  for (int i = 0; i < 50; i++) lab[i] = (uint8_t)((i * 3) % 5); /* classes 0..4 */

  /* a folder with the four standard files, gzipped: loads, content intact */
  char sub[300];
  snprintf(sub, sizeof sub, "%s/std", dir);
  CHECK(mkdir(sub, 0700) == 0, "mkdir %s", sub);
  char ti[400], tl[400], vi[400], vl[400];
  snprintf(ti, sizeof ti, "%s/train-images-idx3-ubyte.gz", sub);
  snprintf(tl, sizeof tl, "%s/train-labels-idx1-ubyte.gz", sub);
  snprintf(vi, sizeof vi, "%s/t10k-images-idx3-ubyte", sub); /* raw beside gz */
  snprintf(vl, sizeof vl, "%s/t10k-labels-idx1-ubyte", sub);
  write_pair(ti, tl, 50, lab, 4, 1);
  write_pair(vi, vl, 20, lab + 5, 8, 0);
  ds_data_source src = {0};
  src.data_dir = sub;
  ds_dataset tr, te;
  ds_data_load(&src, &tr, &te);
  bytes_t want_tr = images_bytes(50, 4, 4, 4), want_te = images_bytes(20, 4, 4, 8);
  CHECK(tr.n == 50 && tr.d == 16 && tr.rows == 4 && tr.cols == 4 && tr.n_classes == 5,
        "train set %d x %d (%dx%d), %d classes", tr.n, tr.d, tr.rows, tr.cols, tr.n_classes);
  CHECK(te.n == 20 && te.d == 16 && te.n_classes == 5, "test set %d x %d, %d classes", te.n, te.d, te.n_classes);
  CHECK(memcmp(tr.images, want_tr.b + 16, 50 * 16) == 0 && memcmp(tr.labels, lab, 50) == 0, "train content");
  CHECK(memcmp(te.images, want_te.b + 16, 20 * 16) == 0 && memcmp(te.labels, lab + 5, 20) == 0, "test content");
  ds_dataset_free(&tr);
  ds_dataset_free(&te);

  /* --test-fraction 0.2 holds out the last 10 of 50, in file order */
  memset(&src, 0, sizeof src);
  src.train_images = ti;
  src.train_labels = tl;
  src.test_fraction = 0.2f;
  ds_data_load(&src, &tr, &te);
  CHECK(tr.n == 40 && te.n == 10, "split 50 at 0.2: %d train, %d test", tr.n, te.n);
  CHECK(memcmp(tr.images, want_tr.b + 16, 40 * 16) == 0 && memcmp(tr.labels, lab, 40) == 0,
        "split: train is the first 40");
  CHECK(memcmp(te.images, want_tr.b + 16 + 40 * 16, 10 * 16) == 0 && memcmp(te.labels, lab + 40, 10) == 0,
        "split: test is the last 10");
  CHECK(te.n_classes == tr.n_classes && tr.n_classes == 5, "split classes %d %d", tr.n_classes, te.n_classes);
  ds_dataset_free(&tr);
  ds_dataset_free(&te);
  free(want_tr.b);
  free(want_te.b);

  /* mismatched counts: 50 images, 49 labels */
  const char *mi = path_of("mis-images.gz"), *ml = path_of("mis-labels.gz");
  bytes_t im = images_bytes(50, 4, 4, 1), lb = labels_bytes(lab, 49);
  write_gz(mi, im.b, im.len);
  write_gz(ml, lb.b, lb.len);
  memset(&src, 0, sizeof src);
  src.train_images = mi;
  src.train_labels = ml;
  src.test_fraction = 0.2f;
  expect_load_fails(&src, ml, "49", "mismatched train counts");
  /* ... and the same in the test pair */
  memset(&src, 0, sizeof src);
  src.train_images = ti;
  src.train_labels = tl;
  src.test_images = mi;
  src.test_labels = ml;
  expect_load_fails(&src, ml, "50", "mismatched test counts");
  free(im.b);
  free(lb.b);

  /* test labels above the training range: train holds 0..4, test holds a 7 */
  uint8_t tlab[20];
  for (int i = 0; i < 20; i++) tlab[i] = (uint8_t)(i % 5);
  tlab[13] = 7;
  const char *hi = path_of("high-images"), *hl = path_of("high-labels");
  write_pair(hi, hl, 20, tlab, 2, 0);
  src.test_images = hi;
  src.test_labels = hl;
  expect_load_fails(&src, hl, "7", "test label above the training range");

  /* a bad file among the pair exits 2 naming it */
  src.test_images = path_of("type-float");
  src.test_labels = vl;
  expect_load_fails(&src, path_of("type-float"), "magic", "bad test images");
  src.test_images = vi;
  src.test_labels = path_of("cut-half.gz"); /* an images stream cut short, as labels */
  expect_load_fails(&src, path_of("cut-half.gz"), NULL, "damaged test labels");

  /* test images of a different size than the training images */
  const char *wi = path_of("wide-images");
  bytes_t w = images_bytes(20, 4, 5, 0);
  write_raw(wi, w.b, w.len);
  free(w.b);
  src.test_images = wi;
  src.test_labels = vl;
  expect_load_fails(&src, wi, "4x5", "test images of another size");

  /* a folder without the files; a single class */
  memset(&src, 0, sizeof src);
  src.data_dir = dir;
  expect_load_fails(&src, dir, "train-images-idx3-ubyte", "folder without the files");
  uint8_t zeros[10] = {0};
  const char *si = path_of("single-images"), *sl = path_of("single-labels");
  write_pair(si, sl, 10, zeros, 0, 0);
  memset(&src, 0, sizeof src);
  src.train_images = si;
  src.train_labels = sl;
  src.test_fraction = 0.5f;
  expect_load_fails(&src, sl, "single class", "labels of a single class");
  /* a fraction that leaves no training items */
  src.train_images = ti;
  src.train_labels = tl;
  src.test_fraction = 0.999f;
  expect_load_fails(&src, "--test-fraction", NULL, "fraction leaving no training items");
}

static void cleanup(void) {
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
  (void)check_uniform; /* check.h helper this suite does not need */
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/ds-test-idx-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_good_files();
  test_bad_files();
  test_parse_memory();
  test_data_load();
  cleanup();
  return check_finish("test_idx");
}
