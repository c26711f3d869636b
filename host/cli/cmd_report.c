/* `descent report FILE.jsonl... --out DIR`: the tables and pictures of an
 * optimizer benchmark from sweep result files (host/report does the work). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "descent/common.h"
#include "report/report.h"

#define MAX_FILES 256

static const char *summary =
    "Read sweep result files (JSON lines, format descent-sweep/1: docs/sweep-format.md) and write\n"
    "DIR/report.md: per problem, a table with each optimizer's best hyperparameters (by the mean\n"
    "over seeds of the final --metric), its test accuracy mean ± sd over seeds and its steps and\n"
    "seconds to target (median, k/n seeds that reached it); DIR/<problem>-lr.svg (the metric\n"
    "against lr on a log axis, min-max band over seeds), DIR/<problem>-curves.svg (learning\n"
    "curves at the best settings, median and min-max over seeds) and, with more than one\n"
    "problem, DIR/profile.svg (performance profile of time to target). A half-written last\n"
    "line (a sweep still running) is ignored with a note.";

static const char *const formats[] = {"markdown", "deepobs", NULL};

int ds_cmd_report(int argc, char **argv) {
  const char *out = NULL;
  int format = 0, metric = DS_MET_VAL_ACCURACY;
  ds_flag flags[] = {
    {"--out", DS_FLAG_STRING, &out, "DIR", "the folder to write report.md and the pictures into (created when missing)"},
    {"--format", DS_FLAG_CHOICE, &format, "F", "markdown: report.md and SVG pictures; deepobs: also DIR/deepobs/, "
     "DeepOBS's result layout for its analyzer", .choices = formats},
    {"--metric", DS_FLAG_CHOICE, &metric, "M", "the final figure that picks the best settings (val_*: the test "
     "figure for a problem without a validation split)", .choices = ds_rep_metric_names},
    {NULL},
  };
  const char *pos[MAX_FILES];
  int npos = ds_flags_parse("report", flags, argc, argv, pos, MAX_FILES, "FILE.jsonl [FILE.jsonl ...] --out DIR", summary);
  if (npos < 1) ds_fatal(DS_EXIT_USAGE, "report: expected one or more result files (see 'descent report --help')");
  if (!out) ds_fatal(DS_EXIT_USAGE, "report: --out DIR is required");
  if (!ds_report_json_available())
    ds_fatal(DS_EXIT_RUNTIME, "report: this descent was built without the JSON library (Jansson): install "
             "libjansson-dev (scripts/deps.sh does) and rebuild");

  /* the output folder, before anything is read ("report/" names "report") */
  char err[DS_PATH_MAX + 512], probe[DS_PATH_MAX + 16], dir[DS_PATH_MAX];
  if (snprintf(dir, sizeof dir, "%s", out) >= (int)sizeof dir) ds_fatal(DS_EXIT_USAGE, "report: --out: the name is too long");
  for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--) dir[n - 1] = '\0';
  out = dir;
  struct stat st;
  int exists = stat(out, &st) == 0;
  if (exists && !S_ISDIR(st.st_mode)) ds_fatal(DS_EXIT_USAGE, "report: --out %s: not a folder", out);
  if (snprintf(probe, sizeof probe, "%s/report.md", out) >= (int)sizeof probe)
    ds_fatal(DS_EXIT_USAGE, "report: --out %s: the name is too long", out);
  int code = ds_output_check("--out", exists ? probe : out, err, sizeof err);
  if (code != 0) ds_fatal(code, "report: %s", err);

  ds_rep_set set = {0};
  static char notes[MAX_FILES + 2][DS_PATH_MAX + 160]; /* static: 1 MiB is no stack's business */
  const char *note_ptr[MAX_FILES + 2];
  int nnotes = 0;
  time_t newest = 0;
  for (int i = 0; i < npos; i++) {
    int partial = 0;
    int rc = ds_report_read(pos[i], &set, &partial, err, sizeof err);
    if (rc != 0) ds_fatal(rc, "report: %s", err);
    if (partial) {
      snprintf(notes[nnotes], sizeof notes[nnotes], "%s: the last line is half written (a trial still being "
               "written, or cut off) and was ignored", pos[i]);
      ds_note("report: %s", notes[nnotes]);
      note_ptr[nnotes] = notes[nnotes];
      nnotes++;
    }
    if (stat(pos[i], &st) == 0 && st.st_mtime > newest) newest = st.st_mtime;
  }
  if (set.failed_early > 0) {
    snprintf(notes[nnotes], sizeof notes[nnotes], "%d failed trial line%s without a problem (the trial failed before "
             "training began) %s left out", set.failed_early, set.failed_early == 1 ? "" : "s",
             set.failed_early == 1 ? "is" : "are");
    ds_note("report: %s", notes[nnotes]);
    note_ptr[nnotes] = notes[nnotes];
    nnotes++;
  }
  int dups = ds_report_dedup(&set);
  if (dups > 0) {
    snprintf(notes[nnotes], sizeof notes[nnotes], "%d line%s of a trial that has a later line (the same \"trial\" key: "
             "a failed trial run again) %s ignored", dups, dups == 1 ? "" : "s", dups == 1 ? "was" : "were");
    ds_note("report: %s", notes[nnotes]);
    note_ptr[nnotes] = notes[nnotes];
    nnotes++;
  }
  if (set.n == 0) ds_fatal(DS_EXIT_USAGE, "report: %s%s: no finished trial in the file%s", pos[0], npos > 1 ? " ..." : "",
                           npos > 1 ? "s" : "");
  if (!exists && mkdir(out, 0777) != 0 && errno != EEXIST)
    ds_fatal(DS_EXIT_RUNTIME, "report: --out %s: cannot create the folder: %s", out, strerror(errno));

  char stamp[32];
  struct tm tm;
  gmtime_r(&newest, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%d-%H-%M-%S", &tm);
  ds_rep_options opt = {out, (ds_rep_metric)metric, format == 1, stamp, note_ptr, nnotes};
  code = ds_report_write(&set, &opt, err, sizeof err);
  if (code != 0) ds_fatal(code, "report: %s", err);
  printf("report: %d trials -> %s/report.md\n", set.n, out);
  ds_rep_set_free(&set);
  if (fflush(stdout) != 0 || ferror(stdout)) ds_fatal(DS_EXIT_RUNTIME, "report: cannot write to standard output");
  return DS_EXIT_OK;
}
