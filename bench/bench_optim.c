/* bench_optim — optimizer step throughput against a same-run copy roofline.
 *
 * For each optimizer and size: one optimizer step over flat buffers of N
 * parameters through the backend (the very op training uses), warm-up, then
 * the median of --repeats timed steps, with the last-level cache flushed
 * between repeats (the CPU's, or the GPU's L2) so that small sizes are not
 * measured from cache. The GPU is timed with CUDA events around the launch
 * (device time), the CPU with the host clock.
 * Bytes moved per step come from the optimizer's read/write count (SGD reads
 * w and g and writes w: 12 B/param; each state buffer adds 8 B/param). The
 * roofline is a plain copy of the same number of bytes (half read, half
 * written) measured in the same run through the backend's own copy: on the
 * CPU a memcpy split between all the backend's threads (the optimizer step
 * uses all of them too), on the GPU a device-to-device copy. The CPU also
 * gets a second column, a single-thread memcpy of the same bytes: what one
 * core can stream. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descent/backend.h"
#include "descent/common.h"
#include "descent/optim.h"
#include "cli/flags.h"

typedef struct {
  const char *name;       /* label in the tables */
  const char *optimizer;  /* ds_optim_parse_name */
  int centered, momentum, amsgrad;
} bench_case;

static const bench_case cases[] = {
  {"sgd", "sgd", 0, 0, 0},         {"momentum", "momentum", 0, 0, 0}, {"nesterov", "nesterov", 0, 0, 0},
  {"adagrad", "adagrad", 0, 0, 0}, {"rmsprop", "rmsprop", 0, 0, 0},   {"rmsprop-momentum", "rmsprop", 0, 1, 0},
  {"rmsprop-centered", "rmsprop", 1, 0, 0}, {"adam", "adam", 0, 0, 0}, {"adamw", "adamw", 0, 0, 0},
  {"amsgrad", "adam", 0, 0, 1},
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void config_for(const bench_case *c, ds_optim_config *cfg) {
  ds_optim_config named;
  ds_optim_defaults(&named, DS_OPT_SGD);
  if (ds_optim_parse_name(c->optimizer, &named) != 0) ds_fatal(DS_EXIT_USAGE, "bad case %s", c->name);
  ds_optim_defaults(cfg, named.kind);
  cfg->momentum = c->momentum ? 0.9f : named.momentum;
  cfg->nesterov = named.nesterov;
  cfg->centered = c->centered;
  cfg->amsgrad = c->amsgrad;
}

/* Bytes per parameter per step: read w, g (8) + write w (4) + read/write each state buffer (8). */
static int bytes_per_param(const ds_optim_config *cfg) {
  ds_optim_roles r = ds_optim_state_roles(cfg);
  return 12 + 8 * (r.m + r.v + r.vmax + r.gavg);
}

static float *filled(const ds_backend *be, size_t n, float lo, float hi, float *host) {
  float *d = be->alloc(n * sizeof(float), "benchmark buffer");
  for (size_t i = 0; i < n; i++) host[i] = lo + (hi - lo) * (float)((i * 2654435761u) % 1000u) / 1000.0f;
  be->upload(d, host, n * sizeof(float));
  return d;
}

/* Evict the caches by streaming through a buffer larger than the last level. */
static unsigned char *flush_buf;
static size_t flush_len = (size_t)256 << 20;
static volatile unsigned flush_sink;
static void flush_cache(void) {
  if (!flush_buf) flush_buf = ds_xcalloc(flush_len, 1, "cache flush buffer");
  unsigned s = 0;
  for (size_t i = 0; i < flush_len; i += 64) {
    flush_buf[i]++;
    s += flush_buf[i];
  }
  flush_sink = s;
}

/* Seconds one call of fn takes on the backend: CUDA events where the backend
 * has them (device time, no launch latency of the host clock), else the
 * host clock around the call and a synchronize. */
typedef struct {
  const ds_backend *be;
  const ds_optim_buffers *buf;
  size_t n;
  const ds_optim_config *cfg;
  const ds_optim_scalars *s;
  void *dst, *src;
  size_t half;
} bench_work;

static void run_step(const bench_work *w) { w->be->optim_step(w->buf, w->n, w->n, w->cfg, w->s); }
static void run_copy(const bench_work *w) { w->be->copy(w->dst, w->src, w->half); }
static void run_copy1(const bench_work *w) { memcpy(w->dst, w->src, w->half); }

static double timed(const bench_work *w, void (*fn)(const bench_work *)) {
  const ds_backend *be = w->be;
  if (be->timer_mark) {
    be->timer_mark(0);
    fn(w);
    be->timer_mark(1);
    return be->timer_ms() * 1e-3;
  }
  double t0 = ds_now_seconds();
  fn(w);
  be->synchronize();
  return ds_now_seconds() - t0;
}

static void flush_backend_cache(const ds_backend *be) {
  if (be->flush_cache) be->flush_cache();
  else flush_cache();
}

static double median_seconds(double *t, int n) {
  qsort(t, (size_t)n, sizeof *t, cmp_double);
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

int main(int argc, char **argv) {
  ds_backend_cpu_blas_reexec(argv); /* as the descent binary: OpenBLAS's kernels for this CPU */
  const char *backend = "cpu", *optimizers = "all", *sizes = NULL;
  int tensors = 1, json = 0, repeats = 21, flush = 1;
  ds_flag flags[] = {
    {"--backend", DS_FLAG_STRING, &backend, "cpu|cuda", "where the step runs"},
    {"--optimizer", DS_FLAG_STRING, &optimizers, "NAME[,..]|all", "cases: sgd momentum nesterov adagrad rmsprop rmsprop-momentum rmsprop-centered adam adamw amsgrad"},
    {"--params", DS_FLAG_STRING, &sizes, "N[,N..]", "parameter counts; 'mlp' = 784-1024-1024-10 (1,863,690)", .default_text = "1e4,1e5,1e6,4e6,1e7,mlp"},
    {"--tensors", DS_FLAG_INT, &tensors, "K", "tensors the parameters are split into (descent updates them all in one pass)", "[1,inf)"},
    {"--repeats", DS_FLAG_INT, &repeats, "R", "timed repeats (median reported)", "[20,inf)"},
    {"--no-flush", DS_FLAG_BOOL, &flush, NULL, "do not flush the cache between repeats"},
    {"--json", DS_FLAG_BOOL, &json, NULL, "one JSON record per case instead of the Markdown table"},
    {NULL},
  };
  ds_flags_parse("bench_optim", flags, argc - 1, argv + 1, NULL, 0, "[flags]",
                 "Optimizer step throughput, against a same-run copy of the same bytes.");
  if (ds_flag_given(flags, "--no-flush")) flush = 0;
  /* every name and size checked before anything is printed or run */
  if (strcmp(optimizers, "all") != 0) {
    char list[256];
    snprintf(list, sizeof list, "%s", optimizers);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
      int known = 0;
      for (int c = 0; c < N_CASES; c++) known |= strcmp(tok, cases[c].name) == 0;
      if (!known) ds_fatal(DS_EXIT_USAGE, "bench_optim: --optimizer: unknown case '%s' (see --help)", tok);
    }
  }
  char sizes_buf[256];
  snprintf(sizes_buf, sizeof sizes_buf, "%s", sizes ? sizes : "1e4,1e5,1e6,4e6,1e7,mlp");
  {
    char list[256];
    snprintf(list, sizeof list, "%s", sizes_buf);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
      double nd;
      if (strcmp(tok, "mlp") != 0 && !(ds_parse_double(tok, &nd) == 0 && nd >= 1 && nd <= 4e9))
        ds_fatal(DS_EXIT_USAGE, "bench_optim: --params: bad size '%s' (a count from 1 to 4e9, or mlp)", tok);
    }
  }
  const ds_backend *be = ds_backend_select(backend, 0);

  if (!json) {
    printf("| backend | optimizer | params | tensors | launches/step | us/step | GB/s | copy GB/s (all threads) | ratio to copy | 1-thread copy GB/s |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  }
  for (char *tok = strtok(sizes_buf, ","); tok; tok = strtok(NULL, ",")) {
    double nd;
    size_t n;
    if (strcmp(tok, "mlp") == 0) n = 784 * 1024 + 1024 * 1024 + 1024 * 10 + 1024 + 1024 + 10;
    else n = ds_parse_double(tok, &nd) == 0 ? (size_t)nd : 0; /* checked above */
    float *host = ds_xmalloc(n * sizeof(float), "host staging");
    for (int c = 0; c < N_CASES; c++) {
      const bench_case *bc = &cases[c];
      if (strcmp(optimizers, "all") != 0) {
        char want[256];
        snprintf(want, sizeof want, ",%s,", optimizers);
        char key[64];
        snprintf(key, sizeof key, ",%s,", bc->name);
        if (!strstr(want, key)) continue;
      }
      ds_optim_config cfg;
      config_for(bc, &cfg);
      ds_optim_roles roles = ds_optim_state_roles(&cfg);
      ds_optim_buffers buf = {0};
      buf.param = filled(be, n, -1.0f, 1.0f, host);
      buf.grad = filled(be, n, -0.01f, 0.01f, host);
      if (roles.m) buf.m = filled(be, n, 0.0f, 0.0f, host);
      if (roles.v) buf.v = filled(be, n, 0.0f, 0.0f, host);
      if (roles.vmax) buf.vmax = filled(be, n, 0.0f, 0.0f, host);
      if (roles.gavg) buf.gavg = filled(be, n, 0.0f, 0.0f, host);
      size_t bytes = (size_t)bytes_per_param(&cfg) * n;
      /* the copy roofline: bytes/2 read + bytes/2 written */
      size_t half = bytes / 2;
      unsigned char *src = be->alloc(half, "copy source"), *dst = be->alloc(half, "copy destination");
      double *ts = ds_xmalloc(sizeof(double) * (size_t)repeats, "timings");
      double *tc = ds_xmalloc(sizeof(double) * (size_t)repeats, "timings");
      double *t1 = ds_xmalloc(sizeof(double) * (size_t)repeats, "timings");
      int cpu = strcmp(be->name, "cpu") == 0; /* host memory: memcpy can reach it */
      long t = 0;
      /* the op reads its per-step scalars from backend memory (uploaded untimed) */
      ds_optim_scalars *d_s = be->alloc(sizeof(ds_optim_scalars), "step scalars");
      for (int w = 0; w < 3; w++) { /* warm-up */
        ds_optim_scalars s = ds_optim_scalars_at(&cfg, t, 0, t);
        t++;
        be->upload(d_s, &s, sizeof s);
        be->optim_step(&buf, n, n, &cfg, d_s);
        be->copy(dst, src, half);
      }
      be->synchronize();
      bench_work work = {be, &buf, n, &cfg, d_s, dst, src, half};
      /* flushed: step, copy and 1-thread copy take turns, each from a cold
         cache; --no-flush: each back to back, as a loop of steps runs (what
         the bytes leave in the last-level cache is reused) */
      for (int r = 0; r < repeats; r++) {
        ds_optim_scalars s = ds_optim_scalars_at(&cfg, t, 0, t);
        t++;
        be->upload(d_s, &s, sizeof s); /* not timed */
        if (flush) flush_backend_cache(be);
        ts[r] = timed(&work, run_step);
        if (!flush) continue;
        flush_backend_cache(be);
        tc[r] = timed(&work, run_copy);
        if (cpu) {
          flush_backend_cache(be);
          t1[r] = timed(&work, run_copy1);
        }
      }
      for (int r = 0; !flush && r < repeats; r++) tc[r] = timed(&work, run_copy);
      for (int r = 0; !flush && cpu && r < repeats; r++) t1[r] = timed(&work, run_copy1);
      double step = median_seconds(ts, repeats), copy = median_seconds(tc, repeats);
      double gbs = (double)bytes / step * 1e-9, cgbs = (double)(2 * half) / copy * 1e-9;
      double c1gbs = cpu ? (double)(2 * half) / median_seconds(t1, repeats) * 1e-9 : 0.0;
      char c1[32] = "-";
      if (cpu) snprintf(c1, sizeof c1, "%.2f", c1gbs);
      if (json)
        printf("{\"backend\":\"%s\",\"device\":\"%s\",\"optimizer\":\"%s\",\"params\":%zu,\"tensors\":%d,"
               "\"launches_per_step\":1,\"bytes_per_step\":%zu,\"us_per_step\":%.2f,\"gbytes_per_s\":%.3f,"
               "\"copy_gbytes_per_s\":%.3f,\"ratio_to_copy\":%.3f,\"copy1_gbytes_per_s\":%.3f,\"flush\":%s}\n",
               be->name, be->device, bc->name, n, tensors, bytes, step * 1e6, gbs, cgbs, gbs / cgbs, c1gbs,
               flush ? "true" : "false");
      else
        printf("| %s | %s | %zu | %d | 1 | %.1f | %.2f | %.2f | %.2f | %s |\n", be->name, bc->name, n, tensors,
               step * 1e6, gbs, cgbs, gbs / cgbs, c1);
      fflush(stdout);
      void *bufs[] = {buf.param, buf.grad, buf.m, buf.v, buf.vmax, buf.gavg, src, dst, d_s};
      for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) be->free(bufs[i]);
      free(ts);
      free(tc);
      free(t1);
    }
    free(host);
  }
  return 0;
}
