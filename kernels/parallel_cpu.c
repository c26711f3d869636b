/* The CPU backend's thread pool (see parallel_cpu.h). */
#include "parallel_cpu.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "descent/common.h"

#ifdef DS_HAVE_CBLAS
#include <cblas.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define DS_POOL_MAX DS_POOL_PARTS_MAX
/* Spin this long waiting for work or for the other parts before sleeping or
 * yielding: a training step issues its ops back to back (microseconds apart),
 * so a worker that slept after every op would pay a wake-up each, while a
 * worker that spun for long would take a core from whatever else runs. */
#define DS_POOL_SPIN_NS 50000.0
/* Below this many elements an op runs on the calling thread alone. */
#define DS_POOL_MIN_WORK 16384

static struct {
  int threads;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  _Atomic uint64_t generation; /* bumped once per task */
  _Atomic int sleepers;
  _Atomic int pending;         /* parts not yet finished */
  ds_cpu_task task;
  void *arg;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static _Thread_local int in_task;

/* Spin for up to DS_POOL_SPIN_NS (the clock read every 32 pauses) until
 * done(arg); returns whether it became true. */
static int spin_until(int (*done)(const void *), const void *arg) {
  double t0 = ds_now_seconds();
  for (;;) {
    for (int i = 0; i < 32; i++) {
      if (done(arg)) return 1;
      cpu_relax();
    }
    if ((ds_now_seconds() - t0) * 1e9 > DS_POOL_SPIN_NS) return done(arg);
  }
}
static int generation_moved(const void *seen) {
  return atomic_load_explicit(&pool.generation, memory_order_acquire) != *(const uint64_t *)seen;
}
static int parts_done(const void *unused) {
  (void)unused;
  return atomic_load_explicit(&pool.pending, memory_order_acquire) == 0;
}

static void *worker(void *p) {
  int part = (int)(intptr_t)p;
  in_task = 1;
  uint64_t seen = 0;
  for (;;) {
    uint64_t g;
    if (spin_until(generation_moved, &seen)) {
      g = atomic_load_explicit(&pool.generation, memory_order_acquire);
    } else {
      pthread_mutex_lock(&pool.lock);
      atomic_fetch_add(&pool.sleepers, 1);
      while ((g = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
      atomic_fetch_sub(&pool.sleepers, 1);
      pthread_mutex_unlock(&pool.lock);
    }
    seen = g;
    pool.task(pool.arg, part, pool.threads);
    atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel);
  }
  return NULL;
}

/* A thread count from the environment, 0 when unset or not a number >= 1. */
static int env_threads(const char *name) {
  const char *v = getenv(name);
  long n;
  if (!v || !*v || ds_parse_long(v, &n) != 0 || n < 1) return 0;
  return n > DS_POOL_MAX ? DS_POOL_MAX : (int)n;
}

static void pool_start(void) {
  /* OpenBLAS's own order of variables; unlike OpenBLAS the count is not
   * capped at the number of cores (the tests run 3 threads on 2 cores). */
  int n = env_threads("OPENBLAS_NUM_THREADS");
  if (!n) n = env_threads("GOTO_NUM_THREADS");
  if (!n) n = env_threads("OMP_NUM_THREADS");
  if (!n) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    n = c < 1 ? 1 : (c > DS_POOL_MAX ? DS_POOL_MAX : (int)c);
  }
#ifdef DS_HAVE_CBLAS
  /* from now on OpenBLAS runs each call on the thread that makes it */
  openblas_set_num_threads(1);
#endif
  if (n < 1) n = 1;
  if (n > DS_POOL_MAX) n = DS_POOL_MAX;
  pool.threads = n;
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) ds_fatal(DS_EXIT_RUNTIME, "CPU backend: pthread_attr_init failed");
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  /* Workers block every signal (they inherit the mask they are created
   * with): Ctrl-C and friends go to the thread that runs the program. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  for (int i = 1; i < n; i++) {
    pthread_t th;
    int rc = pthread_create(&th, &attr, worker, (void *)(intptr_t)i);
    if (rc != 0) {
      /* Fewer threads than asked: the count is reported everywhere, so say it
       * and carry on with the ones started. */
      pool.threads = i;
      break;
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
}

int ds_cpu_threads(void) {
  pthread_once(&pool_once, pool_start);
  return pool.threads;
}

void ds_cpu_parallel(ds_cpu_task task, void *arg, size_t work) {
  int n = ds_cpu_threads();
  if (n == 1 || in_task || work < DS_POOL_MIN_WORK) {
    task(arg, 0, 1);
    return;
  }
  pool.task = task;
  pool.arg = arg;
  atomic_store_explicit(&pool.pending, n - 1, memory_order_relaxed);
  atomic_fetch_add(&pool.generation, 1); /* seq_cst: ordered before the sleepers read */
  if (atomic_load(&pool.sleepers) > 0) {
    pthread_mutex_lock(&pool.lock);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
  }
  in_task = 1;
  task(arg, 0, n);
  in_task = 0;
  if (!spin_until(parts_done, NULL))
    while (!parts_done(NULL)) sched_yield(); /* a worker was descheduled: give its core back */
}

/* ---- memory ------------------------------------------------------------------ */

typedef struct {
  char *dst;
  const char *src;
  size_t bytes;
} mem_job;

static void zero_part(void *p, int part, int parts) {
  mem_job *j = p;
  size_t b, e;
  ds_cpu_split(j->bytes, part, parts, 4096, &b, &e);
  if (e > b) memset(j->dst + b, 0, e - b);
}

static void copy_part(void *p, int part, int parts) {
  mem_job *j = p;
  size_t b, e;
  ds_cpu_split(j->bytes, part, parts, 4096, &b, &e);
  if (e > b) memcpy(j->dst + b, j->src + b, e - b);
}

void ds_cpu_zero(void *dst, size_t bytes) {
  mem_job j = {dst, NULL, bytes};
  ds_cpu_parallel(zero_part, &j, bytes / 4);
}

void ds_cpu_copy(void *dst, const void *src, size_t bytes) {
  const char *d = dst, *s = src;
  if (d == s || !bytes) return;
  if ((d < s + bytes && s < d + bytes) || bytes < 4 * DS_POOL_MIN_WORK) { /* overlap: memmove's order */
    memmove(dst, src, bytes);
    return;
  }
  mem_job j = {dst, src, bytes};
  ds_cpu_parallel(copy_part, &j, bytes / 4);
}

/* ---- fixed-order sums -------------------------------------------------------- */

typedef struct {
  ds_cpu_block_sum block;
  void *arg;
  size_t n, size, count;
  int k;
  double *partial; /* [count][4] */
} sums_job;

static void sums_part(void *p, int part, int parts) {
  const sums_job *j = p;
  size_t b, e;
  ds_cpu_split(j->count, part, parts, 1, &b, &e);
  for (size_t i = b; i < e; i++) {
    double *out = j->partial + 4 * i;
    out[0] = out[1] = out[2] = out[3] = 0.0;
    size_t end = j->n - i * j->size < j->size ? j->n : (i + 1) * j->size;
    j->block(j->arg, i * j->size, end, out);
  }
}

void ds_cpu_block_sums(ds_cpu_block_sum block, void *arg, size_t n, int k, double *result) {
  double partial[4 * DS_CPU_MAX_BLOCKS];
  size_t size = (size_t)1 << 15;
  while (n / size >= DS_CPU_MAX_BLOCKS) size <<= 1;
  sums_job j = {block, arg, n, size, (n + size - 1) / size, k, partial};
  ds_cpu_parallel(sums_part, &j, n);
  for (int q = 0; q < k; q++) result[q] = 0.0;
  for (size_t i = 0; i < j.count; i++)
    for (int q = 0; q < k; q++) result[q] += partial[4 * i + q];
}
