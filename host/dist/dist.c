/* Data-parallel training across processes: MPI for the processes and the CPU
 * all-reduce, NCCL for the GPU all-reduce (contract: dist.h). Without MPI
 * (no DS_HAVE_MPI) everything is the one-process case, and a launcher that
 * started several processes is refused. */
#include "dist/dist.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "descent/common.h"

#ifdef DS_HAVE_MPI
#include <mpi.h>
#endif
#ifdef DS_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#endif

static struct {
  int initialised, finalised;
  int rank, size, local_rank;
  int nccl;                  /* the NCCL communicator exists */
  long calls;                /* gradient all-reduces */
  double bytes, seconds;     /* bytes of the last one; seconds in all of them */
  void *stage;               /* host staging of backend buffers (CUDA without NCCL, averages, checks) */
  size_t stage_bytes;
} dist = {0, 0, 0, 1, 0, 0, 0, 0.0, 0.0, NULL, 0};

#ifdef DS_HAVE_NCCL
static ncclComm_t nccl_comm;
#endif

int ds_dist_rank(void) { return dist.rank; }
int ds_dist_size(void) { return dist.size; }
int ds_dist_local_rank(void) { return dist.local_rank; }
int ds_dist_writes(void) { return dist.rank == 0; }

/* The process count a launcher announced in the environment, and which
 * variable said so (1 and NULL when none did). */
static long launcher_size(const char **var) {
  static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i]);
    long n;
    if (v && ds_parse_long(v, &n) == 0 && n > 1) {
      *var = vars[i];
      return n;
    }
  }
  *var = NULL;
  return 1;
}

static void *stage(size_t bytes) {
  if (bytes > dist.stage_bytes) {
    free(dist.stage);
    dist.stage = ds_xmalloc(bytes, "the all-reduce staging buffer");
    dist.stage_bytes = bytes;
  }
  return dist.stage;
}

#ifdef DS_HAVE_MPI
/* ---- MPI ------------------------------------------------------------------------ */

static void mpi_fail(int rc, const char *call, const char *file, int line) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
  ds_fatal(DS_EXIT_RUNTIME, "MPI: %s failed: %s (%s:%d)", call, msg, file, line);
}
#define MPI_CHECK(call)                                             \
  do {                                                              \
    int rc_ = (call);                                               \
    if (rc_ != MPI_SUCCESS) mpi_fail(rc_, #call, __FILE__, __LINE__); \
  } while (0)

/* ds_fatal's end under several processes: the whole job goes down with this
 * status, so no rank waits in a collective for one that has gone. */
static void abort_job(int code) {
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  _Exit(code);
}

static void finalize_at_exit(void) {
  if (dist.initialised && !dist.finalised) {
    dist.finalised = 1;
    (void)MPI_Finalize(); /* unchecked: the process is ending anyway */
  }
}

/* An error every rank finds alike (a usage error, a check that failed
 * everywhere): rank 0 prints one line, every rank leaves MPI and exits with
 * `code`. */
#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 2, 3)))
#endif
static void collective_fail(int code, const char *fmt, ...) {
  if (dist.rank == 0) {
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fputs("descent: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
  }
  MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)); /* rank 0's line is out before anyone leaves */
  finalize_at_exit();
  exit(code);
}

/* The ranks whose value differs from rank 0's, as "1, 3" (at most 400 characters). */
static int differing_ranks(const uint64_t *all, char *buf, size_t len) {
  int n = 0;
  size_t used = 0;
  buf[0] = '\0';
  for (int r = 1; r < dist.size; r++)
    if (all[r] != all[0]) {
      if (used + 16 < len) used += (size_t)snprintf(buf + used, len - used, "%s%d", n ? ", " : "", r);
      n++;
    }
  return n;
}

/* Every rank's 64-bit value, gathered; the ranks that differ from rank 0 in `ranks`. */
static int compare_across(uint64_t mine, char *ranks, size_t len) {
  uint64_t *all = ds_xcalloc((size_t)dist.size, sizeof *all, "the ranks' checksums");
  MPI_CHECK(MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD));
  int n = differing_ranks(all, ranks, len);
  free(all);
  return n;
}

/* MPI counts are ints: sum n elements of `type` in pieces. */
static void allreduce_host(void *buf, size_t n, MPI_Datatype type, size_t elem) {
  char *p = buf;
  while (n > 0) {
    int k = n > (size_t)(1 << 30) ? 1 << 30 : (int)n;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, p, k, type, MPI_SUM, MPI_COMM_WORLD));
    p += (size_t)k * elem;
    n -= (size_t)k;
  }
}
#endif /* DS_HAVE_MPI */

#ifdef DS_HAVE_NCCL
#define NCCL_CHECK(call)                                                                                   \
  do {                                                                                                     \
    ncclResult_t r_ = (call);                                                                              \
    if (r_ != ncclSuccess)                                                                                 \
      ds_fatal(DS_EXIT_RUNTIME, "NCCL: %s failed: %s (%s:%d)", #call, ncclGetErrorString(r_), __FILE__, __LINE__); \
  } while (0)
#endif

void ds_dist_init(void) {
  if (dist.initialised) return;
  const char *var;
  long n = launcher_size(&var);
  if (n <= 1) return;
#ifndef DS_HAVE_MPI
  ds_fatal(DS_EXIT_USAGE, "train: started by a launcher as one of %ld processes (%s=%s), but this descent is built "
           "without MPI: each process would train alone and write the same files; install Open MPI (make deps: "
           "libopenmpi-dev) and rebuild, or run one process without mpirun", n, var, getenv(var));
#else
#ifdef OPEN_MPI
  if (!getenv("OMPI_COMM_WORLD_SIZE"))
    ds_fatal(DS_EXIT_USAGE, "train: started by another MPI's launcher as one of %ld processes (%s=%s), but this "
             "descent is built with Open MPI: start it with Open MPI's mpirun", n, var, getenv(var));
#endif
  int provided = 0;
  MPI_CHECK(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided));
  dist.initialised = 1;
  atexit(finalize_at_exit);
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN)); /* errors come back to MPI_CHECK */
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &dist.rank));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &dist.size));
  static char prefix[32];
  snprintf(prefix, sizeof prefix, "rank %d: ", dist.rank);
  ds_set_fatal_end(prefix, abort_job);
  if (dist.size != n)
    ds_fatal(DS_EXIT_USAGE, "train: the launcher announced %ld processes (%s) but MPI sees %d: the launcher and the "
             "MPI library descent is built with differ", n, var, dist.size);
  MPI_Comm node;
  MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, dist.rank, MPI_INFO_NULL, &node));
  MPI_CHECK(MPI_Comm_rank(node, &dist.local_rank));
  MPI_CHECK(MPI_Comm_free(&node));
#endif
}

const char *ds_dist_describe(char *buf, size_t len) {
#ifdef DS_HAVE_MPI
  char lib[MPI_MAX_LIBRARY_VERSION_STRING] = "";
  int n = 0;
  if (MPI_Get_library_version(lib, &n) != MPI_SUCCESS) snprintf(lib, sizeof lib, "unknown version");
  lib[strcspn(lib, ",\n")] = '\0';
  char nccl[64] = "no NCCL";
#ifdef DS_HAVE_NCCL
  int v = 0;
  if (ncclGetVersion(&v) == ncclSuccess) snprintf(nccl, sizeof nccl, "NCCL %d.%d.%d", v / 10000, v / 100 % 100, v % 100);
  else snprintf(nccl, sizeof nccl, "NCCL");
#endif
  snprintf(buf, len, "MPI (%s), %s", lib, nccl);
#else
  snprintf(buf, len, "not compiled in");
#endif
  return buf;
}

#ifdef DS_HAVE_MPI
/* FNV-1a, 64 bits */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}
static uint64_t hash_text(uint64_t h, const char *s) {
  return s ? hash_bytes(h, s, strlen(s) + 1) : hash_bytes(h, "\xff", 1);
}
#endif

void ds_dist_train_setup(ds_train_config *cfg, const ds_data_source *src, const char *backend, const char *resume,
                         const char *extra, int *json, int *device) {
  if (dist.size <= 1) return;
#ifdef DS_HAVE_MPI
  if (cfg->batch_size > 0 && cfg->batch_size % dist.size != 0)
    collective_fail(DS_EXIT_USAGE, "train: --batch-size %d is the global batch and must be divisible by the %d "
                    "processes (each computes an equal slice of it)", cfg->batch_size, dist.size);
  /* the effective configuration: cfg without its paths (hashed as text), the data source, the rest */
  ds_train_config c;
  memcpy(&c, cfg, sizeof c);
  c.save_path = c.log_path = NULL;
  uint64_t h = hash_bytes(0xcbf29ce484222325ull, &c, sizeof c);
  const char *texts[] = {cfg->save_path, cfg->log_path, src->data_dir, src->dataset, src->train_images,
                         src->train_labels, src->test_images, src->test_labels, backend, resume, extra};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) h = hash_text(h, texts[i]);
  h = hash_bytes(h, &src->test_fraction, sizeof src->test_fraction);
  h = hash_bytes(h, &src->classes, sizeof src->classes);
  h = hash_bytes(h, json, sizeof *json);
  char ranks[400];
  int n = compare_across(h, ranks, sizeof ranks);
  if (n > 0)
    collective_fail(DS_EXIT_USAGE, "train: the processes were given different flags: rank%s %s differ%s from rank 0 "
                    "(a hash of the whole configuration is compared at start); give every process the same command",
                    n == 1 ? "" : "s", ranks, n == 1 ? "s" : "");
  if (dist.rank != 0) {
    cfg->log_path = NULL; /* rank 0 writes the log, the JSON and the checkpoints */
    cfg->quiet = 1;
    *json = 0;
    ds_set_quiet(1);
  } else if (!cfg->quiet && cfg->batch_size > 0) {
    ds_note("data-parallel training on %d processes: each computes %d rows of every batch of %d, one all-reduce "
            "of the gradients per update", dist.size, cfg->batch_size / dist.size, cfg->batch_size);
  }
  *device += dist.local_rank;
#else
  (void)cfg, (void)src, (void)backend, (void)resume, (void)extra, (void)json, (void)device;
#endif
}

void ds_dist_use_backend(const ds_backend *be) {
  if (dist.size <= 1) return;
#ifdef DS_HAVE_MPI
  /* --backend auto can choose differently per rank (a rank whose GPU is missing falls back to the CPU) */
  char ranks[400];
  int n = compare_across(hash_text(0xcbf29ce484222325ull, be->name), ranks, sizeof ranks);
  if (n > 0)
    collective_fail(DS_EXIT_USAGE, "train: the processes run on different backends: rank%s %s differ%s from rank 0 "
                    "(rank 0: %s); give every process a GPU (rank r uses --device + its rank on the machine) or choose "
                    "--backend cpu", n == 1 ? "" : "s", ranks, n == 1 ? "s" : "", be->name);
#endif
  if (!be->native_stream) return;
#ifdef DS_HAVE_NCCL
  ncclUniqueId id;
  if (dist.rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
  ds_dist_broadcast_host(&id, sizeof id, 0);
  NCCL_CHECK(ncclCommInitRank(&nccl_comm, dist.size, id, dist.rank));
  dist.nccl = 1;
#else
  if (dist.rank == 0)
    ds_note("this descent has no NCCL: the GPUs' all-reduce goes through host memory (MPI) and the update is not "
            "captured as a CUDA graph");
#endif
}

int ds_dist_graph_safe(const ds_backend *be) { return dist.size <= 1 || dist.nccl || !be->native_stream; }

#ifdef DS_HAVE_MPI
/* buf[n] of `elem`-byte elements (backend memory) summed over the processes. */
static void allreduce_backend(const ds_backend *be, void *buf, size_t n, int is_double) {
  size_t elem = is_double ? sizeof(double) : sizeof(float);
  MPI_Datatype type = is_double ? MPI_DOUBLE : MPI_FLOAT;
#ifdef DS_HAVE_NCCL
  if (dist.nccl) {
    NCCL_CHECK(ncclAllReduce(buf, buf, n, is_double ? ncclDouble : ncclFloat, ncclSum, nccl_comm,
                             (cudaStream_t)be->native_stream()));
    return;
  }
#endif
  if (!be->native_stream) { /* the CPU: backend memory is host memory */
    allreduce_host(buf, n, type, elem);
    return;
  }
  void *h = stage(n * elem);
  be->download(h, buf, n * elem);
  allreduce_host(h, n, type, elem);
  be->upload(buf, h, n * elem);
}
#endif

void ds_dist_allreduce_float(const ds_backend *be, float *buf, size_t n) {
  if (dist.size <= 1) return;
#ifdef DS_HAVE_MPI
  double t0 = ds_now_seconds();
  allreduce_backend(be, buf, n, 0);
  dist.seconds += ds_now_seconds() - t0;
  dist.calls++;
  dist.bytes = (double)n * sizeof(float);
#else
  (void)be, (void)buf, (void)n;
#endif
}

void ds_dist_allreduce_double(const ds_backend *be, double *buf, size_t n) {
  if (dist.size <= 1) return;
#ifdef DS_HAVE_MPI
  allreduce_backend(be, buf, n, 1);
#else
  (void)be, (void)buf, (void)n;
#endif
}

#define DS_DIST_TEXT_TAG 7 /* the tag of ds_dist_send_text's messages */

void ds_dist_send_text(int dest, const char *text, size_t len) {
  if (dist.size <= 1) return;
#ifdef DS_HAVE_MPI
  if (len > (size_t)INT32_MAX) ds_fatal(DS_EXIT_RUNTIME, "ds_dist_send_text: %zu bytes is more than one message holds", len);
  MPI_CHECK(MPI_Send(text, (int)len, MPI_BYTE, dest, DS_DIST_TEXT_TAG, MPI_COMM_WORLD));
#else
  (void)dest, (void)text, (void)len;
#endif
}

int ds_dist_poll_text(char **text, size_t *len, int *source) {
  if (dist.size <= 1) return 0;
#ifdef DS_HAVE_MPI
  int flag = 0, count = 0;
  MPI_Status st;
  MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, DS_DIST_TEXT_TAG, MPI_COMM_WORLD, &flag, &st));
  if (!flag) return 0;
  MPI_CHECK(MPI_Get_count(&st, MPI_BYTE, &count));
  char *buf = ds_xmalloc((size_t)count + 1, "a message from another rank");
  MPI_CHECK(MPI_Recv(buf, count, MPI_BYTE, st.MPI_SOURCE, DS_DIST_TEXT_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
  buf[count] = '\0';
  *text = buf;
  *len = (size_t)count;
  *source = st.MPI_SOURCE;
  return 1;
#else
  (void)text, (void)len, (void)source;
  return 0;
#endif
}

void ds_dist_broadcast_host(void *buf, size_t bytes, int root) {
  if (dist.size <= 1) return;
#ifdef DS_HAVE_MPI
  char *p = buf;
  while (bytes > 0) { /* MPI counts are ints */
    int k = bytes > (size_t)(1 << 30) ? 1 << 30 : (int)bytes;
    MPI_CHECK(MPI_Bcast(p, k, MPI_BYTE, root, MPI_COMM_WORLD));
    p += k;
    bytes -= (size_t)k;
  }
#else
  (void)buf, (void)bytes, (void)root;
#endif
}

void ds_dist_sum_host(double *buf, size_t n) {
  if (dist.size <= 1) return;
#ifdef DS_HAVE_MPI
  allreduce_host(buf, n, MPI_DOUBLE, sizeof(double));
#else
  (void)buf, (void)n;
#endif
}

int ds_dist_any(int flag) {
  if (dist.size <= 1) return flag != 0;
#ifdef DS_HAVE_MPI
  int any = flag != 0;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  return any;
#else
  return flag != 0;
#endif
}

void ds_dist_average(const ds_backend *be, float *buf, size_t n) {
  if (dist.size <= 1 || n == 0) return;
#ifdef DS_HAVE_MPI
  float *h = stage(n * sizeof(float));
  be->download(h, buf, n * sizeof(float));
  allreduce_host(h, n, MPI_FLOAT, sizeof(float));
  for (size_t i = 0; i < n; i++) h[i] = (float)((double)h[i] / dist.size);
  be->upload(buf, h, n * sizeof(float));
#else
  (void)be, (void)buf;
#endif
}

void ds_dist_check_identical(const ds_backend *be, const float *params, size_t n, long step) {
  if (dist.size <= 1) return;
#ifdef DS_HAVE_MPI
  float *h = stage(n * sizeof(float));
  be->download(h, params, n * sizeof(float));
  static int perturbed = 0;
  const char *v = getenv("DESCENT_DIST_DIVERGE_RANK");
  long r;
  if (v && !perturbed && ds_parse_long(v, &r) == 0 && r == dist.rank && n > 0) {
    h[0] += 1.0f; /* the test hook: this rank's parameters no longer match */
    perturbed = 1;
  }
  uLong crc = crc32(0L, Z_NULL, 0);
  const Bytef *bytes = (const Bytef *)h;
  for (size_t off = 0, total = n * sizeof(float); off < total;) {
    uInt k = total - off > (1u << 30) ? (1u << 30) : (uInt)(total - off);
    crc = crc32(crc, bytes + off, k);
    off += k;
  }
  char ranks[400];
  int differ = compare_across((uint64_t)crc, ranks, sizeof ranks);
  if (differ > 0)
    collective_fail(DS_EXIT_RUNTIME, "the parameters differ between processes after update %ld: rank%s %s differ%s "
                    "from rank 0 (a checksum of the parameters is compared at every log point); the run is no longer "
                    "one model", step, differ == 1 ? "" : "s", ranks, differ == 1 ? "s" : "");
#else
  (void)be, (void)params, (void)n, (void)step;
#endif
}

void ds_dist_dump_params(const ds_backend *be, const float *params, size_t n) {
  const char *prefix = getenv("DESCENT_DIST_DUMP");
  if (!prefix || !*prefix) return;
  char path[DS_PATH_MAX], err[512];
  if (snprintf(path, sizeof path, "%s.rank%d", prefix, dist.rank) >= (int)sizeof path)
    ds_fatal(DS_EXIT_USAGE, "DESCENT_DIST_DUMP=%s: too long", prefix);
  float *h = stage(n * sizeof(float) + 1);
  be->download(h, params, n * sizeof(float));
  ds_atomic_file a;
  if (ds_atomic_open(&a, path, err, sizeof err) != 0) ds_fatal(DS_EXIT_RUNTIME, "DESCENT_DIST_DUMP %s: %s", path, err);
  int failed = fwrite(h, sizeof(float), n, a.f) != n;
  if (ds_atomic_commit(&a, failed, err, sizeof err) != 0) ds_fatal(DS_EXIT_RUNTIME, "DESCENT_DIST_DUMP %s: %s", path, err);
}

void ds_dist_stats(long *calls, double *bytes, double *seconds) {
  *calls = dist.calls;
  *bytes = dist.bytes;
  *seconds = dist.seconds;
}

void ds_dist_finalize(int quiet) {
  free(dist.stage);
  dist.stage = NULL;
  dist.stage_bytes = 0;
  if (dist.size <= 1) return;
#ifdef DS_HAVE_MPI
  if (dist.rank == 0 && !quiet && dist.calls > 0)
    ds_note("%d processes: %ld gradient all-reduces of %.0f bytes each (4 bytes x %.0f parameters), "
            "%.3f ms each on average%s", dist.size, dist.calls, dist.bytes, dist.bytes / 4.0,
            1e3 * dist.seconds / (double)dist.calls, dist.nccl ? " to enqueue (NCCL runs on the GPU's stream)" : "");
#ifdef DS_HAVE_NCCL
  if (dist.nccl) {
    NCCL_CHECK(ncclCommDestroy(nccl_comm));
    dist.nccl = 0;
  }
#endif
  ds_set_fatal_end(NULL, NULL);
  dist.finalised = 1;
  MPI_CHECK(MPI_Finalize());
#else
  (void)quiet;
#endif
}

void ds_dist_abort(int code) {
#ifdef DS_HAVE_MPI
  if (dist.initialised && !dist.finalised) abort_job(code);
#endif
  exit(code);
}
