/* A small, dependency-free SVG writer for the playground's pictures: a plot
 * area with a data range, axes with "nice" ticks, contour lines of a gridded
 * function (marching squares), polylines clipped to the plot area, markers
 * and a legend beside the plot. Coordinates passed in are data coordinates;
 * the writer maps them to pixels (y up). */
#ifndef DS_SVG_PLOT_H
#define DS_SVG_PLOT_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
  FILE *f;
  double width, height;           /* whole picture, pixels */
  double left, right, top, bottom; /* plot area, pixels (top < bottom) */
  double xmin, xmax, ymin, ymax;  /* data range shown in the plot area */
} ds_svg;

typedef enum {
  DS_MARK_NONE,
  DS_MARK_DOT,     /* small filled circle (an iterate) */
  DS_MARK_CIRCLE,  /* larger circle, white fill (a start) */
  DS_MARK_SQUARE,  /* filled square (an end) */
  DS_MARK_CROSS,   /* x (a run that diverged, a saddle point) */
  DS_MARK_STAR     /* five-pointed star (a minimum) */
} ds_svg_marker;

typedef struct {
  const char *label;
  const char *color;   /* stroke colour of the line and marker */
  int line;            /* draw a short line sample */
  ds_svg_marker marker;
  const char *fill;    /* marker fill (NULL: color) */
} ds_svg_legend_item;

/* Start a picture of width x height pixels whose plot area shows
 * [xmin,xmax] x [ymin,ymax] inside the given pixel margins. Writes the header. */
void ds_svg_begin(ds_svg *s, FILE *f, double width, double height, double margin_left,
                  double margin_right, double margin_top, double margin_bottom, double xmin,
                  double xmax, double ymin, double ymax);

/* Pixel coordinates of a data point. */
double ds_svg_px(const ds_svg *s, double x);
double ds_svg_py(const ds_svg *s, double y);

/* Title (bold) and an optional smaller subtitle line above the plot area. */
void ds_svg_title(ds_svg *s, const char *title, const char *subtitle);

/* Frame, tick marks with labels (1-2-5 steps), light grid lines, axis labels. */
void ds_svg_axes(ds_svg *s, const char *xlabel, const char *ylabel);

/* Polyline through n points xy[2*i], xy[2*i+1], clipped to the plot area;
 * non-finite points break the line. dash may be NULL (solid). */
void ds_svg_polyline(ds_svg *s, const double *xy, size_t n, const char *color, double width,
                     const char *dash, double opacity);

/* A marker at (x, y) of the given size in pixels; skipped when (x, y) lies
 * outside the plot area. fill NULL means the stroke colour. */
void ds_svg_marker_at(ds_svg *s, double x, double y, ds_svg_marker shape, double size,
                      const char *color, const char *fill);

/* Text at a data point, offset by (dx, dy) pixels. */
void ds_svg_text(ds_svg *s, double x, double y, double dx, double dy, const char *text,
                 double font_size, const char *color);

/* Contour lines of z over the plot area's data range: z[j*nx + i] is the
 * value at x = xmin + i*(xmax-xmin)/(nx-1), y = ymin + j*(ymax-ymin)/(ny-1).
 * One path per level; colors[k] (or color when colors is NULL). */
void ds_svg_contours(ds_svg *s, const double *z, int nx, int ny, const double *levels,
                     int nlevels, const char *const *colors, const char *color, double width);

/* A legend to the right of the plot area (inside the right margin). */
void ds_svg_legend(ds_svg *s, const ds_svg_legend_item *items, int n);

/* Close the document. Returns 0, or -1 when a write to the file failed. */
int ds_svg_end(ds_svg *s);

/* Write text with XML's special characters escaped. */
void ds_svg_escape(FILE *f, const char *text);

/* Marching squares: the contour lines of z at `level` on the grid described
 * above (over [x0,x1] x [y0,y1]), joined into polylines. Each polyline goes
 * to emit(ctx, xy, n) with n points in data coordinates; closed curves
 * repeat their first point at the end. Cells whose corners alternate
 * (inside, outside, inside, outside) are resolved by the mean of the four
 * corners, as the usual asymptotic-free variant does. Returns the number of
 * polylines, or -1 when memory ran out. */
int ds_contour_lines(const double *z, int nx, int ny, double x0, double x1, double y0, double y1,
                     double level, void (*emit)(void *ctx, const double *xy, size_t n),
                     void *ctx);

/* A tick step of 1, 2 or 5 times a power of ten giving about `target` ticks. */
double ds_nice_step(double span, int target);

#endif
