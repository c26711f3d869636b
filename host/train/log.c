/* The training log: CSV or JSON lines, one row per log point (log.h). */
#include "train/log.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "descent/common.h"

int ds_log_open(ds_log *lg, const char *path, int *exit_code, char *err, size_t errlen) {
  memset(lg, 0, sizeof *lg);
  lg->path = path;
  if (ds_path_has_suffix(path, ".jsonl")) lg->jsonl = 1;
  else if (!ds_path_has_suffix(path, ".csv")) {
    *exit_code = DS_EXIT_USAGE;
    snprintf(err, errlen, "--log %s: expected a file name ending in .csv or .jsonl", path);
    return -1;
  }
  lg->f = fopen(path, "w");
  if (!lg->f) {
    *exit_code = DS_EXIT_RUNTIME;
    snprintf(err, errlen, "--log %s: cannot create the log: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

static void csv_number(FILE *f, double v) {
  if (isnan(v)) fputs("nan", f);
  else if (isinf(v)) fputs(v > 0 ? "inf" : "-inf", f);
  else fprintf(f, "%.9g", v);
}

/* Text as a JSON string (the warnings are ASCII apart from what a path may hold). */
static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

void ds_log_row(ds_log *lg, const ds_log_field *fields, int n, const char *const *warnings, int n_warnings) {
  FILE *f = lg->f;
  if (!f) return;
  if (lg->jsonl) {
    fputc('{', f);
    for (int i = 0; i < n; i++) {
      fprintf(f, "%s\"%s\":", i ? "," : "", fields[i].name);
      if (isfinite(fields[i].value)) fprintf(f, "%.9g", fields[i].value);
      else fputs("null", f);
    }
    fputs(",\"warnings\":[", f);
    for (int i = 0; i < n_warnings; i++) {
      if (i) fputc(',', f);
      json_string(f, warnings[i]);
    }
    fputs("]}\n", f);
  } else {
    if (lg->rows == 0) {
      for (int i = 0; i < n; i++) fprintf(f, "%s,", fields[i].name);
      fputs("warnings\n", f);
    }
    for (int i = 0; i < n; i++) {
      csv_number(f, fields[i].value);
      fputc(',', f);
    }
    fputc('"', f);
    for (int i = 0; i < n_warnings; i++) {
      if (i) fputs("; ", f);
      for (const char *p = warnings[i]; *p; p++) {
        if (*p == '"') fputc('"', f); /* CSV doubles a quote inside a quoted cell */
        fputc(*p == '\n' ? ' ' : *p, f);
      }
    }
    fputs("\"\n", f);
  }
  lg->rows++;
  if (fflush(f) != 0 || ferror(f)) ds_fatal(DS_EXIT_RUNTIME, "--log %s: cannot write the log: %s", lg->path, strerror(errno));
}

void ds_log_close(ds_log *lg) {
  if (!lg->f) return;
  if (fclose(lg->f) != 0) ds_fatal(DS_EXIT_RUNTIME, "--log %s: cannot write the log: %s", lg->path, strerror(errno));
  lg->f = NULL;
}
