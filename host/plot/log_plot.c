/* A training log (descent train --log) drawn as four panels of one picture:
 * loss and accuracy (train, validation, test) against the update count, and
 * the per-layer gradient norms and update ratios on log scales (log_plot.h).
 * PNG goes through rsvg-convert, as the playground's pictures do. */
#include "plot/log_plot.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descent/common.h"
#include "plot/picture.h"
#include "plot/svg_plot.h"

#define MAX_COLS DS_LOG_MAX_COLS
#define MAX_SERIES 24  /* per panel */
#define FONT_ATTR "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\""

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                      "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};
#define PALETTE_N (sizeof palette / sizeof palette[0])
#define C_TRAIN "#1f77b4"
#define C_VAL "#ff7f0e"
#define C_TEST "#2ca02c"

/* ---- the table: named numeric columns, NaN where a value is missing -------- */


static int col_index(const ds_log_table *t, const char *name) {
  for (int c = 0; c < t->ncol; c++)
    if (strcmp(t->name[c], name) == 0) return c;
  return -1;
}

static int add_col(ds_log_table *t, const char *name, size_t len) {
  for (int c = 0; c < t->ncol; c++)
    if (strlen(t->name[c]) == len && strncmp(t->name[c], name, len) == 0) return c;
  if (t->ncol >= MAX_COLS) return -1;
  if (t->nrow > 0) return -1; /* JSON lines: a key that appears late is ignored */
  char *s = ds_xmalloc(len + 1, "a column name");
  memcpy(s, name, len);
  s[len] = '\0';
  t->name[t->ncol] = s;
  return t->ncol++;
}

static double *new_row(ds_log_table *t) {
  if (t->nrow == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 64;
    double *nv = realloc(t->v, (size_t)t->cap * MAX_COLS * sizeof(double));
    if (!nv) ds_fatal(DS_EXIT_RUNTIME, "out of host memory reading a log");
    t->v = nv;
  }
  double *row = t->v + (size_t)t->nrow * MAX_COLS;
  for (int c = 0; c < MAX_COLS; c++) row[c] = NAN;
  t->nrow++;
  return row;
}

static double cell(const ds_log_table *t, int r, int c) { return c < 0 ? NAN : t->v[(size_t)r * MAX_COLS + c]; }

/* A number ("nan", "inf" included; JSON's null and an empty cell are a
 * missing value, NaN) into *v: 0, or -1 for anything else. */
static int parse_number(const char *s, size_t len, double *v) {
  char buf[64];
  while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\r')) len--;
  if (len == 0 || (len == 4 && memcmp(s, "null", 4) == 0)) {
    *v = NAN;
    return 0;
  }
  if (len >= sizeof buf) return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  char *end;
  *v = strtod(buf, &end);
  return end == buf + len && !isspace((unsigned char)buf[0]) ? 0 : -1;
}

/* The column that holds text, not numbers. */
static int is_text_column(const char *name, size_t len) { return len == 8 && memcmp(name, "warnings", 8) == 0; }

/* CSV cells: split at commas outside double quotes. */
static int csv_cells(const char *line, const char **start, size_t *len, int max) {
  int n = 0;
  const char *p = line;
  while (n < max) {
    int quoted = *p == '"';
    const char *s = p;
    if (quoted) {
      p++;
      while (*p && !(*p == '"' && p[1] != '"')) p += *p == '"' ? 2 : 1;
      if (*p == '"') p++;
    }
    while (*p && *p != ',' && *p != '\n' && *p != '\r') p++;
    start[n] = s;
    len[n] = (size_t)(p - s);
    n++;
    if (*p != ',') break;
    p++;
  }
  return n;
}

/* Skip one JSON value; returns the position after it, or NULL when malformed. */
static const char *json_skip(const char *p) {
  while (*p == ' ') p++;
  if (*p == '"') {
    for (p++; *p && *p != '"'; p++)
      if (*p == '\\' && p[1]) p++;
    return *p == '"' ? p + 1 : NULL;
  }
  if (*p == '[' || *p == '{') {
    char open = *p, close = open == '[' ? ']' : '}';
    int depth = 0;
    for (; *p; p++) {
      if (*p == '"') {
        p = json_skip(p);
        if (!p) return NULL;
        p--;
      } else if (*p == open) depth++;
      else if (*p == close && --depth == 0) return p + 1;
    }
    return NULL;
  }
  while (*p && *p != ',' && *p != '}' && *p != ']') p++;
  return p;
}

/* One flat JSON object per line: numbers (null for a missing one), and text
 * only in "warnings". 0, or -1 with what is wrong in why. */
static int json_row(ds_log_table *t, const char *line, char *why, size_t whylen) {
  const char *p = line;
  while (*p == ' ') p++;
  if (*p != '{') return -1;
  p++;
  double vals[MAX_COLS];
  int idx[MAX_COLS], n = 0;
  while (*p && *p != '}') {
    while (*p == ' ' || *p == ',') p++;
    if (*p != '"') return snprintf(why, whylen, "not a JSON object"), -1;
    const char *k = ++p;
    while (*p && *p != '"') p++;
    if (*p != '"') return -1;
    size_t klen = (size_t)(p - k);
    p++;
    while (*p == ' ') p++;
    if (*p != ':') return -1;
    p++;
    while (*p == ' ') p++;
    const char *v = p;
    p = json_skip(p);
    if (!p) return -1;
    double x = NAN;
    if (!is_text_column(k, klen) && parse_number(v, (size_t)(p - v), &x) != 0) {
      snprintf(why, whylen, "\"%.*s\" holds %.*s, not a number", (int)(klen < 40 ? klen : 40), k,
               (int)((size_t)(p - v) < 40 ? (size_t)(p - v) : 40), v);
      return -1;
    }
    int c = add_col(t, k, klen);
    if (c >= 0 && n < MAX_COLS) {
      idx[n] = c;
      vals[n++] = x;
    }
    while (*p == ' ') p++;
  }
  if (*p != '}') return -1;
  double *row = new_row(t);
  for (int i = 0; i < n; i++) row[idx[i]] = vals[i];
  return 0;
}

void ds_log_table_read(const char *path, ds_log_table *t) {
  memset(t, 0, sizeof *t);
  FILE *f = fopen(path, "r");
  if (!f) ds_fatal(DS_EXIT_USAGE, "plot: %s: cannot open the log: %s", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  long lineno = 0;
  int jsonl = -1;
  while ((got = getline(&line, &cap, f)) > 0) {
    lineno++;
    if (got <= 1 && (line[0] == '\n' || line[0] == '\r')) continue;
    if (jsonl < 0) jsonl = line[0] == '{';
    char why[160] = "not a JSON object";
    if (jsonl) {
      if (json_row(t, line, why, sizeof why) != 0) ds_fatal(DS_EXIT_USAGE, "plot: %s:%ld: %s", path, lineno, why);
      continue;
    }
    const char *start[MAX_COLS];
    size_t len[MAX_COLS];
    int n = csv_cells(line, start, len, MAX_COLS);
    if (t->ncol == 0) {
      for (int i = 0; i < n; i++) add_col(t, start[i], len[i]);
      continue;
    }
    if (n != t->ncol)
      ds_fatal(DS_EXIT_USAGE, "plot: %s:%ld: %d cells where the header has %d (a broken row)", path, lineno, n, t->ncol);
    double *row = new_row(t);
    for (int i = 0; i < n; i++) {
      if (is_text_column(t->name[i], strlen(t->name[i]))) continue;
      if (parse_number(start[i], len[i], &row[i]) != 0)
        ds_fatal(DS_EXIT_USAGE, "plot: %s:%ld: column '%s' holds '%.*s', not a number", path, lineno, t->name[i],
                 (int)(len[i] < 40 ? len[i] : 40), start[i]);
    }
  }
  free(line);
  fclose(f);
  if (col_index(t, "step") < 0 || col_index(t, "train_loss") < 0)
    ds_fatal(DS_EXIT_USAGE, "plot: %s: not a descent training log (no 'step' and 'train_loss' columns; "
             "write one with descent train --log FILE.csv)", path);
  if (t->nrow == 0) ds_fatal(DS_EXIT_USAGE, "plot: %s: the log has no rows", path);
}

void ds_log_table_free(ds_log_table *t) {
  for (int c = 0; c < t->ncol; c++) free(t->name[c]);
  free(t->v);
}

/* ---- drawing ------------------------------------------------------------------ */

typedef struct {
  const char *label;
  int col;
  const char *color;
  const char *dash;
} series;

static void panel_title(ds_svg *s, const char *title) {
  fprintf(s->f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" font-weight=\"bold\" " FONT_ATTR ">", s->left,
          s->top - 10);
  ds_svg_escape(s->f, title);
  fputs("</text>\n", s->f);
}

/* Axes of a panel whose y values are log10 of the data: decade ticks labelled 1e-3. */
static void axes_log(ds_svg *s, const char *xlabel, const char *ylabel) {
  FILE *f = s->f;
  double xs = ds_svg_tick_step(s->xmin, s->xmax, s->right - s->left, 6);
  fputs("<g stroke=\"#ececec\" stroke-width=\"1\">\n", f);
  for (double k = ceil(s->xmin / xs - 1e-9); k * xs <= s->xmax + 1e-9 * xs; k++)
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", ds_svg_px(s, k * xs), s->top,
            ds_svg_px(s, k * xs), s->bottom);
  for (double e = ceil(s->ymin - 1e-9); e <= s->ymax + 1e-9; e++)
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", s->left, ds_svg_py(s, e), s->right,
            ds_svg_py(s, e));
  fputs("</g>\n", f);
  fprintf(f, "<g font-size=\"12\" fill=\"#333\" " FONT_ATTR ">\n");
  for (double k = ceil(s->xmin / xs - 1e-9); k * xs <= s->xmax + 1e-9 * xs; k++) {
    double x = ds_svg_px(s, k * xs);
    char lab[64];
    ds_svg_tick_label(lab, sizeof lab, k * xs, xs, s->xmin, s->xmax);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>", x, s->bottom, x,
            s->bottom + 5);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x, s->bottom + 19, lab);
  }
  int every = s->ymax - s->ymin > 8 ? 2 : 1; /* label every other decade when crowded */
  for (double e = ceil(s->ymin - 1e-9); e <= s->ymax + 1e-9; e++) {
    double y = ds_svg_py(s, e);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>", s->left - 5, y, s->left, y);
    if ((long)e % every == 0) fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">1e%ld</text>\n", s->left - 8, y + 4, (long)e);
  }
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\">", (s->left + s->right) / 2,
          s->bottom + 40);
  ds_svg_escape(f, xlabel);
  fputs("</text>\n", f);
  double cy = (s->top + s->bottom) / 2, cx = s->left - 52;
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\" transform=\"rotate(-90 %.1f %.1f)\">",
          cx, cy, cx, cy);
  ds_svg_escape(f, ylabel);
  fputs("</text>\n</g>\n", f);
  fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\" "
             "stroke-width=\"1\"/>\n", s->left, s->top, s->right - s->left, s->bottom - s->top);
}

/* Draw the series against the step column (y through log10 when logy). */
static void draw_series(ds_svg *s, const ds_log_table *t, const series *ser, int n, int logy) {
  int cx = col_index(t, "step");
  double *xy = ds_xmalloc((size_t)t->nrow * 2 * sizeof(double), "a plotted series");
  for (int i = 0; i < n; i++) {
    for (int r = 0; r < t->nrow; r++) {
      double y = cell(t, r, ser[i].col);
      xy[2 * r] = cell(t, r, cx);
      xy[2 * r + 1] = logy ? (y > 0 ? log10(y) : NAN) : y;
    }
    ds_svg_polyline(s, xy, (size_t)t->nrow, ser[i].color, 2.0, ser[i].dash, 0.95);
    if (t->nrow <= 40)
      for (int r = 0; r < t->nrow; r++) ds_svg_marker_at(s, xy[2 * r], xy[2 * r + 1], DS_MARK_DOT, 5, ser[i].color, NULL);
  }
  free(xy);
}

#define PW 430.0   /* plot area of a panel */
#define PH 250.0
#define ML 80.0    /* margins around it inside its cell */
#define MR 150.0
#define MT 40.0
#define MB 60.0
#define TOP 58.0   /* the picture's title */

/* The panel's legend, in its cell's right margin beside the plot area: not
 * over the next panel (whose y axis title sits 28 px into that panel's
 * cell) nor the last x tick label, however many layers there are. */
static void legend(ds_svg *s, const series *ser, int n, const ds_svg_legend_item *extra, int n_extra) {
  ds_svg_legend_item items[MAX_SERIES + 2];
  int k = 0;
  for (int i = 0; i < n && k < MAX_SERIES + 2; i++)
    items[k++] = (ds_svg_legend_item){ser[i].label, ser[i].color, 1, DS_MARK_NONE, NULL, ser[i].dash};
  for (int i = 0; i < n_extra && k < MAX_SERIES + 2; i++) items[k++] = extra[i];
  ds_svg_legend_box(s, items, k, s->right + 14, s->top, fmin(s->right + MR + 12, s->width - 6), s->bottom + 4);
}

/* The range of the series' finite values (log10 of the positive ones when logy). */
static void value_range(const ds_log_table *t, const series *ser, int n, int logy, double *lo, double *hi) {
  *lo = INFINITY;
  *hi = -INFINITY;
  for (int i = 0; i < n; i++)
    for (int r = 0; r < t->nrow; r++) {
      double y = cell(t, r, ser[i].col);
      if (logy) y = y > 0 ? log10(y) : NAN;
      if (!isfinite(y)) continue;
      if (y < *lo) *lo = y;
      if (y > *hi) *hi = y;
    }
}

/* Series named "<prefix>fcN" in column order, labelled "fcN". */
static int layer_series(const ds_log_table *t, const char *prefix, series *out, int max) {
  int n = 0;
  size_t pl = strlen(prefix);
  for (int c = 0; c < t->ncol && n < max; c++)
    if (strncmp(t->name[c], prefix, pl) == 0 && t->name[c][pl]) {
      out[n] = (series){t->name[c] + pl, c, palette[n % PALETTE_N], NULL};
      n++;
    }
  return n;
}

static int write_svg(FILE *f, const ds_log_table *t, const char *title) {
  int cs = col_index(t, "step");
  double xmin = INFINITY, xmax = -INFINITY;
  for (int r = 0; r < t->nrow; r++) {
    double x = cell(t, r, cs);
    if (!isfinite(x)) continue;
    xmin = fmin(xmin, x);
    xmax = fmax(xmax, x);
  }
  if (!isfinite(xmin)) xmin = 0, xmax = 1;
  ds_svg_range_fix(&xmin, &xmax); /* one row: [0, 2 step], the point in the middle */
  if (xmin > 0 && xmin <= 0.2 * xmax) xmin = 0; /* start the axis at 0 when it costs little */
  double cw = ML + PW + MR, ch = MT + PH + MB;
  ds_svg s;
  ds_svg_begin(&s, f, 2 * cw, TOP + 2 * ch, ML, cw + MR, TOP + MT, ch + MB, xmin, xmax, 0, 1);
  char sub[160];
  if (t->nrow == 1) snprintf(sub, sizeof sub, "1 log point, update %.0f", cell(t, 0, cs));
  else snprintf(sub, sizeof sub, "%d log points, updates %.0f to %.0f", t->nrow, cell(t, 0, cs), cell(t, t->nrow - 1, cs));
  ds_svg_title(&s, title, sub);

  /* 1. loss */
  series loss[3];
  int nl = 0;
  const char *names[3][2] = {{"train_loss", "train"}, {"val_loss", "validation"}, {"test_loss", "test"}};
  const char *colors[3] = {C_TRAIN, C_VAL, C_TEST};
  for (int i = 0; i < 3; i++)
    if (col_index(t, names[i][0]) >= 0) loss[nl++] = (series){names[i][1], col_index(t, names[i][0]), colors[i], NULL};
  double lo, hi;
  value_range(t, loss, nl, 0, &lo, &hi);
  if (!isfinite(lo)) lo = 0, hi = 1;
  ds_svg_range_fix(&lo, &hi); /* one row or a constant loss: around its value */
  lo = lo >= 0 && lo < 0.5 * hi ? 0 : lo - 0.05 * (hi - lo);
  hi += 0.05 * (hi - lo);
  ds_svg_area(&s, ML, TOP + MT, PW, PH, xmin, xmax, lo, hi);
  panel_title(&s, "loss (cross-entropy)");
  ds_svg_axes(&s, "update", "loss");
  draw_series(&s, t, loss, nl, 0);
  ds_svg_legend_item best[1];
  int nbest = 0;
  int cv = col_index(t, "val_loss");
  if (cv >= 0) { /* the best validation loss: what --early-stop keeps */
    int rb = -1;
    for (int r = 0; r < t->nrow; r++)
      if (isfinite(cell(t, r, cv)) && (rb < 0 || cell(t, r, cv) < cell(t, rb, cv))) rb = r;
    if (rb >= 0) {
      ds_svg_marker_at(&s, cell(t, rb, cs), cell(t, rb, cv), DS_MARK_STAR, 16, "#b35900", "#ffd27f");
      best[nbest++] = (ds_svg_legend_item){"best val", "#b35900", 0, DS_MARK_STAR, "#ffd27f"};
    }
  }
  legend(&s, loss, nl, best, nbest);

  /* 2. accuracy */
  series acc[3];
  int na = 0;
  const char *anames[3][2] = {{"train_accuracy", "train"}, {"val_accuracy", "validation"}, {"test_accuracy", "test"}};
  for (int i = 0; i < 3; i++)
    if (col_index(t, anames[i][0]) >= 0) acc[na++] = (series){anames[i][1], col_index(t, anames[i][0]), colors[i], NULL};
  value_range(t, acc, na, 0, &lo, &hi);
  if (!isfinite(lo)) lo = 0, hi = 1;
  lo = floor(lo * 20 - 0.5) / 20;
  hi = fmin(1.0, ceil(hi * 20 + 0.5) / 20);
  if (lo < 0) lo = 0;
  ds_svg_area(&s, cw + ML, TOP + MT, PW, PH, xmin, xmax, lo, hi);
  panel_title(&s, "accuracy");
  ds_svg_axes(&s, "update", "accuracy");
  draw_series(&s, t, acc, na, 0);
  legend(&s, acc, na, NULL, 0);

  /* 3. gradient norms */
  series g[MAX_SERIES];
  int ng = layer_series(t, "grad_norm_", g, MAX_SERIES - 1);
  if (col_index(t, "grad_norm") >= 0) g[ng++] = (series){"total", col_index(t, "grad_norm"), "#222222", NULL};
  value_range(t, g, ng, 1, &lo, &hi);
  if (!isfinite(lo)) lo = -3, hi = 1;
  ds_svg_area(&s, ML, TOP + ch + MT, PW, PH, xmin, xmax, floor(lo), ceil(hi) > floor(lo) ? ceil(hi) : floor(lo) + 1);
  panel_title(&s, "gradient norm per layer");
  axes_log(&s, "update", "||gradient||");
  draw_series(&s, t, g, ng, 1);
  legend(&s, g, ng, NULL, 0);

  /* 4. update ratios, over the usual 1e-3..1e-1 band */
  series u[MAX_SERIES];
  int nu = layer_series(t, "update_ratio_", u, MAX_SERIES);
  value_range(t, u, nu, 1, &lo, &hi);
  if (!isfinite(lo)) lo = -4, hi = 0;
  lo = fmin(floor(lo), -3.5);
  hi = fmax(ceil(hi), -0.5);
  ds_svg_area(&s, cw + ML, TOP + ch + MT, PW, PH, xmin, xmax, floor(lo), ceil(hi));
  panel_title(&s, "update ratio ||Δw|| / ||w|| per layer");
  fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#e8f3e8\"/>\n", s.left,
          ds_svg_py(&s, -1), s.right - s.left, ds_svg_py(&s, -3) - ds_svg_py(&s, -1));
  axes_log(&s, "update", "update ratio");
  draw_series(&s, t, u, nu, 1);
  ds_svg_legend_item band[1] = {{"1e-3..1e-1", "#9fcf9f", 0, DS_MARK_SQUARE, "#e8f3e8"}};
  legend(&s, u, nu, band, 1);
  return ds_svg_end(&s);
}

/* ---- files (picture.c) --------------------------------------------------------- */

typedef struct {
  const ds_log_table *t;
  const char *title;
} log_picture;

static int draw_log(FILE *f, const void *ctx) {
  const log_picture *p = ctx;
  return write_svg(f, p->t, p->title);
}

int ds_log_plot_write(const char *path, const ds_log_table *t, const char *title, char *err, size_t errlen) {
  log_picture pic = {t, title};
  return ds_picture_write(path, draw_log, &pic, err, errlen);
}
