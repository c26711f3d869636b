#include "flags.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "descent/common.h"

int ds_parse_double(const char *s, double *out) {
  if (!s || !*s) return -1;
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

int ds_parse_long(const char *s, long *out) {
  if (!s || !*s) return -1;
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (end == s || *end != '\0' || errno == ERANGE) return -1;
  *out = v;
  return 0;
}

/* Range strings: "[lo,hi]" with ( or ) for open ends, inf for unbounded. */
typedef struct { double lo, hi; int lo_open, hi_open; } range_t;

static range_t parse_range(const char *r) {
  range_t x = {-INFINITY, INFINITY, 1, 1};
  if (!r) return x;
  char lo[32], hi[32];
  char close = 0;
  if (sscanf(r, "%*c%31[^,],%31[^])]%c", lo, hi, &close) == 3) {
    x.lo_open = r[0] == '(';
    x.hi_open = close == ')';
    x.lo = strcmp(lo, "-inf") == 0 ? -INFINITY : strtod(lo, NULL);
    x.hi = strcmp(hi, "inf") == 0 ? INFINITY : strtod(hi, NULL);
  }
  return x;
}

static int in_range(double v, range_t r) {
  if (r.lo_open ? !(v > r.lo) : !(v >= r.lo)) return 0;
  if (r.hi_open ? !(v < r.hi) : !(v <= r.hi)) return 0;
  return 1;
}

/* "a number > 0", "an integer >= 1", "a number in [0,1)" */
static void describe_range(const char *noun, const char *r, char *buf, size_t len) {
  range_t x = parse_range(r);
  if (isinf(x.lo) && isinf(x.hi)) snprintf(buf, len, "%s", noun);
  else if (isinf(x.hi)) snprintf(buf, len, "%s %s %g", noun, x.lo_open ? ">" : ">=", x.lo);
  else if (isinf(x.lo)) snprintf(buf, len, "%s %s %g", noun, x.hi_open ? "<" : "<=", x.hi);
  else snprintf(buf, len, "%s in %s", noun, r);
}

const ds_flag *ds_flags_find(const ds_flag *flags, const char *name) {
  for (const ds_flag *f = flags; f->name; f++)
    if (strcmp(f->name, name) == 0) return f;
  return NULL;
}

int ds_flag_given(const ds_flag *flags, const char *name) {
  const ds_flag *f = ds_flags_find(flags, name);
  return f && f->given;
}

static void usage_error(const char *cmd, const char *fmt, const char *a, const char *b) {
  char msg[1024];
  snprintf(msg, sizeof msg, fmt, a, b);
  ds_fatal(DS_EXIT_USAGE, "%s: %s (see 'descent %s --help')", cmd, msg, cmd);
}

static void set_value(const char *cmd, ds_flag *f, const char *val) {
  char err[256] = "";
  double d;
  long l;
  int ok = 1;
  switch (f->type) {
    case DS_FLAG_BOOL: *(int *)f->ptr = 1; break;
    case DS_FLAG_STRING: *(const char **)f->ptr = val; break;
    case DS_FLAG_FLOAT:
      ok = ds_parse_double(val, &d) == 0 && in_range(d, parse_range(f->range));
      if (ok) *(float *)f->ptr = (float)d;
      break;
    case DS_FLAG_INT:
      ok = ds_parse_long(val, &l) == 0 && l >= INT32_MIN && l <= INT32_MAX &&
           in_range((double)l, parse_range(f->range));
      if (ok) *(int *)f->ptr = (int)l;
      break;
    case DS_FLAG_LONG:
      ok = ds_parse_long(val, &l) == 0 && in_range((double)l, parse_range(f->range));
      if (ok) *(long *)f->ptr = l;
      break;
    case DS_FLAG_U64: {
      char *end = NULL;
      errno = 0;
      unsigned long long u = strtoull(val, &end, 10);
      /* strtoull skips blanks and wraps a minus sign (" -1" -> 2^64-1): digits only */
      ok = *val >= '0' && *val <= '9' && *end == '\0' && errno != ERANGE;
      if (ok) *(uint64_t *)f->ptr = (uint64_t)u;
      break;
    }
    case DS_FLAG_CHOICE: {
      ok = 0;
      for (int i = 0; f->choices[i]; i++)
        if (strcmp(f->choices[i], val) == 0) { *(int *)f->ptr = i; ok = 1; }
      if (!ok) {
        char list[256] = "";
        for (int i = 0; f->choices[i]; i++) {
          if (i) strncat(list, "|", sizeof list - strlen(list) - 1);
          strncat(list, f->choices[i], sizeof list - strlen(list) - 1);
        }
        snprintf(err, sizeof err, "expected one of %s", list);
      }
      break;
    }
    case DS_FLAG_CUSTOM: ok = f->parse(val, f->ptr, err, sizeof err) == 0; break;
  }
  if (!ok) {
    char what[300];
    if (err[0]) snprintf(what, sizeof what, "%s", err);
    else if (f->type == DS_FLAG_U64) snprintf(what, sizeof what, "expected a non-negative integer");
    else {
      char r[96];
      describe_range(f->type == DS_FLAG_FLOAT ? "a finite number" : "an integer", f->range, r, sizeof r);
      snprintf(what, sizeof what, "expected %s", r);
    }
    char msg[1024];
    snprintf(msg, sizeof msg, "%s, got '%.200s'", what, val);
    usage_error(cmd, "%s: %s", f->name, msg);
  }
  f->given = 1;
}

int ds_flags_parse(const char *cmd, ds_flag *flags, int argc, char **argv,
                   const char **positional, int max_positional, const char *usage,
                   const char *summary) {
  int npos = 0;
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
      ds_flags_help(stdout, cmd, usage, summary, flags);
      exit(DS_EXIT_OK);
    }
    if (arg[0] != '-' || arg[1] == '\0') {
      if (npos >= max_positional) usage_error(cmd, "unexpected argument '%s'%s", arg, "");
      positional[npos++] = arg;
      continue;
    }
    char name[128];
    const char *eq = strchr(arg, '=');
    size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
    if (nlen >= sizeof name) usage_error(cmd, "unknown flag '%s'%s", arg, "");
    memcpy(name, arg, nlen);
    name[nlen] = '\0';
    ds_flag *f = (ds_flag *)ds_flags_find(flags, name);
    if (!f) usage_error(cmd, "unknown flag '%s'%s", name, "");
    if (f->type == DS_FLAG_BOOL) {
      if (eq) usage_error(cmd, "%s takes no value%s", name, "");
      set_value(cmd, f, NULL);
      continue;
    }
    const char *val = eq ? eq + 1 : NULL;
    if (!val) {
      if (i + 1 >= argc) usage_error(cmd, "%s needs a value (%s)", name, f->metavar ? f->metavar : "VALUE");
      val = argv[++i];
    }
    set_value(cmd, f, val);
  }
  return npos;
}

static void current_value(const ds_flag *f, char *buf, size_t len) {
  buf[0] = '\0';
  if (f->default_text) { snprintf(buf, len, "%s", f->default_text); return; }
  switch (f->type) {
    case DS_FLAG_INT: snprintf(buf, len, "%d", *(int *)f->ptr); break;
    case DS_FLAG_LONG: snprintf(buf, len, "%ld", *(long *)f->ptr); break;
    case DS_FLAG_U64: snprintf(buf, len, "%" PRIu64, *(uint64_t *)f->ptr); break;
    case DS_FLAG_FLOAT: snprintf(buf, len, "%g", (double)*(float *)f->ptr); break;
    case DS_FLAG_STRING:
      if (*(const char **)f->ptr) snprintf(buf, len, "%s", *(const char **)f->ptr);
      break;
    case DS_FLAG_CHOICE: snprintf(buf, len, "%s", f->choices[*(int *)f->ptr]); break;
    default: break;
  }
}

void ds_flags_help(FILE *out, const char *cmd, const char *usage, const char *summary,
                   const ds_flag *flags) {
  fprintf(out, "usage: descent %s %s\n\n%s\n", cmd, usage, summary);
  for (const ds_flag *f = flags; f->name; f++) {
    if (f->group) fprintf(out, "\n%s:\n", f->group);
    char left[256];
    if (f->type == DS_FLAG_CHOICE) {
      char list[160] = "";
      for (int i = 0; f->choices[i]; i++) {
        if (i) strncat(list, "|", sizeof list - strlen(list) - 1);
        strncat(list, f->choices[i], sizeof list - strlen(list) - 1);
      }
      snprintf(left, sizeof left, "%s %s", f->name, list);
    } else if (f->type == DS_FLAG_BOOL) {
      snprintf(left, sizeof left, "%s", f->name);
    } else {
      snprintf(left, sizeof left, "%s %s", f->name, f->metavar ? f->metavar : "VALUE");
    }
    char def[96];
    current_value(f, def, sizeof def);
    if (strlen(left) > 30) fprintf(out, "  %s\n  %-30s %s", left, "", f->help);
    else fprintf(out, "  %-30s %s", left, f->help);
    if (def[0]) fprintf(out, " [default: %s]", def);
    fputc('\n', out);
  }
}
