/* A growing heap string (common.h: ds_strbuf): the JSON the sweep, the
 * safetensors writer and a trial's captured output are built in. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descent/common.h"

void ds_strbuf_add(ds_strbuf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->s = ds_xrealloc(b->s, b->cap, "a string");
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

void ds_strbuf_printf(ds_strbuf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (k < 0) ds_fatal(DS_EXIT_RUNTIME, "formatting a string failed");
    if (b->s && b->len + (size_t)k < b->cap) {
      b->len += (size_t)k;
      return;
    }
    b->cap = (b->cap + (size_t)k + 1) * 2;
    b->s = ds_xrealloc(b->s, b->cap, "a string");
  }
}

void ds_strbuf_json_string(ds_strbuf *b, const char *s) {
  size_t n = strlen(s) * 6 + 16; /* ds_json_string's worst case (\u00XX), and its headroom */
  char *q = ds_xmalloc(n, "a JSON string");
  ds_json_string(q, n, s);
  ds_strbuf_add(b, q, strlen(q));
  free(q);
}
