/* The playground's pictures (playground_svg.h): contours and trajectories of
 * a toy function, or its curve and the iterates on it. */
#include "plot/playground_svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "descent/common.h"
#include "plot/picture.h"
#include "plot/svg_plot.h"

/* ---- pictures ------------------------------------------------------------- */

static const char *const palette[] = {"#D55E00", "#0072B2", "#009E73", "#CC79A7",
                                      "#E69F00", "#56B4E9", "#000000"};
#define PALETTE_N ((int)(sizeof palette / sizeof palette[0]))

/* Half-width of the square shown around fn->view_center: every start, and
 * every iterate up to 3x the start's distance (further ones, a diverging
 * run's, leave the picture through its edge instead of shrinking the rest). */
static double view_half(const ds_toy_fn *fn, const ds_plot_series *s, int n) {
  const double *c = fn->view_center;
  double start = fn->view_half;
  for (int k = 0; k < n; k++)
    for (int i = 0; i < fn->dim && s[k].tr->n > 0; i++) {
      double dist = fabs(s[k].tr->x[i] - c[i]);
      if (dist > start) start = dist;
    }
  double cap = 3.0 * start, far = start;
  for (int k = 0; k < n; k++)
    for (long t = 0; t < s[k].tr->n; t++) {
      double dist = 0;
      for (int i = 0; i < fn->dim; i++) {
        double e = fabs(s[k].tr->x[t * fn->dim + i] - c[i]);
        dist = e > dist ? e : dist;
      }
      if (dist <= cap && dist > far) far = dist;
    }
  return far * 1.08;
}

static void legend_add(ds_svg_legend_item *items, int *n, const char *label, const char *color,
                       int line, ds_svg_marker m, const char *fill) {
  ds_svg_legend_item it = {label, color, line, m, fill};
  items[(*n)++] = it;
}

/* Trajectories, their markers and the legend (shared by 1-D and 2-D). In
 * 1-D a series' points are (x_t, f(x_t)). */
static void draw_series(ds_svg *svg, const ds_toy_fn *fn, const ds_plot_series *s, int n) {
  enum { MAX_ITEMS = 64 };
  ds_svg_legend_item items[MAX_ITEMS];
  char notes[16][64];
  int ni = 0, any_stopped = 0;
  for (int k = 0; k < n; k++) {
    const ds_trajectory *tr = s[k].tr;
    const char *col = palette[k % PALETTE_N];
    double *xy = ds_xmalloc(2 * (size_t)(tr->n ? tr->n : 1) * sizeof(double), "plot points");
    for (long t = 0; t < tr->n; t++) {
      xy[2 * t] = tr->x[t * tr->dim];
      xy[2 * t + 1] = tr->dim > 1 ? tr->x[t * tr->dim + 1] : tr->f[t];
    }
    ds_svg_polyline(svg, xy, (size_t)tr->n, col, 2.0, NULL, 0.9);
    if (tr->n <= 150)
      for (long t = 1; t + 1 < tr->n; t++)
        ds_svg_marker_at(svg, xy[2 * t], xy[2 * t + 1], DS_MARK_DOT, 6, col, NULL);
    if (n == 1) { /* name the first iterates (apart enough to read), so jumps can be followed */
      static const char *const sub[] = {"₀", "₁", "₂", "₃", "₄"};
      double done[5][2];
      int nd = 0;
      for (long t = 0; t < tr->n && t <= 4; t++) {
        double qx = ds_svg_px(svg, xy[2 * t]), qy = ds_svg_py(svg, xy[2 * t + 1]);
        int crowded = 0;
        for (int i = 0; i < nd; i++)
          crowded |= hypot(qx - done[i][0], qy - done[i][1]) < 22.0;
        if (crowded) continue;
        done[nd][0] = qx;
        done[nd++][1] = qy;
        char lab[16];
        snprintf(lab, sizeof lab, "x%s", sub[t]);
        ds_svg_text(svg, xy[2 * t], xy[2 * t + 1], qx + 30 > svg->right ? -26 : 8, -8, lab, 13, col);
      }
    }
    if (tr->n > 0) {
      long e = tr->n - 1;
      ds_svg_marker_at(svg, xy[2 * e], xy[2 * e + 1], tr->stopped ? DS_MARK_CROSS : DS_MARK_SQUARE,
                       10, col, NULL);
      ds_svg_marker_at(svg, xy[0], xy[1], DS_MARK_CIRCLE, 12, col, "white");
    }
    free(xy);
    if (ni < MAX_ITEMS - 8) legend_add(items, &ni, s[k].label, col, 1, DS_MARK_DOT, NULL);
    if (tr->stopped && k < 16 && ni < MAX_ITEMS - 8) {
      if (tr->stopped_at == 0) snprintf(notes[k], sizeof notes[k], "   f(x₀) overflows float");
      else snprintf(notes[k], sizeof notes[k], "   diverged: stopped at update %ld", tr->stopped_at);
      legend_add(items, &ni, notes[k], col, 0, DS_MARK_NONE, NULL);
      any_stopped = 1;
    }
  }
  legend_add(items, &ni, "start", "#333", 0, DS_MARK_CIRCLE, "white");
  legend_add(items, &ni, "end", "#333", 0, DS_MARK_SQUARE, NULL);
  if (any_stopped) legend_add(items, &ni, "last point before overflow", "#333", 0, DS_MARK_CROSS, NULL);
  if (fn->dim > 1)
    legend_add(items, &ni, fn->key_is_min ? "minimum" : "saddle point", "#222", 0,
               fn->key_is_min ? DS_MARK_STAR : DS_MARK_CROSS, fn->key_is_min ? "#FFD23F" : NULL);
  ds_svg_legend(svg, items, ni);
}

/* Contour levels and their colours (dark for low values, light for high). */
static int contour_levels(const ds_toy_fn *fn, const double *z, size_t nz, double *lv,
                          char (*colors)[8]) {
  double zmin = INFINITY, zmax = -INFINITY, amax = 0;
  for (size_t i = 0; i < nz; i++) {
    if (!isfinite(z[i])) continue;
    zmin = z[i] < zmin ? z[i] : zmin;
    zmax = z[i] > zmax ? z[i] : zmax;
    amax = fabs(z[i]) > amax ? fabs(z[i]) : amax;
  }
  double fmin = fn->key_is_min ? fn->f(fn->key) : zmin;
  int n = 0;
  if (fn->levels == DS_LEVELS_SIGNED) {
    const int K = 7;
    for (int k = -K; k <= K; k++) {
      double q = (double)k / (K + 1);
      lv[n++] = (k < 0 ? -1.0 : 1.0) * amax * q * q;
    }
  } else if (fn->levels == DS_LEVELS_LOG) {
    const int K = 16;
    double span = zmax - fmin, lo = span * 1e-4;
    for (int k = 0; k < K; k++) lv[n++] = fmin + lo * pow(0.9 / 1e-4, (double)k / (K - 1));
  } else {
    const int K = 14;
    for (int k = 1; k <= K; k++) {
      double q = (double)k / (K + 1);
      lv[n++] = fmin + (zmax - fmin) * q * q;
    }
  }
  for (int k = 0; k < n; k++) {
    /* dark for low values, light for high: #4d6a8c .. #c3cfdd; a saddle's
     * negative levels in blue-grey and its positive ones in warm grey, both
     * darker near 0 */
    double u = n > 1 ? (double)k / (n - 1) : 0.0;
    int lo[3] = {0x4d, 0x6a, 0x8c}, hi[3] = {0xc3, 0xcf, 0xdd}, rgb[3];
    if (fn->levels == DS_LEVELS_SIGNED) {
      u = amax > 0 ? sqrt(fabs(lv[k]) / amax) : 0.0;
      if (lv[k] > 0) {
        lo[0] = 0x8c; lo[1] = 0x74; lo[2] = 0x5a;
        hi[0] = 0xdd; hi[1] = 0xd0; hi[2] = 0xc3;
      }
    }
    for (int i = 0; i < 3; i++) rgb[i] = (int)(lo[i] + u * (hi[i] - lo[i]));
    snprintf(colors[k], 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
  }
  return n;
}

int ds_playground_svg(FILE *f, const ds_toy_fn *fn, const ds_plot_series *series, int n,
                      const char *title, const char *subtitle) {
  ds_svg svg;
  double half = view_half(fn, series, n);
  const double *c = fn->view_center;
  if (fn->dim == 1) {
    enum { NS = 401 };
    double curve[2 * NS], ymin = INFINITY, ymax = -INFINITY;
    for (int i = 0; i < NS; i++) {
      double x = c[0] - half + 2.0 * half * i / (NS - 1);
      curve[2 * i] = x;
      curve[2 * i + 1] = fn->f(&x);
      ymin = curve[2 * i + 1] < ymin ? curve[2 * i + 1] : ymin;
      ymax = curve[2 * i + 1] > ymax ? curve[2 * i + 1] : ymax;
    }
    double pad = 0.05 * (ymax - ymin);
    ds_svg_begin(&svg, f, 75 + 560 + 250, 62 + 420 + 58, 75, 250, 62, 58, c[0] - half, c[0] + half,
                 ymin - pad, ymax + pad);
    ds_svg_title(&svg, title, subtitle);
    ds_svg_axes(&svg, "x", "f(x)");
    ds_svg_polyline(&svg, curve, NS, "#6b7b8f", 2.0, NULL, 1.0);
  } else {
    enum { G = 121 };
    double *z = ds_xmalloc(sizeof(double) * G * G, "contour grid"), lv[32];
    char colors[32][8];
    const char *cp[32];
    for (int j = 0; j < G; j++)
      for (int i = 0; i < G; i++) {
        double p[2] = {c[0] - half + 2.0 * half * i / (G - 1), c[1] - half + 2.0 * half * j / (G - 1)};
        z[j * G + i] = fn->f(p);
      }
    int nl = contour_levels(fn, z, (size_t)G * G, lv, colors);
    for (int k = 0; k < nl; k++) cp[k] = colors[k];
    ds_svg_begin(&svg, f, 75 + 480 + 250, 62 + 480 + 58, 75, 250, 62, 58, c[0] - half, c[0] + half,
                 c[1] - half, c[1] + half);
    ds_svg_title(&svg, title, subtitle);
    ds_svg_axes(&svg, "x₁", "x₂");
    ds_svg_contours(&svg, z, G, G, lv, nl, cp, NULL, 1.1);
    free(z);
    ds_svg_marker_at(&svg, fn->key[0], fn->key[1], fn->key_is_min ? DS_MARK_STAR : DS_MARK_CROSS,
                     fn->key_is_min ? 16 : 11, "#222", fn->key_is_min ? "#FFD23F" : NULL);
  }
  draw_series(&svg, fn, series, n);
  return ds_svg_end(&svg);
}

/* ---- files: .svg, or .png through rsvg-convert (picture.c) ----------------- */

int ds_playground_plot_check(const char *path, char *err, size_t errlen) {
  return ds_picture_check("--plot", path, err, errlen);
}

typedef struct {
  const ds_toy_fn *fn;
  const ds_plot_series *series;
  int n;
  const char *title, *subtitle;
} playground_picture;

static int draw_playground(FILE *f, const void *ctx) {
  const playground_picture *p = ctx;
  return ds_playground_svg(f, p->fn, p->series, p->n, p->title, p->subtitle);
}

int ds_playground_plot_file(const char *path, const ds_toy_fn *fn, const ds_plot_series *series,
                            int n, const char *title, const char *subtitle, char *err,
                            size_t errlen) {
  if (ds_picture_check("--plot", path, err, errlen) != 0) return -1;
  playground_picture p = {fn, series, n, title, subtitle};
  return ds_picture_write(path, draw_playground, &p, err, errlen);
}
