/* The training log (--log FILE.csv | FILE.jsonl) and the progress display on
 * stderr (host/train/progress.c).
 *
 * A log row is a list of named numbers in a fixed order, plus the warnings of
 * that log point. CSV: a header line, then one line per row; non-finite
 * numbers are written nan / inf / -inf (what strtod, Python and pandas read),
 * the warnings are one quoted cell joined by "; ". JSON lines: one object per
 * row, non-finite numbers as null, "warnings" as an array of strings. Every
 * row is flushed, so a crashed or interrupted run keeps what it logged. */
#ifndef DS_LOG_H
#define DS_LOG_H

#include <stdio.h>

typedef struct {
  char name[48];
  double value;
} ds_log_field;

typedef struct {
  FILE *f;
  const char *path;
  int jsonl;
  int rows;
  char *header;            /* appending to a CSV: the file's header, checked at the first row */
} ds_log;

/* Before any work: path ends in .csv or .jsonl, can be written
 * (ds_output_check) and no other descent process holds it. 0, or -1 with
 * the exit status in *exit_code and a message naming the file in err. */
int ds_log_check(const char *path, int *exit_code, char *err, size_t errlen);
/* Open path, .csv or .jsonl, and hold an advisory lock on it (flock) until
 * ds_log_close, so that a second descent writing the same log is refused.
 * append = 0 starts it afresh; append = 1 (a resumed run) keeps its rows and
 * adds to them: the CSV header is not written again, and the first row checks
 * that the columns are the file's. Returns 0, or -1 with a message naming the
 * file in err and the exit status in *exit_code (2: bad name, 1: cannot
 * create, or locked by another process). */
int ds_log_open(ds_log *lg, const char *path, int append, int *exit_code, char *err, size_t errlen);
/* Append one row; exits 1 naming the file when the write fails. */
void ds_log_row(ds_log *lg, const ds_log_field *fields, int n, const char *const *warnings, int n_warnings);
void ds_log_close(ds_log *lg);

/* ---- progress on stderr (host/train/progress.c) ----------------------------------
 * On a terminal: one bar per epoch, redrawn at most 10 times a second
 * (step, loss, lr, samples/s, ETA); log-point lines and warnings scroll above
 * it. Elsewhere (a file, a pipe): only the log-point lines. quiet: nothing. */
typedef struct {
  int tty, quiet;
  long epoch, epochs;      /* 1-based epoch in progress, and how many the run has */
  long done, total;        /* updates done in this epoch, and its updates */
  double t_start, last_draw;
  int bar_shown;
} ds_progress;

void ds_progress_init(ds_progress *p, int quiet, long epochs);
void ds_progress_begin_epoch(ds_progress *p, long epoch, long updates);
/* Whether a redraw is due (a terminal, and 0.1 s since the last one): the
 * caller then reads the running loss (a sync) and calls ds_progress_draw. */
int ds_progress_due(const ds_progress *p);
void ds_progress_draw(ds_progress *p, long done, long step, double loss, double lr, double samples_per_second);
/* A whole line (a log point, a warning): clears the bar, prints, and the bar
 * comes back at the next draw. Printed on a terminal and elsewhere; not when quiet. */
void ds_progress_line(ds_progress *p, const char *line);
/* End of an epoch: a bar still shown stays on the screen as its last state. */
void ds_progress_end_epoch(ds_progress *p);

/* "1:02:03" or "2:03" */
void ds_format_duration(char *buf, size_t len, double seconds);

#endif
