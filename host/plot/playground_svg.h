/* The playground's pictures: 2-D toy functions as contour lines with each
 * optimizer's trajectory over them, 1-D ones as the curve with the iterates
 * on it (host/playground/ computes the trajectories). */
#ifndef DS_PLAYGROUND_SVG_H
#define DS_PLAYGROUND_SVG_H

#include <stddef.h>
#include <stdio.h>

#include "playground/playground.h"

typedef struct {
  const char *label;
  const ds_trajectory *tr;
} ds_plot_series;

/* The picture as SVG on f: 2-D functions get contour lines (with a colour
 * key, low to high f) and each trajectory over them, 1-D the curve with the
 * iterates on it. Layers, bottom to top: contours, trajectories, markers
 * (the minimum or saddle point, the start, the ends; a marker that would
 * cover an earlier one is drawn hollow, and larger where they coincide),
 * marks where a path leaves the frame, the legend. A path drawn where an
 * earlier one is (within 1.5 px all along) is dashed over it and named
 * "same path as ..." in the legend. The legend stays inside the picture
 * however many series and notes it holds. Returns 0, or -1 on a write error. */
int ds_playground_svg(FILE *f, const ds_toy_fn *fn, const ds_plot_series *series, int n,
                      const char *title, const char *subtitle);

/* Whether `path` can be written (ds_picture_check for --plot): 0, or the exit
 * status to end with and the reason in err. */
int ds_playground_plot_check(const char *path, char *err, size_t errlen);

/* Write the picture to path (.svg directly, .png through rsvg-convert).
 * Returns 0, or -1 with the reason in err. */
int ds_playground_plot_file(const char *path, const ds_toy_fn *fn, const ds_plot_series *series,
                            int n, const char *title, const char *subtitle, char *err,
                            size_t errlen);

#endif
