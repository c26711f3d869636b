/* Strict parsing and readable printing of numbers, and names: the flag
 * parser, environment variables, messages and file-name checks all use
 * these, so they sit at the bottom. */
#include "descent/common.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* strtod/strtol skip leading blanks; a value with blanks around it is as
 * malformed as one with trailing junk, so both are refused. */
int ds_parse_double(const char *s, double *out) {
  if (!s || !*s || isspace((unsigned char)*s)) return -1;
  if (strchr(s, 'x') || strchr(s, 'X')) return -1; /* strtod's hexadecimal floats: not what a flag means */
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

int ds_parse_long(const char *s, long *out) {
  if (!s || !*s || isspace((unsigned char)*s)) return -1;
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (end == s || *end != '\0' || errno == ERANGE) return -1;
  *out = v;
  return 0;
}

int ds_path_has_suffix(const char *path, const char *suffix) {
  size_t a = strlen(path), b = strlen(suffix);
  if (a < b) return 0;
  for (size_t i = 0; i < b; i++) {
    char ch = path[a - b + i];
    if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
    if (ch != suffix[i]) return 0;
  }
  return 1;
}

const char *ds_format_number(char *buf, size_t len, double v) {
  if (isnan(v)) snprintf(buf, len, "nan");
  else if (isinf(v)) snprintf(buf, len, v > 0 ? "inf" : "-inf");
  else if (v != 0.0 && (fabs(v) >= 1e6 || fabs(v) < 1e-4)) snprintf(buf, len, "%.3g", v);
  else snprintf(buf, len, "%.4f", v);
  return buf;
}

const char *ds_format_shortest(char *buf, size_t len, double v) {
  if (isnan(v)) snprintf(buf, len, "nan");
  else if (isinf(v)) snprintf(buf, len, v > 0 ? "inf" : "-inf");
  else if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, len, "%.0f", v); /* a count: 20, not 2e+01 */
  else if ((double)(float)v == v) { /* a float: the fewest digits that read back as the same float */
    for (int p = 1; p <= 9; p++) {
      snprintf(buf, len, "%.*g", p, v);
      if ((float)strtod(buf, NULL) == (float)v) break;
    }
  } else {
    snprintf(buf, len, "%.9g", v); /* a double (a mean, f at a point): 9 digits */
  }
  return buf;
}

/* JSON values (common.h): every object descent prints must parse. */
const char *ds_json_number(char *buf, size_t len, double v) {
  if (isfinite(v)) snprintf(buf, len, "%.9g", v);
  else snprintf(buf, len, "null");
  return buf;
}

const char *ds_json_float(char *buf, size_t len, float v) {
  if (!isfinite(v)) return ds_json_number(buf, len, (double)v);
  for (int digits = 1; digits <= 9; digits++) { /* the shortest that reads back as v */
    snprintf(buf, len, "%.*g", digits, (double)v);
    if ((float)strtod(buf, NULL) == v) break;
  }
  return buf;
}

const char *ds_json_string(char *buf, size_t len, const char *s) {
  size_t k = 0;
  if (len < 3) return "\"\"";
  buf[k++] = '"';
  for (; *s && k + 8 < len; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') k += (size_t)snprintf(buf + k, len - k, "\\%c", c);
    else if (c < 0x20) k += (size_t)snprintf(buf + k, len - k, "\\u%04x", c);
    else buf[k++] = (char)c;
  }
  buf[k++] = '"';
  buf[k] = '\0';
  return buf;
}
