/* libFuzzer harness: the flag parser (host/cli/flags.c) through its non-exiting
 * entry point, with the optimizer flag table of `descent train` and one flag
 * of every other type (--hidden is the real custom parser).
 *
 * The input is argv, split at NUL bytes. Invariants: a refusal is one line
 * that names the flag (or says the flag or argument is unknown); an accepted
 * command line leaves every numeric flag finite and inside its documented
 * range, as stored (a float, not the double it was parsed as). */
#include <math.h>

#include "cli/cli.h"
#include "descent/model.h"
#include "descent/optim.h"
#include "cli/flags.h"
#include "fuzz_common.h"

#define MAX_ARGS 64

static const char *const choices[] = {"shuffle", "replacement", "sequential", NULL};

/* The harness's own reading of a range string "[lo,hi)" (inf allowed). */
static int within(double v, const char *r) {
  if (!r) return isfinite(v);
  char lo[32], hi[32], close = 0;
  REQUIRE(sscanf(r, "%*c%31[^,],%31[^])]%c", lo, hi, &close) == 3, "range '%s'", r);
  double l = strcmp(lo, "-inf") == 0 ? -INFINITY : strtod(lo, NULL);
  double h = strcmp(hi, "inf") == 0 ? INFINITY : strtod(hi, NULL);
  int lo_ok = r[0] == '(' ? v > l : v >= l;
  int hi_ok = close == ')' ? v < h : v <= h;
  return isfinite(v) && lo_ok && hi_ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char *buf = malloc(size + 1);
  memcpy(buf, data, size);
  buf[size] = '\0';
  char *argv[MAX_ARGS];
  int argc = 0;
  for (size_t i = 0; i <= size && argc < MAX_ARGS;) {
    argv[argc++] = buf + i;
    i += strlen(buf + i) + 1;
  }
  if (size == 0) argc = 0;

  ds_optim_config oc;
  ds_optim_defaults(&oc, DS_OPT_SGD);
  const char *optimizer = "sgd";
  ds_mlp_spec spec;
  ds_mlp_spec_defaults(&spec);
  int ival = 7, ival2 = 0, bval = 0, cval = 0;
  long lval = 3;
  uint64_t uval = 1;
  float fval = 0.5f, fval2 = 0.0f;
  const char *sval = NULL;
  ds_flag flags[DS_OPTIM_FLAG_COUNT + 16];
  int n = ds_cli_optim_flags(flags, &oc, &optimizer);
  ds_flag own[] = {
    {"--hidden", DS_FLAG_CUSTOM, &spec, "W1,W2", "widths", .parse = ds_cli_parse_hidden},
    {"--int", DS_FLAG_INT, &ival, "N", "an int", "[1,inf)"},
    {"--any-int", DS_FLAG_INT, &ival2, "N", "an int", NULL},
    {"--long", DS_FLAG_LONG, &lval, "N", "a long", "[0,1000000]"},
    {"--u64", DS_FLAG_U64, &uval, "S", "a seed"},
    {"--frac", DS_FLAG_FLOAT, &fval, "F", "a fraction", "(0,1)"},
    {"--any", DS_FLAG_FLOAT, &fval2, "X", "any finite float", NULL},
    {"--str", DS_FLAG_STRING, &sval, "FILE", "a string"},
    {"--bool", DS_FLAG_BOOL, &bval, NULL, "a switch"},
    {"--choice", DS_FLAG_CHOICE, &cval, NULL, "a choice", .choices = choices},
    {NULL},
  };
  memcpy(flags + n, own, sizeof own);

  const char *pos[2];
  int npos = -1;
  char err[1024];
  int rc = ds_flags_parse_status(flags, argc, argv, pos, 2, &npos, err, sizeof err);
  REQUIRE(rc == DS_FLAGS_OK || rc == DS_FLAGS_HELP || rc == DS_FLAGS_ERROR, "rc %d", rc);
  REQUIRE(npos >= 0 && npos <= 2, "npos %d", npos);
  if (rc == DS_FLAGS_ERROR) {
    REQUIRE(fuzz_one_line(err), "message '%s'", err);
    int named = strncmp(err, "unknown flag '", 14) == 0 || strncmp(err, "unexpected argument '", 21) == 0;
    for (int i = 0; !named && flags[i].name; i++) {
      size_t l = strlen(flags[i].name);
      named = strncmp(err, flags[i].name, l) == 0 && (err[l] == ':' || err[l] == ' ');
    }
    REQUIRE(named, "the message names no flag: '%s'", err);
  } else if (rc == DS_FLAGS_OK) {
    for (int i = 0; flags[i].name; i++) {
      const ds_flag *f = &flags[i];
      if (!f->given) continue;
      if (f->type == DS_FLAG_FLOAT)
        REQUIRE(within((double)*(float *)f->ptr, f->range), "%s = %g outside %s", f->name, (double)*(float *)f->ptr,
                f->range ? f->range : "the finite numbers");
      if (f->type == DS_FLAG_INT) REQUIRE(within((double)*(int *)f->ptr, f->range), "%s = %d", f->name, *(int *)f->ptr);
      if (f->type == DS_FLAG_LONG)
        REQUIRE(within((double)*(long *)f->ptr, f->range), "%s = %ld", f->name, *(long *)f->ptr);
    }
    REQUIRE(spec.n_hidden >= 0 && spec.n_hidden < DS_MAX_LAYERS, "n_hidden %d", spec.n_hidden);
    for (int i = 0; i < spec.n_hidden; i++) REQUIRE(spec.hidden[i] >= 1, "hidden[%d] = %d", i, spec.hidden[i]);
    /* what ds_cli_optim_resolve does after parsing, without its exit */
    ds_optim_config named = oc;
    if (ds_optim_parse_name(optimizer, &named) == 0) {
      oc.kind = named.kind;
      char verr[256] = "";
      if (ds_optim_validate(&oc, verr, sizeof verr) == 0) {
        for (long t = 0; t < 3; t++) (void)ds_optim_scalars_at(&oc, t, t, t);
        (void)ds_optim_scalars_at(&oc, 1000000000L, 1000, 1000000000L);
      } else {
        REQUIRE(fuzz_one_line(verr) && strncmp(verr, "--", 2) == 0, "validate message '%s'", verr);
      }
    }
  }
  free(buf);
  return 0;
}
