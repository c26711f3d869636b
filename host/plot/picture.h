/* Writing a picture file: .svg directly, .png by rendering the SVG through
 * rsvg-convert (Debian package librsvg2-bin) when it is on PATH. Shared by
 * `descent playground --plot` and `descent plot`. */
#ifndef DS_PICTURE_H
#define DS_PICTURE_H

#include <stddef.h>
#include <stdio.h>

/* 0 when `path` can be written (.svg, or .png with rsvg-convert present, and
 * ds_output_check's conditions); else the exit status to end with
 * (DS_EXIT_USAGE: a wrong name or kind of file; DS_EXIT_RUNTIME: cannot be
 * written there) and "<flag> <path>: ..." in err. */
int ds_picture_check(const char *flag, const char *path, char *err, size_t errlen);

/* Write the picture: draw(f, ctx) renders SVG into f and returns 0 on success.
 * The file is replaced atomically (through a symbolic link: its target), so a
 * failed write leaves what was there. 0, or -1 with a message in err. */
int ds_picture_write(const char *path, int (*draw)(FILE *f, const void *ctx), const void *ctx,
                     char *err, size_t errlen);

#endif
