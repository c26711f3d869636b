/* A confusion matrix as a picture: rows are the true classes, columns the
 * predicted ones, each cell its count, shaded by the share of its row (the
 * row's recall on the diagonal), with a colour key. */
#ifndef DS_CONFUSION_SVG_H
#define DS_CONFUSION_SVG_H

#include <stdio.h>

typedef struct {
  int n_classes;
  const long *counts;      /* [n_classes * n_classes]: counts[true * n + predicted] */
  const char *title;
  const char *subtitle;    /* may be NULL */
} ds_confusion_picture;

/* Draw ctx (a ds_confusion_picture) as SVG into f: 0, or -1 when a write
 * failed. The draw callback of ds_picture_write (plot/picture.h). */
int ds_confusion_svg(FILE *f, const void *ctx);

#endif
