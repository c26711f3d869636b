/* The CUDA backend: device selection, memory, CUDA-graph capture, and the
 * table of *_cuda ops (the shared state, error reporting and the launch
 * counter that the ops use are context_cuda.cu).
 *
 * Everything runs on one stream in issue order, so host code sees the same
 * semantics as the CPU backend: an op's results are ready for the next op,
 * download() waits for everything before it, and upload() returns as soon as
 * the source buffer may be reused (uploads go through pinned staging slots
 * and do not wait for the GPU). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.cuh"

static char device_name[256];

/* cuBLASLt workspace: 32 MiB is what NVIDIA recommends for Hopper. */
#define DS_LT_WORKSPACE_BYTES ((size_t)32 << 20)
#define DS_BLAS_WORKSPACE_BYTES ((size_t)32 << 20)

/* Upload staging: a few pinned slots, reused round robin; a slot is refilled
 * only after the copy that last used it has completed (its event). */
#define DS_STAGE_SLOTS 4
#define DS_STAGE_BYTES ((size_t)1 << 20)
static unsigned char *stage_host;
static void *blas_workspace;         /* cuBLAS's own, fixed (graph capture, determinism) */
static cudaEvent_t stage_done[DS_STAGE_SLOTS];
static int stage_next;

/* ---- memory ------------------------------------------------------------------ */

static void *cuda_alloc(size_t bytes, const char *what) {
  ds_cuda_refuse_while_capturing("alloc");
  size_t n = bytes ? bytes : 1;
  void *p = NULL;
  cudaError_t err = cudaMalloc(&p, n);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError(); /* not sticky: clear it so cudaMemGetInfo answers */
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) free_b = total_b = 0;
    ds_fatal(DS_EXIT_RUNTIME,
             "out of GPU memory allocating %zu bytes (%.1f MiB) for %s on %s: %.1f MiB free of %.1f MiB; "
             "use a smaller --batch-size or model, or --backend cpu",
             n, (double)n / 1048576.0, what, device_name, (double)free_b / 1048576.0,
             (double)total_b / 1048576.0);
  }
  if (err != cudaSuccess) ds_cuda_fail(err, "cudaMalloc", __FILE__, __LINE__);
  /* zeroed, as the CPU backend's calloc: ordered before any later use on the stream */
  cudaCheck(cudaMemsetAsync(p, 0, n, ds_cuda.stream));
  return p;
}

static void cuda_free(void *ptr) {
  if (!ptr) return;
  ds_cuda_refuse_while_capturing("free");
  cudaCheck(cudaFree(ptr)); /* waits for work still using it */
}

/* Through the pinned slots, one slot's worth at a time: a slot is refilled
 * once its previous copy is done, the host copy of one chunk overlaps the
 * transfer of the ones before it, and the call returns when the last chunk
 * is staged (the source may then be reused) without waiting for the GPU. */
static void cuda_upload(void *dst, const void *src, size_t bytes) {
  if (!bytes) return;
  ds_cuda_refuse_while_capturing("upload");
  for (size_t off = 0; off < bytes; off += DS_STAGE_BYTES) {
    size_t n = bytes - off < DS_STAGE_BYTES ? bytes - off : DS_STAGE_BYTES;
    int s = stage_next;
    stage_next = (s + 1) % DS_STAGE_SLOTS;
    unsigned char *slot = stage_host + (size_t)s * DS_STAGE_BYTES;
    cudaCheck(cudaEventSynchronize(stage_done[s])); /* the slot's previous copy is done */
    memcpy(slot, (const unsigned char *)src + off, n);
    cudaCheck(cudaMemcpyAsync((unsigned char *)dst + off, slot, n, cudaMemcpyHostToDevice, ds_cuda.stream));
    cudaCheck(cudaEventRecord(stage_done[s], ds_cuda.stream));
  }
}

static void cuda_download(void *dst, const void *src, size_t bytes) {
  if (!bytes) return;
  ds_cuda_refuse_while_capturing("download");
  cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ds_cuda.stream));
  cudaCheck(cudaStreamSynchronize(ds_cuda.stream));
}

static void cuda_copy(void *dst, const void *src, size_t bytes) {
  if (!bytes || dst == src) return;
  const char *d = (const char *)dst, *s = (const char *)src;
  DS_CUDA_REQUIRE(d + bytes <= s || s + bytes <= d, "copy", "overlapping ranges (%zu bytes)", bytes);
  cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ds_cuda.stream));
}

static void cuda_zero(void *dst, size_t bytes) {
  if (!bytes) return;
  cudaCheck(cudaMemsetAsync(dst, 0, bytes, ds_cuda.stream));
}

static void cuda_synchronize(void) {
  ds_cuda_refuse_while_capturing("synchronize");
  cudaCheck(cudaStreamSynchronize(ds_cuda.stream));
}

/* ---- CUDA graphs ---------------------------------------------------------------- */

struct ds_cuda_graph {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
};

extern "C" void ds_cuda_graph_begin(void) {
  DS_CUDA_REQUIRE(ds_cuda.ready, "ds_cuda_graph_begin", "the CUDA backend is not initialised");
  DS_CUDA_REQUIRE(!ds_cuda.capturing, "ds_cuda_graph_begin", "a capture is already in progress");
  /* thread-local: calls from this thread that would break the capture fail loudly */
  cudaCheck(cudaStreamBeginCapture(ds_cuda.stream, cudaStreamCaptureModeThreadLocal));
  ds_cuda.capturing = 1;
}

extern "C" ds_cuda_graph *ds_cuda_graph_end(void) {
  DS_CUDA_REQUIRE(ds_cuda.capturing, "ds_cuda_graph_end", "no capture is in progress");
  cudaGraph_t graph = NULL;
  ds_cuda.capturing = 0;
  cudaCheck(cudaStreamEndCapture(ds_cuda.stream, &graph));
  ds_cuda_graph *g = (ds_cuda_graph *)ds_xcalloc(1, sizeof *g, "a CUDA graph");
  g->graph = graph;
  cudaCheck(cudaGraphInstantiate(&g->exec, graph, 0));
  return g;
}

extern "C" void ds_cuda_graph_launch(ds_cuda_graph *g) {
  DS_CUDA_REQUIRE(g && !ds_cuda.capturing, "ds_cuda_graph_launch", "no graph, or called while capturing");
  cudaCheck(cudaGraphLaunch(g->exec, ds_cuda.stream));
  DS_LAUNCH_CHECK("a CUDA-graph replay (cudaGraphLaunch)");
}

extern "C" void ds_cuda_graph_free(ds_cuda_graph *g) {
  if (!g) return;
  cudaCheck(cudaGraphExecDestroy(g->exec));
  cudaCheck(cudaGraphDestroy(g->graph));
  free(g);
}

/* The table's graph hooks: the same calls, graph handle as void *. */
static void cuda_graph_begin(void) { ds_cuda_graph_begin(); }
static void *cuda_graph_end(void) { return ds_cuda_graph_end(); }
static void cuda_graph_launch(void *g) { ds_cuda_graph_launch((ds_cuda_graph *)g); }
static void cuda_graph_free(void *g) { ds_cuda_graph_free((ds_cuda_graph *)g); }

/* ---- timing and the L2 (benchmarks) ---------------------------------------------------- */

static cudaEvent_t timer_events[2];
static unsigned char *l2_flush_buf;
static size_t l2_flush_bytes;

static void cuda_timer_mark(int which) {
  ds_cuda_refuse_while_capturing("timer_mark");
  DS_CUDA_REQUIRE(which == 0 || which == 1, "timer_mark", "mark %d (0 or 1)", which);
  if (!timer_events[which]) cudaCheck(cudaEventCreate(&timer_events[which]));
  cudaCheck(cudaEventRecord(timer_events[which], ds_cuda.stream));
}

static double cuda_timer_ms(void) {
  DS_CUDA_REQUIRE(timer_events[0] && timer_events[1], "timer_ms", "both marks must be recorded first");
  cudaCheck(cudaEventSynchronize(timer_events[1]));
  float ms = 0.0f;
  cudaCheck(cudaEventElapsedTime(&ms, timer_events[0], timer_events[1]));
  return ms;
}

static void cuda_flush_cache(void) {
  ds_cuda_refuse_while_capturing("flush_cache");
  if (!l2_flush_buf) {
    int l2 = 0;
    cudaCheck(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, ds_cuda.device));
    l2_flush_bytes = 2 * (size_t)(l2 > 0 ? l2 : 64 << 20);
    cudaCheck(cudaMalloc(&l2_flush_buf, l2_flush_bytes));
  }
  cudaCheck(cudaMemsetAsync(l2_flush_buf, 0, l2_flush_bytes, ds_cuda.stream));
}

/* ---- fault injection ------------------------------------------------------------------ */

/* A kernel that faults: the context is then unusable (as after a real fault
 * or a lost device) and every later CUDA call fails. */
static __global__ void fault_injection_kernel(void) { __trap(); }

static void cuda_inject_fault(const char *op) {
  ds_cuda_refuse_while_capturing("inject_fault");
  static char what[128];
  snprintf(what, sizeof what, "%s (fault_injection_kernel, DESCENT_FAULT_AT_UPDATE)", op);
  fault_injection_kernel<<<1, 1, 0, ds_cuda.stream>>>();
  DS_LAUNCH_CHECK(what);
  /* report it here, naming the op, rather than at whichever call meets it next */
  cudaError_t err = cudaStreamSynchronize(ds_cuda.stream);
  if (err != cudaSuccess) ds_cuda_fail(err, what, __FILE__, __LINE__);
  ds_fatal(DS_EXIT_RUNTIME, "%s: the injected fault did not fault", what);
}

/* Free device memory now (cudaMemGetInfo; 0 = unknown). */
static size_t cuda_memory_available(void) {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return free_b;
}

/* The stream every op runs on, for NCCL (host/dist) to enqueue on. */
static void *cuda_native_stream(void) { return (void *)ds_cuda.stream; }

/* ---- the table and device selection ------------------------------------------------ */

static ds_backend cuda_backend = {
  /* .name = */ "cuda",
  /* .device = */ "CUDA",
  /* .alloc = */ cuda_alloc,
  /* .free = */ cuda_free,
  /* .upload = */ cuda_upload,
  /* .download = */ cuda_download,
  /* .copy = */ cuda_copy,
  /* .zero = */ cuda_zero,
  /* .synchronize = */ cuda_synchronize,
  /* .gather_forward = */ gather_forward_cuda,
  /* .linear_forward = */ linear_forward_cuda,
  /* .linear_backward = */ linear_backward_cuda,
  /* .activation_forward = */ activation_forward_cuda,
  /* .activation_backward = */ activation_backward_cuda,
  /* .batchnorm_forward = */ batchnorm_forward_cuda,
  /* .batchnorm_backward = */ batchnorm_backward_cuda,
  /* .dropout_forward = */ dropout_forward_cuda,
  /* .dropout_backward = */ dropout_backward_cuda,
  /* .hidden_forward = */ hidden_forward_cuda,
  /* .hidden_backward = */ hidden_backward_cuda,
  /* .softmax_xent = */ softmax_xent_cuda,
  /* .optim_step = */ optim_step_cuda,
  /* .axpy = */ axpy_cuda,
  /* .monitor_stats = */ monitor_stats_cuda,
  /* .monitor_sumsq = */ monitor_sumsq_cuda,
  /* .monitor_nonfinite = */ monitor_nonfinite_cuda,
  /* .set_tf32 = */ ds_cuda_set_tf32,
  /* .set_deterministic = */ NULL, /* always: fixed-order reductions, cuBLAS's guarantee (linear_cuda.cu) */
  /* .graph_begin = */ cuda_graph_begin,
  /* .graph_end = */ cuda_graph_end,
  /* .graph_launch = */ cuda_graph_launch,
  /* .graph_free = */ cuda_graph_free,
  /* .timer_mark = */ cuda_timer_mark,
  /* .timer_ms = */ cuda_timer_ms,
  /* .flush_cache = */ cuda_flush_cache,
  /* .inject_fault = */ cuda_inject_fault,
  /* .memory_available = */ cuda_memory_available,
  /* .batchnorm_sums = */ batchnorm_sums_cuda,
  /* .batchnorm_forward_synced = */ batchnorm_forward_synced_cuda,
  /* .batchnorm_backward_sums = */ batchnorm_backward_sums_cuda,
  /* .batchnorm_backward_synced = */ batchnorm_backward_synced_cuda,
  /* .native_stream = */ cuda_native_stream,
};

extern "C" int ds_cuda_compiled(void) { return 1; }

/* Creating the stream, handles and buffers on a present device. A failure
 * here is reported like a missing device (the caller decides: --backend cuda
 * exits 77, auto falls back to the CPU), after giving back what was created. */
#define INIT_TRY(call, what)                                                              \
  do {                                                                                    \
    cudaError_t e_ = (call);                                                              \
    if (e_ != cudaSuccess) {                                                              \
      (void)cudaGetLastError();                                                           \
      snprintf(why, why_len, "CUDA device %d (%s) cannot be used: %s failed: %s", device, \
               device_name, what, cudaGetErrorString(e_));                                \
      release_resources();                                                                \
      return NULL;                                                                        \
    }                                                                                     \
  } while (0)
#define INIT_TRY_BLAS(call, what)                                                         \
  do {                                                                                    \
    cublasStatus_t s_ = (call);                                                           \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                    \
      snprintf(why, why_len, "CUDA device %d (%s) cannot be used: %s failed: %s", device, \
               device_name, what, cublasGetStatusString(s_));                             \
      release_resources();                                                                \
      return NULL;                                                                        \
    }                                                                                     \
  } while (0)

/* Give back what exists of the stream, handles, workspaces, staging and
 * plans. Unchecked on purpose: it runs at exit (after a fault the context is
 * gone and these calls fail) and after a failed init, where the reason has
 * already been written. */
static void release_resources(void) {
  ds_cuda_linear_plans_free();
  if (ds_cuda.lt) (void)cublasLtDestroy(ds_cuda.lt);
  if (ds_cuda.blas) (void)cublasDestroy(ds_cuda.blas);
  if (ds_cuda.lt_workspace) (void)cudaFree(ds_cuda.lt_workspace);
  if (blas_workspace) (void)cudaFree(blas_workspace);
  if (l2_flush_buf) (void)cudaFree(l2_flush_buf);
  if (stage_host) (void)cudaFreeHost(stage_host);
  for (int s = 0; s < DS_STAGE_SLOTS; s++)
    if (stage_done[s]) (void)cudaEventDestroy(stage_done[s]);
  for (int e = 0; e < 2; e++)
    if (timer_events[e]) (void)cudaEventDestroy(timer_events[e]);
  if (ds_cuda.stream) (void)cudaStreamDestroy(ds_cuda.stream);
  ds_cuda.lt = NULL;
  ds_cuda.blas = NULL;
  ds_cuda.lt_workspace = blas_workspace = NULL;
  l2_flush_buf = stage_host = NULL;
  memset(stage_done, 0, sizeof stage_done);
  memset(timer_events, 0, sizeof timer_events);
  ds_cuda.stream = NULL;
}

/* At exit: give back what the backend holds for the whole process, so that
 * leak checkers (compute-sanitizer --leak-check full) see only real leaks. */
static void cuda_shutdown(void) {
  if (!ds_cuda.ready) return;
  ds_cuda.ready = 0;
  if (cudaStreamSynchronize(ds_cuda.stream) != cudaSuccess) return; /* a faulted context: leave it */
  release_resources();
}

extern "C" const ds_backend *ds_backend_cuda(int device, char *why, size_t why_len) {
  if (ds_cuda.ready) {
    if (device == ds_cuda.device) return &cuda_backend;
    snprintf(why, why_len, "the CUDA backend already runs on device %d (one device per process)", ds_cuda.device);
    return NULL;
  }
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    int driver = 0;
    /* no driver at all reads as "insufficient driver": say what is missing */
    if (cudaDriverGetVersion(&driver) == cudaSuccess && driver == 0)
      snprintf(why, why_len, "no usable CUDA device (no NVIDIA driver found: no GPU here, or its driver is not installed)");
    else
      snprintf(why, why_len, "no usable CUDA device (%s)", cudaGetErrorString(err));
    return NULL;
  }
  if (count == 0) {
    snprintf(why, why_len, "no CUDA device found");
    return NULL;
  }
  if (device < 0 || device >= count) {
    snprintf(why, why_len, "device %d requested but %d CUDA device(s) present", device, count);
    return NULL;
  }
  snprintf(device_name, sizeof device_name, "device %d", device);
  INIT_TRY(cudaSetDevice(device), "cudaSetDevice");
  cudaDeviceProp prop;
  INIT_TRY(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  snprintf(device_name, sizeof device_name, "%s", prop.name);

  ds_cuda.device = device;
  ds_cuda.sm_count = prop.multiProcessorCount;
  INIT_TRY(cudaStreamCreate(&ds_cuda.stream), "cudaStreamCreate");
  INIT_TRY_BLAS(cublasCreate(&ds_cuda.blas), "cublasCreate");
  INIT_TRY_BLAS(cublasSetStream(ds_cuda.blas, ds_cuda.stream), "cublasSetStream");
  /* our own workspace: cuBLAS then allocates nothing per call (graph capture) */
  INIT_TRY(cudaMalloc(&blas_workspace, DS_BLAS_WORKSPACE_BYTES), "cudaMalloc (cuBLAS workspace)");
  /* zeroed once: the libraries may keep counters there (initcheck) */
  INIT_TRY(cudaMemsetAsync(blas_workspace, 0, DS_BLAS_WORKSPACE_BYTES, ds_cuda.stream), "cudaMemsetAsync (cuBLAS workspace)");
  INIT_TRY_BLAS(cublasSetWorkspace(ds_cuda.blas, blas_workspace, DS_BLAS_WORKSPACE_BYTES), "cublasSetWorkspace");
  INIT_TRY_BLAS(cublasLtCreate(&ds_cuda.lt), "cublasLtCreate");
  INIT_TRY(cudaMalloc(&ds_cuda.lt_workspace, DS_LT_WORKSPACE_BYTES), "cudaMalloc (cuBLASLt workspace)");
  ds_cuda.lt_workspace_bytes = DS_LT_WORKSPACE_BYTES;
  INIT_TRY(cudaMemsetAsync(ds_cuda.lt_workspace, 0, DS_LT_WORKSPACE_BYTES, ds_cuda.stream),
           "cudaMemsetAsync (cuBLASLt workspace)");
  INIT_TRY(cudaMallocHost((void **)&stage_host, DS_STAGE_SLOTS * DS_STAGE_BYTES), "cudaMallocHost (upload staging)");
  for (int s = 0; s < DS_STAGE_SLOTS; s++)
    INIT_TRY(cudaEventCreateWithFlags(&stage_done[s], cudaEventDisableTiming), "cudaEventCreate");
  INIT_TRY(cudaStreamSynchronize(ds_cuda.stream), "cudaStreamSynchronize (setup)");
  static int shutdown_registered;
  if (!shutdown_registered) atexit(cuda_shutdown);
  shutdown_registered = 1;
  const char *sync = getenv("DESCENT_CUDA_SYNC");
  ds_cuda.sync_each_launch = sync && *sync && strcmp(sync, "0") != 0;
  cuda_backend.device = device_name;
  ds_cuda.ready = 1;
  ds_cuda_set_tf32(ds_cuda_tf32()); /* a switch made before init takes effect now */
  return &cuda_backend;
}
