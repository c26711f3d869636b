/* IDX reader (LeCun's MNIST format), raw or gzip-compressed.
 *   magic: 0x00 0x00 <type 0x08 = unsigned byte> <ndim>, then ndim big-endian
 *   uint32 dimensions, then the payload. Every size is checked before it is
 *   used; nothing is allocated from an unchecked header.
 *
 * A gzip file is decoded with zlib's inflate directly (not gzread), so that
 * the checks are exact: the decoded stream must hold precisely the header
 * and the payload it announces, every member's CRC and length must match,
 * and nothing but further gzip members may follow the first one (gzread
 * silently ignores trailing garbage and cannot tell a short stream from a
 * damaged one). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "descent/common.h"
#include "descent/data.h"

#define DS_IDX_MAX_FILE ((size_t)1 << 31) /* 2 GiB (decoded or raw): refuse gzip bombs */
#define DS_IDX_MAX_HEADER 16              /* magic + 3 dimensions */

static uint32_t be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static const char *what_of(uint32_t expect_magic) {
  return expect_magic == DS_IDX_MAGIC_IMAGES ? "images" : "labels";
}

/* ---- the header, shared by raw and gzip input ---------------------------- */

/* Check the `have` bytes of header at hdr (have may fall short of the full
 * header when the file is truncated). Fills magic, ndim, dims and item_size
 * of out and the payload size the header announces. */
static int parse_header(const uint8_t *hdr, size_t have, const char *name, uint32_t expect_magic,
                        ds_idx *out, size_t *payload, char *err, size_t errlen) {
  const char *what = what_of(expect_magic);
  int expect_ndim = (int)(expect_magic & 0xff);
  if (have < 4) {
    snprintf(err, errlen, "%s: too short for an IDX header (%zu bytes)", name, have);
    return -1;
  }
  uint32_t magic = be32(hdr);
  if (magic != expect_magic) {
    char why[96];
    if (hdr[0] != 0 || hdr[1] != 0)
      snprintf(why, sizeof why, "not an IDX file (it starts with 0x%02x 0x%02x, not 0x00 0x00)", hdr[0], hdr[1]);
    else if (hdr[2] != 0x08)
      snprintf(why, sizeof why, "element type 0x%02x, expected 0x08 (unsigned byte)", hdr[2]);
    else
      snprintf(why, sizeof why, "%u dimensions, expected %d%s", hdr[3], expect_ndim,
               hdr[3] == 3 ? " (an images file?)" : hdr[3] == 1 ? " (a labels file?)" : "");
    snprintf(err, errlen, "%s: bad magic 0x%08x: %s for an IDX %s file", name, magic, why, what);
    return -1;
  }
  size_t header = 4 + 4 * (size_t)expect_ndim;
  if (have < header) {
    snprintf(err, errlen, "%s: truncated header (%zu of %zu bytes)", name, have, header);
    return -1;
  }
  out->magic = magic;
  out->ndim = expect_ndim;
  size_t item = 1;
  for (int i = 0; i < expect_ndim; i++) {
    uint32_t d = be32(hdr + 4 + 4 * i);
    uint32_t limit = i == 0 ? DS_IDX_MAX_ITEMS : DS_IDX_MAX_SIDE;
    if (d == 0 || d > limit) {
      snprintf(err, errlen, "%s: dimension %d is %u (must be 1..%u)", name, i, d, limit);
      return -1;
    }
    out->dims[i] = d;
    if (i > 0) item *= d; /* <= 4096^2: no overflow */
  }
  out->item_size = item;
  size_t bytes = ds_mul_size(out->dims[0], item);
  if (bytes == 0 || bytes > DS_IDX_MAX_FILE) {
    snprintf(err, errlen, "%s: header announces %u %s of %zu bytes, more than the %zu-byte limit", name,
             out->dims[0], what, item, DS_IDX_MAX_FILE);
    return -1;
  }
  *payload = bytes;
  return 0;
}

/* "header says 60000x28x28 but the data holds 31337 images [and 5 stray bytes]";
 * `more` marks `have` as a lower bound (decoding stopped at the size limit). */
static void size_error(const ds_idx *h, size_t have, int more, const char *name, char *err, size_t errlen) {
  char shape[64];
  if (h->ndim == 3) snprintf(shape, sizeof shape, "%ux%ux%u", h->dims[0], h->dims[1], h->dims[2]);
  else snprintf(shape, sizeof shape, "%u", h->dims[0]);
  const char *what = h->magic == DS_IDX_MAGIC_IMAGES ? "images" : "labels";
  size_t item = h->item_size;
  if (more)
    snprintf(err, errlen, "%s: header says %s but the data holds more than %zu %s", name, shape, have / item, what);
  else if (have % item == 0)
    snprintf(err, errlen, "%s: header says %s but the data holds %zu %s", name, shape, have / item, what);
  else
    snprintf(err, errlen, "%s: header says %s but the data holds %zu %s and %zu stray bytes", name, shape,
             have / item, what, have % item);
}

static int parse_raw(const uint8_t *bytes, size_t len, const char *name, uint32_t expect_magic, ds_idx *out,
                     char *err, size_t errlen) {
  size_t payload;
  size_t hlen = len < DS_IDX_MAX_HEADER ? len : DS_IDX_MAX_HEADER;
  if (parse_header(bytes, hlen, name, expect_magic, out, &payload, err, errlen) != 0) return -1;
  size_t header = 4 + 4 * (size_t)out->ndim;
  size_t have = len - header;
  if (have != payload) {
    size_error(out, have, 0, name, err, errlen);
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

/* ---- gzip ----------------------------------------------------------------- */

typedef struct {
  z_stream zs;
  const uint8_t *in;   /* the whole compressed file */
  size_t in_len, in_pos;
  int done;            /* the last member ended at the end of the input */
} gz_stream;

/* Decode up to `want` bytes into dst; *got is what was decoded. 0 at the end
 * of the data or when dst is full, -1 with err set on damage. */
static int gz_read(gz_stream *g, uint8_t *dst, size_t want, size_t *got, const char *name, char *err,
                   size_t errlen) {
  *got = 0;
  while (*got < want && !g->done) {
    size_t in_left = g->in_len - g->in_pos;
    size_t out_left = want - *got;
    uInt in_chunk = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left; /* zlib counts in uInt */
    uInt out_chunk = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
    g->zs.next_in = (Bytef *)(g->in + g->in_pos);
    g->zs.avail_in = in_chunk;
    g->zs.next_out = dst + *got;
    g->zs.avail_out = out_chunk;
    int rc = inflate(&g->zs, Z_NO_FLUSH);
    g->in_pos += in_chunk - g->zs.avail_in;
    *got += out_chunk - g->zs.avail_out;
    if (rc == Z_STREAM_END) {
      size_t rest = g->in_len - g->in_pos;
      if (rest == 0) {
        g->done = 1;
      } else if (rest >= 2 && g->in[g->in_pos] == 0x1f && g->in[g->in_pos + 1] == 0x8b) {
        inflateReset(&g->zs); /* concatenated members are one gzip file (RFC 1952) */
      } else {
        snprintf(err, errlen, "%s: %zu bytes of trailing garbage after the gzip data (at byte %zu of %zu)", name,
                 rest, g->in_pos, g->in_len);
        return -1;
      }
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && g->in_pos == g->in_len) {
      snprintf(err, errlen, "%s: the gzip data is truncated (the stream stops after %zu compressed bytes)", name,
               g->in_len);
      return -1;
    }
    if (rc == Z_MEM_ERROR) {
      snprintf(err, errlen, "%s: out of memory decoding the gzip data", name);
      return -1;
    }
    /* Z_DATA_ERROR (bad block, CRC or length check), Z_NEED_DICT, Z_STREAM_ERROR */
    const char *msg = g->zs.msg ? g->zs.msg : "invalid compressed data";
    const char *hint = strcmp(msg, "incorrect data check") == 0     ? " (the CRC-32 does not match the data)"
                       : strcmp(msg, "incorrect length check") == 0 ? " (the recorded length does not match the data)"
                                                                    : "";
    snprintf(err, errlen, "%s: the gzip data is corrupt at byte %zu: %s%s", name, g->in_pos, msg, hint);
    return -1;
  }
  return 0;
}

static int parse_gzip(const uint8_t *bytes, size_t len, const char *name, uint32_t expect_magic, ds_idx *out,
                      char *err, size_t errlen) {
  gz_stream g;
  memset(&g, 0, sizeof g);
  g.in = bytes;
  g.in_len = len;
  if (inflateInit2(&g.zs, 15 + 16) != Z_OK) { /* 15 + 16: a gzip wrapper, the largest window */
    snprintf(err, errlen, "%s: cannot start the gzip decoder", name);
    return -1;
  }
  int rc = -1;
  uint8_t hdr[DS_IDX_MAX_HEADER];
  size_t header = 4 + 4 * (size_t)(expect_magic & 0xff), got, payload;
  if (gz_read(&g, hdr, header, &got, name, err, errlen) != 0) goto out;
  if (parse_header(hdr, got, name, expect_magic, out, &payload, err, errlen) != 0) goto out;
  /* Grow towards the announced size as data arrives: a tiny file whose
   * header claims 2 GiB costs only what it really decodes to. */
  size_t cap = payload < ((size_t)16 << 20) ? payload : ((size_t)16 << 20), n = 0;
  uint8_t *buf = malloc(cap);
  if (!buf) {
    snprintf(err, errlen, "%s: out of memory for %zu bytes", name, cap);
    goto out;
  }
  for (;;) {
    if (gz_read(&g, buf + n, cap - n, &got, name, err, errlen) != 0) {
      free(buf);
      goto out;
    }
    n += got;
    if (n < cap || cap == payload) break;
    size_t ncap = cap * 2 < payload ? cap * 2 : payload;
    uint8_t *nb = realloc(buf, ncap);
    if (!nb) {
      free(buf);
      snprintf(err, errlen, "%s: out of memory for %zu bytes", name, ncap);
      goto out;
    }
    buf = nb;
    cap = ncap;
  }
  if (n < payload) {
    free(buf);
    size_error(out, n, 0, name, err, errlen);
    goto out;
  }
  /* payload complete: the stream must end here. Count what follows (up to
   * the size limit) for the message. */
  uint8_t extra[4096];
  size_t more = 0;
  while (more <= DS_IDX_MAX_FILE) {
    if (gz_read(&g, extra, sizeof extra, &got, name, err, errlen) != 0) {
      free(buf);
      goto out;
    }
    if (got == 0) break;
    more += got;
  }
  if (more > 0) {
    free(buf);
    size_error(out, payload + more, more > DS_IDX_MAX_FILE, name, err, errlen);
    goto out;
  }
  out->data = buf;
  rc = 0;
out:
  inflateEnd(&g.zs);
  return rc;
}

int ds_idx_parse(const uint8_t *bytes, size_t len, const char *name, uint32_t expect_magic,
                 ds_idx *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  int rc;
  if (len >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) /* gzip; an IDX file starts with 0x00 0x00 */
    rc = parse_gzip(bytes, len, name, expect_magic, out, err, errlen);
  else
    rc = parse_raw(bytes, len, name, expect_magic, out, err, errlen);
  if (rc != 0) memset(out, 0, sizeof *out);
  return rc;
}

/* ---- files ---------------------------------------------------------------- */

/* The whole file in memory (raw or compressed), at most DS_IDX_MAX_FILE + a
 * header's worth of bytes. */
/* The first bytes must be gzip's magic or the IDX magic expected: checked on
 * the first 4 bytes read, before the rest of a (maybe huge) file is. */
static int magic_ok(const uint8_t *b, size_t n, uint32_t expect_magic) {
  if (n < 4) return 1; /* too short: ds_idx_parse says so */
  if (b[0] == 0x1f && b[1] == 0x8b) return 1;
  return ((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]) == expect_magic;
}

static int read_file(const char *path, uint32_t expect_magic, uint8_t **data, size_t *len, char *err,
                     size_t errlen) {
  *data = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0) {
    snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
    fclose(f);
    return -1;
  }
  if (S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "%s: is a directory, not an IDX file", path);
    fclose(f);
    return -1;
  }
  const size_t limit = DS_IDX_MAX_FILE + DS_IDX_MAX_HEADER;
  if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > (uint64_t)limit) {
    snprintf(err, errlen, "%s: %llu bytes, larger than the %zu-byte limit; not an MNIST-scale IDX file", path,
             (unsigned long long)st.st_size, limit);
    fclose(f);
    return -1;
  }
  /* regular files: their size (+1 to see the end); pipes and devices: grow */
  size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : (size_t)1 << 16, n = 0;
  uint8_t *buf = malloc(cap < 4 ? 4 : cap);
  if (buf) n = fread(buf, 1, 4, f);
  if (buf && !magic_ok(buf, n, expect_magic)) { /* say what ds_idx_parse says of a wrong magic, now */
    ds_idx tmp;
    if (ds_idx_parse(buf, n, path, expect_magic, &tmp, err, errlen) == 0) ds_idx_free(&tmp);
    free(buf);
    fclose(f);
    return -1;
  }
  for (;;) {
    if (!buf) {
      snprintf(err, errlen, "%s: out of memory reading the file", path);
      fclose(f);
      return -1;
    }
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    if (cap > limit) {
      snprintf(err, errlen, "%s: larger than the %zu-byte limit; not an MNIST-scale IDX file", path, limit);
      free(buf);
      fclose(f);
      return -1;
    }
    uint8_t *nb = realloc(buf, cap * 2);
    if (!nb) free(buf);
    buf = nb;
    cap *= 2;
  }
  if (ferror(f)) {
    snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
    free(buf);
    fclose(f);
    return -1;
  }
  fclose(f);
  *data = buf;
  *len = n;
  return 0;
}

int ds_idx_read(const char *path, uint32_t expect_magic, ds_idx *out, char *err, size_t errlen) {
  uint8_t *bytes;
  size_t len;
  memset(out, 0, sizeof *out);
  if (read_file(path, expect_magic, &bytes, &len, err, errlen) != 0) return -1;
  int rc = ds_idx_parse(bytes, len, path, expect_magic, out, err, errlen);
  free(bytes);
  return rc;
}

void ds_idx_free(ds_idx *idx) {
  free(idx->data);
  idx->data = NULL;
}
