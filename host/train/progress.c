/* Progress on stderr: a bar per epoch on a terminal, plain lines elsewhere
 * (log.h). The bar is redrawn in place with a carriage return and an
 * erase-line escape; everything else is a whole line. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "descent/common.h"
#include "train/log.h"

#define BAR_WIDTH 24
#define REDRAW_SECONDS 0.1

void ds_format_duration(char *buf, size_t len, double seconds) {
  if (!isfinite(seconds) || seconds < 0) {
    snprintf(buf, len, "?");
    return;
  }
  long s = (long)(seconds + 0.5);
  if (s >= 3600) snprintf(buf, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else snprintf(buf, len, "%ld:%02ld", s / 60, s % 60);
}

void ds_progress_init(ds_progress *p, int quiet, long epochs) {
  memset(p, 0, sizeof *p);
  p->quiet = quiet;
  p->tty = !quiet && isatty(fileno(stderr));
  p->epochs = epochs;
}

void ds_progress_begin_epoch(ds_progress *p, long epoch, long updates) {
  p->epoch = epoch;
  p->total = updates;
  p->done = 0;
  p->t_start = p->last_draw = ds_now_seconds();
}

int ds_progress_due(const ds_progress *p) {
  /* the first update of an epoch draws at once, so that short epochs show a bar too */
  return p->tty && (p->done == 0 || ds_now_seconds() - p->last_draw >= REDRAW_SECONDS);
}

static void clear_bar(ds_progress *p) {
  if (p->bar_shown) fputs("\r\033[K", stderr);
  p->bar_shown = 0;
}

void ds_progress_draw(ds_progress *p, long done, long step, double loss, double lr, double samples_per_second) {
  if (!p->tty) return;
  double now = ds_now_seconds();
  p->last_draw = now;
  p->done = done;
  long total = p->total > 0 ? p->total : 1;
  int filled = (int)((double)BAR_WIDTH * (double)done / (double)total);
  if (filled > BAR_WIDTH) filled = BAR_WIDTH;
  char bar[BAR_WIDTH + 1];
  for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < filled ? '=' : (i == filled ? '>' : '.');
  bar[BAR_WIDTH] = '\0';
  double elapsed = now - p->t_start;
  char eta[32];
  ds_format_duration(eta, sizeof eta, done > 0 ? elapsed / (double)done * (double)(total - done) : NAN);
  char epochs[32] = "";
  if (p->epochs > 0) snprintf(epochs, sizeof epochs, "/%ld", p->epochs);
  char ls[32], lrs[32];
  fprintf(stderr, "\r\033[Kepoch %ld%s [%s] %ld/%ld  step %ld  loss %s  lr %s  %.0f samples/s  ETA %s",
          p->epoch, epochs, bar, done, p->total, step, ds_format_number(ls, sizeof ls, loss),
          ds_format_shortest(lrs, sizeof lrs, lr), samples_per_second, eta);
  fflush(stderr);
  p->bar_shown = 1;
}

void ds_progress_line(ds_progress *p, const char *line) {
  if (p->quiet) return;
  clear_bar(p);
  fprintf(stderr, "%s\n", line);
  fflush(stderr);
}

void ds_progress_end_epoch(ds_progress *p) {
  if (p->bar_shown) fputc('\n', stderr);
  p->bar_shown = 0;
}
