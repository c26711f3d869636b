/* Writing one report file atomically (common/outfile.c's helpers): shared
 * by report.md, the pictures and the DeepOBS files. */
#include <stdio.h>

#include "descent/common.h"
#include "report/report_model.h"

int ds_rep_write_file(const char *path, int (*draw)(FILE *f, const void *ctx), const void *ctx, char *err,
                      size_t errlen) {
  ds_atomic_file a;
  char why[DS_PATH_MAX + 256];
  if (ds_atomic_open(&a, path, why, sizeof why) != 0) {
    snprintf(err, errlen, "%s: %s", path, why);
    return -1;
  }
  int bad = draw(a.f, ctx) != 0 || ferror(a.f);
  if (ds_atomic_commit(&a, bad, why, sizeof why) != 0) {
    snprintf(err, errlen, "%s: %s", path, why);
    return -1;
  }
  return 0;
}
