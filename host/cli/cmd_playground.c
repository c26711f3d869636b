/* `descent playground`: run optimizers on the course's toy functions and
 * print the trajectories as CSV, or draw them (--plot), or draw the
 * lecture's cases (--preset lecture). --plot is written before the CSV and
 * --preset writes every picture whatever happens to stdout, so a reader
 * that stops early (`| head -1`) cannot cost a picture; such a reader ends
 * the command with one line and exit 1. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "descent/common.h"
#include "playground/playground.h"
#include "plot/picture.h"
#include "plot/playground_svg.h"

#define MAX_RUNS 8

typedef struct {
  int n;
  double v[2];
} start_point;

static int parse_x0(const char *value, void *ptr, char *err, size_t errlen) {
  start_point *p = ptr;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", value);
  char *comma = strchr(buf, ',');
  if (comma) *comma = '\0';
  p->n = comma ? 2 : 1;
  if (ds_parse_double(buf, &p->v[0]) != 0 || (comma && ds_parse_double(comma + 1, &p->v[1]) != 0)) {
    snprintf(err, errlen, "expected one number or two separated by a comma (8.7 or 8.7,-7.9)");
    return -1;
  }
  for (int i = 0; i < p->n; i++)
    if (fabs(p->v[i]) > FLT_MAX) {
      snprintf(err, errlen, "coordinates must fit in a float (|x| <= %g)", (double)FLT_MAX);
      return -1;
    }
  return 0;
}

/* "(8.7, -7.9)" or "8.7" */
static void format_point(char *buf, size_t len, const double *x, int dim) {
  if (dim == 1) snprintf(buf, len, "%g", x[0]);
  else snprintf(buf, len, "(%g, %g)", x[0], x[1]);
}

/* Writes to a closed pipe fail with EPIPE instead of killing the process on
 * the spot, so what comes after them (the other pictures, the message)
 * still happens. Set before anything goes to stdout. */
static void ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

/* The errno of stdout's first failed write, taken right after the call
 * that failed (glibc sets errno on successful calls too, ENOTTY on a pipe). */
static int stdout_errno;

static int stdout_failed(void) {
  if (ferror(stdout) && !stdout_errno) stdout_errno = errno ? errno : EIO;
  return ferror(stdout);
}

/* Exit 1 when stdout could not take everything: a reader that went away
 * (broken pipe) is named as such. */
static void check_stdout(const char *what) {
  errno = 0;
  if (fflush(stdout) != 0 && !stdout_errno) stdout_errno = errno ? errno : EIO;
  if (!stdout_failed()) return;
  int e = stdout_errno;
  if (e == EPIPE)
    ds_fatal(DS_EXIT_RUNTIME, "playground: standard output was closed before the %s was all written "
             "(broken pipe)", what);
  ds_fatal(DS_EXIT_RUNTIME, "playground: cannot write the %s to standard output: %s", what, strerror(e));
}

/* ---- --preset lecture ------------------------------------------------------ */

typedef struct {
  const char *name;  /* picture: DIR/playground-NAME.svg */
  const char *fn;
  long steps;
  double x0[2];
  int nruns;
  struct { const char *optimizer; float lr; } runs[3];
  const char *note;  /* what the lecture says about the case */
} lecture_case;

static const lecture_case lecture[] = {
  {"parabola-lr0.2", "parabola", 20, {8.7, 0}, 1, {{"sgd", 0.2f}},
   "x ← (1 − 2·0.2)·x = 0.6·x: every iterate keeps the sign of x₀ and shrinks"},
  {"parabola-lr0.9", "parabola", 20, {8.7, 0}, 1, {{"sgd", 0.9f}},
   "x ← (1 − 2·0.9)·x = −0.8·x: the sign flips every step and |x| still shrinks"},
  {"parabola-lr1.05", "parabola", 10, {8.7, 0}, 1, {{"sgd", 1.05f}},
   "x ← (1 − 2·1.05)·x = −1.1·x: the sign flips and |x| grows: divergence"},
  {"bowl-lr0.1", "bowl", 30, {8.7, -7.9}, 1, {{"sgd", 0.1f}},
   "x ← 0.8·x: straight down to the minimum (stable for lr < 2/2 = 1)"},
  {"bowl-lr0.9", "bowl", 30, {8.7, -7.9}, 1, {{"sgd", 0.9f}},
   "x ← −0.8·x: jumps across the minimum each step and still converges"},
  {"ellipse-lr0.2", "ellipse", 40, {8.7, -7.9}, 1, {{"sgd", 0.2f}},
   "Hessian eigenvalues 4.30 and 0.70: factor 0.14 along the steep axis, 0.86 along the flat one"},
  {"saddle-momentum", "saddle", 40, {1, 1e-3}, 3, {{"sgd", 0.1f}, {"momentum", 0.1f}, {"adam", 0.1f}},
   "plain GD stalls near the saddle until x₂ grows away (×1.2 a step); momentum and Adam escape sooner"},
};

static void make_dir(const char *dir) {
  if (!*dir) ds_fatal(DS_EXIT_USAGE, "playground: --out: an empty folder name");
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    ds_fatal(DS_EXIT_RUNTIME, "playground: --out %s: cannot create the folder: %s", dir, strerror(errno));
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    ds_fatal(DS_EXIT_USAGE, "playground: --out %s: not a folder", dir);
}

/* Every picture is written even when stdout fails part way (a reader that
 * stopped): the lines are checked once, at the end. */
static int run_preset(const ds_backend *be, const char *dir) {
  make_dir(dir);
  /* every picture's name first: none is written when one cannot be */
  for (size_t c = 0; c < sizeof lecture / sizeof lecture[0]; c++) {
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/playground-%s.svg", dir, lecture[c].name);
    int code = ds_picture_check("--out", path, err, sizeof err);
    if (code != 0) ds_fatal(code, "playground: %s", err);
  }
  ignore_sigpipe();
  for (size_t c = 0; c < sizeof lecture / sizeof lecture[0]; c++) {
    const lecture_case *lc = &lecture[c];
    const ds_toy_fn *fn = ds_toy_find(lc->fn);
    ds_trajectory tr[3];
    ds_plot_series series[3];
    char labels[3][96], err[512], path[4096], x0s[64], title[256];
    for (int k = 0; k < lc->nruns; k++) {
      ds_optim_config cfg;
      ds_optim_config named = {0};
      ds_optim_parse_name(lc->runs[k].optimizer, &named);
      ds_optim_defaults(&cfg, named.kind);
      ds_optim_parse_name(lc->runs[k].optimizer, &cfg);
      cfg.lr = lc->runs[k].lr;
      ds_playground_run(be, fn, &cfg, lc->x0, lc->steps, &tr[k]);
      ds_playground_label(labels[k], sizeof labels[k], lc->runs[k].optimizer, &cfg);
      series[k].label = labels[k];
      series[k].tr = &tr[k];
    }
    size_t dl = strlen(dir);
    snprintf(path, sizeof path, "%s%splayground-%s.svg", dir, dl && dir[dl - 1] == '/' ? "" : "/", lc->name);
    format_point(x0s, sizeof x0s, lc->x0, fn->dim);
    snprintf(title, sizeof title, "%s from x₀ = %s, %ld updates", fn->formula, x0s, lc->steps);
    if (ds_playground_plot_file(path, fn, series, lc->nruns, title, lc->note, err, sizeof err) != 0)
      ds_fatal(DS_EXIT_RUNTIME, "playground: %s", err);
    for (int k = 0; k < lc->nruns; k++) {
      const ds_trajectory *t = &tr[k];
      double last[2] = {t->x[(t->n - 1) * t->dim], t->dim > 1 ? t->x[(t->n - 1) * t->dim + 1] : 0};
      char xs[64];
      format_point(xs, sizeof xs, last, t->dim);
      errno = 0;
      printf("%-16s %s: %s x = %s, f = %.3g\n", lc->name, labels[k],
             t->stopped ? "diverged; last finite" : "after all updates", xs, t->f[t->n - 1]);
      stdout_failed();
      ds_trajectory_free(&tr[k]);
    }
    errno = 0;
    printf("%-16s -> %s\n", lc->name, path);
    stdout_failed();
  }
  check_stdout("list of pictures");
  return DS_EXIT_OK;
}

/* ---- the command ------------------------------------------------------------ */

static const char *summary =
    "Run optimizers on the course's toy functions (small enough to draw) with the\n"
    "engine's own optimizer step on a 1- or 2-element parameter buffer. Prints CSV on\n"
    "stdout: optimizer,step,x1[,x2],f,grad_norm,lr; row `step` t is the point after t\n"
    "updates (row 0 is x0), N+1 rows per optimizer, one block per optimizer, all from the\n"
    "same start. grad_norm is |grad f| at the row's point; lr is the scheduled rate of\n"
    "the update made from that row. A run whose x, f or gradient overflows a float stops\n"
    "there with a note on stderr (exit status 0). --plot is written before the CSV,\n"
    "so it is there even when the reader stops early. Every optimizer, schedule and\n"
    "clipping flag means what it means for `descent train`; weight decay applies to\n"
    "every coordinate, and one update counts as one epoch for --schedule-per-epoch.";

static const char *const fn_names_help =
    "parabola: x^2 (1-D); bowl: x1^2+x2^2; ellipse: 0.5*x1^2+2*x2^2+x1*x2; saddle: x1^2-x2^2; "
    "rosenbrock: (1-x1)^2+100*(x2-x1^2)^2";

int ds_cmd_playground(int argc, char **argv) {
  int fn_index = 0, device = 0, quiet = 0;
  start_point x0 = {0, {0, 0}};
  long steps = -1;
  const char *plot = NULL, *preset = NULL, *out = NULL, *backend = "cpu", *optimizer = "sgd";
  ds_optim_config base;
  ds_optim_defaults(&base, DS_OPT_SGD);

  ds_flag flags[96] = {
    {"--fn", DS_FLAG_CHOICE, &fn_index, NULL, fn_names_help, .choices = ds_toy_names, .group = "Function"},
    {"--x0", DS_FLAG_CUSTOM, &x0, "A[,B]", "start point: one value for parabola, two for the others", .parse = parse_x0,
     .default_text = "8.7 parabola; 8.7,-7.9 bowl, ellipse; 1,0.001 saddle; -1.2,1 rosenbrock"},
    {"--steps", DS_FLAG_LONG, &steps, "N", "updates per optimizer", "[0,1000000]",
     .default_text = "20 parabola, 50 bowl/ellipse/saddle, 2000 rosenbrock"},
  };
  int n = 0;
  while (flags[n].name) n++;
  int first_optim = n;
  n += ds_cli_optim_flags(flags + n, &base, &optimizer);
  int end_optim = n;
  for (int i = first_optim; i < end_optim; i++)
    if (strcmp(flags[i].name, "--optimizer") == 0) {
      flags[i].metavar = "NAME[,NAME..]";
      flags[i].help = "one or more of sgd, momentum (sgd, momentum 0.9), nesterov (sgd, Nesterov 0.9), "
                      "adagrad, rmsprop, adam, adamw; each runs from the same start with the flags below";
    }
  ds_flag rest[] = {
    {"--plot", DS_FLAG_STRING, &plot, "FILE.svg|FILE.png", "also draw the trajectories: contour lines of f (2-D) or the curve f(x) (1-D); .png needs rsvg-convert", .group = "Output"},
    {"--preset", DS_FLAG_STRING, &preset, "lecture", "run the course's cases and write one picture per case into --out DIR"},
    {"--out", DS_FLAG_STRING, &out, "DIR", "folder for --preset's pictures (created if missing)"},
    {"--quiet", DS_FLAG_BOOL, &quiet, NULL, "nothing on stderr but errors: no divergence notes"},
    {"--backend", DS_FLAG_STRING, &backend, "cpu|cuda|auto", "where the optimizer step runs", .group = "Run"},
    {"--device", DS_FLAG_INT, &device, "N", "CUDA device index", "[0,inf)"},
    {NULL},
  };
  memcpy(flags + n, rest, sizeof rest);
  ds_flags_parse("playground", flags, argc, argv, NULL, 0, "[flags]", summary);
  ds_set_quiet(quiet);
  if (strcmp(backend, "auto") && strcmp(backend, "cpu") && strcmp(backend, "cuda"))
    ds_fatal(DS_EXIT_USAGE, "playground: --backend: expected auto, cpu or cuda, got '%s'", backend);

  if (preset) {
    if (strcmp(preset, "lecture") != 0)
      ds_fatal(DS_EXIT_USAGE, "playground: --preset: expected lecture, got '%s'", preset);
    if (!out) ds_fatal(DS_EXIT_USAGE, "playground: --preset lecture needs --out DIR for its pictures");
    for (int i = 0; i < n; i++) {
      const char *nm = flags[i].name;
      if (flags[i].given && strcmp(nm, "--preset") && strcmp(nm, "--out") && strcmp(nm, "--backend") &&
          strcmp(nm, "--device") && strcmp(nm, "--quiet"))
        ds_fatal(DS_EXIT_USAGE, "playground: %s: --preset lecture sets the functions, optimizers and "
                 "steps itself (it takes only --out, --backend, --device and --quiet)", nm);
    }
    return run_preset(ds_backend_select(backend, device), out);
  }
  if (out) ds_fatal(DS_EXIT_USAGE, "playground: --out: only used with --preset (for one run, use --plot FILE)");

  const ds_toy_fn *fn = ds_toy_find(ds_toy_names[fn_index]);
  double start[2] = {fn->x0[0], fn->x0[1]};
  if (x0.n) {
    if (x0.n != fn->dim)
      ds_fatal(DS_EXIT_USAGE, "playground: --x0: %s is %d-D: give %s", fn->name, fn->dim,
               fn->dim == 1 ? "one value (e.g. 8.7)" : "two values (e.g. 8.7,-7.9)");
    start[0] = x0.v[0];
    start[1] = x0.v[1];
  }
  if (steps < 0) steps = fn->steps;
  char err[512];
  int code = plot ? ds_playground_plot_check(plot, err, sizeof err) : 0;
  if (code != 0) ds_fatal(code, "playground: %s", err);

  /* --optimizer a,b,c: each name resolved on its own copy of the flags */
  char names_buf[512];
  const char *names[MAX_RUNS];
  int nr = 0;
  if (strlen(optimizer) >= sizeof names_buf) ds_fatal(DS_EXIT_USAGE, "playground: --optimizer: list too long");
  strcpy(names_buf, optimizer);
  for (char *p = names_buf;;) {
    char *comma = strchr(p, ',');
    if (comma) *comma = '\0';
    if (!*p) ds_fatal(DS_EXIT_USAGE, "playground: --optimizer: empty name in '%s'", optimizer);
    for (int k = 0; k < nr; k++)
      if (strcmp(names[k], p) == 0) ds_fatal(DS_EXIT_USAGE, "playground: --optimizer: '%s' named twice", p);
    if (nr == MAX_RUNS) ds_fatal(DS_EXIT_USAGE, "playground: --optimizer: at most %d names", MAX_RUNS);
    names[nr++] = p;
    if (!comma) break;
    p = comma + 1;
  }
  ds_optim_config cfgs[MAX_RUNS];
  for (int k = 0; k < nr; k++) {
    char who[128];
    snprintf(who, sizeof who, nr > 1 ? "playground (%s)" : "playground", names[k]);
    cfgs[k] = base;
    ds_cli_optim_resolve(who, flags, &cfgs[k], names[k]);
  }
  const ds_optim_config *resolved[MAX_RUNS];
  for (int k = 0; k < nr; k++) resolved[k] = &cfgs[k];
  ds_cli_optim_check_flags("playground", flags, resolved, nr); /* a flag must apply to one of them */

  const ds_backend *be = ds_backend_select(backend, device);
  ds_trajectory tr[MAX_RUNS];
  ds_plot_series series[MAX_RUNS];
  char labels[MAX_RUNS][96];
  for (int k = 0; k < nr; k++) {
    ds_playground_run(be, fn, &cfgs[k], start, steps, &tr[k]);
    if (!quiet && tr[k].stopped && tr[k].stopped_at == 0)
      ds_note("playground: %s: %s; only row 0 is printed", names[k], tr[k].why);
    else if (!quiet && tr[k].stopped)
      ds_note("playground: %s diverged: %s at update %ld; its rows stop at step %ld", names[k],
              tr[k].why, tr[k].stopped_at, tr[k].n - 1);
    ds_playground_label(labels[k], sizeof labels[k], names[k], &cfgs[k]);
    series[k].label = labels[k];
    series[k].tr = &tr[k];
  }
  /* the picture first: the CSV may go to a reader that stops early */
  if (plot) {
    char title[256], subtitle[256], x0s[64];
    format_point(x0s, sizeof x0s, start, fn->dim);
    snprintf(title, sizeof title, "%s", fn->formula);
    snprintf(subtitle, sizeof subtitle, "from x₀ = %s, %ld updates%s%s", x0s, steps,
             strcmp(be->name, "cpu") ? ", backend " : "", strcmp(be->name, "cpu") ? be->name : "");
    if (ds_playground_plot_file(plot, fn, series, nr, title, subtitle, err, sizeof err) != 0)
      ds_fatal(DS_EXIT_RUNTIME, "playground: %s", err);
  }
  ignore_sigpipe();
  errno = 0;
  ds_playground_csv_header(stdout, fn->dim);
  for (int k = 0; k < nr && !stdout_failed(); k++) { /* after a failed write, no point in the rest */
    errno = 0;
    ds_playground_csv_rows(stdout, names[k], &tr[k]);
  }
  check_stdout("CSV");
  for (int k = 0; k < nr; k++) ds_trajectory_free(&tr[k]);
  return DS_EXIT_OK;
}
