/* libFuzzer harness: the IDX parser (datasets/idx.c) on arbitrary bytes, as
 * an images file and as a labels file.
 *
 * Invariants: a file is accepted only with a header inside the limits and
 * exactly the payload it announces (checked against the input itself), and
 * every refusal is one line that names the file. Differential check: any
 * input that is not itself gzip is also gzipped here and parsed again; the
 * gzip path must reach the same verdict with the same message and payload. */
#include <zlib.h>

#include "descent/data.h"
#include "fuzz_common.h"

#define NAME "fuzz-input"

static uint32_t be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* gzip `data` (one member); NULL when zlib fails (it cannot, short of memory) */
static uint8_t *gzip_bytes(const uint8_t *data, size_t size, size_t *out_len) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
  size_t cap = deflateBound(&zs, (uLong)size) + 64;
  uint8_t *out = malloc(cap);
  if (!out) {
    deflateEnd(&zs);
    return NULL;
  }
  zs.next_in = (Bytef *)data;
  zs.avail_in = (uInt)size;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  int rc = deflate(&zs, Z_FINISH);
  *out_len = cap - zs.avail_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    free(out);
    return NULL;
  }
  return out;
}

static void check_one(const uint8_t *data, size_t size, uint32_t magic) {
  ds_idx idx;
  char err[512] = "";
  int rc = ds_idx_parse(data, size, NAME, magic, &idx, err, sizeof err);
  int gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  if (rc != 0) {
    REQUIRE(rc == -1, "rc %d", rc);
    REQUIRE(idx.data == NULL, "data left allocated after a refusal");
    REQUIRE(fuzz_one_line(err) && strncmp(err, NAME ": ", strlen(NAME) + 2) == 0, "message '%s'", err);
  } else {
    int ndim = (int)(magic & 0xff);
    REQUIRE(idx.magic == magic && idx.ndim == ndim && idx.data != NULL, "magic 0x%x ndim %d", idx.magic, idx.ndim);
    size_t item = 1;
    REQUIRE(idx.dims[0] >= 1 && idx.dims[0] <= DS_IDX_MAX_ITEMS, "dims[0] %u", idx.dims[0]);
    for (int i = 1; i < ndim; i++) {
      REQUIRE(idx.dims[i] >= 1 && idx.dims[i] <= DS_IDX_MAX_SIDE, "dims[%d] %u", i, idx.dims[i]);
      item *= idx.dims[i];
    }
    REQUIRE(idx.item_size == item, "item_size %zu, want %zu", idx.item_size, item);
    size_t payload = (size_t)idx.dims[0] * item;
    if (!gz) {
      /* raw: the header is the first bytes, the payload all the rest */
      size_t header = 4 + 4 * (size_t)ndim;
      REQUIRE(size == header + payload, "accepted %zu bytes for header %zu + payload %zu", size, header, payload);
      REQUIRE(be32(data) == magic, "magic");
      for (int i = 0; i < ndim; i++) REQUIRE(be32(data + 4 + 4 * i) == idx.dims[i], "dims[%d]", i);
      REQUIRE(memcmp(idx.data, data + header, payload) == 0, "payload differs from the input");
    } else {
      /* gzip: touch every byte (ASan checks the buffer really is that long) */
      unsigned sum = 0;
      for (size_t i = 0; i < payload; i++) sum += idx.data[i];
      (void)sum;
    }
  }

  if (gz || size > ((size_t)1 << 20)) {
    if (rc == 0) ds_idx_free(&idx);
    return;
  }
  size_t zlen = 0;
  uint8_t *z = gzip_bytes(data, size, &zlen);
  REQUIRE(z != NULL, "zlib could not compress %zu bytes", size);
  ds_idx zi;
  char zerr[512] = "";
  int zrc = ds_idx_parse(z, zlen, NAME, magic, &zi, zerr, sizeof zerr);
  REQUIRE(zrc == rc, "raw rc %d ('%s'), gzip rc %d ('%s')", rc, err, zrc, zerr);
  if (rc == 0) {
    REQUIRE(memcmp(zi.dims, idx.dims, sizeof zi.dims) == 0 && zi.item_size == idx.item_size, "gzip dims differ");
    REQUIRE(memcmp(zi.data, idx.data, (size_t)idx.dims[0] * idx.item_size) == 0, "gzip payload differs");
    ds_idx_free(&zi);
    ds_idx_free(&idx);
  } else {
    REQUIRE(strcmp(err, zerr) == 0, "raw says '%s', gzip says '%s'", err, zerr);
  }
  free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_one(data, size, DS_IDX_MAGIC_IMAGES);
  check_one(data, size, DS_IDX_MAGIC_LABELS);
  return 0;
}
