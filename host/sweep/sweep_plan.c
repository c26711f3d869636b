/* The trials of a sweep: value specs, seeds, grid / random / quasirandom
 * search (sweep.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descent/common.h"
#include "descent/philox.h"
#include "sweep/sweep.h"

static char *dup_n(const char *s, size_t n) {
  char *d = ds_xmalloc(n + 1, "a sweep value");
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

/* A value as train reads it: an integer range gives integers ("128"), a
 * real one 6 significant digits. */
static char *fmt_number(double v, int integer) {
  char buf[64];
  if (integer) {
    snprintf(buf, sizeof buf, "%.0f", nearbyint(v));
    return dup_n(buf, strlen(buf));
  }
  snprintf(buf, sizeof buf, "%.6g", v); /* 0.00215443: what a person reads and types (the ends are as given) */
  return dup_n(buf, strlen(buf));
}

/* "128", "-3": written as an integer (no '.', 'e' or 'x') */
static int integer_text(const char *s) {
  if (*s == '-' || *s == '+') s++;
  return *s && strspn(s, "0123456789") == strlen(s);
}

/* Flags whose single value holds commas: their alternatives are split on '/'. */
static char list_separator(const char *flag) {
  return strcmp(flag, "--hidden") == 0 || strcmp(flag, "--normalize") == 0 ? '/' : ',';
}

/* "lo:hi", "lo:hi:log", "lo:hi:N", "lo:hi:Nlog": 1 when spec is one
 * (numbers at both ends), 0 when it is not a range at all, -1 when malformed. */
static int parse_range(ds_sweep_axis *a, const char *spec, char *err, size_t errlen) {
  const char *c1 = strchr(spec, ':');
  if (!c1) return 0;
  const char *c2 = strchr(c1 + 1, ':');
  char lo_s[64], hi_s[64];
  size_t l1 = (size_t)(c1 - spec), l2 = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
  if (l1 == 0 || l1 >= sizeof lo_s || l2 == 0 || l2 >= sizeof hi_s) return 0;
  memcpy(lo_s, spec, l1), lo_s[l1] = '\0';
  memcpy(hi_s, c1 + 1, l2), hi_s[l2] = '\0';
  double lo, hi;
  if (ds_parse_double(lo_s, &lo) != 0 || ds_parse_double(hi_s, &hi) != 0) return 0; /* "trunc-normal:0.03" */
  if (!(lo < hi)) {
    snprintf(err, errlen, "%s %s: a range needs lo < hi", a->flag, spec);
    return -1;
  }
  const char *tail = c2 ? c2 + 1 : "";
  long n = 0;
  int log_scale = 0;
  if (strcmp(tail, "log") == 0) log_scale = 1;
  else if (*tail) {
    size_t digits = strspn(tail, "0123456789");
    char nbuf[16];
    if (digits == 0 || digits >= sizeof nbuf || (strcmp(tail + digits, "") != 0 && strcmp(tail + digits, "log") != 0)) {
      snprintf(err, errlen, "%s %s: expected lo:hi, lo:hi:log, lo:hi:N or lo:hi:Nlog (N values)", a->flag, spec);
      return -1;
    }
    memcpy(nbuf, tail, digits), nbuf[digits] = '\0';
    n = strtol(nbuf, NULL, 10);
    log_scale = strcmp(tail + digits, "log") == 0;
    if (n < 1 || n > DS_SWEEP_MAX_VALUES) {
      snprintf(err, errlen, "%s %s: N must be 1 to %d", a->flag, spec, DS_SWEEP_MAX_VALUES);
      return -1;
    }
  }
  if (log_scale && !(lo > 0.0)) {
    snprintf(err, errlen, "%s %s: a log scale needs lo > 0", a->flag, spec);
    return -1;
  }
  a->lo = lo, a->hi = hi, a->log = log_scale;
  a->integer = integer_text(lo_s) && integer_text(hi_s); /* 16:256:5log: batch sizes, not fractions of them */
  if (n == 0) { /* a range for random search */
    a->is_range = 1;
    a->n_values = 0;
    return 1;
  }
  a->n_values = (int)n;
  a->values = ds_xcalloc((size_t)n, sizeof(char *), "sweep values");
  for (long i = 0; i < n; i++) {
    double f = n == 1 ? 0.0 : (double)i / (double)(n - 1);
    double v = log_scale ? exp(log(lo) + f * (log(hi) - log(lo))) : lo + f * (hi - lo);
    a->values[i] = i == 0 ? dup_n(lo_s, strlen(lo_s)) /* the ends exactly as given */
                   : i == n - 1 ? dup_n(hi_s, strlen(hi_s))
                                : fmt_number(v, a->integer);
  }
  return 1;
}

int ds_sweep_axis_parse(ds_sweep_axis *a, const char *flag, const char *spec, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  a->flag = flag;
  a->spec = spec;
  if (!spec) { /* a switch given alone */
    a->n_values = 1;
    a->values = ds_xcalloc(1, sizeof(char *), "sweep values");
    a->values[0] = dup_n("on", 2);
    a->is_switch = 1;
    return 0;
  }
  int r = parse_range(a, spec, err, errlen);
  if (r != 0) return r < 0 ? -1 : 0;
  char sep = list_separator(flag);
  int n = 1;
  for (const char *p = spec; *p; p++) n += *p == sep;
  if (n > DS_SWEEP_MAX_VALUES) {
    snprintf(err, errlen, "%s: more than %d values", flag, DS_SWEEP_MAX_VALUES);
    return -1;
  }
  a->values = ds_xcalloc((size_t)n, sizeof(char *), "sweep values");
  const char *p = spec;
  int switches = 0;
  for (int i = 0; i < n; i++) {
    const char *e = strchr(p, sep);
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == 0) {
      snprintf(err, errlen, "%s '%s': an empty value in the list", flag, spec);
      for (int k = 0; k < i; k++) free(a->values[k]);
      free(a->values);
      a->values = NULL;
      return -1;
    }
    a->values[i] = dup_n(p, len);
    switches += strcmp(a->values[i], "on") == 0 || strcmp(a->values[i], "off") == 0;
    a->n_values = i + 1;
    p = e ? e + 1 : p + len;
  }
  a->is_switch = switches == n;
  return 0;
}

int ds_sweep_seeds_parse(ds_sweep_spec *s, const char *spec, char *err, size_t errlen) {
  free(s->seeds);
  s->seeds = NULL;
  s->n_seeds = 0;
  unsigned long long lo, hi;
  char tail;
  const char *dash = strchr(spec, '-');
  if (dash && dash > spec && strspn(spec, "0123456789") == (size_t)(dash - spec) &&
      strspn(dash + 1, "0123456789") == strlen(dash + 1) && dash[1] && (dash - spec) <= 20 && strlen(dash + 1) <= 20 &&
      sscanf(spec, "%llu-%llu%c", &lo, &hi, &tail) == 2) {
    errno = 0;
    (void)strtoull(spec, NULL, 10);
    int e1 = errno;
    errno = 0;
    (void)strtoull(dash + 1, NULL, 10);
    if (e1 == ERANGE || errno == ERANGE) goto bad;
    if (hi < lo || hi - lo >= DS_SWEEP_MAX_VALUES) {
      snprintf(err, errlen, "--seeds %s: expected A-B with A <= B and at most %d seeds", spec, DS_SWEEP_MAX_VALUES);
      return -1;
    }
    s->n_seeds = (int)(hi - lo + 1);
    s->seeds = ds_xcalloc((size_t)s->n_seeds, sizeof(uint64_t), "seeds");
    for (int i = 0; i < s->n_seeds; i++) s->seeds[i] = lo + (unsigned long long)i;
    return 0;
  }
  int n = 1;
  for (const char *p = spec; *p; p++) n += *p == ',';
  if (n > DS_SWEEP_MAX_VALUES) {
    snprintf(err, errlen, "--seeds: more than %d seeds", DS_SWEEP_MAX_VALUES);
    return -1;
  }
  s->seeds = ds_xcalloc((size_t)n, sizeof(uint64_t), "seeds");
  const char *p = spec;
  for (int i = 0; i < n; i++) {
    char buf[32];
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    char *end = NULL;
    if (len == 0 || len >= sizeof buf || strspn(p, "0123456789") != len) goto bad;
    memcpy(buf, p, len), buf[len] = '\0';
    errno = 0;
    s->seeds[i] = strtoull(buf, &end, 10);
    if (errno == ERANGE) goto bad;
    s->n_seeds = i + 1;
    p = e ? e + 1 : p + len;
  }
  return 0;
bad:
  snprintf(err, errlen, "--seeds: expected A-B or a comma-separated list of integers from 0 to 2^64-1, got '%s'", spec);
  free(s->seeds);
  s->seeds = NULL;
  s->n_seeds = 0;
  return -1;
}

int ds_sweep_search_parse(ds_sweep_spec *s, const char *spec, char *err, size_t errlen) {
  long n;
  if (strcmp(spec, "grid") == 0) {
    s->search = DS_SEARCH_GRID;
    return 0;
  }
  const char *colon = strchr(spec, ':');
  if (colon && ds_parse_long(colon + 1, &n) == 0 && n >= 1 && n <= 1000000) {
    if (strncmp(spec, "random:", 7) == 0 && colon == spec + 6) s->search = DS_SEARCH_RANDOM;
    else if (strncmp(spec, "quasirandom:", 12) == 0 && colon == spec + 11) s->search = DS_SEARCH_QUASIRANDOM;
    else goto bad;
    s->search_points = n;
    return 0;
  }
bad:
  snprintf(err, errlen, "--search: expected grid, random:N or quasirandom:N, got '%s'", spec);
  return -1;
}

void ds_sweep_spec_free(ds_sweep_spec *s) {
  for (int i = 0; i < s->n_axes; i++) {
    for (int k = 0; k < s->axes[i].n_values; k++) free(s->axes[i].values[k]);
    free(s->axes[i].values);
  }
  free(s->seeds);
  memset(s, 0, sizeof *s);
}

static int swept(const ds_sweep_axis *a) { return a->is_range || a->n_values > 1; }

long ds_sweep_count(const ds_sweep_spec *s) {
  double n = s->n_seeds > 0 ? s->n_seeds : 1;
  if (s->search != DS_SEARCH_GRID) return (long)fmin(n * (double)s->search_points, 1e15);
  for (int i = 0; i < s->n_axes; i++) n *= s->axes[i].is_range ? 1 : s->axes[i].n_values;
  return n > 1e15 ? (long)1e15 : (long)n;
}

/* The radical inverse of i in base b: the Halton sequence's coordinate. */
static double radical_inverse(unsigned long i, unsigned b) {
  double f = 1.0, r = 0.0;
  while (i > 0) {
    f /= b;
    r += f * (double)(i % b);
    i /= b;
  }
  return r;
}

static const unsigned primes[DS_SWEEP_MAX_AXES] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53,
                                                   59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131};

/* A number in [0, 1) for point p, dimension d of the search. */
static double unit(const ds_sweep_spec *s, long p, int d) {
  if (s->search == DS_SEARCH_RANDOM)
    return ((double)ds_philox_word(s->search_seed, DS_STREAM_SEARCH, (uint64_t)p, (uint64_t)d) + 0.5) / 4294967296.0;
  double u = radical_inverse((unsigned long)p + 1, primes[d]);
  if (s->search_seed != 0) { /* Cranley-Patterson rotation */
    u += ((double)ds_philox_word(s->search_seed, DS_STREAM_SEARCH + 1u, 0, (uint64_t)d) + 0.5) / 4294967296.0;
    u -= floor(u);
  }
  return u;
}

static void id_of(ds_trial *t) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a 64 */
  for (int i = 0; i < t->n_args; i++) {
    for (const char *c = t->args[i]; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    h = (h ^ 0u) * 1099511628211ULL;
  }
  snprintf(t->id, sizeof t->id, "%016llx", (unsigned long long)h);
}

/* One trial from chosen values (val[i]: axis i's value, NULL = switch off). */
static void make_trial(ds_trial *t, const ds_sweep_spec *s, char *const *val, uint64_t seed) {
  memset(t, 0, sizeof *t);
  t->args = ds_xcalloc((size_t)(2 * s->n_axes + 3), sizeof(char *), "trial arguments");
  t->hyper_names = ds_xcalloc((size_t)s->n_axes + 1, sizeof(char *), "trial hyperparameters");
  t->hyper_values = ds_xcalloc((size_t)s->n_axes + 1, sizeof(char *), "trial hyperparameters");
  for (int i = 0; i < s->n_axes; i++) {
    const ds_sweep_axis *a = &s->axes[i];
    if (a->is_switch) {
      if (strcmp(val[i], "on") == 0) t->args[t->n_args++] = dup_n(a->flag, strlen(a->flag));
    } else {
      t->args[t->n_args++] = dup_n(a->flag, strlen(a->flag));
      t->args[t->n_args++] = dup_n(val[i], strlen(val[i]));
    }
    if (swept(a) && strcmp(a->flag, "--optimizer") != 0) {
      char name[128];
      snprintf(name, sizeof name, "%s", a->flag + 2);
      for (char *c = name; *c; c++)
        if (*c == '-') *c = '_';
      t->hyper_names[t->n_hyper] = dup_n(name, strlen(name));
      t->hyper_values[t->n_hyper++] = dup_n(val[i], strlen(val[i]));
    }
  }
  char sb[32];
  snprintf(sb, sizeof sb, "%llu", (unsigned long long)seed);
  t->args[t->n_args++] = dup_n("--seed", 6);
  t->args[t->n_args++] = dup_n(sb, strlen(sb));
  t->seed = seed;
  id_of(t);
}

long ds_sweep_trials(const ds_sweep_spec *s, long max_trials, ds_trial **out, char *err, size_t errlen) {
  *out = NULL;
  for (int i = 0; i < s->n_axes; i++)
    if (s->axes[i].is_range && s->search == DS_SEARCH_GRID) {
      snprintf(err, errlen, "%s %s is a range: give it a count (lo:hi:N or lo:hi:Nlog) for a grid, or use "
               "--search random:N or quasirandom:N", s->axes[i].flag, s->axes[i].spec);
      return -1;
    }
  long total = ds_sweep_count(s);
  if (total > max_trials) {
    snprintf(err, errlen, "%ld trials, more than --max-trials %ld: give --yes to run them all, or fewer values",
             total, max_trials);
    return -1;
  }
  uint64_t one_seed = 1;
  const uint64_t *seeds = s->n_seeds > 0 ? s->seeds : &one_seed;
  int n_seeds = s->n_seeds > 0 ? s->n_seeds : 1;
  long points = s->search == DS_SEARCH_GRID ? total / n_seeds : s->search_points;
  ds_trial *t = ds_xcalloc((size_t)(total > 0 ? total : 1), sizeof *t, "trials");
  long n = 0;
  char *val[DS_SWEEP_MAX_AXES];
  char *drawn[DS_SWEEP_MAX_AXES] = {0};
  for (long p = 0; p < points; p++) {
    long rest = p;
    for (int i = s->n_axes - 1; i >= 0; i--) { /* the first axis varies slowest */
      const ds_sweep_axis *a = &s->axes[i];
      if (s->search == DS_SEARCH_GRID) {
        val[i] = a->values[rest % a->n_values];
        rest /= a->n_values;
        continue;
      }
      if (!swept(a)) {
        val[i] = a->values[0];
        continue;
      }
      double u = unit(s, p, i);
      if (a->is_range) {
        double v = a->log ? exp(log(a->lo) + u * (log(a->hi) - log(a->lo))) : a->lo + u * (a->hi - a->lo);
        free(drawn[i]);
        drawn[i] = fmt_number(v, a->integer);
        val[i] = drawn[i];
      } else {
        int k = (int)(u * a->n_values);
        val[i] = a->values[k < a->n_values ? k : a->n_values - 1];
      }
    }
    for (int k = 0; k < n_seeds; k++) {
      make_trial(&t[n], s, val, seeds[k]);
      int dup = 0;
      for (long j = 0; j < n && !dup; j++) dup = strcmp(t[j].id, t[n].id) == 0;
      if (dup) ds_sweep_trials_free(&t[n], 1);
      else n++;
    }
  }
  for (int i = 0; i < s->n_axes; i++) free(drawn[i]);
  *out = t;
  return n;
}

void ds_sweep_trials_free(ds_trial *t, long n) {
  for (long i = 0; i < n; i++) {
    for (int k = 0; k < t[i].n_args; k++) free(t[i].args[k]);
    for (int k = 0; k < t[i].n_hyper; k++) free(t[i].hyper_names[k]), free(t[i].hyper_values[k]);
    free(t[i].args);
    free(t[i].hyper_names);
    free(t[i].hyper_values);
    memset(&t[i], 0, sizeof t[i]);
  }
}
