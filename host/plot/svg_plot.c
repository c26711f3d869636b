/* A small SVG writer (see svg_plot.h). Everything is written straight to the
 * FILE; the only allocation is marching squares' per-edge scratch. */
#include "plot/svg_plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FONT "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\""

static double px(const ds_svg *s, double x) {
  return s->left + (x - s->xmin) / (s->xmax - s->xmin) * (s->right - s->left);
}
static double py(const ds_svg *s, double y) {
  return s->bottom - (y - s->ymin) / (s->ymax - s->ymin) * (s->bottom - s->top);
}

double ds_svg_px(const ds_svg *s, double x) { return px(s, x); }
double ds_svg_py(const ds_svg *s, double y) { return py(s, y); }

void ds_svg_escape(FILE *f, const char *text) {
  for (const char *p = text; p && *p; p++) {
    switch (*p) {
      case '&': fputs("&amp;", f); break;
      case '<': fputs("&lt;", f); break;
      case '>': fputs("&gt;", f); break;
      case '"': fputs("&quot;", f); break;
      default: fputc(*p, f);
    }
  }
}

void ds_svg_begin(ds_svg *s, FILE *f, double width, double height, double margin_left,
                  double margin_right, double margin_top, double margin_bottom, double xmin,
                  double xmax, double ymin, double ymax) {
  s->f = f;
  s->width = width;
  s->height = height;
  s->left = margin_left;
  s->right = width - margin_right;
  s->top = margin_top;
  s->bottom = height - margin_bottom;
  s->xmin = xmin;
  s->xmax = xmax > xmin ? xmax : xmin + 1.0;
  s->ymin = ymin;
  s->ymax = ymax > ymin ? ymax : ymin + 1.0;
  fprintf(f,
          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
          "viewBox=\"0 0 %.0f %.0f\">\n"
          "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
          "<clipPath id=\"plot\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></clipPath>\n",
          width, height, width, height, s->left, s->top, s->right - s->left, s->bottom - s->top);
}

void ds_svg_title(ds_svg *s, const char *title, const char *subtitle) {
  if (title) {
    fprintf(s->f, "<text x=\"%.1f\" y=\"24\" font-size=\"16\" font-weight=\"bold\" " FONT ">",
            s->left);
    ds_svg_escape(s->f, title);
    fputs("</text>\n", s->f);
  }
  if (subtitle) {
    fprintf(s->f, "<text x=\"%.1f\" y=\"44\" font-size=\"13\" fill=\"#444\" " FONT ">", s->left);
    ds_svg_escape(s->f, subtitle);
    fputs("</text>\n", s->f);
  }
}

double ds_nice_step(double span, int target) {
  if (!(span > 0.0) || !isfinite(span)) return 1.0;
  double raw = span / (target > 0 ? target : 1);
  double mag = pow(10.0, floor(log10(raw)));
  double r = raw / mag;
  double m = r < 1.5 ? 1.0 : (r < 3.5 ? 2.0 : (r < 7.5 ? 5.0 : 10.0));
  return m * mag;
}

/* Tick values k*step inside [lo, hi]; -0 and rounding residue printed as 0. */
static void tick_label(char *buf, size_t len, double v, double step) {
  if (fabs(v) < 1e-9 * step) v = 0.0;
  snprintf(buf, len, "%g", v);
}

void ds_svg_axes(ds_svg *s, const char *xlabel, const char *ylabel) {
  FILE *f = s->f;
  char lab[64];
  double xs = ds_nice_step(s->xmax - s->xmin, 6), ys = ds_nice_step(s->ymax - s->ymin, 6);
  fputs("<g stroke=\"#ececec\" stroke-width=\"1\">\n", f);
  for (double k = ceil(s->xmin / xs - 1e-9); k * xs <= s->xmax + 1e-9 * xs; k++)
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", px(s, k * xs), s->top,
            px(s, k * xs), s->bottom);
  for (double k = ceil(s->ymin / ys - 1e-9); k * ys <= s->ymax + 1e-9 * ys; k++)
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", s->left, py(s, k * ys),
            s->right, py(s, k * ys));
  fputs("</g>\n", f);
  fprintf(f, "<g font-size=\"12\" fill=\"#333\" " FONT ">\n");
  for (double k = ceil(s->xmin / xs - 1e-9); k * xs <= s->xmax + 1e-9 * xs; k++) {
    double x = px(s, k * xs);
    tick_label(lab, sizeof lab, k * xs, xs);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>", x,
            s->bottom, x, s->bottom + 5);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x, s->bottom + 19,
            lab);
  }
  for (double k = ceil(s->ymin / ys - 1e-9); k * ys <= s->ymax + 1e-9 * ys; k++) {
    double y = py(s, k * ys);
    tick_label(lab, sizeof lab, k * ys, ys);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>", s->left - 5,
            y, s->left, y);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", s->left - 8, y + 4,
            lab);
  }
  if (xlabel) {
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\">",
            (s->left + s->right) / 2, s->bottom + 40);
    ds_svg_escape(f, xlabel);
    fputs("</text>\n", f);
  }
  if (ylabel) {
    double cy = (s->top + s->bottom) / 2, cx = s->left - 52;
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\" "
               "transform=\"rotate(-90 %.1f %.1f)\">", cx, cy, cx, cy);
    ds_svg_escape(f, ylabel);
    fputs("</text>\n", f);
  }
  fputs("</g>\n", f);
  fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
             "stroke=\"#333\" stroke-width=\"1\"/>\n",
          s->left, s->top, s->right - s->left, s->bottom - s->top);
}

/* Liang-Barsky: clip the segment a->b to the data range; returns 0 when no
 * part is inside, else the parameters t0 <= t1 of the inside part. */
static int clip_segment(const ds_svg *s, const double *a, const double *b, double *t0, double *t1) {
  double dx = b[0] - a[0], dy = b[1] - a[1];
  double p[4] = {-dx, dx, -dy, dy};
  double q[4] = {a[0] - s->xmin, s->xmax - a[0], a[1] - s->ymin, s->ymax - a[1]};
  double lo = 0.0, hi = 1.0;
  for (int k = 0; k < 4; k++) {
    if (p[k] == 0.0) {
      if (q[k] < 0.0) return 0;
      continue;
    }
    double r = q[k] / p[k];
    if (p[k] < 0.0) { if (r > lo) lo = r; }
    else if (r < hi) hi = r;
  }
  if (lo > hi) return 0;
  *t0 = lo;
  *t1 = hi;
  return 1;
}

static int finite2(const double *p) { return isfinite(p[0]) && isfinite(p[1]); }

void ds_svg_polyline(ds_svg *s, const double *xy, size_t n, const char *color, double width,
                     const char *dash, double opacity) {
  FILE *f = s->f;
  fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%.2f\" stroke-linejoin=\"round\" "
             "stroke-linecap=\"round\" stroke-opacity=\"%.2f\"", color, width, opacity);
  if (dash) fprintf(f, " stroke-dasharray=\"%s\"", dash);
  fputs(" d=\"", f);
  int pen = 0; /* the pen sits at the end of the previous drawn segment */
  for (size_t i = 0; i + 1 < n; i++) {
    const double *a = xy + 2 * i, *b = xy + 2 * i + 2;
    double t0, t1;
    if (!finite2(a) || !finite2(b) || !clip_segment(s, a, b, &t0, &t1)) {
      pen = 0;
      continue;
    }
    double ax = a[0] + t0 * (b[0] - a[0]), ay = a[1] + t0 * (b[1] - a[1]);
    double bx = a[0] + t1 * (b[0] - a[0]), by = a[1] + t1 * (b[1] - a[1]);
    if (!pen || t0 > 0.0) fprintf(f, "M%.1f %.1f", px(s, ax), py(s, ay));
    fprintf(f, "L%.1f %.1f", px(s, bx), py(s, by));
    pen = t1 >= 1.0;
  }
  fputs("\"/>\n", f);
}

/* A marker centred on pixel (cx, cy). */
static void marker_px(FILE *f, double cx, double cy, ds_svg_marker shape, double size,
                      const char *color, const char *fill) {
  double r = size / 2;
  if (!fill) fill = color;
  switch (shape) {
    case DS_MARK_DOT:
      fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", cx, cy, r, fill);
      break;
    case DS_MARK_CIRCLE:
      fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" stroke=\"%s\" "
                 "stroke-width=\"2.2\"/>\n", cx, cy, r, fill, color);
      break;
    case DS_MARK_SQUARE:
      fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
                 "stroke=\"%s\" stroke-width=\"1.2\"/>\n", cx - r, cy - r, size, size, fill, color);
      break;
    case DS_MARK_CROSS:
      fprintf(f, "<path d=\"M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f\" stroke=\"%s\" "
                 "stroke-width=\"2.5\" stroke-linecap=\"round\"/>\n",
              cx - r, cy - r, cx + r, cy + r, cx - r, cy + r, cx + r, cy - r, color);
      break;
    case DS_MARK_STAR: {
      const double pi = 3.14159265358979323846;
      fputs("<polygon points=\"", f);
      for (int k = 0; k < 10; k++) {
        double rad = k % 2 ? r * 0.45 : r, ang = -pi / 2 + k * pi / 5;
        fprintf(f, "%s%.1f,%.1f", k ? " " : "", cx + rad * cos(ang), cy + rad * sin(ang));
      }
      fprintf(f, "\" fill=\"%s\" stroke=\"%s\" stroke-width=\"1\"/>\n", fill, color);
      break;
    }
    default: break;
  }
}

void ds_svg_marker_at(ds_svg *s, double x, double y, ds_svg_marker shape, double size,
                      const char *color, const char *fill) {
  if (!(x >= s->xmin && x <= s->xmax && y >= s->ymin && y <= s->ymax)) return;
  marker_px(s->f, px(s, x), py(s, y), shape, size, color, fill);
}

void ds_svg_text(ds_svg *s, double x, double y, double dx, double dy, const char *text,
                 double font_size, const char *color) {
  if (!(x >= s->xmin && x <= s->xmax && y >= s->ymin && y <= s->ymax)) return;
  fprintf(s->f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" fill=\"%s\" " FONT ">",
          px(s, x) + dx, py(s, y) + dy, font_size, color);
  ds_svg_escape(s->f, text);
  fputs("</text>\n", s->f);
}

/* ---- marching squares --------------------------------------------------- */

static int inside(double v, double level) { return v >= level; } /* NaN: outside */

static double crossing(double a, double b, double level) {
  double t = (level - a) / (b - a);
  if (!isfinite(t)) return 0.5;
  return t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t);
}

static void link_edges(int *nb, int e1, int e2) {
  nb[2 * e1 + (nb[2 * e1] >= 0)] = e2;
  nb[2 * e2 + (nb[2 * e2] >= 0)] = e1;
}

/* Edges are numbered: horizontal (i,j)-(i+1,j) first, j*(nx-1)+i; then
 * vertical (i,j)-(i,j+1), nh + j*nx + i. Every crossing point is shared by
 * the (at most two) cells on either side of its edge, and each cell pairs its
 * crossings, so crossings have degree 2 inside the grid and 1 on its border:
 * the graph is a set of paths and cycles, walked below. */
int ds_contour_lines(const double *z, int nx, int ny, double x0, double x1, double y0, double y1,
                     double level, void (*emit)(void *ctx, const double *xy, size_t n),
                     void *ctx) {
  if (nx < 2 || ny < 2) return 0;
  size_t nh = (size_t)(nx - 1) * ny, ne = nh + (size_t)nx * (ny - 1);
  double *pt = malloc(2 * ne * sizeof *pt);
  int *nb = malloc(2 * ne * sizeof *nb);
  unsigned char *st = calloc(ne, 1); /* bit 0: crossing, bit 1: visited */
  double *line = malloc(2 * (ne + 1) * sizeof *line);
  if (!pt || !nb || !st || !line) {
    free(pt); free(nb); free(st); free(line);
    return -1;
  }
  double dx = (x1 - x0) / (nx - 1), dy = (y1 - y0) / (ny - 1);
  for (size_t e = 0; e < 2 * ne; e++) nb[e] = -1;
  for (int j = 0; j < ny; j++)
    for (int i = 0; i + 1 < nx; i++) {
      double a = z[(size_t)j * nx + i], b = z[(size_t)j * nx + i + 1];
      size_t e = (size_t)j * (nx - 1) + i;
      if (inside(a, level) == inside(b, level)) continue;
      st[e] = 1;
      pt[2 * e] = x0 + (i + crossing(a, b, level)) * dx;
      pt[2 * e + 1] = y0 + j * dy;
    }
  for (int j = 0; j + 1 < ny; j++)
    for (int i = 0; i < nx; i++) {
      double a = z[(size_t)j * nx + i], b = z[(size_t)(j + 1) * nx + i];
      size_t e = nh + (size_t)j * nx + i;
      if (inside(a, level) == inside(b, level)) continue;
      st[e] = 1;
      pt[2 * e] = x0 + i * dx;
      pt[2 * e + 1] = y0 + (j + crossing(a, b, level)) * dy;
    }
  for (int j = 0; j + 1 < ny; j++)
    for (int i = 0; i + 1 < nx; i++) {
      /* corners a (i,j), b (i+1,j), c (i+1,j+1), d (i,j+1); edges bottom, right, top, left */
      int eb = (int)((size_t)j * (nx - 1) + i), et = (int)((size_t)(j + 1) * (nx - 1) + i);
      int el = (int)(nh + (size_t)j * nx + i), er = el + 1;
      int cross[4], k = 0, edges[4] = {eb, er, et, el};
      for (int q = 0; q < 4; q++)
        if (st[edges[q]] & 1) cross[k++] = edges[q];
      if (k == 2) {
        link_edges(nb, cross[0], cross[1]);
      } else if (k == 4) {
        double a = z[(size_t)j * nx + i], b = z[(size_t)j * nx + i + 1];
        double c = z[(size_t)(j + 1) * nx + i + 1], d = z[(size_t)(j + 1) * nx + i];
        /* Alternating corners: when the centre is on a's side, a and c are
         * joined through it, so b and d are cut off; otherwise a and c are. */
        if (inside((a + b + c + d) / 4, level) == inside(a, level)) {
          link_edges(nb, eb, er); /* around b */
          link_edges(nb, et, el); /* around d */
        } else {
          link_edges(nb, el, eb); /* around a */
          link_edges(nb, er, et); /* around c */
        }
      }
    }
  int count = 0;
  for (int pass = 0; pass < 2; pass++) /* open paths (from a border end) first, then cycles */
    for (size_t e = 0; e < ne; e++) {
      if (st[e] != 1) continue;
      int deg = (nb[2 * e] >= 0) + (nb[2 * e + 1] >= 0);
      if (deg == 0 || (pass == 0 && deg != 1)) continue;
      size_t n = 0;
      int prev = -1, cur = (int)e;
      while (cur >= 0 && !(st[cur] & 2)) {
        st[cur] |= 2;
        line[2 * n] = pt[2 * (size_t)cur];
        line[2 * n + 1] = pt[2 * (size_t)cur + 1];
        n++;
        int next = nb[2 * cur] != prev ? nb[2 * cur] : nb[2 * cur + 1];
        prev = cur;
        cur = next;
      }
      if (cur == (int)e) { /* closed */
        line[2 * n] = line[0];
        line[2 * n + 1] = line[1];
        n++;
      }
      emit(ctx, line, n);
      count++;
    }
  free(pt);
  free(nb);
  free(st);
  free(line);
  return count;
}

typedef struct {
  ds_svg *s;
  const char *color;
  double width;
  int open;
} contour_ctx;

static void emit_path(void *p, const double *xy, size_t n) {
  contour_ctx *c = p;
  ds_svg *s = c->s;
  if (!c->open) {
    fprintf(s->f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%.2f\" stroke-linejoin=\"round\" d=\"",
            c->color, c->width);
    c->open = 1;
  }
  for (size_t i = 0; i < n; i++)
    fprintf(s->f, "%c%.1f %.1f", i ? 'L' : 'M', px(s, xy[2 * i]), py(s, xy[2 * i + 1]));
}

void ds_svg_contours(ds_svg *s, const double *z, int nx, int ny, const double *levels,
                     int nlevels, const char *const *colors, const char *color, double width) {
  for (int k = 0; k < nlevels; k++) {
    contour_ctx c = {s, colors ? colors[k] : color, width, 0};
    ds_contour_lines(z, nx, ny, s->xmin, s->xmax, s->ymin, s->ymax, levels[k], emit_path, &c);
    if (c.open) fputs("\"/>\n", s->f);
  }
}

void ds_svg_legend(ds_svg *s, const ds_svg_legend_item *items, int n) {
  FILE *f = s->f;
  double x = s->right + 18, y = s->top + 12;
  for (int i = 0; i < n; i++, y += 24) {
    const ds_svg_legend_item *it = &items[i];
    double cy = y + 6;
    if (it->line)
      fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                 "stroke-width=\"2.5\"/>\n", x, cy, x + 26, cy, it->color);
    if (it->marker != DS_MARK_NONE)
      marker_px(f, x + 13, cy, it->marker, it->marker == DS_MARK_DOT ? 6 : 11, it->color, it->fill);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" " FONT ">", x + 34, cy + 4.5);
    ds_svg_escape(f, it->label);
    fputs("</text>\n", f);
  }
}

int ds_svg_end(ds_svg *s) {
  fputs("</svg>\n", s->f);
  return ferror(s->f) ? -1 : 0;
}
