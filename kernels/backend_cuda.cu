/* The CUDA backend. This file is the place for it; the ops land with the CUDA
 * backend issue. Until then it detects the device so that `--backend cuda`
 * and `--version` tell the truth. */
#include <cuda_runtime.h>
#include <stdio.h>

#include "descent/backend.h"

extern "C" int ds_cuda_compiled(void) { return 1; }

extern "C" const ds_backend *ds_backend_cuda(int device, char *why, size_t why_len) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
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
  snprintf(why, why_len, "the CUDA ops are not implemented in this build yet");
  return NULL;
}
