/* The training log: CSV or JSON lines, one row per log point (log.h). */
#include "train/log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "descent/common.h"

/* The suffix decides the format. 0, or DS_EXIT_USAGE with the message. */
static int log_format(ds_log *lg, const char *path, char *err, size_t errlen) {
  if (ds_path_has_suffix(path, ".jsonl")) lg->jsonl = 1;
  else if (!ds_path_has_suffix(path, ".csv")) {
    snprintf(err, errlen, "--log %s: expected a file name ending in .csv or .jsonl", path);
    return DS_EXIT_USAGE;
  }
  return 0;
}

/* Open path for writing (not truncating) and take the advisory lock that
 * keeps a second descent off it. -1 with the reason in err. */
static int open_locked(const char *path, int *exit_code, char *err, size_t errlen) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666); /* read too: an appended log's header is checked */
  if (fd < 0) {
    *exit_code = DS_EXIT_RUNTIME;
    snprintf(err, errlen, "--log %s: cannot create the log: %s", path, strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int busy = errno == EWOULDBLOCK;
    *exit_code = DS_EXIT_RUNTIME;
    snprintf(err, errlen, "--log %s: %s", path,
             busy ? "another descent process is writing this log; give each run its own --log" : strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

int ds_log_check(const char *path, int *exit_code, char *err, size_t errlen) {
  ds_log lg;
  memset(&lg, 0, sizeof lg);
  int code = log_format(&lg, path, err, errlen);
  if (code == 0) code = ds_output_check("--log", path, err, errlen);
  if (code != 0) {
    *exit_code = code;
    return -1;
  }
  if (access(path, F_OK) != 0) return 0; /* not there yet: nobody holds it */
  int fd = open_locked(path, exit_code, err, errlen);
  if (fd < 0) return -1;
  close(fd); /* the lock goes with it */
  return 0;
}

/* The first line of the file at fd (the CSV header), or NULL. */
static char *first_line(int fd) {
  FILE *f = fdopen(dup(fd), "r");
  if (!f) return NULL;
  char *line = NULL;
  size_t cap = 0;
  ssize_t got = getline(&line, &cap, f);
  fclose(f);
  if (got <= 0) {
    free(line);
    return NULL;
  }
  if (line[got - 1] == '\n') line[got - 1] = '\0';
  return line;
}

int ds_log_open(ds_log *lg, const char *path, int append, int *exit_code, char *err, size_t errlen) {
  memset(lg, 0, sizeof *lg);
  lg->path = path;
  int code = log_format(lg, path, err, errlen);
  if (code != 0) {
    *exit_code = code;
    return -1;
  }
  int fd = open_locked(path, exit_code, err, errlen);
  if (fd < 0) return -1;
  struct stat st;
  int has_rows = fstat(fd, &st) == 0 && st.st_size > 0;
  if (append && has_rows) {
    /* the rows must be whole, and of this format: a cut-off last row or a CSV
       under a .jsonl name would be appended to as if it were a log */
    char last = 0, first = 0;
    if (pread(fd, &last, 1, st.st_size - 1) != 1 || pread(fd, &first, 1, 0) != 1 || last != '\n' ||
        (lg->jsonl && first != '{') || (!lg->jsonl && first == '{')) {
      *exit_code = DS_EXIT_USAGE;
      snprintf(err, errlen, "--log %s: %s; give the resumed run a new --log", path,
               last != '\n' ? "its last row is cut off" : "it is not a log of this format");
      close(fd);
      return -1;
    }
    lg->header = lg->jsonl ? NULL : first_line(fd);
    lg->rows = 1; /* the header is there */
    if (lseek(fd, 0, SEEK_END) < 0) has_rows = -1;
  } else if (has_rows && ftruncate(fd, 0) != 0) {
    has_rows = -1;
  }
  lg->f = has_rows >= 0 ? fdopen(fd, "w") : NULL;
  if (!lg->f) {
    *exit_code = DS_EXIT_RUNTIME;
    snprintf(err, errlen, "--log %s: cannot write the log: %s", path, strerror(errno));
    close(fd);
    free(lg->header);
    lg->header = NULL;
    return -1;
  }
  return 0;
}

static void csv_number(FILE *f, double v) {
  char b[40];
  fputs(ds_format_shortest(b, sizeof b, v), f); /* nan / inf / -inf: what strtod, Python and pandas read */
}

void ds_log_row(ds_log *lg, const ds_log_field *fields, int n, const char *const *warnings, int n_warnings) {
  FILE *f = lg->f;
  if (!f) return;
  if (lg->jsonl) {
    fputc('{', f);
    for (int i = 0; i < n; i++) {
      fprintf(f, "%s\"%s\":", i ? "," : "", fields[i].name);
      char b[40];
      fputs(isfinite(fields[i].value) ? ds_format_shortest(b, sizeof b, fields[i].value) : "null", f);
    }
    fputs(",\"warnings\":[", f);
    for (int i = 0; i < n_warnings; i++) {
      if (i) fputc(',', f);
      char b[1024];
      fputs(ds_json_string(b, sizeof b, warnings[i]), f);
    }
    fputs("]}\n", f);
  } else {
    if (lg->rows == 0) {
      for (int i = 0; i < n; i++) fprintf(f, "%s,", fields[i].name);
      fputs("warnings\n", f);
    } else if (lg->header) { /* appending: the run's columns must be the file's */
      size_t k = 0, len = strlen(lg->header);
      int same = 1;
      for (int i = 0; i < n && same; i++) {
        size_t w = strlen(fields[i].name);
        same = k + w < len && strncmp(lg->header + k, fields[i].name, w) == 0 && lg->header[k + w] == ',';
        k += w + 1;
      }
      if (!same || strcmp(lg->header + k, "warnings") != 0)
        ds_fatal(DS_EXIT_USAGE, "--log %s: its columns (%s) are not this run's; give the resumed run a new --log",
                 lg->path, lg->header);
      free(lg->header);
      lg->header = NULL;
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
  free(lg->header);
  lg->header = NULL;
  if (!lg->f) return;
  if (fclose(lg->f) != 0) ds_fatal(DS_EXIT_RUNTIME, "--log %s: cannot write the log: %s", lg->path, strerror(errno));
  lg->f = NULL;
}
