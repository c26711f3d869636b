#include "cli/flags.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "descent/common.h"

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

/* User text for a one-line message: at most 200 characters, control
 * characters (a newline in an argument) written as \xNN. */
static const char *quoted(const char *s, char *buf, size_t len) {
  size_t n = 0;
  for (size_t i = 0; s[i] && i < 200 && n + 5 < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f) n += (size_t)snprintf(buf + n, len - n, "\\x%02x", c);
    else buf[n++] = (char)c;
  }
  buf[n] = '\0';
  return buf;
}

/* Stores the value, or returns -1 with "FLAG: what is wrong, got 'VALUE'" in msg. */
static int set_value(ds_flag *f, const char *val, char *msg, size_t msglen) {
  char err[256] = "";
  double d;
  long l;
  int ok = 1;
  switch (f->type) {
    case DS_FLAG_BOOL: *(int *)f->ptr = 1; break;
    case DS_FLAG_STRING: *(const char **)f->ptr = val; break;
    case DS_FLAG_FLOAT: {
      /* the range applies to the float that is stored: 1e300 would become
       * inf and 1e-50 would become 0 (outside "(0,inf)") */
      ok = ds_parse_double(val, &d) == 0 && fabs(d) <= FLT_MAX;
      float fv = ok ? (float)d : 0.0f;
      ok = ok && isfinite(fv) && in_range((double)fv, parse_range(f->range));
      if (ok) *(float *)f->ptr = fv;
      else if (ds_parse_double(val, &d) == 0 && (fabs(d) > FLT_MAX || (fv == 0.0f && d != 0.0)))
        snprintf(err, sizeof err, "%s", fabs(d) > FLT_MAX ? "beyond the range of a float (32-bit)"
                                                          : "too small for a float (32-bit): it would be 0");
      break;
    }
    case DS_FLAG_DOUBLE:
      ok = ds_parse_double(val, &d) == 0 && isfinite(d) && in_range(d, parse_range(f->range));
      if (ok) *(double *)f->ptr = d;
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
      describe_range(f->type == DS_FLAG_FLOAT || f->type == DS_FLAG_DOUBLE ? "a finite number" : "an integer", f->range, r, sizeof r);
      snprintf(what, sizeof what, "expected %s", r);
    }
    char q[1024];
    snprintf(msg, msglen, "%s: %s, got '%s'", f->name, what, quoted(val, q, sizeof q));
    return -1;
  }
  f->given = 1;
  return 0;
}

/* Optimal string alignment distance (insertions, deletions, substitutions,
 * adjacent swaps), capped: only small distances matter here. */
static int edit_distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > 40 || m > 40) return 99;
  int d[41][41];
  for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
  for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
  for (size_t i = 1; i <= n; i++)
    for (size_t j = 1; j <= m; j++) {
      int cost = a[i - 1] != b[j - 1];
      int v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v) v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  return d[n][m];
}

/* The flag a near miss meant: the spellings other tools use, '_' for '-', a
 * missing or extra letter. NULL when nothing is close. */
static const char *near_miss(const ds_flag *flags, const char *name) {
  static const char *const synonyms[][2] = {
    {"--learning-rate", "--lr"}, {"--learning_rate", "--lr"}, {"--lr-rate", "--lr"}, {"--rate", "--lr"},
    {"--epoch", "--epochs"}, {"--n-epochs", "--epochs"}, {"--num-epochs", "--epochs"}, {"--batch", "--batch-size"},
    {"--bs", "--batch-size"}, {"--wd", "--weight-decay"}, {"--l2", "--weight-decay"}, {"--opt", "--optimizer"},
    {"--optim", "--optimizer"}, {"--layers", "--hidden"}, {"--hidden-sizes", "--hidden"}, {"--bn", "--batchnorm"},
    {"--batch-norm", "--batchnorm"}, {"--checkpoint", "--save"}, {"--output", "--save"},
  };
  char dashed[128];
  snprintf(dashed, sizeof dashed, "%s", name);
  for (char *p = dashed; *p; p++)
    if (*p == '_') *p = '-';
  for (size_t i = 0; i < sizeof synonyms / sizeof synonyms[0]; i++)
    if ((strcmp(name, synonyms[i][0]) == 0 || strcmp(dashed, synonyms[i][0]) == 0) && ds_flags_find(flags, synonyms[i][1]))
      return synonyms[i][1];
  const char *best = NULL;
  int best_d = 3;
  for (const ds_flag *f = flags; f->name; f++) {
    int dist = edit_distance(dashed, f->name);
    if (dist < best_d) best_d = dist, best = f->name;
  }
  return best_d <= (strlen(dashed) > 6 ? 2 : 1) ? best : NULL;
}

int ds_flags_parse_status(ds_flag *flags, int argc, char **argv, const char **positional, int max_positional,
                          int *n_positional, char *err, size_t errlen) {
  int npos = 0;
  char q[1024];
  *n_positional = 0;
  err[0] = '\0';
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) return DS_FLAGS_HELP;
    if (arg[0] != '-' || arg[1] == '\0') {
      if (npos >= max_positional) {
        /* "--hidden 256 128": a list given as separate words */
        const ds_flag *prev = i >= 2 ? ds_flags_find(flags, argv[i - 2]) : NULL;
        if (prev && prev->metavar && strchr(prev->metavar, ',') && strchr(argv[i - 1], '=') == NULL)
          snprintf(err, errlen, "unexpected argument '%s': %s takes one comma-separated list (%s %s,%s)",
                   quoted(arg, q, sizeof q), prev->name, prev->name, argv[i - 1], arg);
        else
          snprintf(err, errlen, "unexpected argument '%s'", quoted(arg, q, sizeof q));
        return DS_FLAGS_ERROR;
      }
      positional[npos++] = arg;
      *n_positional = npos;
      continue;
    }
    char name[128];
    const char *eq = strchr(arg, '=');
    size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
    if (nlen >= sizeof name) {
      snprintf(err, errlen, "unknown flag '%s'", quoted(arg, q, sizeof q));
      return DS_FLAGS_ERROR;
    }
    memcpy(name, arg, nlen);
    name[nlen] = '\0';
    ds_flag *f = (ds_flag *)ds_flags_find(flags, name);
    if (!f) {
      const char *meant = near_miss(flags, name);
      if (meant) snprintf(err, errlen, "unknown flag '%s'; did you mean %s?", quoted(name, q, sizeof q), meant);
      else snprintf(err, errlen, "unknown flag '%s'", quoted(name, q, sizeof q));
      return DS_FLAGS_ERROR;
    }
    if (f->type == DS_FLAG_BOOL) {
      if (eq) {
        snprintf(err, errlen, "%s takes no value", name);
        return DS_FLAGS_ERROR;
      }
      set_value(f, NULL, err, errlen);
      continue;
    }
    const char *val = eq ? eq + 1 : NULL;
    if (!val) {
      if (i + 1 >= argc) {
        snprintf(err, errlen, "%s needs a value (%s)", name, f->metavar ? f->metavar : "VALUE");
        return DS_FLAGS_ERROR;
      }
      val = argv[++i];
    }
    if (set_value(f, val, err, errlen) != 0) return DS_FLAGS_ERROR;
  }
  return DS_FLAGS_OK;
}

int ds_flags_parse(const char *cmd, ds_flag *flags, int argc, char **argv,
                   const char **positional, int max_positional, const char *usage,
                   const char *summary) {
  int npos = 0;
  char err[1024];
  int rc = ds_flags_parse_status(flags, argc, argv, positional, max_positional, &npos, err, sizeof err);
  if (rc == DS_FLAGS_HELP) {
    ds_flags_help(stdout, cmd, usage, summary, flags);
    if (fflush(stdout) != 0 || ferror(stdout)) ds_fatal(DS_EXIT_RUNTIME, "cannot write to standard output");
    exit(DS_EXIT_OK);
  }
  if (rc == DS_FLAGS_ERROR) ds_fatal(DS_EXIT_USAGE, "%s: %s (see 'descent %s --help')", cmd, err, cmd);
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
    case DS_FLAG_DOUBLE: snprintf(buf, len, "%g", *(double *)f->ptr); break;
    case DS_FLAG_STRING:
      if (*(const char **)f->ptr) snprintf(buf, len, "%s", *(const char **)f->ptr);
      break;
    case DS_FLAG_CHOICE: snprintf(buf, len, "%s", f->choices[*(int *)f->ptr]); break;
    default: break;
  }
}

int ds_flags_json(FILE *f, const ds_flag *flags, const char *const *skip) {
  int bad = fputc('{', f) == EOF;
  int first = 1;
  for (const ds_flag *fl = flags; fl->name; fl++) {
    int skipped = 0;
    for (int i = 0; skip && skip[i]; i++) skipped |= strcmp(skip[i], fl->name) == 0;
    if (skipped || (fl->type == DS_FLAG_CUSTOM && !fl->format)) continue;
    char key[128], val[512], js[1100];
    snprintf(key, sizeof key, "%s", fl->name + 2);
    for (char *c = key; *c; c++)
      if (*c == '-') *c = '_';
    switch (fl->type) {
      case DS_FLAG_BOOL: snprintf(js, sizeof js, "%s", *(int *)fl->ptr ? "true" : "false"); break;
      case DS_FLAG_INT: snprintf(js, sizeof js, "%d", *(int *)fl->ptr); break;
      case DS_FLAG_LONG: snprintf(js, sizeof js, "%ld", *(long *)fl->ptr); break;
      case DS_FLAG_U64: snprintf(js, sizeof js, "%" PRIu64, *(uint64_t *)fl->ptr); break;
      case DS_FLAG_FLOAT: ds_json_float(js, sizeof js, *(float *)fl->ptr); break;
      case DS_FLAG_DOUBLE: ds_json_number(js, sizeof js, *(double *)fl->ptr); break;
      case DS_FLAG_STRING:
        if (*(const char **)fl->ptr) ds_json_string(js, sizeof js, *(const char **)fl->ptr);
        else snprintf(js, sizeof js, "null");
        break;
      case DS_FLAG_CHOICE: ds_json_string(js, sizeof js, fl->choices[*(int *)fl->ptr]); break;
      default:
        fl->format(fl->ptr, val, sizeof val);
        if (val[0]) ds_json_string(js, sizeof js, val);
        else snprintf(js, sizeof js, "null");
        break;
    }
    bad |= fprintf(f, "%s\"%s\":%s", first ? "" : ",", key, js) < 0;
    first = 0;
  }
  bad |= fputc('}', f) == EOF;
  return bad ? -1 : 0;
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
