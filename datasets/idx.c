/* IDX reader (LeCun's MNIST format), raw or gzip-compressed.
 *   magic: 0x00 0x00 <type 0x08 = unsigned byte> <ndim>, then ndim big-endian
 *   uint32 dimensions, then the payload. Every size is checked before it is
 *   used; nothing is allocated from an unchecked header. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "descent/common.h"
#include "descent/data.h"

#define DS_IDX_MAX_FILE ((size_t)1 << 31) /* 2 GiB decoded: refuse gzip bombs */

static uint32_t be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

int ds_idx_parse(const uint8_t *bytes, size_t len, const char *name, uint32_t expect_magic,
                 ds_idx *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  const char *what = expect_magic == DS_IDX_MAGIC_IMAGES ? "images" : "labels";
  int expect_ndim = (int)(expect_magic & 0xff);
  if (len < 4) {
    snprintf(err, errlen, "%s: too short for an IDX header (%zu bytes)", name, len);
    return -1;
  }
  uint32_t magic = be32(bytes);
  if (magic != expect_magic) {
    snprintf(err, errlen, "%s: bad magic 0x%08x, expected 0x%08x (IDX %s file)", name, magic,
             expect_magic, what);
    return -1;
  }
  size_t header = 4 + 4 * (size_t)expect_ndim;
  if (len < header) {
    snprintf(err, errlen, "%s: truncated header (%zu of %zu bytes)", name, len, header);
    return -1;
  }
  out->magic = magic;
  out->ndim = expect_ndim;
  size_t item = 1;
  for (int i = 0; i < expect_ndim; i++) {
    uint32_t d = be32(bytes + 4 + 4 * i);
    uint32_t limit = i == 0 ? DS_IDX_MAX_ITEMS : DS_IDX_MAX_SIDE;
    if (d == 0 || d > limit) {
      snprintf(err, errlen, "%s: dimension %d is %u (must be 1..%u)", name, i, d, limit);
      return -1;
    }
    out->dims[i] = d;
    if (i > 0) item *= d; /* <= 4096^2: no overflow */
  }
  out->item_size = item;
  size_t count = out->dims[0];
  size_t payload = ds_mul_size(count, item);
  size_t have = len - header;
  if (payload == 0 || have != payload) {
    char shape[64];
    if (expect_ndim == 3) snprintf(shape, sizeof shape, "%ux%ux%u", out->dims[0], out->dims[1], out->dims[2]);
    else snprintf(shape, sizeof shape, "%u", out->dims[0]);
    if (have % item == 0)
      snprintf(err, errlen, "%s: header says %s but the data holds %zu %s", name, shape, have / item, what);
    else
      snprintf(err, errlen, "%s: header says %s but the data holds %zu %s and %zu stray bytes", name,
               shape, have / item, what, have % item);
    return -1;
  }
  out->data = malloc(payload);
  if (!out->data) {
    snprintf(err, errlen, "%s: out of memory for %zu bytes", name, payload);
    return -1;
  }
  memcpy(out->data, bytes + header, payload);
  return 0;
}

/* Read a whole file through zlib (which passes non-gzip files through). */
static int read_all(const char *path, uint8_t **data, size_t *len, char *err, size_t errlen) {
  *data = NULL;
  *len = 0;
  FILE *probe = fopen(path, "rb");
  if (!probe) {
    snprintf(err, errlen, "%s: cannot open (%s)", path, "no such file or not readable");
    return -1;
  }
  fclose(probe);
  gzFile gz = gzopen(path, "rb");
  if (!gz) {
    snprintf(err, errlen, "%s: cannot open", path);
    return -1;
  }
  size_t cap = 1 << 20, n = 0;
  uint8_t *buf = malloc(cap);
  if (!buf) {
    gzclose(gz);
    snprintf(err, errlen, "%s: out of memory", path);
    return -1;
  }
  for (;;) {
    if (n == cap) {
      if (cap >= DS_IDX_MAX_FILE) {
        free(buf);
        gzclose(gz);
        snprintf(err, errlen, "%s: larger than %zu bytes decoded; not an MNIST-scale IDX file", path, DS_IDX_MAX_FILE);
        return -1;
      }
      uint8_t *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        gzclose(gz);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
      }
      buf = nb;
      cap *= 2;
    }
    size_t want = cap - n;
    if (want > (1u << 30)) want = 1u << 30;
    int got = gzread(gz, buf + n, (unsigned)want);
    if (got < 0) {
      int code;
      const char *msg = gzerror(gz, &code);
      snprintf(err, errlen, "%s: gzip error: %s", path, msg);
      free(buf);
      gzclose(gz);
      return -1;
    }
    if (got == 0) break;
    n += (size_t)got;
  }
  int code;
  const char *msg = gzerror(gz, &code);
  if (code != Z_OK && code != Z_STREAM_END) {
    snprintf(err, errlen, "%s: gzip error: %s", path, msg);
    free(buf);
    gzclose(gz);
    return -1;
  }
  if (gzclose(gz) != Z_OK) {
    snprintf(err, errlen, "%s: gzip stream is damaged or truncated", path);
    free(buf);
    return -1;
  }
  *data = buf;
  *len = n;
  return 0;
}

int ds_idx_read(const char *path, uint32_t expect_magic, ds_idx *out, char *err, size_t errlen) {
  uint8_t *bytes;
  size_t len;
  memset(out, 0, sizeof *out);
  if (read_all(path, &bytes, &len, err, errlen) != 0) return -1;
  int rc = ds_idx_parse(bytes, len, path, expect_magic, out, err, errlen);
  free(bytes);
  return rc;
}

void ds_idx_free(ds_idx *idx) {
  free(idx->data);
  idx->data = NULL;
}
