/* `descent sweep`: run `descent train` once per trial of a grid or random
 * search (host/sweep), N at a time, and append one JSON line per finished
 * trial to the result file; rerunning the same command resumes. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "descent/common.h"
#include "dist/dist.h"
#include "sweep/sweep.h"
#include "train/log.h"

static const char *sweep_summary =
    "Run a set of training trials: every `descent train` flag may take a list of values\n"
    "(--optimizer sgd,adam), a grid (--lr 1e-4:1:13log, --momentum 0.8:0.99:5) or, for\n"
    "--search random:N | quasirandom:N, a range (--lr 1e-4:1e-1:log, --momentum 0.8:0.99);\n"
    "switches take on,off; --hidden and --normalize separate their alternatives with '/'.\n"
    "Each trial is `descent train ... --seed S --json --quiet`; one JSON line per finished trial\n"
    "goes to --out (format descent-sweep/1, README: Benchmarking optimizers). Rerunning the\n"
    "same command skips the trials already in the file. Ctrl-C stops the running trials and\n"
    "leaves the file valid. Every trial's flags are checked (descent train --dry-run) first.";

/* Train flags a sweep sets itself or that would make trials overwrite each other. */
static const char *const refused[][2] = {
  {"--seed", "give the seeds with --seeds (1-5, or 1,2,3)"},
  {"--json", "the sweep asks every trial for it"},
  {"--quiet", "trials run quietly"},
  {"--dry-run", "use descent sweep --dry-run to list the trials"},
  {"--save", "every trial would write the same file"},
  {"--save-every", "every trial would write the same file"},
  {"--resume", "every trial would continue the same checkpoint"},
  {"--log", "every trial would write the same file; the curve is in the result file"},
};

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

/* ---- child processes -------------------------------------------------------- */

typedef struct {
  pid_t pid;
  long trial;
  int out_fd, err_fd;
  ds_strbuf out, err;
  double t0;
} job;

extern char **environ;

/* A trial is one process, not a rank of the sweep's MPI job: the launcher's
 * variables go (else `descent train` would join the job), and under mpirun
 * each rank's trials see the GPU of its local rank. */
static void leave_the_job(void) {
  for (int again = 1; again;) {
    again = 0;
    for (char **e = environ; *e; e++)
      if (strncmp(*e, "OMPI_", 5) == 0 || strncmp(*e, "PMIX_", 5) == 0 || strncmp(*e, "PMI_", 4) == 0 ||
          strncmp(*e, "MV2_", 4) == 0) {
        char name[256];
        size_t n = strcspn(*e, "=");
        snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), *e);
        unsetenv(name);
        again = 1;
        break;
      }
  }
}

/* Start `self train args... --json --quiet` (or `--dry-run` when check) with
 * stdout and stderr on pipes, in a process group of its own (Ctrl-C reaches
 * the sweep, which stops it), with OPENBLAS_NUM_THREADS=threads unless the
 * environment sets it. */
static void job_start(job *j, const char *self, char *const *args, int n_args, int threads, int check) {
  int out[2], err[2];
  if (pipe(out) != 0 || pipe(err) != 0) ds_fatal(DS_EXIT_RUNTIME, "sweep: pipe: %s", strerror(errno));
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) ds_fatal(DS_EXIT_RUNTIME, "sweep: fork: %s", strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    if (ds_dist_size() > 1) {
      char dev[16];
      snprintf(dev, sizeof dev, "%d", ds_dist_local_rank());
      setenv("CUDA_VISIBLE_DEVICES", dev, 0);
      leave_the_job();
    }
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]), close(out[1]), close(err[0]), close(err[1]);
    char th[16];
    snprintf(th, sizeof th, "%d", threads);
    if (threads > 0) setenv("OPENBLAS_NUM_THREADS", th, 0);
    char **argv = calloc((size_t)n_args + 5, sizeof(char *));
    if (!argv) _exit(DS_EXIT_RUNTIME);
    int k = 0;
    argv[k++] = (char *)self;
    argv[k++] = (char *)"train";
    for (int i = 0; i < n_args; i++) argv[k++] = args[i];
    if (check) {
      argv[k++] = (char *)"--dry-run";
    } else {
      argv[k++] = (char *)"--json";
      argv[k++] = (char *)"--quiet";
    }
    argv[k] = NULL;
    execv(self, argv);
    fprintf(stderr, "descent: sweep: cannot run %s: %s\n", self, strerror(errno));
    _exit(DS_EXIT_RUNTIME);
  }
  close(out[1]), close(err[1]);
  memset(&j->out, 0, sizeof j->out);
  memset(&j->err, 0, sizeof j->err);
  j->pid = pid;
  j->out_fd = out[0];
  j->err_fd = err[0];
  j->t0 = ds_now_seconds();
}

/* Read what is there; 1 when both pipes are at their end. */
static int job_read(job *j, int fd_ready_out, int fd_ready_err) {
  char b[65536];
  if (fd_ready_out && j->out_fd >= 0) {
    ssize_t n = read(j->out_fd, b, sizeof b);
    if (n > 0) ds_strbuf_add(&j->out, b, (size_t)n);
    else if (n == 0 || errno != EINTR) close(j->out_fd), j->out_fd = -1;
  }
  if (fd_ready_err && j->err_fd >= 0) {
    ssize_t n = read(j->err_fd, b, sizeof b);
    if (n > 0) ds_strbuf_add(&j->err, b, (size_t)n);
    else if (n == 0 || errno != EINTR) close(j->err_fd), j->err_fd = -1;
  }
  return j->out_fd < 0 && j->err_fd < 0;
}

/* Wait for the process; its exit status (128 + signal when killed). */
static int job_wait(job *j) {
  int st = 0;
  while (waitpid(j->pid, &st, 0) < 0)
    if (errno != EINTR) return DS_EXIT_RUNTIME;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* The last non-empty line of s (in place), without "descent: ". */
static const char *last_line(ds_strbuf *t) {
  if (!t->s) return "";
  size_t n = t->len;
  while (n > 0 && (t->s[n - 1] == '\n' || t->s[n - 1] == '\r')) n--;
  t->s[n] = '\0';
  char *p = strrchr(t->s, '\n');
  p = p ? p + 1 : t->s;
  return strncmp(p, "descent: ", 9) == 0 ? p + 9 : p;
}

/* `descent train args... --dry-run` in a forked copy of this process (no
 * exec: a check costs a fork, not a program start): its exit status, and
 * its stderr in *err. */
static int check_trial(const char *self, char *const *args, int n_args, ds_strbuf *err) {
  if (ds_dist_size() > 1) { /* this process is a rank of a job: the check runs as a program of its own */
    job j;
    job_start(&j, self, args, n_args, 1, 1);
    struct pollfd p[2];
    while (j.out_fd >= 0 || j.err_fd >= 0) {
      p[0] = (struct pollfd){j.out_fd, POLLIN, 0};
      p[1] = (struct pollfd){j.err_fd, POLLIN, 0};
      if (poll(p, 2, -1) < 0 && errno != EINTR) break;
      job_read(&j, p[0].revents != 0, p[1].revents != 0);
    }
    free(j.out.s);
    *err = j.err;
    return job_wait(&j);
  }
  int e[2];
  if (pipe(e) != 0) ds_fatal(DS_EXIT_RUNTIME, "sweep: pipe: %s", strerror(errno));
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) ds_fatal(DS_EXIT_RUNTIME, "sweep: fork: %s", strerror(errno));
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 1);
    dup2(e[1], 2);
    close(e[0]), close(e[1]);
    char **argv = calloc((size_t)n_args + 2, sizeof(char *));
    if (!argv) _exit(DS_EXIT_RUNTIME);
    for (int i = 0; i < n_args; i++) argv[i] = args[i];
    argv[n_args] = (char *)"--dry-run";
    int rc = ds_cmd_train(n_args + 1, argv);
    free(argv);
    /* _exit: the copy of the sweep's memory this child inherited is not its to free (leak checkers) */
    fflush(stdout);
    fflush(stderr);
    _exit(rc);
  }
  close(e[1]);
  memset(err, 0, sizeof *err);
  char b[4096];
  for (;;) {
    ssize_t r = read(e[0], b, sizeof b);
    if (r > 0) ds_strbuf_add(err, b, (size_t)r);
    else if (r == 0 || errno != EINTR) break;
  }
  close(e[0]);
  job j = {.pid = pid};
  return job_wait(&j);
}

/* ---- the result file ---------------------------------------------------------- */

/* Read the trials already in the file (resume: those with status "ok";
 * failed ones run again) and cut a half-written last line; refuse a file
 * that is not a sweep's. Returns the file descriptor
 * (append mode, locked). */
static int open_results(const char *path, char ***ids, long *n_ids, long *n_failed) {
  char err[1024];
  int code;
  if (!ds_path_has_suffix(path, ".jsonl"))
    ds_fatal(DS_EXIT_USAGE, "sweep: --out %s: the result file must end in .jsonl (JSON lines)", path);
  if ((code = ds_output_check("--out", path, err, sizeof err)) != 0) ds_fatal(code, "sweep: %s", err);
  int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) ds_fatal(DS_EXIT_RUNTIME, "sweep: --out %s: %s", path, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0)
    ds_fatal(DS_EXIT_RUNTIME, "sweep: --out %s: another descent sweep is writing it (%s)", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) ds_fatal(DS_EXIT_RUNTIME, "sweep: --out %s: %s", path, strerror(errno));
  size_t size = (size_t)st.st_size;
  char *all = ds_xmalloc(size + 1, "the result file");
  size_t got = 0;
  while (got < size) {
    ssize_t r = pread(fd, all + got, size - got, (off_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) ds_fatal(DS_EXIT_RUNTIME, "sweep: --out %s: read: %s", path, r < 0 ? strerror(errno) : "short read");
    got += (size_t)r;
  }
  all[size] = '\0';
  size_t whole = size;
  while (whole > 0 && all[whole - 1] != '\n') whole--;
  if (whole < size) {
    ds_note("sweep: --out %s: ignoring a half-written last line (%zu bytes); its trial runs again", path, size - whole);
    if (ftruncate(fd, (off_t)whole) != 0) ds_fatal(DS_EXIT_RUNTIME, "sweep: --out %s: truncate: %s", path, strerror(errno));
  }
  *ids = NULL;
  *n_ids = 0;
  *n_failed = 0;
  long line = 0;
  for (size_t p = 0; p < whole;) {
    char *nl = memchr(all + p, '\n', whole - p);
    size_t len = (size_t)(nl - (all + p));
    line++;
    const char *v;
    size_t vl;
    static const char fmt[] = "{\"format\":\"descent-sweep/1\"";
    if (len > 0) {
      if (len < sizeof fmt - 1 || memcmp(all + p, fmt, sizeof fmt - 1) != 0 ||
          ds_json_member(all + p, len, "trial", &v, &vl) != 0 || vl != 18)
        ds_fatal(DS_EXIT_USAGE, "sweep: --out %s:%ld: not a descent sweep record (format descent-sweep/1); "
                 "give another file", path, line);
      if (!ds_json_whole(all + p, len))
        ds_fatal(DS_EXIT_USAGE, "sweep: --out %s:%ld: a damaged line (not one whole JSON object); delete it and its "
                 "trial runs again", path, line);
      const char *stv;
      size_t stl;
      if (ds_json_member(all + p, len, "status", &stv, &stl) == 0 && stl == 8 && memcmp(stv, "\"failed\"", 8) == 0) {
        (*n_failed)++; /* a failed trial runs again; its new line comes after this one */
        p += len + 1;
        continue;
      }
      *ids = ds_xrealloc(*ids, (size_t)(*n_ids + 1) * sizeof(char *), "trial ids");
      char *id = ds_xmalloc(17, "a trial id");
      memcpy(id, v + 1, 16);
      id[16] = '\0';
      (*ids)[(*n_ids)++] = id;
    }
    p += len + 1;
  }
  free(all);
  return fd;
}

/* Append one whole line; a failed write is undone (the file is cut back to
 * its last whole line) before the sweep ends with exit 1. */
static void write_line(int fd, const char *path, const char *line) {
  size_t n = strlen(line), off = 0;
  off_t before = lseek(fd, 0, SEEK_END);
  while (off < n) {
    ssize_t w = write(fd, line + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = errno;
      if (before >= 0 && ftruncate(fd, before) != 0) { /* the next run cuts the partial line */ }
      ds_fatal(DS_EXIT_RUNTIME, "sweep: --out %s: write: %s (the file keeps its whole lines)", path,
               w < 0 ? strerror(e) : "no progress");
    }
    off += (size_t)w;
  }
  if (fsync(fd) != 0 && errno != EINVAL) ds_fatal(DS_EXIT_RUNTIME, "sweep: --out %s: fsync: %s", path, strerror(errno));
}

/* ---- the command --------------------------------------------------------------- */

static int is_own_flag(const char *a) {
  static const char *const own[] = {"--out", "--jobs", "--seeds", "--search", "--search-seed", "--max-trials",
                                    "--yes", "--dry-run", "--threads", "-h", "--help", NULL};
  size_t n = strcspn(a, "=");
  for (int i = 0; own[i]; i++)
    if (strlen(own[i]) == n && strncmp(a, own[i], n) == 0) return 1;
  return 0;
}

/* All its flags (listing), or only what the sweep varies (progress lines). */
static void describe(const ds_trial *t, char *buf, size_t len) {
  size_t n = 0;
  buf[0] = '\0';
  for (int i = 0; i < t->n_args && n < len; i++) n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? " " : "", t->args[i]);
}

static void describe_short(const ds_trial *t, char *buf, size_t len) {
  size_t n = 0;
  buf[0] = '\0';
  for (int i = 0; i + 1 < t->n_args && n < len; i++)
    if (strcmp(t->args[i], "--optimizer") == 0) n += (size_t)snprintf(buf + n, len - n, "%s ", t->args[i + 1]);
  for (int i = 0; i < t->n_hyper && n < len; i++)
    n += (size_t)snprintf(buf + n, len - n, "%s=%s ", t->hyper_names[i], t->hyper_values[i]);
  if (n < len) snprintf(buf + n, len - n, "seed=%llu", (unsigned long long)t->seed);
}

/* The figure "best so far" ranks by: final val_accuracy, else test_accuracy. */
static double trial_score(const char *json, size_t len, const char **metric) {
  const char *v;
  size_t vl;
  *metric = "val_accuracy";
  if (ds_json_member(json, len, "val_accuracy", &v, &vl) == 0 && vl > 0 && v[0] != 'n') return strtod(v, NULL);
  *metric = "test_accuracy";
  if (ds_json_member(json, len, "test_accuracy", &v, &vl) == 0 && vl > 0 && v[0] != 'n') return strtod(v, NULL);
  return NAN;
}

/* Rank 0's account of the finished trials: the file, the counts, the progress line. */
typedef struct {
  long finished, failed, total;
  double t0, best;
  char best_desc[1400];
  int fd;
  const char *out;
} tally;

/* Write one finished trial's line and print its progress line; secs is its
 * wall time here, NAN for a trial another rank ran (its own clock is used). */
static void tally_line(tally *tl, const char *line, const ds_trial *trials, long n, double secs) {
  write_line(tl->fd, tl->out, line);
  size_t len = strlen(line);
  const char *v, *fin;
  size_t vl, fl;
  const ds_trial *t = NULL;
  if (ds_json_member(line, len, "trial", &v, &vl) == 0 && vl == 18)
    for (long i = 0; i < n && !t; i++)
      if (memcmp(trials[i].id, v + 1, 16) == 0) t = &trials[i];
  int ok = ds_json_member(line, len, "status", &v, &vl) == 0 && vl == 4 && memcmp(v, "\"ok\"", 4) == 0;
  const char *error = NULL;
  char errbuf[512] = "";
  if (!ok && ds_json_member(line, len, "error", &v, &vl) == 0 && vl > 2 && v[0] == '"') {
    snprintf(errbuf, sizeof errbuf, "%.*s", (int)(vl - 2 < sizeof errbuf - 1 ? vl - 2 : sizeof errbuf - 1), v + 1);
    error = errbuf;
  }
  double score = NAN;
  const char *metric = "val_accuracy";
  if (ds_json_member(line, len, "final", &fin, &fl) == 0 && fin[0] == '{') {
    score = trial_score(fin, fl, &metric);
    if (!isfinite(secs) && ds_json_member(fin, fl, "seconds", &v, &vl) == 0) secs = strtod(v, NULL);
  }
  tl->finished++;
  tl->failed += !ok;
  char d[1024] = "?";
  if (t) describe_short(t, d, sizeof d);
  if (ok && score > tl->best)
    tl->best = score, snprintf(tl->best_desc, sizeof tl->best_desc, "%s %.4f (%s)", metric, score, d);
  double el = ds_now_seconds() - tl->t0;
  char eta[32] = "?", sc[32];
  ds_format_duration(eta, sizeof eta, el / (double)tl->finished * (double)(tl->total - tl->finished));
  fprintf(stderr, "sweep: %ld/%ld  %s  %s %s in %.1f s%s%s  ETA %s  best: %s\n", tl->finished, tl->total,
          t ? t->id : "?", d, ok ? (isfinite(score) ? ds_format_number(sc, sizeof sc, score) : "?") : "FAILED", secs,
          ok ? "" : ": ", ok ? "" : (error ? error : ""), eta, tl->best_desc[0] ? tl->best_desc : "none yet");
}

int ds_cmd_sweep(int argc, char **argv) {
  ds_dist_init(); /* under mpirun: the ranks share the trials (host/dist) */
  /* split: the sweep's own flags, then train flags with value specs */
  char **own = ds_xcalloc((size_t)argc + 1, sizeof(char *), "arguments");
  int n_own = 0;
  ds_sweep_spec spec;
  memset(&spec, 0, sizeof spec);
  char err[2048];
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (is_own_flag(a)) {
      own[n_own++] = argv[i];
      if (!strchr(a, '=') && strcmp(a, "--yes") && strcmp(a, "--dry-run") && strcmp(a, "-h") && strcmp(a, "--help") &&
          i + 1 < argc)
        own[n_own++] = argv[++i];
      continue;
    }
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
      ds_fatal(DS_EXIT_USAGE, "sweep: unexpected argument '%s' (a train flag's value follows its flag: --lr 0.1,0.01)", a);
    if (spec.n_axes == DS_SWEEP_MAX_AXES) ds_fatal(DS_EXIT_USAGE, "sweep: more than %d train flags", DS_SWEEP_MAX_AXES);
    char *flag = argv[i], *value = NULL;
    char *eq = strchr(a, '=');
    if (eq) { /* --lr=0.1,0.01 */
      *eq = '\0';
      value = eq + 1;
    } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
      value = argv[++i];
    }
    for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++)
      if (strcmp(flag, refused[k][0]) == 0) ds_fatal(DS_EXIT_USAGE, "sweep: %s: %s", flag, refused[k][1]);
    for (int k = 0; k < spec.n_axes; k++)
      if (strcmp(spec.axes[k].flag, flag) == 0) ds_fatal(DS_EXIT_USAGE, "sweep: %s given twice (give one list: %s A,B)", flag, flag);
    if (ds_sweep_axis_parse(&spec.axes[spec.n_axes], flag, value, err, sizeof err) != 0)
      ds_fatal(DS_EXIT_USAGE, "sweep: %s", err);
    spec.n_axes++;
  }
  const char *out = NULL, *seeds = "1", *search = "grid";
  int jobs = 1, yes = 0, dry_run = 0, threads = 0;
  long max_trials = 1000;
  uint64_t search_seed = 0;
  ds_flag flags[] = {
    {"--out", DS_FLAG_STRING, &out, "FILE.jsonl", "the result file: one JSON line per finished trial; rerunning the same command resumes it", .group = "Sweep"},
    {"--seeds", DS_FLAG_STRING, &seeds, "A-B|A,B,..", "run every setting with each of these seeds (--seed of the trial)"},
    {"--search", DS_FLAG_STRING, &search, "grid|random:N|quasirandom:N", "the product of the lists, or N points drawn over the ranges and lists"},
    {"--search-seed", DS_FLAG_U64, &search_seed, "S", "seed of random search (and the rotation of quasirandom when not 0)"},
    {"--jobs", DS_FLAG_INT, &jobs, "N", "trials at a time (on the CPU each gets --threads GEMM threads)", "[1,1024]"},
    {"--threads", DS_FLAG_INT, &threads, "N", "OPENBLAS_NUM_THREADS of each trial (unless the environment sets it)", "[1,1024]", .default_text = "cores / jobs"},
    {"--max-trials", DS_FLAG_LONG, &max_trials, "N", "refuse a sweep of more trials than this unless --yes", "[1,inf)"},
    {"--yes", DS_FLAG_BOOL, &yes, NULL, "run a sweep larger than --max-trials"},
    {"--dry-run", DS_FLAG_BOOL, &dry_run, NULL, "check the trials and list them (one line each), run nothing"},
    {NULL},
  };
  ds_flags_parse("sweep", flags, n_own, own, NULL, 0, "--out FILE.jsonl [sweep flags] [train flags with lists]", sweep_summary);
  free(own);
  if (ds_sweep_seeds_parse(&spec, seeds, err, sizeof err) != 0) ds_fatal(DS_EXIT_USAGE, "sweep: %s", err);
  if (ds_sweep_search_parse(&spec, search, err, sizeof err) != 0) ds_fatal(DS_EXIT_USAGE, "sweep: %s", err);
  if (!out && !dry_run) ds_fatal(DS_EXIT_USAGE, "sweep: --out FILE.jsonl is needed (where the results go)");
  if (ds_flag_given(flags, "--search-seed") && spec.search == DS_SEARCH_GRID)
    ds_fatal(DS_EXIT_USAGE, "sweep: --search-seed: a grid draws nothing (use --search random:N or quasirandom:N)");
  spec.search_seed = search_seed;
  if (threads == 0) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    threads = cores > jobs ? (int)(cores / jobs) : 1;
  }
  ds_trial *trials;
  long n = ds_sweep_trials(&spec, yes || dry_run ? (long)1e9 : max_trials, &trials, err, sizeof err);
  if (n < 0) ds_fatal(DS_EXIT_USAGE, "sweep: %s", err);

  char self[DS_PATH_MAX];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0) ds_fatal(DS_EXIT_RUNTIME, "sweep: cannot find the descent binary (/proc/self/exe): %s", strerror(errno));
  self[sl] = '\0';

  /* the result file's name, then every trial's flags, before anything runs */
  char **done_ids = NULL;
  long n_done_ids = 0;
  if (out) { /* checked now, created once every trial's flags are */
    if (!ds_path_has_suffix(out, ".jsonl"))
      ds_fatal(DS_EXIT_USAGE, "sweep: --out %s: the result file must end in .jsonl (JSON lines)", out);
    int code = ds_output_check("--out", out, err, sizeof err);
    if (code != 0) ds_fatal(code, "sweep: %s", err);
  }
  for (long i = 0; i < n; i++) {
    ds_strbuf e;
    if (i % ds_dist_size() != ds_dist_rank()) continue; /* under mpirun each rank checks its share */
    int rc = check_trial(self, trials[i].args, trials[i].n_args, &e);
    if (rc != 0) {
      char d[1024];
      describe(&trials[i], d, sizeof d);
      ds_fatal(rc == DS_EXIT_USAGE || rc == DS_EXIT_NOGPU ? rc : DS_EXIT_RUNTIME, "sweep: trial %ld of %ld (%s): %s", i + 1, n, d,
               last_line(&e));
    }
    free(e.s);
  }
  /* under mpirun: rank 0 holds the result file and writes every line; each
     rank runs every size-th trial still to do and sends rank 0 its lines. The
     ranks must have been given the same sweep: their plans' hashes agree. */
  int rank = ds_dist_rank(), size = ds_dist_size();
  if (size > 1) {
    uint64_t h = 1469598103934665603ULL, h0;
    for (long i = 0; i < n; i++)
      for (const char *c = trials[i].id; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    for (const char *c = out ? out : ""; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    h0 = h;
    ds_dist_broadcast_host(&h0, sizeof h0, 0);
    if (ds_dist_any(h != h0) && rank == 0)
      ds_fatal(DS_EXIT_USAGE, "sweep: the processes were given different sweeps (flags or --out); give every rank the same command");
    if (h != h0) { /* rank 0 ends the job; wait for it */
      pause();
    }
  }
  int fd = -1;
  long n_failed_before = 0;
  if (out && !dry_run && rank == 0) fd = open_results(out, &done_ids, &n_done_ids, &n_failed_before);
  if (dry_run) {
    for (long i = 0; i < n && rank == 0; i++) {
      char d[2048];
      describe(&trials[i], d, sizeof d);
      printf("%s  descent train %s\n", trials[i].id, d);
    }
    if (fflush(stdout) != 0) ds_fatal(DS_EXIT_RUNTIME, "cannot write to standard output");
    ds_sweep_trials_free(trials, n);
    free(trials);
    ds_sweep_spec_free(&spec);
    ds_dist_finalize(1);
    return DS_EXIT_OK;
  }

  /* the trials still to run (rank 0 read the file; every rank gets the list) */
  long *todo = ds_xcalloc((size_t)n + 1, sizeof(long), "trials");
  long n_todo = 0;
  for (long i = 0; i < n && rank == 0; i++) {
    int seen = 0;
    for (long k = 0; k < n_done_ids && !seen; k++) seen = strcmp(done_ids[k], trials[i].id) == 0;
    if (!seen) todo[n_todo++] = i;
  }
  ds_dist_broadcast_host(&n_todo, sizeof n_todo, 0);
  ds_dist_broadcast_host(todo, (size_t)n_todo * sizeof(long), 0);
  if (rank == 0 && n_todo < n)
    ds_note("sweep: %ld of %ld trials are already in %s; running the other %ld", n - n_todo, n, out, n_todo);
  if (n_failed_before > 0)
    ds_note("sweep: %s holds %ld failed trial line%s; %s run%s again (descent report reads a trial's last line)", out,
            n_failed_before, n_failed_before == 1 ? "" : "s", n_failed_before == 1 ? "it" : "they", n_failed_before == 1 ? "s" : "");
  long n_mine = 0;
  for (long k = 0; k < n_todo; k++)
    if (k % size == rank) todo[n_mine++] = todo[k]; /* this rank's share, in order */
  if (size > 1 && rank == 0)
    ds_note("sweep: %d ranks share the %ld trials (rank 0 writes %s)", size, n_todo, out);

  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  job *run = ds_xcalloc((size_t)jobs, sizeof(job), "jobs");
  int running = 0, forwarded = 0, done_ranks = 0;
  long next = 0;
  tally tl = {.t0 = ds_now_seconds(), .best = -INFINITY, .total = n_todo, .fd = fd, .out = out};
  while ((next < n_mine && !stop_requested) || running > 0 || (rank == 0 && done_ranks < size - 1)) {
    while (running < jobs && next < n_mine && !stop_requested) {
      ds_trial *t = &trials[todo[next]];
      job_start(&run[running], self, t->args, t->n_args, threads, 0);
      run[running++].trial = todo[next++];
    }
    if (stop_requested && !forwarded) { /* Ctrl-C: every running trial stops after its update */
      for (int k = 0; k < running; k++) kill(run[k].pid, SIGINT);
      forwarded = 1;
    }
    struct pollfd p[2 * 1024];
    for (int k = 0; k < running; k++) {
      p[2 * k] = (struct pollfd){run[k].out_fd, POLLIN, 0};
      p[2 * k + 1] = (struct pollfd){run[k].err_fd, POLLIN, 0};
    }
    if (poll(p, (nfds_t)(2 * running), size > 1 ? 50 : 1000) < 0 && errno != EINTR)
      ds_fatal(DS_EXIT_RUNTIME, "sweep: poll: %s", strerror(errno));
    for (int k = 0; k < running; k++) {
      if (!job_read(&run[k], p[2 * k].revents != 0, p[2 * k + 1].revents != 0)) continue;
      job *j = &run[k];
      int rc = job_wait(j);
      ds_trial *t = &trials[j->trial];
      const char *json = NULL;
      size_t json_len = 0;
      if (j->out.s) { /* the JSON is the last line of stdout */
        size_t e = j->out.len;
        while (e > 0 && j->out.s[e - 1] == '\n') e--;
        size_t b = e;
        while (b > 0 && j->out.s[b - 1] != '\n') b--;
        if (e > b && j->out.s[b] == '{') json = j->out.s + b, json_len = e - b;
      }
      int interrupted = rc == DS_EXIT_INTERRUPTED || rc == 128 + SIGINT || (stop_requested && rc != 0);
      if (interrupted && stop_requested) {
        char d[1024];
        describe_short(t, d, sizeof d);
        fprintf(stderr, "descent: sweep: stopped trial %s (%s); it runs again when the sweep is rerun\n", t->id, d);
      } else {
        char *line = ds_sweep_record(t, json, json_len, rc, rc != 0 ? last_line(&j->err) : NULL);
        if (rank == 0) tally_line(&tl, line, trials, n, ds_now_seconds() - j->t0);
        else ds_dist_send_text(0, line, strlen(line));
        free(line);
      }
      free(j->out.s);
      free(j->err.s);
      run[k] = run[--running];
      k--;
    }
    char *msg;
    size_t len;
    int from;
    while (rank == 0 && ds_dist_poll_text(&msg, &len, &from)) { /* other ranks' lines; an empty one: it is done */
      if (len == 0) done_ranks++;
      else tally_line(&tl, msg, trials, n, NAN);
      free(msg);
    }
  }
  if (rank != 0) ds_dist_send_text(0, "", 0);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  if (fd >= 0) close(fd);
  int code = DS_EXIT_OK;
  if (stop_requested) {
    if (rank == 0)
      fprintf(stderr, "descent: sweep: interrupted: %ld of %ld trials done in %s; rerun the same command to continue\n",
              tl.finished + (n - n_todo), n, out);
    code = DS_EXIT_INTERRUPTED;
  } else if (rank == 0 && tl.failed > 0) {
    fprintf(stderr, "descent: sweep: %ld of %ld trials failed (status \"failed\" in %s); the others are recorded\n",
            tl.failed, n_todo, out);
    code = DS_EXIT_RUNTIME;
  } else if (rank == 0) {
    fprintf(stderr, "sweep: %ld trials in %s (%ld run now)%s%s\n", n, out, tl.finished,
            tl.best_desc[0] ? "; best of those run now: " : "", tl.best_desc);
  }
  for (long k = 0; k < n_done_ids; k++) free(done_ids[k]);
  free(done_ids);
  free(todo);
  free(run);
  ds_sweep_trials_free(trials, n);
  free(trials);
  ds_sweep_spec_free(&spec);
  ds_dist_finalize(1);
  return code;
}
