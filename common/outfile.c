/* Output files: checking a path before any work is spent, and replacing a
 * file atomically (write beside it, fsync, rename over it, fsync the folder),
 * through symbolic links (descent/common.h). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "descent/common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The folder part of path ("." when it has none). */
static void parent_of(const char *path, char *dir, size_t len) {
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(dir, len, ".");
  else if (slash == path) snprintf(dir, len, "/");
  else snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

int ds_output_target(const char *path, char *out, size_t len) {
  char cur[DS_PATH_MAX], link[DS_PATH_MAX], dir[DS_PATH_MAX];
  if (snprintf(cur, sizeof cur, "%s", path) >= (int)sizeof cur) {
    errno = ENAMETOOLONG;
    return -1;
  }
  for (int hops = 0; hops < 40; hops++) {
    struct stat st;
    if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) {
      if (snprintf(out, len, "%s", cur) >= (int)len) {
        errno = ENAMETOOLONG;
        return -1;
      }
      return 0;
    }
    ssize_t k = readlink(cur, link, sizeof link - 1);
    if (k < 0) return -1;
    link[k] = '\0';
    if (link[0] == '/') {
      snprintf(cur, sizeof cur, "%s", link);
    } else { /* relative to the folder holding the link */
      parent_of(cur, dir, sizeof dir);
      if (snprintf(cur, sizeof cur, "%s/%s", dir, link) >= (int)sizeof cur) {
        errno = ENAMETOOLONG;
        return -1;
      }
    }
  }
  errno = ELOOP;
  return -1;
}

/* The canonical name of an output: realpath of its folder + its file name. */
static int canonical(const char *path, char *out, size_t len) {
  char target[DS_PATH_MAX], dir[DS_PATH_MAX], real[DS_PATH_MAX];
  if (ds_output_target(path, target, sizeof target) != 0) return -1;
  parent_of(target, dir, sizeof dir);
  if (!realpath(dir, real)) return -1;
  const char *slash = strrchr(target, '/');
  return snprintf(out, len, "%s/%s", real, slash ? slash + 1 : target) < (int)len ? 0 : -1;
}

int ds_same_output(const char *a, const char *b) {
  struct stat sa, sb;
  if (stat(a, &sa) == 0 && stat(b, &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  char ca[DS_PATH_MAX + 256], cb[DS_PATH_MAX + 256];
  return canonical(a, ca, sizeof ca) == 0 && canonical(b, cb, sizeof cb) == 0 && strcmp(ca, cb) == 0;
}

int ds_output_check(const char *flag, const char *path, char *err, size_t errlen) {
  char target[DS_PATH_MAX], dir[DS_PATH_MAX];
  if (!*path) {
    snprintf(err, errlen, "%s: an empty file name", flag);
    return DS_EXIT_USAGE;
  }
  if (ds_output_target(path, target, sizeof target) != 0) {
    snprintf(err, errlen, "%s %s: cannot follow the name: %s", flag, path, strerror(errno));
    return DS_EXIT_RUNTIME;
  }
  struct stat st;
  if (stat(target, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      snprintf(err, errlen, "%s %s: is a directory; give a file name", flag, path);
      return DS_EXIT_USAGE;
    }
    if (!S_ISREG(st.st_mode)) {
      snprintf(err, errlen, "%s %s: not a regular file (a device, FIFO or socket); give a file name", flag, path);
      return DS_EXIT_USAGE;
    }
  }
  parent_of(target, dir, sizeof dir);
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "%s %s: cannot write there: %s %s", flag, path, dir,
             errno == ENOTDIR || (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) ? "is not a folder" : "does not exist");
    return DS_EXIT_RUNTIME;
  }
  /* the temporary beside it (NAME.tmp) must be a valid name too */
  const char *base = strrchr(target, '/');
  base = base ? base + 1 : target;
  long name_max = pathconf(dir, _PC_NAME_MAX);
  if (strlen(base) + 4 > (size_t)(name_max > 0 ? name_max : 255) || strlen(target) + 8 >= DS_PATH_MAX) {
    snprintf(err, errlen, "%s %s: the file name is too long (with the .tmp the write needs, over %ld bytes)", flag, path,
             name_max > 0 ? name_max : 255L);
    return DS_EXIT_USAGE;
  }
  /* the test that counts: can a file be created there (as the atomic
     replace will), whatever the permission bits and the user say */
  char probe[DS_PATH_MAX + 32];
  snprintf(probe, sizeof probe, "%s/.descent-probe-XXXXXX", dir);
  int fd = mkstemp(probe);
  if (fd < 0) {
    snprintf(err, errlen, "%s %s: cannot write there: cannot create files in %s: %s", flag, path, dir, strerror(errno));
    return DS_EXIT_RUNTIME;
  }
  close(fd);
  unlink(probe);
  if (access(target, F_OK) == 0 && access(target, W_OK) != 0) {
    snprintf(err, errlen, "%s %s: cannot write there: the file is not writable: %s", flag, path, strerror(errno));
    return DS_EXIT_RUNTIME;
  }
  return 0;
}

int ds_atomic_open(ds_atomic_file *a, const char *path, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  a->path = path;
  if (ds_output_target(path, a->target, sizeof a->target) != 0 ||
      snprintf(a->tmp, sizeof a->tmp, "%s.tmp", a->target) >= (int)sizeof a->tmp) {
    snprintf(err, errlen, "follow %s: %s", path, strerror(errno));
    return -1;
  }
  a->f = fopen(a->tmp, "wb");
  if (!a->f) {
    snprintf(err, errlen, "create %s: %s", a->tmp, strerror(errno));
    return -1;
  }
  return 0;
}

void ds_atomic_abort(ds_atomic_file *a) {
  if (a->f) fclose(a->f);
  a->f = NULL;
  if (a->tmp[0]) unlink(a->tmp);
}

int ds_atomic_commit(ds_atomic_file *a, int write_failed, char *err, size_t errlen) {
  const char *stage = "write";
  int rc = write_failed ? -1 : 0;
  int saved = errno;
  if (rc == 0 && (fflush(a->f) != 0 || ferror(a->f))) rc = -1, saved = errno;
  if (rc == 0 && fsync(fileno(a->f)) != 0) stage = "sync", rc = -1, saved = errno;
  if (fclose(a->f) != 0 && rc == 0) stage = "close", rc = -1, saved = errno;
  a->f = NULL;
  if (rc == 0 && rename(a->tmp, a->target) != 0) stage = "rename", rc = -1, saved = errno;
  if (rc != 0) {
    unlink(a->tmp); /* the previous file at the path is untouched */
    snprintf(err, errlen, "%s %s: %s", stage, a->tmp, strerror(saved));
    return -1;
  }
  /* fsync the folder, so the rename itself survives a crash; filesystems
     that cannot sync a folder (EINVAL, EROFS) are not an error */
  char dir[DS_PATH_MAX];
  parent_of(a->target, dir, sizeof dir);
  int fd = open(dir, O_RDONLY);
  int ok = fd >= 0 && (fsync(fd) == 0 || errno == EINVAL || errno == EROFS);
  saved = errno;
  if (fd >= 0) close(fd);
  if (!ok) {
    snprintf(err, errlen, "written, but syncing its folder %s failed: %s", dir, strerror(saved));
    return -1;
  }
  return 0;
}
