/* safetensors: a strict reader and a writer (include/descent/interop.h).
 *
 * Format (https://github.com/huggingface/safetensors, "Format"):
 *   u64 little-endian N | N bytes of JSON header | data
 * The header is one object: "__metadata__" -> {string: string} (optional),
 * and per tensor name -> {"dtype": "F32", "shape": [d0, ...],
 * "data_offsets": [begin, end]} with offsets relative to the data. The
 * tensors must cover the data exactly: no overlap, no gap, nothing after the
 * last one. The writer pads the header with spaces so the data starts at a
 * multiple of 8 bytes, as the reference implementation does. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "descent/common.h"
#include "descent/interop.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; add byte swapping for this host"
#endif

static size_t dtype_size(ds_dtype d) { return d == DS_DTYPE_I64 ? 8 : 4; }
static const char *dtype_name(ds_dtype d) { return d == DS_DTYPE_I64 ? "I64" : "F32"; }

/* ---- writer ------------------------------------------------------------------ */

int ds_safetensors_write(const char *path, const ds_tensor *t, int n, const ds_meta *meta, int n_meta, char *err,
                         size_t errlen) {
  ds_strbuf h = {0};
  ds_strbuf_printf(&h, "{");
  if (n_meta > 0) {
    ds_strbuf_printf(&h, "\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
      if (i) ds_strbuf_printf(&h, ",");
      ds_strbuf_json_string(&h, meta[i].key);
      ds_strbuf_printf(&h, ":");
      ds_strbuf_json_string(&h, meta[i].value);
    }
    ds_strbuf_printf(&h, "}");
  }
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    if (n_meta > 0 || i) ds_strbuf_printf(&h, ",");
    ds_strbuf_json_string(&h, t[i].name);
    ds_strbuf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", dtype_name(t[i].dtype));
    for (int d = 0; d < t[i].ndim; d++) ds_strbuf_printf(&h, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
    ds_strbuf_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + t[i].bytes);
    off += t[i].bytes;
  }
  ds_strbuf_printf(&h, "}");
  while (h.len % 8) ds_strbuf_printf(&h, " ");
  uint8_t len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
  ds_atomic_file a;
  char why[DS_PATH_MAX + 256];
  if (ds_atomic_open(&a, path, why, sizeof why) != 0) {
    free(h.s);
    snprintf(err, errlen, "%s: %s", path, why);
    return -1;
  }
  int bad = fwrite(len8, 1, 8, a.f) != 8 || fwrite(h.s, 1, h.len, a.f) != h.len;
  for (int i = 0; i < n && !bad; i++) bad = t[i].bytes && fwrite(t[i].data, 1, t[i].bytes, a.f) != t[i].bytes;
  free(h.s);
  if (ds_atomic_commit(&a, bad, why, sizeof why) != 0) {
    snprintf(err, errlen, "%s: %s", path, why);
    return -1;
  }
  return 0;
}

/* ---- strict reader ------------------------------------------------------------ */

typedef struct {
  const char *s;
  size_t n, pos;
  const char *name;
  char *err;
  size_t errlen;
  int failed;
  char *strings;           /* output arena for strings */
  size_t strings_used;
} parser;

static int fail(parser *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int fail(parser *p, const char *fmt, ...) {
  if (p->failed) return -1;
  p->failed = 1;
  int k = snprintf(p->err, p->errlen, "%s: ", p->name);
  if (k < 0 || (size_t)k >= p->errlen) return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
  va_end(ap);
  /* names and keys come from the file: keep the message one line */
  for (char *c = p->err; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
  return -1;
}

static void skip_ws(parser *p) {
  while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
    p->pos++;
}

static int expect(parser *p, char c) {
  skip_ws(p);
  if (p->pos < p->n && p->s[p->pos] == c) {
    p->pos++;
    return 0;
  }
  return fail(p, "header: expected '%c' at byte %zu", c, p->pos + 8);
}

static int peek(parser *p, char c) {
  skip_ws(p);
  return p->pos < p->n && p->s[p->pos] == c;
}

static int hex4(parser *p, unsigned *v) {
  if (p->n - p->pos < 4) return fail(p, "header: a \\u escape is cut short");
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p->s[p->pos++];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return fail(p, "header: a bad \\u escape");
    *v = *v * 16 + (unsigned)d;
  }
  return 0;
}

/* A JSON string into the arena (NUL-terminated, UTF-8); *out points at it. */
static int parse_string(parser *p, const char **out) {
  if (expect(p, '"') != 0) return -1;
  char *o = p->strings + p->strings_used, *start = o;
  for (;;) {
    if (p->pos >= p->n) return fail(p, "header: a string is not closed");
    unsigned char c = (unsigned char)p->s[p->pos++];
    if (c == '"') break;
    if (c < 0x20) return fail(p, "header: a control character inside a string");
    if (c != '\\') {
      *o++ = (char)c;
      continue;
    }
    if (p->pos >= p->n) return fail(p, "header: a string is not closed");
    char e = p->s[p->pos++];
    unsigned u;
    switch (e) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '/': *o++ = '/'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break;
      case 't': *o++ = '\t'; break;
      case 'u':
        if (hex4(p, &u) != 0) return -1;
        if (u >= 0xD800 && u <= 0xDBFF) { /* a surrogate pair */
          unsigned lo;
          if (p->n - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return fail(p, "header: an unpaired surrogate in a \\u escape");
          p->pos += 2;
          if (hex4(p, &lo) != 0) return -1;
          if (lo < 0xDC00 || lo > 0xDFFF) return fail(p, "header: an unpaired surrogate in a \\u escape");
          u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        } else if (u >= 0xDC00 && u <= 0xDFFF) return fail(p, "header: an unpaired surrogate in a \\u escape");
        if (u == 0) return fail(p, "header: a NUL character in a string");
        /* UTF-8: at most 4 bytes from the 6 or 12 escape bytes consumed */
        if (u < 0x80) *o++ = (char)u;
        else if (u < 0x800) *o++ = (char)(0xC0 | (u >> 6)), *o++ = (char)(0x80 | (u & 63));
        else if (u < 0x10000)
          *o++ = (char)(0xE0 | (u >> 12)), *o++ = (char)(0x80 | ((u >> 6) & 63)), *o++ = (char)(0x80 | (u & 63));
        else
          *o++ = (char)(0xF0 | (u >> 18)), *o++ = (char)(0x80 | ((u >> 12) & 63)),
          *o++ = (char)(0x80 | ((u >> 6) & 63)), *o++ = (char)(0x80 | (u & 63));
        break;
      default: return fail(p, "header: a bad escape '\\%c' in a string", e);
    }
  }
  *o++ = '\0';
  p->strings_used += (size_t)(o - start);
  *out = start;
  return 0;
}

/* A non-negative integer without sign, fraction, exponent or leading zeros. */
static int parse_uint(parser *p, uint64_t *v, const char *what) {
  skip_ws(p);
  size_t start = p->pos;
  *v = 0;
  while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
    unsigned d = (unsigned)(p->s[p->pos] - '0');
    if (*v > (UINT64_MAX - d) / 10) return fail(p, "header: %s is too large", what);
    *v = *v * 10 + d;
    p->pos++;
  }
  if (p->pos == start) return fail(p, "header: %s must be a non-negative integer", what);
  if (p->s[start] == '0' && p->pos - start > 1) return fail(p, "header: %s has leading zeros", what);
  if (p->pos < p->n && (p->s[p->pos] == '.' || p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
    return fail(p, "header: %s must be an integer", what);
  return 0;
}

typedef struct {
  uint64_t begin, end;
  int index;
} span;

static int span_cmp(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x->index - y->index;
}

static int parse_metadata(parser *p, ds_safetensors *out, int *cap) {
  if (expect(p, '{') != 0) return -1;
  if (peek(p, '}')) return expect(p, '}');
  for (;;) {
    const char *k, *v;
    if (parse_string(p, &k) != 0 || expect(p, ':') != 0) return -1;
    if (!peek(p, '"')) return fail(p, "header: __metadata__ value of '%s' is not a string", k);
    if (parse_string(p, &v) != 0) return -1;
    for (int i = 0; i < out->n_meta; i++)
      if (strcmp(out->meta[i].key, k) == 0) return fail(p, "header: __metadata__ key '%s' appears twice", k);
    if (out->n_meta >= *cap) {
      ds_meta *nm = realloc(out->meta, (size_t)*cap * 2 * sizeof *nm);
      if (!nm) return fail(p, "header: out of memory for %d __metadata__ keys", out->n_meta);
      out->meta = nm;
      *cap *= 2;
    }
    out->meta[out->n_meta++] = (ds_meta){k, v};
    if (peek(p, ',')) {
      p->pos++;
      continue;
    }
    return expect(p, '}');
  }
}

static int parse_tensor(parser *p, ds_tensor *t, uint64_t off[2]) {
  int have_dtype = 0, have_shape = 0, have_offsets = 0;
  if (expect(p, '{') != 0) return -1;
  for (;;) {
    const char *k;
    if (parse_string(p, &k) != 0 || expect(p, ':') != 0) return -1;
    if (strcmp(k, "dtype") == 0) {
      const char *d;
      if (have_dtype++) return fail(p, "tensor '%s': dtype given twice", t->name);
      if (!peek(p, '"')) return fail(p, "tensor '%s': dtype is not a string", t->name);
      if (parse_string(p, &d) != 0) return -1;
      if (strcmp(d, "F32") == 0) t->dtype = DS_DTYPE_F32;
      else if (strcmp(d, "I64") == 0) t->dtype = DS_DTYPE_I64;
      else return fail(p, "tensor '%s': dtype '%.16s' is not supported (F32 and I64 only)", t->name, d);
    } else if (strcmp(k, "shape") == 0) {
      if (have_shape++) return fail(p, "tensor '%s': shape given twice", t->name);
      if (expect(p, '[') != 0) return -1;
      t->ndim = 0;
      if (peek(p, ']')) p->pos++;
      else
        for (;;) {
          uint64_t d;
          if (parse_uint(p, &d, "a shape dimension") != 0) return -1;
          if (t->ndim >= DS_TENSOR_MAX_DIMS)
            return fail(p, "tensor '%s': more than %d dimensions", t->name, DS_TENSOR_MAX_DIMS);
          if (d > ((uint64_t)1 << 40)) return fail(p, "tensor '%s': dimension %llu is absurd", t->name, (unsigned long long)d);
          t->shape[t->ndim++] = (int64_t)d;
          if (peek(p, ',')) {
            p->pos++;
            continue;
          }
          if (expect(p, ']') != 0) return -1;
          break;
        }
    } else if (strcmp(k, "data_offsets") == 0) {
      if (have_offsets++) return fail(p, "tensor '%s': data_offsets given twice", t->name);
      if (expect(p, '[') != 0 || parse_uint(p, &off[0], "a data offset") != 0 || expect(p, ',') != 0 ||
          parse_uint(p, &off[1], "a data offset") != 0 || expect(p, ']') != 0)
        return -1;
    } else
      return fail(p, "tensor '%s': unknown key '%.32s' (expected dtype, shape, data_offsets)", t->name, k);
    if (peek(p, ',')) {
      p->pos++;
      continue;
    }
    if (expect(p, '}') != 0) return -1;
    break;
  }
  if (!have_dtype || !have_shape || !have_offsets)
    return fail(p, "tensor '%s': %s is missing", t->name, !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
  return 0;
}

void ds_safetensors_free(ds_safetensors *st) {
  free(st->t);
  free(st->meta);
  free(st->bytes);
  free(st->strings);
  memset(st, 0, sizeof *st);
}

int ds_safetensors_parse(const uint8_t *bytes, size_t len, const char *name, ds_safetensors *out, char *err,
                         size_t errlen) {
  memset(out, 0, sizeof *out);
  parser p = {.name = name, .err = err, .errlen = errlen};
  if (len < 8) return fail(&p, "%zu bytes: shorter than the 8-byte header length of a safetensors file", len);
  uint64_t hlen = 0;
  for (int i = 0; i < 8; i++) hlen |= (uint64_t)bytes[i] << (8 * i);
  if (hlen > len - 8)
    return fail(&p, "the header length %llu goes beyond the end of the file (%zu bytes)", (unsigned long long)hlen, len);
  if (hlen > DS_SAFETENSORS_MAX_HEADER)
    return fail(&p, "the header length %llu is above the limit of %u bytes", (unsigned long long)hlen,
                DS_SAFETENSORS_MAX_HEADER);
  if (hlen < 2 || bytes[8] != '{') return fail(&p, "the header is not a JSON object (it must start with '{')");
  p.s = (const char *)bytes + 8;
  p.n = (size_t)hlen;
  size_t dlen = len - 8 - (size_t)hlen;
  /* every tensor entry takes more than 40 header bytes: a bound for the arrays */
  uint64_t bound = hlen / 40 + 1;
  int max_t = bound > DS_SAFETENSORS_MAX_TENSORS ? DS_SAFETENSORS_MAX_TENSORS : (int)bound, meta_cap = 16;
  out->t = calloc((size_t)max_t, sizeof *out->t);
  out->meta = calloc((size_t)meta_cap, sizeof *out->meta);
  out->strings = malloc((size_t)hlen + 1);
  span *sp = calloc((size_t)max_t, sizeof *sp);
  if (!out->t || !out->meta || !out->strings || !sp) {
    free(sp);
    ds_safetensors_free(out);
    snprintf(err, errlen, "%s: out of memory reading the header", name);
    return -1;
  }
  p.strings = out->strings;
  int metas = 0;
  if (expect(&p, '{') != 0) goto bad;
  if (peek(&p, '}')) p.pos++;
  else
    for (;;) {
      const char *k;
      if (parse_string(&p, &k) != 0 || expect(&p, ':') != 0) goto bad;
      if (strcmp(k, "__metadata__") == 0) {
        if (metas++) {
          fail(&p, "header: __metadata__ appears twice");
          goto bad;
        }
        if (parse_metadata(&p, out, &meta_cap) != 0) goto bad;
      } else {
        if (out->n >= max_t) {
          fail(&p, "header: more than %d tensors", max_t);
          goto bad;
        }
        if (!*k || strlen(k) >= DS_TENSOR_NAME_MAX) {
          fail(&p, "header: a tensor name is empty or longer than %d bytes", DS_TENSOR_NAME_MAX - 1);
          goto bad;
        }
        for (int i = 0; i < out->n; i++)
          if (strcmp(out->t[i].name, k) == 0) {
            fail(&p, "header: tensor '%s' appears twice", k);
            goto bad;
          }
        ds_tensor *t = &out->t[out->n];
        snprintf(t->name, sizeof t->name, "%s", k);
        uint64_t off[2];
        if (!peek(&p, '{')) {
          fail(&p, "header: '%s' is not a tensor (an object with dtype, shape, data_offsets)", t->name);
          goto bad;
        }
        if (parse_tensor(&p, t, off) != 0) goto bad;
        uint64_t count = 1;
        for (int d = 0; d < t->ndim; d++) {
          if (t->shape[d] != 0 && count > UINT64_MAX / 16 / (uint64_t)t->shape[d]) {
            fail(&p, "tensor '%s': its shape is absurdly large", t->name);
            goto bad;
          }
          count *= (uint64_t)t->shape[d];
        }
        if (off[0] > off[1] || off[1] > dlen) {
          fail(&p, "tensor '%s': data_offsets [%llu, %llu] are outside the %zu data bytes", t->name,
               (unsigned long long)off[0], (unsigned long long)off[1], dlen);
          goto bad;
        }
        if (off[1] - off[0] != count * dtype_size(t->dtype)) {
          fail(&p, "tensor '%s': data_offsets hold %llu bytes, its shape and dtype need %llu", t->name,
               (unsigned long long)(off[1] - off[0]), (unsigned long long)(count * dtype_size(t->dtype)));
          goto bad;
        }
        t->bytes = (size_t)(off[1] - off[0]);
        sp[out->n] = (span){off[0], off[1], out->n};
        out->n++;
      }
      if (peek(&p, ',')) {
        p.pos++;
        continue;
      }
      if (expect(&p, '}') != 0) goto bad;
      break;
    }
  skip_ws(&p);
  if (p.pos != p.n) {
    fail(&p, "header: bytes after the JSON object (only space padding may follow it)");
    goto bad;
  }
  /* the tensors must tile the data: sorted by offset, each begins where the last ended */
  qsort(sp, (size_t)out->n, sizeof *sp, span_cmp);
  uint64_t at = 0;
  for (int i = 0; i < out->n; i++) {
    const char *tn = out->t[sp[i].index].name, *prev = i ? out->t[sp[i - 1].index].name : "";
    if (sp[i].begin < at) {
      fail(&p, "tensors '%s' and '%s' overlap (bytes %llu..%llu)", prev, tn, (unsigned long long)sp[i].begin,
           (unsigned long long)at);
      goto bad;
    }
    if (sp[i].begin > at) {
      if (i) fail(&p, "tensors '%s' and '%s' leave a gap (bytes %llu..%llu)", prev, tn, (unsigned long long)at,
                  (unsigned long long)sp[i].begin);
      else fail(&p, "the first tensor '%s' starts at byte %llu, not 0", tn, (unsigned long long)sp[i].begin);
      goto bad;
    }
    at = sp[i].end;
  }
  if (at != dlen) {
    fail(&p, "%llu trailing bytes after the last tensor", (unsigned long long)(dlen - at));
    goto bad;
  }
  out->bytes = malloc(len ? len : 1);
  if (!out->bytes) {
    free(sp);
    ds_safetensors_free(out);
    snprintf(err, errlen, "%s: out of memory", name);
    return -1;
  }
  memcpy(out->bytes, bytes, len);
  for (int i = 0; i < out->n; i++) out->t[sp[i].index].data = out->bytes + 8 + hlen + sp[i].begin;
  free(sp);
  return 0;
bad:
  free(sp);
  ds_safetensors_free(out);
  return -1;
}

int ds_safetensors_read(const char *path, ds_safetensors *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    snprintf(err, errlen, "%s: not a regular file", path);
    return -1;
  }
  size_t len = (size_t)st.st_size;
  uint8_t *b = malloc(len ? len : 1);
  if (!b) {
    fclose(f);
    snprintf(err, errlen, "%s: out of memory for its %zu bytes", path, len);
    return -1;
  }
  size_t got = fread(b, 1, len, f);
  int rerr = ferror(f);
  fclose(f);
  if (got != len || rerr) {
    free(b);
    snprintf(err, errlen, "%s: read error (%zu of %zu bytes)", path, got, len);
    return -1;
  }
  int rc = ds_safetensors_parse(b, len, path, out, err, errlen);
  free(b);
  return rc;
}

const char *ds_safetensors_meta(const ds_safetensors *st, const char *key) {
  for (int i = 0; i < st->n_meta; i++)
    if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
  return NULL;
}
