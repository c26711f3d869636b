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

/* ---- the layers over the contours: trajectories, markers, exits, legend ---- */

/* One series as drawn: its points (x_t, y_t) in data coordinates (in 1-D
 * y_t = f(x_t)), its colour, and whether its path is drawn where an
 * earlier series' path is (same_as: that series, else -1). */
typedef struct {
  double *xy;
  long n;
  const char *color;
  int same_as, member, group; /* member m of a group of `group` equal paths (0: the first) */
  char dash[32];
  double dash_offset;
} drawn_series;

/* The pixel of a data point, pulled onto the plot area's edge when outside
 * it (only the part inside is drawn, so only that part can coincide). */
static void edge_px(const ds_svg *svg, const double *p, double *q) {
  double x = ds_svg_px(svg, p[0]), y = ds_svg_py(svg, p[1]);
  q[0] = isfinite(x) ? fmin(fmax(x, svg->left), svg->right) : svg->left;
  q[1] = isfinite(y) ? fmin(fmax(y, svg->top), svg->bottom) : svg->top;
}

/* Whether b is drawn on top of a: as many points, each within 1.5 pixels
 * of a's, so that b's 2-pixel line covers a's (momentum 0 next to sgd,
 * adamw next to adam at a small decay, ...). */
static int same_path(const ds_svg *svg, const drawn_series *a, const drawn_series *b) {
  if (a->n != b->n) return 0;
  for (long t = 0; t < a->n; t++) {
    double qa[2], qb[2];
    edge_px(svg, a->xy + 2 * t, qa);
    edge_px(svg, b->xy + 2 * t, qb);
    if (hypot(qa[0] - qb[0], qa[1] - qb[1]) > 1.5) return 0;
  }
  return 1;
}

/* Equal paths: the first is drawn solid, member m (m >= 1) of a group of g
 * dashed over it, with dashes DASH pixels long in slot m of g slots. Along
 * the line the colours take turns and slot 0 shows the first one. */
#define DASH 8.0
static void find_same_paths(const ds_svg *svg, drawn_series *d, int n) {
  for (int k = 0; k < n; k++) {
    d[k].same_as = -1;
    d[k].member = 0;
    d[k].group = 1;
    for (int j = 0; j < k && d[k].same_as < 0; j++)
      if (d[j].same_as < 0 && same_path(svg, &d[j], &d[k])) {
        d[k].same_as = j;
        d[k].member = d[j].group++;
      }
  }
  for (int k = 0; k < n; k++) {
    if (d[k].same_as < 0) continue;
    int g = d[d[k].same_as].group;
    snprintf(d[k].dash, sizeof d[k].dash, "%g %g", DASH, DASH * (g - 1));
    d[k].dash_offset = DASH * (g - d[k].member);
  }
}

static void draw_paths(ds_svg *svg, const drawn_series *d, int n) {
  ds_svg_group(svg, "trajectories");
  for (int k = 0; k < n; k++) {
    if (d[k].same_as >= 0) { /* its iterates are the first one's: no dots */
      ds_svg_polyline_dashed(svg, d[k].xy, (size_t)d[k].n, d[k].color, 2.0, d[k].dash, d[k].dash_offset, 1.0);
      continue;
    }
    ds_svg_polyline(svg, d[k].xy, (size_t)d[k].n, d[k].color, 2.0, NULL, 0.9);
    if (d[k].n <= 150)
      for (long t = 1; t + 1 < d[k].n; t++)
        ds_svg_marker_at(svg, d[k].xy[2 * t], d[k].xy[2 * t + 1], DS_MARK_DOT, 6, d[k].color, NULL);
  }
  ds_svg_group_end(svg);
}

/* The markers drawn so far (pixel centre and size), so that a new one never
 * hides an old one: it is hollow where it overlaps one, and where their
 * centres (nearly) coincide it is also larger, framing it. */
typedef struct {
  ds_svg *svg;
  int n;
  double at[64][3];
} marker_layer;

static int place(marker_layer *L, double x, double y, ds_svg_marker m, double size, const char *color,
                 const char *fill) {
  ds_svg *svg = L->svg;
  if (!ds_svg_inside(svg, x, y)) return 0;
  double qx = ds_svg_px(svg, x), qy = ds_svg_py(svg, y), sz = size;
  for (int i = 0; i < L->n; i++)
    if (hypot(qx - L->at[i][0], qy - L->at[i][1]) < 4.0 && L->at[i][2] + 7.0 > sz) sz = L->at[i][2] + 7.0;
  int hollow = 0;
  for (int i = 0; i < L->n; i++) hollow |= hypot(qx - L->at[i][0], qy - L->at[i][1]) < (sz + L->at[i][2]) / 2;
  ds_svg_marker_at(svg, x, y, m, sz, color, hollow ? "none" : fill);
  if (L->n < 64) {
    L->at[L->n][0] = qx;
    L->at[L->n][1] = qy;
    L->at[L->n++][2] = sz;
  }
  return 1;
}

/* What the marker layer drew, for the legend. */
typedef struct {
  int end, cross, exits;
} drawn_marks;

/* In 1-D with one series, name the first iterates (apart enough to read),
 * so the jumps can be followed. */
static void label_iterates(ds_svg *svg, const drawn_series *d) {
  static const char *const sub[] = {"₀", "₁", "₂", "₃", "₄"};
  double done[5][2];
  int nd = 0;
  for (long t = 0; t < d->n && t <= 4; t++) {
    double qx = ds_svg_px(svg, d->xy[2 * t]), qy = ds_svg_py(svg, d->xy[2 * t + 1]);
    int crowded = 0;
    for (int i = 0; i < nd; i++) crowded |= hypot(qx - done[i][0], qy - done[i][1]) < 22.0;
    if (crowded) continue;
    done[nd][0] = qx;
    done[nd++][1] = qy;
    char lab[16];
    snprintf(lab, sizeof lab, "x%s", sub[t]);
    ds_svg_text(svg, d->xy[2 * t], d->xy[2 * t + 1], qx + 30 > svg->right ? -26 : 8, -8, lab, 13, d->color);
  }
}

/* Above every path: the minimum (or saddle point), the starts, the ends,
 * then the marks where paths leave the frame. */
static drawn_marks draw_marks(ds_svg *svg, const ds_toy_fn *fn, const ds_plot_series *s,
                              const drawn_series *d, int n) {
  drawn_marks got = {0, 0, 0};
  marker_layer L = {svg, 0, {{0}}};
  ds_svg_group(svg, "markers");
  if (fn->dim > 1)
    place(&L, fn->key[0], fn->key[1], fn->key_is_min ? DS_MARK_STAR : DS_MARK_CROSS, fn->key_is_min ? 16 : 11,
          "#222", fn->key_is_min ? "#FFD23F" : NULL);
  for (int k = 0; k < n; k++) { /* one start for series that share it, dark when shared */
    if (d[k].n == 0) continue;
    int shared = 0, first = 1;
    for (int j = 0; j < n; j++) {
      if (j == k || d[j].n == 0) continue;
      double qk[2], qj[2];
      edge_px(svg, d[k].xy, qk);
      edge_px(svg, d[j].xy, qj);
      if (hypot(qk[0] - qj[0], qk[1] - qj[1]) <= 1.0) {
        shared = 1;
        first &= j > k;
      }
    }
    if (first) place(&L, d[k].xy[0], d[k].xy[1], DS_MARK_CIRCLE, 12, shared ? "#333" : d[k].color, "white");
  }
  for (int k = 0; k < n; k++) {
    if (d[k].n == 0) continue;
    long e = d[k].n - 1;
    int stopped = s[k].tr->stopped;
    int drawn = place(&L, d[k].xy[2 * e], d[k].xy[2 * e + 1], stopped ? DS_MARK_CROSS : DS_MARK_SQUARE, 10,
                      d[k].color, NULL);
    if (stopped) got.cross |= drawn;
    else got.end |= drawn;
  }
  if (n == 1 && fn->dim == 1) label_iterates(svg, &d[0]);
  ds_svg_group_end(svg);
  ds_svg_group(svg, "exits");
  for (int k = 0; k < n; k++)
    if (d[k].same_as < 0) got.exits |= ds_svg_exit_marks(svg, d[k].xy, (size_t)d[k].n, d[k].color) > 0;
  ds_svg_group_end(svg);
  return got;
}

static void legend_add(ds_svg_legend_item *items, int *n, int max, const char *label, const char *color,
                       int line, ds_svg_marker m, const char *fill, const char *dash) {
  if (*n >= max) return;
  ds_svg_legend_item it = {label, color, line, m, fill, dash};
  items[(*n)++] = it;
}

/* The legend: each series, a note under it when it repeats an earlier
 * path or diverged, then the markers that were drawn. Laid out in the box. */
static void draw_legend(ds_svg *svg, const ds_toy_fn *fn, const ds_plot_series *s, const drawn_series *d,
                        int n, drawn_marks got, double y1) {
  enum { MAX_ITEMS = 64 };
  ds_svg_legend_item items[MAX_ITEMS];
  char(*notes)[2][160] = ds_xmalloc(sizeof *notes * (size_t)(n > 0 ? n : 1), "legend notes");
  int ni = 0;
  for (int k = 0; k < n; k++) {
    const ds_trajectory *tr = s[k].tr;
    legend_add(items, &ni, MAX_ITEMS - 6, s[k].label, d[k].color, 1, DS_MARK_DOT, NULL,
               d[k].same_as >= 0 ? d[k].dash : NULL);
    if (d[k].same_as >= 0) {
      snprintf(notes[k][0], sizeof notes[k][0], "same path as %s", s[d[k].same_as].label);
      legend_add(items, &ni, MAX_ITEMS - 6, notes[k][0], d[k].color, 0, DS_MARK_NONE, NULL, NULL);
    }
    if (tr->stopped) {
      if (tr->stopped_at == 0) snprintf(notes[k][1], sizeof notes[k][1], "f(x₀) overflows float");
      else snprintf(notes[k][1], sizeof notes[k][1], "diverged: stopped at update %ld", tr->stopped_at);
      legend_add(items, &ni, MAX_ITEMS - 6, notes[k][1], d[k].color, 0, DS_MARK_NONE, NULL, NULL);
    }
  }
  legend_add(items, &ni, MAX_ITEMS, "start", "#333", 0, DS_MARK_CIRCLE, "white", NULL);
  if (got.end) legend_add(items, &ni, MAX_ITEMS, "end", "#333", 0, DS_MARK_SQUARE, NULL, NULL);
  if (got.cross) legend_add(items, &ni, MAX_ITEMS, "last point before overflow", "#333", 0, DS_MARK_CROSS, NULL, NULL);
  if (got.exits) legend_add(items, &ni, MAX_ITEMS, "path leaves the frame", "#333", 0, DS_MARK_ARROW, NULL, NULL);
  if (fn->dim > 1)
    legend_add(items, &ni, MAX_ITEMS, fn->key_is_min ? "minimum" : "saddle point", "#222", 0,
               fn->key_is_min ? DS_MARK_STAR : DS_MARK_CROSS, fn->key_is_min ? "#FFD23F" : NULL, NULL);
  ds_svg_legend_box(svg, items, ni, svg->right + 18, svg->top + 6, svg->width - 6, y1);
  free(notes);
}

/* Trajectories, their markers and the legend (shared by 1-D and 2-D); the
 * legend ends at y1 (pixels). In 1-D a series' points are (x_t, f(x_t)). */
static void draw_series(ds_svg *svg, const ds_toy_fn *fn, const ds_plot_series *s, int n, double y1) {
  drawn_series *d = ds_xcalloc((size_t)(n > 0 ? n : 1), sizeof *d, "plot series");
  for (int k = 0; k < n; k++) {
    const ds_trajectory *tr = s[k].tr;
    d[k].n = tr->n;
    d[k].color = palette[k % PALETTE_N];
    d[k].xy = ds_xmalloc(2 * (size_t)(tr->n ? tr->n : 1) * sizeof(double), "plot points");
    for (long t = 0; t < tr->n; t++) {
      d[k].xy[2 * t] = tr->x[t * tr->dim];
      d[k].xy[2 * t + 1] = tr->dim > 1 ? tr->x[t * tr->dim + 1] : tr->f[t];
    }
  }
  find_same_paths(svg, d, n);
  draw_paths(svg, d, n);
  drawn_marks got = draw_marks(svg, fn, s, d, n);
  draw_legend(svg, fn, s, d, n, got, y1);
  for (int k = 0; k < n; k++) free(d[k].xy);
  free(d);
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

/* Two significant digits: "f = 0.34", "f = 3100" (plain digits where %g
 * would write 3.1e+03 and they stay short). */
static void level_text(char *buf, size_t len, double v) {
  if (fabs(v) >= 100 && fabs(v) < 1e6) {
    double unit = pow(10.0, floor(log10(fabs(v))) - 1);
    snprintf(buf, len, "f = %.0f", round(v / unit) * unit);
  } else {
    snprintf(buf, len, "f = %.2g", v);
  }
}

int ds_playground_svg(FILE *f, const ds_toy_fn *fn, const ds_plot_series *series, int n,
                      const char *title, const char *subtitle) {
  ds_svg svg;
  double half = view_half(fn, series, n), legend_end;
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
    legend_end = svg.height - 6;
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
    /* what the line colours mean, at the foot of the legend's column */
    double kx = svg.right + 18, kw = fmin(200.0, svg.width - 12 - kx);
    char lo[48], hi[48];
    level_text(lo, sizeof lo, lv[0]);
    level_text(hi, sizeof hi, lv[nl - 1]);
    ds_svg_colour_key(&svg, kx, svg.bottom - DS_SVG_KEY_HEIGHT, kw, "contour lines of f, low → high", cp, nl,
                      lo, fn->levels == DS_LEVELS_SIGNED ? "0" : NULL, hi);
    legend_end = svg.bottom - DS_SVG_KEY_HEIGHT - 12;
  }
  draw_series(&svg, fn, series, n, legend_end);
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
