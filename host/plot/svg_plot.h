/* A small, dependency-free SVG writer for the playground's pictures: a plot
 * area with a data range, axes with "nice" ticks, contour lines of a gridded
 * function (marching squares), polylines clipped to the plot area, markers,
 * marks where a line leaves the plot area, a legend beside the plot and a
 * colour key. Coordinates passed in are data coordinates; the writer maps
 * them to pixels (y up). Layers are <g class="..."> groups, drawn in the
 * order they are written (later ones on top). */
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
  DS_MARK_STAR,    /* five-pointed star (a minimum) */
  DS_MARK_ARROW    /* filled triangle pointing right (a line leaving the plot area) */
} ds_svg_marker;

typedef struct {
  const char *label;
  const char *color;   /* stroke colour of the line and marker */
  int line;            /* draw a short line sample */
  ds_svg_marker marker;
  const char *fill;    /* marker fill (NULL: color; "none": hollow) */
  const char *dash;    /* line sample's stroke-dasharray (NULL: solid) */
} ds_svg_legend_item;

/* The row height and font size of a legend with enough room. */
#define DS_SVG_LEGEND_ROW 24.0
#define DS_SVG_LEGEND_FONT 13.0
/* Height of ds_svg_colour_key's block, pixels. */
#define DS_SVG_KEY_HEIGHT 48.0

/* Start a picture of width x height pixels whose plot area shows
 * [xmin,xmax] x [ymin,ymax] inside the given pixel margins. Writes the header.
 * An empty or inverted range is widened as ds_svg_range_fix does. */
/* Point the writer at a plot area: (x, y) is its top-left corner, w x h its
 * size in pixels, and [xmin, xmax] x [ymin, ymax] the data it shows (ranges
 * with no width are widened, as ds_svg_range_fix does). */
void ds_svg_area(ds_svg *s, double x, double y, double w, double h, double xmin, double xmax, double ymin,
                 double ymax);
void ds_svg_begin(ds_svg *s, FILE *f, double width, double height, double margin_left,
                  double margin_right, double margin_top, double margin_bottom, double xmin,
                  double xmax, double ymin, double ymax);

/* Make [*lo, *hi] a range an axis can show: one that is empty, inverted or
 * too narrow for printed ticks to differ (a single log row, a constant
 * series) becomes [v - |v|, v + |v|] around its middle v ([v - 1, v + 1]
 * for v = 0), so the value sits in the middle of the axis, not on its edge. */
void ds_svg_range_fix(double *lo, double *hi);

/* Open and close a layer: <g class="cls"> ... </g>. */
void ds_svg_group(ds_svg *s, const char *cls);
void ds_svg_group_end(ds_svg *s);

/* Pixel coordinates of a data point. */
double ds_svg_px(const ds_svg *s, double x);
double ds_svg_py(const ds_svg *s, double y);

/* Title (bold) and an optional smaller subtitle line above the plot area. */
void ds_svg_title(ds_svg *s, const char *title, const char *subtitle);

/* Frame, tick marks with labels (1-2-5 steps), light grid lines, axis labels. */
void ds_svg_axes(ds_svg *s, const char *xlabel, const char *ylabel);

/* ds_svg_axes for a plot area whose x data are log10 values (a log axis):
 * ticks at whole decades over wide ranges, else at 1, 2 and 5 times each
 * power of ten (more steps within one decade), labelled with the value itself ("0.001", "2", "1e+06"). */
void ds_svg_axes_logx(ds_svg *s, const char *xlabel, const char *ylabel);

/* A filled band between lo[i] and hi[i] over x[i] (n points, data
 * coordinates, x ascending), clipped to the plot area ds_svg_begin set;
 * points with a non-finite value are left out. For min-max bands. */
void ds_svg_band(ds_svg *s, const double *x, const double *lo, const double *hi, size_t n, const char *color,
                 double opacity);

/* Polyline through n points xy[2*i], xy[2*i+1], clipped to the plot area;
 * non-finite points break the line. dash may be NULL (solid). */
void ds_svg_polyline(ds_svg *s, const double *xy, size_t n, const char *color, double width,
                     const char *dash, double opacity);
/* The same with the dash pattern started dash_offset pixels in (lines drawn
 * over each other with the same pattern and different offsets alternate). */
void ds_svg_polyline_dashed(ds_svg *s, const double *xy, size_t n, const char *color, double width,
                            const char *dash, double dash_offset, double opacity);

/* Whether data point (x, y) lies in the plot area (borders included). */
int ds_svg_inside(const ds_svg *s, double x, double y);

/* A marker at (x, y) of the given size in pixels; skipped when (x, y) lies
 * outside the plot area. fill NULL means the stroke colour, "none" a hollow
 * marker (outline only, which hides nothing under it). Returns 1 when drawn. */
int ds_svg_marker_at(ds_svg *s, double x, double y, ds_svg_marker shape, double size,
                     const char *color, const char *fill);

/* Where the polyline (as ds_svg_polyline draws it) leaves the plot area: a
 * triangle in `color` whose tip (the polygon's first point) sits on the
 * frame, pointing the way the line goes. Exits closer than a few pixels to
 * one already marked share its mark. Returns the number of marks drawn. */
int ds_svg_exit_marks(ds_svg *s, const double *xy, size_t n, const char *color);

/* Text at a data point, offset by (dx, dy) pixels. */
void ds_svg_text(ds_svg *s, double x, double y, double dx, double dy, const char *text,
                 double font_size, const char *color);

/* Contour lines of z over the plot area's data range: z[j*nx + i] is the
 * value at x = xmin + i*(xmax-xmin)/(nx-1), y = ymin + j*(ymax-ymin)/(ny-1).
 * One path per level; colors[k] (or color when colors is NULL). */
void ds_svg_contours(ds_svg *s, const double *z, int nx, int ny, const double *levels,
                     int nlevels, const char *const *colors, const char *color, double width);

/* A legend to the right of the plot area: in the right margin, from the top
 * of the plot area to the bottom of the picture. */
void ds_svg_legend(ds_svg *s, const ds_svg_legend_item *items, int n);

/* A legend laid out inside the box [x0,x1] x [y0,y1] (pixels), never
 * outside it: rows of DS_SVG_LEGEND_ROW pixels while they fit, then closer
 * rows, then more columns; one font for all labels, smaller when the widest
 * would not fit (down to 9 px); a label still too wide gets a smaller font
 * of its own (down to 8 px) and past that is cut with "…". */
void ds_svg_legend_box(ds_svg *s, const ds_svg_legend_item *items, int n, double x0, double y0,
                       double x1, double y1);

/* Estimated width in pixels of UTF-8 text in the pictures' sans-serif font
 * (a little more than DejaVu Sans' average glyph, so estimates err wide). */
double ds_svg_text_width(const char *text, double font_size);

/* A colour key of DS_SVG_KEY_HEIGHT pixels whose top left corner is (x, y),
 * w pixels wide: the title, one swatch per colour (low to high), lo under
 * the first, hi under the last and mid (may be NULL) under the middle. */
void ds_svg_colour_key(ds_svg *s, double x, double y, double w, const char *title,
                       const char *const *colors, int n, const char *lo, const char *mid,
                       const char *hi);

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

/* The label of tick value v on an axis over [lo, hi] with ticks `step`
 * apart: -0 and rounding residue print as 0, and there are enough digits
 * for neighbouring ticks to differ. */
void ds_svg_tick_label(char *buf, size_t len, double v, double step, double lo, double hi);

/* The x axis' tick step over [lo, hi] drawn `pixels` wide: about `target`
 * ticks, fewer when their labels (1000000, 1000050, ...) would run into
 * each other. */
double ds_svg_tick_step(double lo, double hi, double pixels, int target);

/* A tick step of 1, 2 or 5 times a power of ten giving about `target` ticks. */
double ds_nice_step(double span, int target);

#endif
