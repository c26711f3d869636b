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
  if (ds_path_has_suffix(path, ".png")) {
    if (!on_path("rsvg-convert")) {
      snprintf(err, errlen, "%s %s: PNG output needs rsvg-convert (Debian package librsvg2-bin), "
               "which is not on PATH; write .svg instead (any browser opens it)", flag, path);
      return DS_EXIT_USAGE;
    }
  } else if (!ds_path_has_suffix(path, ".svg")) {
    snprintf(err, errlen, "%s %s: expected a file name ending in .svg or .png", flag, path);
    return DS_EXIT_USAGE;
  }
  return ds_output_check(flag, path, err, errlen);
}

/* The SVG through the atomic writer: a failed write leaves whatever was at
 * path (a previous picture, a symbolic link) as it was. */
static int write_svg(const char *path, int (*draw)(FILE *, const void *), const void *ctx, char *err,
                     size_t errlen) {
  ds_atomic_file af;
  char why[DS_PATH_MAX + 256];
  if (ds_atomic_open(&af, path, why, sizeof why) != 0 ||
      ds_atomic_commit(&af, draw(af.f, ctx) != 0, why, sizeof why) != 0) {
    snprintf(err, errlen, "cannot write %s (%s)", path, why);
    return -1;
  }
  return 0;
}

int ds_picture_write(const char *path, int (*draw)(FILE *, const void *), const void *ctx, char *err,
                     size_t errlen) {
  if (!ds_path_has_suffix(path, ".png")) return write_svg(path, draw, ctx, err, errlen);
  const char *dir = getenv("TMPDIR");
  char svg[4096], png[DS_PATH_MAX + 16], target[DS_PATH_MAX];
  snprintf(svg, sizeof svg, "%s/descent-plot-XXXXXX", dir && *dir ? dir : "/tmp");
  int fd = mkstemp(svg);
  if (fd < 0) {
    snprintf(err, errlen, "cannot create a temporary file in %s: %s", dir && *dir ? dir : "/tmp", strerror(errno));
    return -1;
  }
  close(fd);
  if (write_svg(svg, draw, ctx, err, errlen) != 0) {
    remove(svg);
    return -1;
  }
  /* rendered beside the target, then renamed over it */
  if (ds_output_target(path, target, sizeof target) != 0) {
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    remove(svg);
    return -1;
  }
  snprintf(png, sizeof png, "%s.tmp", target);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    execlp("rsvg-convert", "rsvg-convert", "--format", "png", "--output", png, svg, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  int ok = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  remove(svg);
  if (ok && rename(png, target) != 0) {
    snprintf(err, errlen, "cannot write %s (rename %s: %s)", path, png, strerror(errno));
    remove(png);
    return -1;
  }
  if (!ok) {
    remove(png);
    snprintf(err, errlen, "rsvg-convert could not write %s", path);
    return -1;
  }
  return 0;
}
