/* JSON values for the commands' --json output (cli.h): every object they
 * print must parse, whatever the numbers and file names hold. */
#include <math.h>
#include <stdio.h>

#include "cli/cli.h"

const char *ds_json_number(char *buf, size_t len, double v) {
  if (isfinite(v)) snprintf(buf, len, "%.9g", v);
  else snprintf(buf, len, "null");
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
