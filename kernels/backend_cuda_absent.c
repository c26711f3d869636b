/* Stands in for kernels/backend_cuda.cu in builds without the CUDA toolkit
 * (DESCENT_CUDA=OFF, or AUTO with no nvcc): there is no CUDA backend to give. */
#include <stdio.h>

#include "descent/backend.h"

int ds_cuda_compiled(void) { return 0; }

const ds_backend *ds_backend_cuda(int device, char *why, size_t why_len) {
  snprintf(why, why_len, "this descent was built without CUDA support (rebuild with nvcc on PATH or -DDESCENT_CUDA=ON)");
  return NULL;
}
