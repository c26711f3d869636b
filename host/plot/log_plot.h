/* A training log (descent train --log, CSV or JSON lines) read into a table
 * and drawn as one picture of four panels: loss and accuracy (train,
 * validation, test) against the update count, and each layer's gradient norm
 * and update ratio on log scales, over the usual 1e-3..1e-1 band. */
#ifndef DS_LOG_PLOT_H
#define DS_LOG_PLOT_H

#include <stddef.h>

#define DS_LOG_MAX_COLS 256

/* Named numeric columns; NaN where a row has no value (or nan/null). */
typedef struct {
  int ncol, nrow, cap;
  char *name[DS_LOG_MAX_COLS];
  double *v;               /* [nrow][DS_LOG_MAX_COLS], row-major */
} ds_log_table;

/* Read a log file. A file that cannot be opened, a malformed JSON row, a
 * file without 'step' and 'train_loss' columns or without rows ends the
 * program with exit 2 and one line naming the file ("plot: PATH: ..."). */
void ds_log_table_read(const char *path, ds_log_table *t);
void ds_log_table_free(ds_log_table *t);

/* Write the four-panel picture of t to path (.svg, or .png through
 * rsvg-convert; check the name first with ds_picture_check). A failed write
 * removes the partial file. 0, or -1 with the reason in err. */
int ds_log_plot_write(const char *path, const ds_log_table *t, const char *title, char *err, size_t errlen);

#endif
