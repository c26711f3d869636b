/* .npz: what numpy.savez writes, a zip archive (stored, no compression) of
 * one NumPy .npy file (format version 1.0) per tensor, named <name>.npy.
 *
 * .npy 1.0 (numpy.lib.format): "\x93NUMPY" 1 0 | u16 LE header length |
 * header "{'descr': '<f4', 'fortran_order': False, 'shape': (256, 784), }"
 * padded with spaces and ended with '\n' so that the data starts at a
 * multiple of 64 bytes | the data, C order.
 * zip (PKWARE APPNOTE 4.3.7, 4.3.12, 4.3.16): per member a local header and
 * the bytes, then the central directory and its end record. Sizes and
 * offsets are 32-bit here (no zip64): larger archives are refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "descent/common.h"
#include "descent/interop.h"

#define DOS_DATE 0x0021u /* 1980-01-01, time 00:00: the same bytes every run */

static void le16(uint8_t *b, unsigned v) { b[0] = (uint8_t)v, b[1] = (uint8_t)(v >> 8); }
static void le32(uint8_t *b, uint32_t v) {
  for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}

/* The .npy header of t (magic through '\n'); returns its length. */
static size_t npy_header(char *buf, size_t cap, const ds_tensor *t) {
  char dict[256], shape[160];
  size_t n = 0;
  shape[0] = '\0';
  for (int d = 0; d < t->ndim; d++)
    n += (size_t)snprintf(shape + n, sizeof shape - n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
  if (t->ndim == 1) snprintf(shape + n, sizeof shape - n, ",");
  int k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                   t->dtype == DS_DTYPE_I64 ? "<i8" : "<f4", shape);
  size_t total = 10 + (size_t)k + 1;
  total = (total + 63) / 64 * 64;
  if (total > cap) return 0;
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  le16((uint8_t *)buf + 8, (unsigned)(total - 10));
  memcpy(buf + 10, dict, (size_t)k);
  memset(buf + 10 + k, ' ', total - 10 - (size_t)k - 1);
  buf[total - 1] = '\n';
  return total;
}

int ds_npz_write(const char *path, const ds_tensor *t, int n, char *err, size_t errlen) {
  ds_atomic_file a;
  char why[DS_PATH_MAX + 256];
  /* the central directory, built while the members are written */
  size_t cd_cap = (size_t)n * (46 + DS_TENSOR_NAME_MAX + 4) + 1, cd_len = 0;
  uint8_t *cd = ds_xmalloc(cd_cap, "the zip directory");
  uint64_t off = 0;
  for (int i = 0; i < n; i++) { /* sizes first: refuse before creating anything */
    off += 30 + strlen(t[i].name) + 4 + 256 + t[i].bytes;
    if (off > 0xFFFFFFF0u) {
      free(cd);
      snprintf(err, errlen, "%s: the archive would exceed 4 GiB, which this writer's zip format (no zip64) cannot hold", path);
      return -1;
    }
  }
  if (ds_atomic_open(&a, path, why, sizeof why) != 0) {
    free(cd);
    snprintf(err, errlen, "%s: %s", path, why);
    return -1;
  }
  int bad = 0;
  off = 0;
  for (int i = 0; i < n && !bad; i++) {
    char name[DS_TENSOR_NAME_MAX + 8], hdr[256];
    int nl = snprintf(name, sizeof name, "%s.npy", t[i].name);
    size_t hl = npy_header(hdr, sizeof hdr, &t[i]);
    if (hl == 0) {
      bad = 1;
      break;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, (const Bytef *)hdr, (uInt)hl);
    const Bytef *p = t[i].data;
    for (size_t left = t[i].bytes; left > 0;) {
      uInt c = left > (1u << 30) ? (1u << 30) : (uInt)left;
      crc = crc32(crc, p, c);
      p += c, left -= c;
    }
    uint32_t size = (uint32_t)(hl + t[i].bytes);
    uint8_t lh[30] = {0};
    le32(lh, 0x04034b50u);
    le16(lh + 4, 20);            /* version needed: 2.0 */
    le16(lh + 12, DOS_DATE);
    le32(lh + 14, (uint32_t)crc);
    le32(lh + 18, size);         /* compressed = uncompressed: stored */
    le32(lh + 22, size);
    le16(lh + 26, (unsigned)nl);
    bad = fwrite(lh, 1, 30, a.f) != 30 || fwrite(name, 1, (size_t)nl, a.f) != (size_t)nl ||
          fwrite(hdr, 1, hl, a.f) != hl || (t[i].bytes && fwrite(t[i].data, 1, t[i].bytes, a.f) != t[i].bytes);
    uint8_t *c = cd + cd_len;
    memset(c, 0, 46);
    le32(c, 0x02014b50u);
    le16(c + 4, 20);             /* made by: 2.0, MS-DOS attributes */
    le16(c + 6, 20);
    le16(c + 14, DOS_DATE);
    le32(c + 16, (uint32_t)crc);
    le32(c + 20, size);
    le32(c + 24, size);
    le16(c + 28, (unsigned)nl);
    le32(c + 42, (uint32_t)off);
    memcpy(c + 46, name, (size_t)nl);
    cd_len += 46 + (size_t)nl;
    off += 30 + (uint64_t)nl + size;
  }
  uint8_t end[22] = {0};
  le32(end, 0x06054b50u);
  le16(end + 8, (unsigned)n);
  le16(end + 10, (unsigned)n);
  le32(end + 12, (uint32_t)cd_len);
  le32(end + 16, (uint32_t)off);
  if (!bad) bad = fwrite(cd, 1, cd_len, a.f) != cd_len || fwrite(end, 1, 22, a.f) != 22;
  free(cd);
  if (ds_atomic_commit(&a, bad, why, sizeof why) != 0) {
    snprintf(err, errlen, "%s: %s", path, why);
    return -1;
  }
  return 0;
}

int ds_npy_write(const char *path, const ds_tensor *t, char *err, size_t errlen) {
  char hdr[256], why[DS_PATH_MAX + 256];
  size_t hl = npy_header(hdr, sizeof hdr, t);
  ds_atomic_file a;
  if (hl == 0 || ds_atomic_open(&a, path, why, sizeof why) != 0) {
    snprintf(err, errlen, "%s: %s", path, hl == 0 ? "the shape does not fit a .npy header" : why);
    return -1;
  }
  int bad = fwrite(hdr, 1, hl, a.f) != hl || (t->bytes && fwrite(t->data, 1, t->bytes, a.f) != t->bytes);
  if (ds_atomic_commit(&a, bad, why, sizeof why) != 0) {
    snprintf(err, errlen, "%s: %s", path, why);
    return -1;
  }
  return 0;
}
