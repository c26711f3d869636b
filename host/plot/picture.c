#include "plot/picture.h"

#include "descent/common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int on_path(const char *prog) {
  const char *path = getenv("PATH");
  if (!path) return 0;
  char dir[4096];
  while (*path) {
    size_t len = strcspn(path, ":");
    if (len > 0 && len + strlen(prog) + 2 < sizeof dir) {
      snprintf(dir, sizeof dir, "%.*s/%s", (int)len, path, prog);
      if (access(dir, X_OK) == 0) return 1;
    }
    path += len;
    if (*path == ':') path++;
  }
  return 0;
}

int ds_picture_check(const char *flag, const char *path, char *err, size_t errlen) {
  if (ds_path_has_suffix(path, ".svg")) return 0;
  if (ds_path_has_suffix(path, ".png")) {
    if (on_path("rsvg-convert")) return 0;
    snprintf(err, errlen, "%s %s: PNG output needs rsvg-convert (Debian package librsvg2-bin), "
             "which is not on PATH; write .svg instead (any browser opens it)", flag, path);
    return -1;
  }
  snprintf(err, errlen, "%s %s: expected a file name ending in .svg or .png", flag, path);
  return -1;
}

static int write_svg(const char *path, int (*draw)(FILE *, const void *), const void *ctx, char *err,
                     size_t errlen) {
  FILE *f = fopen(path, "w");
  if (!f) {
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return -1;
  }
  int rc = draw(f, ctx);
  if (fclose(f) != 0) rc = -1;
  if (rc != 0) {
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    remove(path);
  }
  return rc;
}

int ds_picture_write(const char *path, int (*draw)(FILE *, const void *), const void *ctx, char *err,
                     size_t errlen) {
  if (!ds_path_has_suffix(path, ".png")) return write_svg(path, draw, ctx, err, errlen);
  const char *dir = getenv("TMPDIR");
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s/descent-plot-XXXXXX", dir && *dir ? dir : "/tmp");
  int fd = mkstemp(tmp);
  if (fd < 0) {
    snprintf(err, errlen, "cannot create a temporary file in %s: %s", dir && *dir ? dir : "/tmp",
             strerror(errno));
    return -1;
  }
  close(fd);
  if (write_svg(tmp, draw, ctx, err, errlen) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    execlp("rsvg-convert", "rsvg-convert", "--format", "png", "--output", path, tmp, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  int ok = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  remove(tmp);
  if (!ok) {
    snprintf(err, errlen, "rsvg-convert could not write %s", path);
    return -1;
  }
  return 0;
}
