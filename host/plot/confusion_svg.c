/* The confusion matrix picture (plot/confusion_svg.h). */
#include "plot/confusion_svg.h"

#include <stdio.h>

#include "plot/svg_plot.h"

#define FONT "font-family=\"DejaVu Sans, Arial, sans-serif\""
#define STEPS 9

/* white -> dark blue, by the share t in [0, 1] */
static void shade(char *buf, size_t len, double t) {
  static const int lo[3] = {255, 255, 255}, hi[3] = {8, 48, 107};
  int c[3];
  for (int k = 0; k < 3; k++) c[k] = (int)(lo[k] + (hi[k] - lo[k]) * t + 0.5);
  snprintf(buf, len, "#%02x%02x%02x", c[0], c[1], c[2]);
}

int ds_confusion_svg(FILE *f, const void *ctx) {
  const ds_confusion_picture *p = ctx;
  int n = p->n_classes;
  double cell = n <= 10 ? 48.0 : n <= 30 ? 28.0 : 14.0;
  double font = cell >= 48.0 ? 12.0 : cell >= 28.0 ? 9.0 : 0.0; /* no counts in tiny cells */
  double left = 90.0, top = 110.0, grid = cell * n;
  double width = left + grid + 40.0, height = top + grid + 30.0 + DS_SVG_KEY_HEIGHT + 20.0;
  if (width < 420.0) width = 420.0;
  ds_svg s;
  ds_svg_begin(&s, f, width, height, left, width - left - grid, top, height - top - grid, 0, n, 0, n);
  ds_svg_title(&s, p->title, p->subtitle);
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\" " FONT ">predicted class</text>\n",
          left + grid / 2, top - 26);
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\" transform=\"rotate(-90 %.1f %.1f)\" "
          FONT ">true class</text>\n", left - 48, top + grid / 2, left - 48, top + grid / 2);
  ds_svg_group(&s, "cells");
  for (int i = 0; i < n; i++) {
    long row = 0;
    for (int j = 0; j < n; j++) row += p->counts[(size_t)i * n + j];
    for (int j = 0; j < n; j++) {
      long c = p->counts[(size_t)i * n + j];
      double share = row > 0 ? (double)c / (double)row : 0.0;
      char col[16];
      shade(col, sizeof col, share);
      double x = left + j * cell, y = top + i * cell;
      fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" stroke=\"#ddd\" stroke-width=\"0.5\"/>\n",
              x, y, cell, cell, col);
      if (font > 0)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" text-anchor=\"middle\" fill=\"%s\" " FONT ">%ld</text>\n",
                x + cell / 2, y + cell / 2 + font * 0.35, font, share > 0.5 ? "white" : "#222", c);
    }
  }
  ds_svg_group_end(&s);
  ds_svg_group(&s, "labels");
  double lf = cell >= 28.0 ? 12.0 : 8.0;
  for (int k = 0; k < n; k++) {
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" text-anchor=\"middle\" " FONT ">%d</text>\n",
            left + (k + 0.5) * cell, top - 8, lf, k);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" text-anchor=\"end\" " FONT ">%d</text>\n", left - 8,
            top + (k + 0.5) * cell + lf * 0.35, lf, k);
  }
  ds_svg_group_end(&s);
  fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n", left, top,
          grid, grid);
  char colors[STEPS][16];
  const char *cp[STEPS];
  for (int k = 0; k < STEPS; k++) {
    shade(colors[k], sizeof colors[k], (k + 0.5) / STEPS);
    cp[k] = colors[k];
  }
  double kw = grid < 300.0 ? 300.0 : grid;
  ds_svg_colour_key(&s, left, top + grid + 20.0, kw, "share of the true class's samples (the diagonal: its accuracy)",
                    cp, STEPS, "0", "0.5", "1");
  return ds_svg_end(&s);
}
