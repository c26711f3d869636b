/* Parameter initialisation against closed forms: every --init on a 784x1000
 * and a 1000x500 layer, the sample mean and standard deviation of each
 * weight matrix against the distribution's (He, Xavier, PyTorch's uniform,
 * and the truncated normal of TensorFlow/DeepOBS, whose standard deviation
 * is std * sqrt(1 - 2*2*phi(2) / (Phi(2) - Phi(-2))) = 0.87962 std), the
 * bounds, the biases, and that the init seed alone decides the values. */
#define _GNU_SOURCE /* M_PI */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "descent/model.h"

static void stats(const float *w, size_t n, double *mean, double *sd, double *maxabs) {
  double s = 0, ss = 0, m = 0;
  for (size_t i = 0; i < n; i++) {
    s += w[i];
    ss += (double)w[i] * w[i];
    if (fabs(w[i]) > m) m = fabs(w[i]);
  }
  *mean = s / (double)n;
  *sd = sqrt(ss / (double)n - *mean * *mean);
  *maxabs = m;
}

int main(void) {
  const double phi2 = exp(-2.0) / sqrt(2.0 * M_PI), mass = erf(2.0 / sqrt(2.0));
  const double trunc_factor = sqrt(1.0 - 4.0 * phi2 / mass);
  CHECK(fabs(trunc_factor - 0.87962) < 1e-4, "truncated-normal factor %.5f", trunc_factor);
  struct {
    ds_init init;
    ds_activation act;
    const char *name;
  } cases[] = {
    {DS_INIT_HE_NORMAL, DS_ACT_RELU, "he-normal"},       {DS_INIT_HE_UNIFORM, DS_ACT_RELU, "he-uniform"},
    {DS_INIT_XAVIER_NORMAL, DS_ACT_TANH, "xavier-normal"}, {DS_INIT_XAVIER_UNIFORM, DS_ACT_TANH, "xavier-uniform"},
    {DS_INIT_PYTORCH, DS_ACT_RELU, "pytorch"},           {DS_INIT_TRUNC_NORMAL, DS_ACT_RELU, "trunc-normal:0.03"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    ds_mlp_spec spec;
    ds_mlp_spec_defaults(&spec);
    spec.n_hidden = 2, spec.hidden[0] = 1000, spec.hidden[1] = 500;
    spec.activation = cases[c].act;
    spec.init = cases[c].init;
    spec.init_std = cases[c].init == DS_INIT_TRUNC_NORMAL ? 0.03f : 0.0f;
    ds_mlp m;
    char err[256];
    CHECK(ds_mlp_layout(&m, &spec, 784, 10, err, sizeof err) == 0, "%s: layout", cases[c].name);
    float *p = calloc(m.n_params, sizeof(float)), *st = calloc(m.n_stats + 1, sizeof(float));
    float *q = calloc(m.n_params, sizeof(float));
    ds_mlp_init_params(&m, p, st, 7);
    for (int l = 0; l < 2; l++) {
      const ds_layer *L = &m.layers[l];
      double fi = L->in, fo = L->out, sd_want, bound = INFINITY;
      switch (cases[c].init) {
        case DS_INIT_HE_NORMAL: sd_want = sqrt(2.0 / fi); break;
        case DS_INIT_HE_UNIFORM: bound = sqrt(6.0 / fi), sd_want = bound / sqrt(3.0); break;
        case DS_INIT_XAVIER_NORMAL: sd_want = sqrt(2.0 / (fi + fo)); break;
        case DS_INIT_XAVIER_UNIFORM: bound = sqrt(6.0 / (fi + fo)), sd_want = bound / sqrt(3.0); break;
        case DS_INIT_PYTORCH: bound = 1.0 / sqrt(fi), sd_want = bound / sqrt(3.0); break;
        default: bound = 2.0 * 0.03, sd_want = 0.03 * trunc_factor; break;
      }
      double mean, sd, maxabs;
      size_t n = L->weight.size;
      stats(p + L->weight.offset, n, &mean, &sd, &maxabs);
      /* n >= 500,000 draws: the sample sd is within 0.5% (about 5 standard errors) */
      CHECK(fabs(sd / sd_want - 1.0) < 0.005, "%s layer %d: sd %.6g, want %.6g", cases[c].name, l, sd, sd_want);
      CHECK(fabs(mean) < 5.0 * sd_want / sqrt((double)n), "%s layer %d: mean %.3g", cases[c].name, l, mean);
      CHECK(maxabs <= bound * (1.0 + 1e-6), "%s layer %d: |w| <= %.4g, got %.4g", cases[c].name, l, bound, maxabs);
      if (isfinite(bound) && cases[c].init != DS_INIT_TRUNC_NORMAL)
        CHECK(maxabs > 0.99 * bound, "%s layer %d: the uniform reaches its bound", cases[c].name, l);
      if (cases[c].init == DS_INIT_TRUNC_NORMAL) /* redrawn, not clipped: nothing piles up at the edge */
        CHECK(maxabs < bound && maxabs > 0.99 * bound, "%s layer %d: max |w| %.5g inside (0.99, 1) x %.3g",
              cases[c].name, l, maxabs, bound);
      double bmean, bsd, bmax;
      stats(p + L->bias.offset, L->bias.size, &bmean, &bsd, &bmax);
      if (cases[c].init == DS_INIT_PYTORCH)
        CHECK(bmax <= 1.0 / sqrt(fi) && bsd > 0.5 / sqrt(3.0 * fi), "%s layer %d: biases U(+-1/sqrt(fan_in))", cases[c].name, l);
      else
        CHECK(bmax == 0.0, "%s layer %d: zero biases", cases[c].name, l);
    }
    ds_mlp_init_params(&m, q, st, 7);
    CHECK(memcmp(p, q, m.n_params * sizeof(float)) == 0, "%s: the same seed, the same values", cases[c].name);
    ds_mlp_init_params(&m, q, st, 8);
    CHECK(memcmp(p, q, m.n_params * sizeof(float)) != 0, "%s: another seed, other values", cases[c].name);
    free(p), free(q), free(st);
  }
  return check_finish("test_init");
}
