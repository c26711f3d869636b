/* Backend selection: "cpu", "cuda" or "auto". */
#include <string.h>

#include "descent/backend.h"
#include "descent/common.h"

const ds_backend *ds_backend_select(const char *name, int device) {
  char why[256] = "";
  if (!name || strcmp(name, "cpu") == 0) return ds_backend_cpu();
  if (strcmp(name, "cuda") == 0) {
    const ds_backend *be = ds_backend_cuda(device, why, sizeof why);
    if (!be) ds_fatal(DS_EXIT_NOGPU, "--backend cuda: %s", why);
    return be;
  }
  if (strcmp(name, "auto") == 0) {
    if (!ds_cuda_compiled()) return ds_backend_cpu();
    const ds_backend *be = ds_backend_cuda(device, why, sizeof why);
    if (be) return be;
    ds_note("--backend auto: %s; using the CPU", why);
    return ds_backend_cpu();
  }
  ds_fatal(DS_EXIT_USAGE, "--backend: unknown backend '%s' (expected auto, cpu or cuda)", name);
}
