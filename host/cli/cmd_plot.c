/* `descent plot LOG -o FILE.svg|FILE.png`: the curves of a training log
 * (descent train --log) as one picture (host/plot/log_plot.c draws it). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "descent/common.h"
#include "plot/log_plot.h"
#include "plot/picture.h"

static const char *summary =
    "Draw a training log (descent train --log FILE.csv or .jsonl) as one picture of four\n"
    "panels: loss and accuracy (train, validation, test) against the update count, and\n"
    "each layer's gradient norm and update ratio on log scales (the band marks the usual\n"
    "1e-3..1e-1). .png needs rsvg-convert (Debian package librsvg2-bin).";

int ds_cmd_plot(int argc, char **argv) {
  const char *out = NULL, *title = NULL;
  ds_flag flags[] = {
    {"-o", DS_FLAG_STRING, &out, "FILE.svg|FILE.png", "the picture to write"},
    {"--output", DS_FLAG_STRING, &out, "FILE.svg|FILE.png", "the same as -o"},
    {"--title", DS_FLAG_STRING, &title, "TEXT", "the picture's title", .default_text = "the log's file name"},
    {NULL},
  };
  const char *pos[1];
  int npos = ds_flags_parse("plot", flags, argc, argv, pos, 1, "LOG.csv|LOG.jsonl -o FILE.svg|FILE.png", summary);
  if (npos != 1) ds_fatal(DS_EXIT_USAGE, "plot: expected one log file (see 'descent plot --help')");
  if (!out) ds_fatal(DS_EXIT_USAGE, "plot: -o FILE.svg|FILE.png is required");
  char err[512];
  int code = ds_picture_check("-o", out, err, sizeof err);
  if (code != 0) ds_fatal(code, "plot: %s", err);
  ds_log_table t;
  ds_log_table_read(pos[0], &t);
  const char *base = strrchr(pos[0], '/');
  char heading[512];
  snprintf(heading, sizeof heading, "%s", title ? title : (base ? base + 1 : pos[0]));
  if (ds_log_plot_write(out, &t, heading, err, sizeof err) != 0) ds_fatal(DS_EXIT_RUNTIME, "plot: %s", err);
  ds_log_table_free(&t);
  return DS_EXIT_OK;
}
