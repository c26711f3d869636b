/* A small SVG writer (see svg_plot.h). Everything is written straight to the
 * FILE; the only allocation is marching squares' per-edge scratch. Write
 * errors are not checked call by call: they stick to the FILE, and
 * ds_svg_end reports them (ferror) for the whole picture. */
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

/* The length of the well-formed UTF-8 sequence at p (1..4), or 0. */
static int utf8_seq_len(const unsigned char *p) {
  int n = p[0] < 0x80 ? 1 : (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3 : (p[0] & 0xF8) == 0xF0 ? 4 : 0;
  if (n == 2 && p[0] < 0xC2) return 0; /* overlong */
  for (int i = 1; i < n; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return n;
}

void ds_svg_escape(FILE *f, const char *text) {
  /* XML allows neither control characters nor broken UTF-8: a title or file
     name holding them would make the whole picture unreadable */
  for (const unsigned char *p = (const unsigned char *)text; p && *p;) {
    int n = utf8_seq_len(p);
    if (n == 0) {
      fputs("\xEF\xBF\xBD", f); /* U+FFFD, the replacement character */
      p++;
      continue;
    }
    switch (*p) {
      case '&': fputs("&amp;", f); break;
      case '<': fputs("&lt;", f); break;
      case '>': fputs("&gt;", f); break;
      case '"': fputs("&quot;", f); break;
      default:
        if (*p < 0x20) fputc(' ', f);
        else fwrite(p, 1, (size_t)n, f);
    }
    p += n;
  }
}

void ds_svg_range_fix(double *lo, double *hi) {
  double a = *lo, b = *hi;
  if (!isfinite(a) && !isfinite(b)) a = b = 0.0;
  else if (!isfinite(a)) a = b;
  else if (!isfinite(b)) b = a;
  /* below ~1e-9 relative, ticks would need more digits than a label shows */
  if (b > a && b - a > 1e-9 * fmax(fabs(a), fabs(b))) return;
  double v = a + (b - a) / 2, d = v != 0.0 ? fabs(v) : 1.0;
  *lo = v - d;
  *hi = v + d;
}

void ds_svg_group(ds_svg *s, const char *cls) {
  fputs("<g class=\"", s->f);
  ds_svg_escape(s->f, cls);
  fputs("\">\n", s->f);
}

void ds_svg_group_end(ds_svg *s) { fputs("</g>\n", s->f); }

void ds_svg_area(ds_svg *s, double x, double y, double w, double h, double xmin, double xmax, double ymin,
                 double ymax) {
  s->left = x;
  s->right = x + w;
  s->top = y;
  s->bottom = y + h;
  ds_svg_range_fix(&xmin, &xmax);
  ds_svg_range_fix(&ymin, &ymax);
  s->xmin = xmin;
  s->xmax = xmax;
  s->ymin = ymin;
  s->ymax = ymax;
}

void ds_svg_begin(ds_svg *s, FILE *f, double width, double height, double margin_left,
                  double margin_right, double margin_top, double margin_bottom, double xmin,
                  double xmax, double ymin, double ymax) {
  s->f = f;
  s->width = width;
  s->height = height;
  ds_svg_area(s, margin_left, margin_top, width - margin_left - margin_right, height - margin_top - margin_bottom,
              xmin, xmax, ymin, ymax);
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

void ds_svg_tick_label(char *buf, size_t len, double v, double step, double lo, double hi) {
  if (fabs(v) < 1e-9 * step) v = 0.0;
  /* %g's six significant digits print 1000000 and 1000050 alike (and from
   * 1e6 on it switches to 1e+06): there, fixed notation with the decimals
   * the (1, 2 or 5 times 10^k) step has */
  double big = fmax(fabs(lo), fabs(hi));
  int need = 0;
  if (step > 0.0 && big > 0.0 && isfinite(big / step))
    need = (int)floor(log10(big)) - (int)floor(log10(step)) + 1;
  if (need <= 6 && big < 1e6) snprintf(buf, len, "%g", v);
  else if (big < 1e15) snprintf(buf, len, "%.*f", step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9), v);
  else snprintf(buf, len, "%.*g", need < 17 ? need : 17, v);
}

static void tick_label(const ds_svg *s, char *buf, size_t len, double v, double step, int y) {
  ds_svg_tick_label(buf, len, v, step, y ? s->ymin : s->xmin, y ? s->ymax : s->xmax);
}

double ds_svg_tick_step(double lo, double hi, double pixels, int target) {
  double step = ds_nice_step(hi - lo, target);
  for (int i = 0; i < 12 && step > 0.0 && isfinite(step); i++) {
    char a[64], b[64];
    double first = ceil(lo / step - 1e-9) * step, last = floor(hi / step + 1e-9) * step;
    ds_svg_tick_label(a, sizeof a, first, step, lo, hi);
    ds_svg_tick_label(b, sizeof b, last, step, lo, hi);
    double w = fmax(ds_svg_text_width(a, 12), ds_svg_text_width(b, 12)) + 10.0;
    if ((floor((hi - lo) / step) + 1.0) * w <= pixels) break;
    double m = step / pow(10.0, floor(log10(step))); /* 1 -> 2 -> 5 -> 10 */
    step *= m < 1.5 ? 2.0 : (m < 3.5 ? 2.5 : 2.0);
  }
  return step;
}

/* The x ticks of a log axis whose data coordinates are log10 values: whole
 * decades when the range spans more than 2.5 of them (every other one past
 * 8), else 1, 2 and 5 times each power of ten (1, 1.5, 2, 3, 4, 5, 6, 8
 * within one decade); n ticks into t (at most max). */
static int log_ticks(double lo, double hi, double *t, int max) {
  int n = 0;
  if (hi - lo > 2.5) {
    int every = hi - lo > 8 ? 2 : 1;
    for (double e = ceil(lo - 1e-9); e <= hi + 1e-9 && n < max; e++)
      if ((long)e % every == 0) t[n++] = e;
    return n;
  }
  static const double m3[3] = {1, 2, 5}, m8[8] = {1, 1.5, 2, 3, 4, 5, 6, 8};
  const double *m = hi - lo > 1.0 ? m3 : m8; /* within a decade: more steps */
  int nm = hi - lo > 1.0 ? 3 : 8;
  for (double e = floor(lo) - 1; e <= ceil(hi) && n < max; e++)
    for (int i = 0; i < nm && n < max; i++) {
      double v = e + log10(m[i]);
      if (v >= lo - 1e-9 && v <= hi + 1e-9) t[n++] = v;
    }
  return n;
}

static void axes(ds_svg *s, const char *xlabel, const char *ylabel, int logx) {
  FILE *f = s->f;
  char lab[64];
  double xs = ds_svg_tick_step(s->xmin, s->xmax, s->right - s->left, 6), ys = ds_nice_step(s->ymax - s->ymin, 6);
  double xt[64];
  int nxt = 0;
  if (logx) nxt = log_ticks(s->xmin, s->xmax, xt, 64);
  else
    for (double k = ceil(s->xmin / xs - 1e-9); k * xs <= s->xmax + 1e-9 * xs && nxt < 64; k++) xt[nxt++] = k * xs;
  fputs("<g stroke=\"#ececec\" stroke-width=\"1\">\n", f);
  for (int i = 0; i < nxt; i++)
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", px(s, xt[i]), s->top,
            px(s, xt[i]), s->bottom);
  for (double k = ceil(s->ymin / ys - 1e-9); k * ys <= s->ymax + 1e-9 * ys; k++)
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", s->left, py(s, k * ys),
            s->right, py(s, k * ys));
  fputs("</g>\n", f);
  fprintf(f, "<g font-size=\"12\" fill=\"#333\" " FONT ">\n");
  for (int i = 0; i < nxt; i++) {
    double x = px(s, xt[i]);
    if (logx) snprintf(lab, sizeof lab, "%g", pow(10.0, xt[i]));
    else tick_label(s, lab, sizeof lab, xt[i], xs, 0);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>", x,
            s->bottom, x, s->bottom + 5);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x, s->bottom + 19,
            lab);
  }
  for (double k = ceil(s->ymin / ys - 1e-9); k * ys <= s->ymax + 1e-9 * ys; k++) {
    double y = py(s, k * ys);
    tick_label(s, lab, sizeof lab, k * ys, ys, 1);
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
  fprintf(f, "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
             "stroke=\"#333\" stroke-width=\"1\"/>\n",
          s->left, s->top, s->right - s->left, s->bottom - s->top);
}

void ds_svg_axes(ds_svg *s, const char *xlabel, const char *ylabel) { axes(s, xlabel, ylabel, 0); }
void ds_svg_axes_logx(ds_svg *s, const char *xlabel, const char *ylabel) { axes(s, xlabel, ylabel, 1); }

void ds_svg_band(ds_svg *s, const double *x, const double *lo, const double *hi, size_t n, const char *color,
                 double opacity) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++) m += isfinite(x[i]) && isfinite(lo[i]) && isfinite(hi[i]);
  if (m == 0) return;
  fprintf(s->f, "<polygon class=\"band\" clip-path=\"url(#plot)\" fill=\"%s\" fill-opacity=\"%.2f\" stroke=\"none\" points=\"",
          color, opacity);
  for (size_t i = 0; i < n; i++)
    if (isfinite(x[i]) && isfinite(lo[i]) && isfinite(hi[i])) fprintf(s->f, "%.1f,%.1f ", px(s, x[i]), py(s, hi[i]));
  for (size_t i = n; i-- > 0;)
    if (isfinite(x[i]) && isfinite(lo[i]) && isfinite(hi[i])) fprintf(s->f, "%.1f,%.1f ", px(s, x[i]), py(s, lo[i]));
  fputs("\"/>\n", s->f);
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
  ds_svg_polyline_dashed(s, xy, n, color, width, dash, 0.0, opacity);
}

void ds_svg_polyline_dashed(ds_svg *s, const double *xy, size_t n, const char *color, double width,
                            const char *dash, double dash_offset, double opacity) {
  FILE *f = s->f;
  /* round caps would fill a dash pattern's gaps; butt caps keep them open */
  fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%.2f\" stroke-linejoin=\"round\" "
             "stroke-linecap=\"%s\" stroke-opacity=\"%.2f\"", color, width, dash ? "butt" : "round", opacity);
  if (dash) fprintf(f, " stroke-dasharray=\"%s\" stroke-dashoffset=\"%.1f\"", dash, dash_offset);
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

/* A marker centred on pixel (cx, cy); fill "none" draws the outline only,
 * in the stroke colour and a little heavier so it still reads. */
static void marker_px(FILE *f, double cx, double cy, ds_svg_marker shape, double size,
                      const char *color, const char *fill) {
  double r = size / 2;
  if (!fill) fill = color;
  int hollow = strcmp(fill, "none") == 0;
  switch (shape) {
    case DS_MARK_DOT:
      if (hollow)
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"none\" stroke=\"%s\" "
                   "stroke-width=\"1.5\"/>\n", cx, cy, r, color);
      else fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", cx, cy, r, fill);
      break;
    case DS_MARK_CIRCLE:
      fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" stroke=\"%s\" "
                 "stroke-width=\"2.2\"/>\n", cx, cy, r, fill, color);
      break;
    case DS_MARK_SQUARE:
      fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
                 "stroke=\"%s\" stroke-width=\"%.1f\"/>\n", cx - r, cy - r, size, size, fill, color,
              hollow ? 2.2 : 1.2);
      break;
    case DS_MARK_CROSS:
      fprintf(f, "<path d=\"M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f\" fill=\"none\" stroke=\"%s\" "
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
      fprintf(f, "\" fill=\"%s\" stroke=\"%s\" stroke-width=\"%.1f\"/>\n", fill, color, hollow ? 1.8 : 1.0);
      break;
    }
    case DS_MARK_ARROW:
      fprintf(f, "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\" fill=\"%s\" stroke=\"%s\" "
                 "stroke-width=\"1\"/>\n", cx + r, cy, cx - r, cy - 0.8 * r, cx - r, cy + 0.8 * r, fill,
              hollow ? color : "white");
      break;
    default: break;
  }
}

int ds_svg_inside(const ds_svg *s, double x, double y) {
  return x >= s->xmin && x <= s->xmax && y >= s->ymin && y <= s->ymax;
}

int ds_svg_marker_at(ds_svg *s, double x, double y, ds_svg_marker shape, double size,
                     const char *color, const char *fill) {
  if (!ds_svg_inside(s, x, y)) return 0;
  marker_px(s->f, px(s, x), py(s, y), shape, size, color, fill);
  return 1;
}

/* A triangle with its tip on pixel (x, y), pointing along the unit vector (ux, uy). */
static void exit_mark(FILE *f, double x, double y, double ux, double uy, const char *color) {
  const double len = 11.0, half = 5.0;
  double bx = x - len * ux, by = y - len * uy;
  fprintf(f, "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\" fill=\"%s\" stroke=\"white\" "
             "stroke-width=\"1\" stroke-linejoin=\"round\"/>\n",
          x, y, bx - half * uy, by + half * ux, bx + half * uy, by - half * ux, color);
}

int ds_svg_exit_marks(ds_svg *s, const double *xy, size_t n, const char *color) {
  enum { MAX_MARKS = 32 };
  double done[MAX_MARKS][2];
  int nd = 0;
  for (size_t i = 0; i + 1 < n && nd < MAX_MARKS; i++) {
    const double *a = xy + 2 * i, *b = xy + 2 * i + 2;
    double t0, t1;
    if (!finite2(a) || !finite2(b) || !clip_segment(s, a, b, &t0, &t1) || t1 >= 1.0) continue;
    /* the direction in pixels, from the data direction scaled first so that
     * a far point (a diverging run's) cannot overflow */
    double dx = b[0] - a[0], dy = b[1] - a[1], m = fmax(fabs(dx), fabs(dy));
    if (!(m > 0.0) || !isfinite(m)) continue;
    double ux = dx / m * (s->right - s->left) / (s->xmax - s->xmin);
    double uy = -dy / m * (s->bottom - s->top) / (s->ymax - s->ymin), ul = hypot(ux, uy);
    if (!(ul > 0.0)) continue;
    double ex = px(s, a[0] + t1 * dx), ey = py(s, a[1] + t1 * dy);
    int seen = 0;
    for (int k = 0; k < nd && !seen; k++) seen = hypot(ex - done[k][0], ey - done[k][1]) < 6.0;
    if (seen) continue;
    exit_mark(s->f, ex, ey, ux / ul, uy / ul, color);
    done[nd][0] = ex;
    done[nd++][1] = ey;
  }
  return nd;
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
  ds_svg_group(s, "contours");
  for (int k = 0; k < nlevels; k++) {
    contour_ctx c = {s, colors ? colors[k] : color, width, 0};
    ds_contour_lines(z, nx, ny, s->xmin, s->xmax, s->ymin, s->ymax, levels[k], emit_path, &c);
    if (c.open) fputs("\"/>\n", s->f);
  }
  ds_svg_group_end(s);
}

/* ---- legend and colour key ------------------------------------------------ */

/* Code points of UTF-8 text (continuation bytes are not counted). */
static size_t utf8_len(const char *t) {
  size_t n = 0;
  for (; t && *t; t++) n += ((unsigned char)*t & 0xC0) != 0x80;
  return n;
}

/* Measured on DejaVu Sans: a typical label averages 0.53 em a character;
 * 0.58 leaves room for wide glyphs (m, w, digits). */
#define EM_PER_CHAR 0.58

double ds_svg_text_width(const char *text, double font_size) {
  return (double)utf8_len(text) * EM_PER_CHAR * font_size;
}

/* Escaped text cut after `keep` code points, with "…" when cut. */
static void escape_cut(FILE *f, const char *text, size_t keep) {
  if (utf8_len(text) <= keep) {
    ds_svg_escape(f, text);
    return;
  }
  char buf[512];
  size_t n = 0, cps = 0;
  for (const char *p = text; *p; p++) { /* stop at a character's first byte only */
    int lead = ((unsigned char)*p & 0xC0) != 0x80;
    if (lead && (cps++ == keep || n + 4 >= sizeof buf)) break;
    buf[n++] = *p;
  }
  buf[n] = '\0';
  ds_svg_escape(f, buf);
  fputs("…", f);
}

/* One legend row: the sample (line and/or marker) in the first `sample`
 * pixels from x, the label after it, fitted into `avail` pixels. */
static void legend_row(FILE *f, const ds_svg_legend_item *it, double x, double cy, double sample,
                       double msize, double font, double avail) {
  if (it->line) {
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"",
            x, cy, x + sample, cy, it->color);
    if (it->dash) fprintf(f, " stroke-dasharray=\"%s\"", it->dash);
    fputs("/>\n", f);
  }
  if (it->marker != DS_MARK_NONE)
    marker_px(f, x + sample / 2, cy, it->marker, it->marker == DS_MARK_DOT ? msize * 0.55 : msize, it->color,
              it->fill);
  const char *label = it->label ? it->label : "";
  double fs = font, w = ds_svg_text_width(label, fs);
  if (w > avail) fs = fmax(8.0, fs * avail / w); /* smaller type first, then cut */
  size_t keep = utf8_len(label);
  if (ds_svg_text_width(label, fs) > avail) /* room for the "…" too */
    keep = (size_t)fmax(1.0, floor(avail / (EM_PER_CHAR * fs)) - 1.0);
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.1f\" " FONT ">", x + sample + 8, cy + 0.35 * fs, fs);
  escape_cut(f, label, keep);
  fputs("</text>\n", f);
}

void ds_svg_legend_box(ds_svg *s, const ds_svg_legend_item *items, int n, double x0, double y0,
                       double x1, double y1) {
  enum { MAX_COLS = 4 };
  if (n <= 0 || !(x1 > x0) || !(y1 > y0)) return;
  double h = y1 - y0, boxw = x1 - x0;
  int cols = 1, rows = n;
  while (h / rows < 14.0 && cols < MAX_COLS) { /* closer rows first, then columns */
    cols++;
    rows = (n + cols - 1) / cols;
  }
  double row = fmin(DS_SVG_LEGEND_ROW, h / rows), msize = fmin(11.0, row - 4.0);
  double font = fmin(DS_SVG_LEGEND_FONT, fmax(6.0, row - 5.0)), sample = fmin(26.0, 0.2 * boxw / cols);
  /* One font for the whole legend, small enough for each column's widest
   * label (down to 9 px); columns as wide as their labels when that fits. */
  double need[MAX_COLS] = {0}, sum = 0, fixed = cols * (sample + 12.0);
  for (int i = 0; i < n; i++)
    need[i / rows] = fmax(need[i / rows], ds_svg_text_width(items[i].label ? items[i].label : "", 1.0));
  for (int c = 0; c < cols; c++) sum += need[c];
  if (sum * font > boxw - fixed) font = fmax(fmin(font, 9.0), (boxw - fixed) / sum);
  double colx[MAX_COLS + 1];
  int natural = fixed + sum * font <= boxw;
  colx[0] = x0;
  for (int c = 0; c < cols; c++) colx[c + 1] = natural ? colx[c] + sample + 12.0 + need[c] * font : x0 + (c + 1) * boxw / cols;
  colx[cols] = x1; /* the last column takes what is left */
  ds_svg_group(s, "legend");
  for (int i = 0; i < n; i++) { /* a label still too wide gets a smaller font, then a cut (legend_row) */
    int c = i / rows;
    double cy = y0 + (i % rows + 0.5) * row;
    legend_row(s->f, &items[i], colx[c], cy, sample, msize, font, colx[c + 1] - colx[c] - sample - 12.0);
  }
  ds_svg_group_end(s);
}

void ds_svg_legend(ds_svg *s, const ds_svg_legend_item *items, int n) {
  ds_svg_legend_box(s, items, n, s->right + 18, s->top + 6, s->width - 6, s->height - 6);
}

void ds_svg_colour_key(ds_svg *s, double x, double y, double w, const char *title,
                       const char *const *colors, int n, const char *lo, const char *mid,
                       const char *hi) {
  FILE *f = s->f;
  if (n <= 0 || !(w > 0)) return;
  ds_svg_group(s, "colour-key");
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" fill=\"#333\" " FONT ">", x, y + 12);
  ds_svg_escape(f, title);
  fputs("</text>\n", f);
  double sw = w / n;
  for (int k = 0; k < n; k++) /* a hair wider than sw, so no seam shows between swatches */
    fprintf(f, "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"12\" fill=\"%s\"/>\n", x + k * sw,
            y + 18, k + 1 < n ? sw + 0.5 : sw, colors[k]);
  fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"12\" fill=\"none\" stroke=\"#888\" "
             "stroke-width=\"0.8\"/>\n", x, y + 18, w);
  const char *text[3] = {lo, mid, hi}, *anchor[3] = {"start", "middle", "end"};
  double tx[3] = {x, x + w / 2, x + w};
  for (int i = 0; i < 3; i++) {
    if (!text[i]) continue;
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#333\" text-anchor=\"%s\" " FONT ">",
            tx[i], y + 44, anchor[i]);
    ds_svg_escape(f, text[i]);
    fputs("</text>\n", f);
  }
  ds_svg_group_end(s);
}

int ds_svg_end(ds_svg *s) {
  fputs("</svg>\n", s->f);
  return ferror(s->f) ? -1 : 0;
}
