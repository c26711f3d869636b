/* Writing a picture file: .svg directly, .png by rendering the SVG through
 * rsvg-convert (Debian package librsvg2-bin) when it is on PATH. Shared by
 * `descent playground --plot` and `descent plot`. */
#ifndef DS_PICTURE_H
#define DS_PICTURE_H

#include <stddef.h>
#include <stdio.h>

/* 0 when `path` can be written (.svg, or .png with rsvg-convert present);
 * else -1 with "<flag> <path>: ..." in err. */
int ds_picture_check(const char *flag, const char *path, char *err, size_t errlen);

/* Write the picture: draw(f, ctx) renders SVG into f and returns 0 on success.
 * A failed write removes the partial file. 0, or -1 with a message in err. */
int ds_picture_write(const char *path, int (*draw)(FILE *f, const void *ctx), const void *ctx,
                     char *err, size_t errlen);

#endif
