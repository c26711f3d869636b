/* The CPU reference backend: host memory and the *_cpu ops, on the pool's
 * threads (parallel_cpu.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include "descent/common.h"
#include "gemm_cpu.h"
#include "kernels_cpu.h"
#include "parallel_cpu.h"

#define HUGE_PAGE ((size_t)2 << 20)

/* Zeroed, cache-line aligned memory whose pages are all touched here, at
 * setup: a training step never takes a page fault on its buffers. Buffers of
 * 2 MiB and more are aligned to 2 MiB and asked to be backed by huge pages
 * (fewer TLB misses in the optimizer's sweep; a hint the kernel may ignore). */
static void *cpu_alloc(size_t bytes, const char *what) {
  if (!bytes) bytes = 1;
  size_t align = bytes >= HUGE_PAGE ? HUGE_PAGE : 64;
  void *p = NULL;
  if (posix_memalign(&p, align, bytes) != 0 || !p)
    ds_fatal(DS_EXIT_RUNTIME, "out of host memory allocating %zu bytes for %s", bytes, what);
#ifdef MADV_HUGEPAGE
  if (align == HUGE_PAGE) (void)madvise(p, bytes & ~(HUGE_PAGE - 1), MADV_HUGEPAGE); /* a hint: failure is harmless */
#endif
  ds_cpu_zero(p, bytes);
  return p;
}
static void cpu_free(void *p) { free(p); }
static void cpu_copy(void *dst, const void *src, size_t bytes) { ds_cpu_copy(dst, src, bytes); }
static void cpu_zero(void *dst, size_t bytes) { ds_cpu_zero(dst, bytes); }
static void cpu_synchronize(void) {}

/* A CPU op cannot fault on its own: report the injected fault as a failing
 * device op would be reported, one line naming it, exit 1. */
static void cpu_inject_fault(const char *op) {
  ds_fatal(DS_EXIT_RUNTIME, "CPU backend: injected fault in %s (DESCENT_FAULT_AT_UPDATE)", op);
}

/* MemAvailable of /proc/meminfo: what the kernel can give without swapping
 * (0 = unknown, e.g. not Linux). */
static size_t cpu_memory_available(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long kb = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
  fclose(f);
  return (size_t)kb * 1024u;
}

static ds_backend cpu_backend = {
  .name = "cpu",
  .device = "CPU",
  .alloc = cpu_alloc,
  .free = cpu_free,
  .upload = cpu_copy,
  .download = cpu_copy,
  .copy = cpu_copy,
  .zero = cpu_zero,
  .synchronize = cpu_synchronize,
  .gather_forward = gather_forward_cpu,
  .linear_forward = linear_forward_cpu,
  .linear_backward = linear_backward_cpu,
  .activation_forward = activation_forward_cpu,
  .activation_backward = activation_backward_cpu,
  .batchnorm_forward = batchnorm_forward_cpu,
  .batchnorm_backward = batchnorm_backward_cpu,
  .dropout_forward = dropout_forward_cpu,
  .dropout_backward = dropout_backward_cpu,
  .hidden_forward = hidden_forward_cpu,
  .hidden_backward = hidden_backward_cpu,
  .softmax_xent = softmax_xent_cpu,
  .optim_step = optim_step_cpu,
  .axpy = axpy_cpu,
  .monitor_stats = monitor_stats_cpu,
  .monitor_sumsq = monitor_sumsq_cpu,
  .monitor_nonfinite = monitor_nonfinite_cpu,
  /* no TF32, always deterministic, no graphs: those hooks stay NULL */
  .inject_fault = cpu_inject_fault,
  .memory_available = cpu_memory_available,
  .batchnorm_sums = batchnorm_sums_cpu,
  .batchnorm_forward_synced = batchnorm_forward_synced_cpu,
  .batchnorm_backward_sums = batchnorm_backward_sums_cpu,
  .batchnorm_backward_synced = batchnorm_backward_synced_cpu,
  /* native_stream NULL: ops run on the calling thread */
};

int ds_backend_cpu_threads(void) { return ds_cpu_threads(); }

/* DESCENT_OPENBLAS_CORETYPE: who chose, for --version: the value and this
 * process's id (exec keeps it, a child has its own) */
static void coretype_mark(char *buf, size_t size, const char *core) {
  snprintf(buf, size, "%s:%ld", core, (long)getpid());
}

void ds_backend_cpu_blas_reexec(char **argv) {
  if (getenv("OPENBLAS_CORETYPE")) return; /* the user's choice, or ours already */
  /* Started as `ld.so program ...`, /proc/self/exe is the loader, which
     would take argv[0] for its own option: no interpreter means that (or a
     static program), so leave it be */
  if (getauxval(AT_BASE) == 0) return;
  const char *core = gemm_cpu_better_coretype();
  if (!core || setenv("OPENBLAS_CORETYPE", core, 1) != 0) return;
  char mark[64];
  coretype_mark(mark, sizeof mark, core);
  if (setenv("DESCENT_OPENBLAS_CORETYPE", mark, 1) == 0) execv("/proc/self/exe", argv);
  unsetenv("OPENBLAS_CORETYPE"); /* no exec: on with the kernels loaded */
  unsetenv("DESCENT_OPENBLAS_CORETYPE");
}

const char *ds_backend_cpu_blas_coretype_set(void) {
  static char core[48];
  const char *mark = getenv("DESCENT_OPENBLAS_CORETYPE"), *now = getenv("OPENBLAS_CORETYPE");
  if (!mark || !now) return NULL;
  char want[64];
  coretype_mark(want, sizeof want, now);
  if (strcmp(mark, want) != 0) return NULL; /* set by someone else, or inherited by a child */
  snprintf(core, sizeof core, "%s", now);
  return core;
}

const ds_backend *ds_backend_cpu(void) {
  static int described = 0;
  static char device[96];
  if (!described) {
    /* "CPU, GEMM: cblas (OpenBLAS), 2 threads" or "CPU, GEMM: built-in C, 1 thread";
     * every op runs on the same threads as the GEMM */
    int threads = ds_cpu_threads();
    snprintf(device, sizeof device, "CPU, GEMM: %s, %d thread%s", gemm_cpu_impl(), threads, threads == 1 ? "" : "s");
    cpu_backend.device = device;
    described = 1;
  }
  return &cpu_backend;
}
