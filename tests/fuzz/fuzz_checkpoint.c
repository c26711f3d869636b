/* libFuzzer harness: the checkpoint loader (host/train/checkpoint.c).
 *
 * Each input is written to a file and loaded twice: as it is, and with every
 * CRC32 recomputed where the layout lets one be found (the fuzzer cannot
 * forge checksums, so without the second load it would never get past them
 * to the header's semantic checks and the tensor sizes).
 *
 * Invariants: a refusal is DS_CKPT_EBAD with one line naming the file and
 * nothing left allocated; an accepted file has every tensor its optimizer
 * needs, all finite, and saving what was loaded gives back the same bytes. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <unistd.h>
#include <zlib.h>

#include "descent/checkpoint.h"
#include "fuzz_common.h"

static char in_path[512], out_path[512];

static void remove_files(void) {
  unlink(in_path);
  unlink(out_path);
}

/* Files on tmpfs when there is one: the loader reads and the round trip
 * fsyncs, which costs nothing there. */
static void init_paths(void) {
  if (in_path[0]) return;
  const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
  if (!dir || !*dir) dir = "/tmp";
  snprintf(in_path, sizeof in_path, "%s/ds-fuzz-ckpt-%ld.in", dir, (long)getpid());
  snprintf(out_path, sizeof out_path, "%s/ds-fuzz-ckpt-%ld.out", dir, (long)getpid());
  atexit(remove_files);
}

static void write_file(const char *path, const uint8_t *b, size_t n) {
  FILE *f = fopen(path, "wb");
  REQUIRE(f != NULL, "cannot create %s", path);
  REQUIRE(n == 0 || fwrite(b, 1, n, f) == n, "cannot write %s", path);
  REQUIRE(fclose(f) == 0, "cannot close %s", path);
}

static uint64_t le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static void put_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t crc(uint32_t c, const uint8_t *p, size_t n) { return (uint32_t)crc32(c, p, (uInt)n); }

/* Recompute the header CRC and each tensor's CRC in place (layout in
 * include/descent/checkpoint.h); stops where the bytes run out. */
static void fix_crcs(uint8_t *b, size_t n) {
  if (n < 16) return;
  uint64_t hlen = le(b + 12, 4);
  if (hlen > n - 16 || n - 16 - hlen < 4) return;
  put_le32(b + 16 + hlen, crc(crc(crc(0, NULL, 0), b, 16), b + 16, (size_t)hlen));
  size_t pos = 16 + (size_t)hlen + 4;
  while (n - pos >= 16) {
    uint64_t count = le(b + pos + 4, 8);
    if (count > (n - pos - 16) / 4) return;
    put_le32(b + pos + 12, crc(crc(0, NULL, 0), b + pos + 16, (size_t)count * 4));
    pos += 16 + (size_t)count * 4;
  }
}

static void load(const uint8_t *data, size_t size) {
  write_file(in_path, data, size);
  ds_checkpoint ck;
  char err[1024] = "";
  int rc = ds_checkpoint_read(in_path, &ck, err, sizeof err);
  if (rc != DS_CKPT_OK) {
    REQUIRE(rc == DS_CKPT_EBAD, "rc %d: %s", rc, err);
    REQUIRE(fuzz_one_line(err) && strncmp(err, in_path, strlen(in_path)) == 0, "message '%s'", err);
    REQUIRE(ck.params == NULL && ck.stats == NULL && ck.m == NULL && ck.v == NULL && ck.vmax == NULL &&
                ck.gavg == NULL, "tensors left allocated after a refusal");
    return;
  }
  ds_optim_roles ro = ds_optim_state_roles(&ck.cfg.optim);
  REQUIRE(ck.params && ck.n_params > 0, "no parameters");
  REQUIRE(!!ck.stats == (ck.n_stats > 0), "stats %p for %zu statistics", (void *)ck.stats, ck.n_stats);
  REQUIRE(!!ck.m == !!ro.m && !!ck.v == !!ro.v && !!ck.vmax == !!ro.vmax && !!ck.gavg == !!ro.gavg,
          "optimizer state does not match the optimizer");
  const float *t[6] = {ck.params, ck.stats, ck.m, ck.v, ck.vmax, ck.gavg};
  size_t cnt[6] = {ck.n_params, ck.n_stats, ck.n_params, ck.n_params, ck.n_params, ck.n_params};
  for (int r = 0; r < 6; r++)
    for (size_t i = 0; t[r] && i < cnt[r]; i++) REQUIRE(isfinite(t[r][i]), "tensor %d[%zu] not finite", r, i);
  /* round trip: the writer must reproduce the file byte for byte */
  rc = ds_checkpoint_write(out_path, &ck, err, sizeof err);
  REQUIRE(rc == DS_CKPT_OK, "re-saving a loaded checkpoint failed: %s", err);
  FILE *f = fopen(out_path, "rb");
  REQUIRE(f != NULL, "cannot reopen %s", out_path);
  uint8_t *back = malloc(size + 1);
  size_t got = fread(back, 1, size + 1, f);
  fclose(f);
  REQUIRE(got == size && memcmp(back, data, size) == 0, "round trip changed the file (%zu -> %zu bytes)", size, got);
  free(back);
  ds_checkpoint_free(&ck);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > ((size_t)1 << 20)) return 0;
  init_paths();
  load(data, size);
  uint8_t *fixed = malloc(size ? size : 1);
  memcpy(fixed, data, size);
  fix_crcs(fixed, size);
  if (memcmp(fixed, data, size) != 0) load(fixed, size);
  free(fixed);
  return 0;
}
