/* The CUDA backend's shared state (ds_cuda: device, stream, library handles),
 * error reporting with file, line and a hint, the launch counter and the TF32
 * switch: what every *_cuda.cu op file uses. backend_cuda.cu creates the state
 * (ds_backend_cuda) and fills the backend table; nothing here calls it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.cuh"

ds_cuda_context ds_cuda;

static int tf32_on = 0;              /* ds_cuda_set_tf32 may be called before init */

/* ---- error reporting ------------------------------------------------------ */

/* "kernels/linear_cuda.cu" rather than the absolute path the build passes. */
static const char *short_path(const char *file) {
  const char *k = strstr(file, "kernels/");
  if (k) {
    const char *next;
    while ((next = strstr(k + 1, "kernels/")) != NULL) k = next;
    return k;
  }
  const char *slash = strrchr(file, '/');
  return slash ? slash + 1 : file;
}

static const char *cuda_hint(cudaError_t err) {
  switch (err) {
    case cudaErrorMemoryAllocation:
      return "the GPU is out of memory: use a smaller --batch-size or model, or free the GPU (nvidia-smi)";
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInitializationError:
      return "check the NVIDIA driver with nvidia-smi; --backend cpu runs without a GPU";
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorInvalidDeviceFunction:
    case cudaErrorUnsupportedPtxVersion:
      return "this build has no code for this GPU: reconfigure with -DCMAKE_CUDA_ARCHITECTURES=<its sm> "
             "(nvidia-smi --query-gpu=compute_cap --format=csv)";
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorMisalignedAddress:
    case cudaErrorIllegalInstruction:
    case cudaErrorHardwareStackError:
      return "a kernel faulted (a descent bug); faults surface at a later call, so rerun with "
             "DESCENT_CUDA_SYNC=1 or under compute-sanitizer to name the kernel";
    case cudaErrorLaunchOutOfResources:
    case cudaErrorInvalidConfiguration:
      return "a launch asked for an impossible grid or too many resources (a descent bug: report it)";
    case cudaErrorStreamCaptureUnsupported:
    case cudaErrorStreamCaptureInvalidated:
    case cudaErrorStreamCaptureImplicit:
      return "an operation that cannot be recorded ran while a CUDA graph was being captured";
    case cudaErrorDevicesUnavailable:
      return "the GPU is busy in exclusive-process mode (nvidia-smi)";
    case cudaErrorLaunchTimeout:
      return "a kernel exceeded the display watchdog's time limit";
    default:
      return "see the CUDA runtime documentation for this error";
  }
}

/* Whether an error is a kernel's fault that surfaced at a later call. */
static int is_kernel_fault(cudaError_t err) {
  return err == cudaErrorIllegalAddress || err == cudaErrorLaunchFailure || err == cudaErrorMisalignedAddress ||
         err == cudaErrorIllegalInstruction || err == cudaErrorHardwareStackError || err == cudaErrorAssert ||
         err == cudaErrorLaunchTimeout;
}

void ds_cuda_fail(cudaError_t err, const char *call, const char *file, int line) {
  /* A fault inside a kernel is reported by whatever call comes next; name the
   * work issued last, which is where it happened unless the fault is older. */
  char last[160] = "";
  if (is_kernel_fault(err) && ds_cuda.last_launch && strcmp(ds_cuda.last_launch, call) != 0)
    snprintf(last, sizeof last, " after %s", ds_cuda.last_launch);
  ds_fatal(DS_EXIT_RUNTIME, "CUDA error at %s:%d in %s%s: %s (%s); hint: %s", short_path(file), line, call, last,
           cudaGetErrorString(err), cudaGetErrorName(err), cuda_hint(err));
}

static const char *cublas_hint(cublasStatus_t st) {
  switch (st) {
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "cuBLAS could not start: check the driver (nvidia-smi) and free GPU memory";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "out of GPU memory for cuBLAS: use a smaller --batch-size or model";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "a GEMM got an impossible shape, leading dimension or alignment (a descent bug: report it)";
    case CUBLAS_STATUS_ARCH_MISMATCH:
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "this GPU or cuBLAS version cannot run this GEMM configuration (try without --tf32)";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "a cuBLAS kernel failed; rerun with DESCENT_CUDA_SYNC=1 to find an earlier faulting kernel";
    default:
      return "see the cuBLAS documentation for this status";
  }
}

void ds_cublas_fail(cublasStatus_t st, const char *call, const char *file, int line) {
  ds_fatal(DS_EXIT_RUNTIME, "cuBLAS error at %s:%d in %s: %s; hint: %s", short_path(file), line, call,
           cublasGetStatusString(st), cublas_hint(st));
}

void ds_cuda_launched(const char *kernel, const char *file, int line) {
  ds_cuda.launches++;
  cudaError_t err = cudaGetLastError(); /* may be an earlier kernel's fault: reported "after" the last one */
  if (err != cudaSuccess) ds_cuda_fail(err, kernel, file, line);
  ds_cuda.last_launch = kernel;
  if (ds_cuda.sync_each_launch && !ds_cuda.capturing) {
    err = cudaStreamSynchronize(ds_cuda.stream);
    if (err != cudaSuccess) ds_cuda_fail(err, kernel, file, line);
  }
}

void ds_cuda_blas_issued(const char *call, const char *file, int line) {
  ds_cuda_launched(call, file, line);
}

extern "C" long ds_cuda_launch_count(void) { return ds_cuda.launches; }

/* Host-side calls that cannot be part of a graph. */
void ds_cuda_refuse_while_capturing(const char *what) {
  if (ds_cuda.capturing)
    ds_fatal(DS_EXIT_RUNTIME, "CUDA backend: %s was called while a CUDA graph is being captured "
             "(only ops can be captured; a descent bug)", what);
}

/* ---- precision -------------------------------------------------------------- */

static void apply_math_mode(void) {
  if (!ds_cuda.ready) return;
  cublasCheck(cublasSetMathMode(ds_cuda.blas, tf32_on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

extern "C" void ds_cuda_set_tf32(int on) {
  tf32_on = on != 0;
  apply_math_mode();
}

extern "C" int ds_cuda_tf32(void) { return tf32_on; }
