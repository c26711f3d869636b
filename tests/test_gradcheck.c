/* Finite-difference gradient check of a whole small MLP on the CPU backend.
 *
 * A tiny dataset (9 images of 6 bytes, 4 classes) is trained for one
 * micro-batch exactly as host/train/trainer.c ds_trainer_update does it: gather,
 * ds_trainer_forward (training), softmax_xent with grad_scale 1/B,
 * ds_trainer_backward into zeroed t.grads. Every entry of t.grads is then
 * compared with a central difference of the mean cross-entropy computed by a
 * double-precision forward pass written here from the documented model
 * (descent/model.h):
 *   [input dropout] -> { Linear -> [BN, training batch stats, biased var]
 *                        -> act -> [dropout] } x hidden -> Linear -> mean CE
 * with the dropout masks rebuilt from ds_philox_word(seed, DS_STREAM_DROPOUT
 * + layer, micro_step, element) (the mask is fixed for one micro_step, so the
 * loss is a smooth function of the parameters away from ReLU kinks).
 * Parameter offsets are computed here from the documented flat layout and
 * checked against the trainer's views.
 *
 * Tolerances: the central difference in double with h = 1e-5 is accurate to
 * ~1e-10 (truncation h^2 f''' / 6, rounding 1e-16 / h); the analytic
 * gradient is computed in float through ~4 layers, so it carries ~1e-6
 * relative error of the magnitudes summed into it. We accept
 * |g - fd| <= 5e-6 + 1e-4 |fd| (observed: <= 4e-7), far below a wrong formula (errors of the size
 * of the gradient itself, ~1e-2..1e-1 here). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "descent/backend.h"
#include "descent/philox.h"
#include "descent/train.h"

enum { N_IMG = 9, D_IN = 6, N_CLS = 4, B = 9, H0 = 7, H1 = 5, NL = 3 };
static const int widths[NL + 1] = {D_IN, H0, H1, N_CLS};
static const int32_t batch_idx[B] = {3, 0, 8, 1, 1, 5, 7, 2, 6};  /* a repeat, not sorted */

typedef struct {
  const char *name;
  ds_activation act;
  int batchnorm;
  float dropout, input_dropout;
  ds_dropout_form form;
  uint64_t seed;
} gc_case;

/* Offsets from the documented layout:
 * [ W_0 | W_1 | W_2 | b_0 | b_1 | b_2 | gamma_0 | beta_0 | gamma_1 | beta_1 ] */
typedef struct { size_t W[NL], b[NL], gamma[NL], beta[NL], n; } layout;

static layout make_layout(int bn) {
  layout L;
  memset(&L, 0, sizeof L);
  size_t off = 0;
  for (int l = 0; l < NL; l++) { L.W[l] = off; off += (size_t)widths[l + 1] * widths[l]; }
  for (int l = 0; l < NL; l++) { L.b[l] = off; off += (size_t)widths[l + 1]; }
  if (bn)
    for (int l = 0; l < NL - 1; l++) {
      L.gamma[l] = off; off += (size_t)widths[l + 1];
      L.beta[l] = off; off += (size_t)widths[l + 1];
    }
  L.n = off;
  return L;
}

typedef struct {
  const gc_case *c;
  layout L;
  double x[B][D_IN];      /* gathered input, before input dropout */
  int y[B];
  uint64_t micro_step;
  float slope, eps;
} model_ctx;

static double act_d(ds_activation a, double v, double slope) {
  switch (a) {
    case DS_ACT_RELU: return v > 0 ? v : 0;
    case DS_ACT_LEAKY_RELU: return v > 0 ? v : slope * v;
    case DS_ACT_TANH: return tanh(v);
    default: return 1.0 / (1.0 + exp(-v));
  }
}

/* Dropout of element e of stream `stream` in training: 0 or the train scale. */
static double drop_factor(const model_ctx *m, float p, uint32_t stream, size_t e) {
  int keep = ds_philox_word(m->c->seed, stream, m->micro_step, e) < ds_dropout_threshold(p);
  double scale = m->c->form == DS_DROPOUT_INVERTED ? 1.0 / (1.0 - (double)p) : 1.0;
  return keep ? scale : 0.0;
}

/* Mean cross-entropy of the batch in double. Optionally records the
 * pre-activations of the hidden layers (pre[l][b][j]) and the logits. */
static double forward_d(const model_ctx *m, const double *th, double pre[NL - 1][B][H0],
                        double logits[B][N_CLS]) {
  const gc_case *c = m->c;
  double in[B][H0 > D_IN ? H0 : D_IN], out[B][H0 > D_IN ? H0 : D_IN];
  for (int b = 0; b < B; b++)
    for (int i = 0; i < D_IN; i++)
      in[b][i] = m->x[b][i] *
                 (c->input_dropout > 0 ? drop_factor(m, c->input_dropout, DS_STREAM_DROPOUT + 0,
                                                     (size_t)b * D_IN + i)
                                       : 1.0);
  double loss = 0;
  for (int l = 0; l < NL; l++) {
    int ni = widths[l], no = widths[l + 1];
    for (int b = 0; b < B; b++)
      for (int o = 0; o < no; o++) {
        double s = th[m->L.b[l] + o];
        for (int i = 0; i < ni; i++) s += in[b][i] * th[m->L.W[l] + (size_t)o * ni + i];
        out[b][o] = s;
      }
    if (l == NL - 1) {
      for (int b = 0; b < B; b++) {
        double mx = out[b][0], s = 0;
        for (int o = 1; o < no; o++) mx = out[b][o] > mx ? out[b][o] : mx;
        for (int o = 0; o < no; o++) s += exp(out[b][o] - mx);
        loss += mx + log(s) - out[b][m->y[b]];
        if (logits) for (int o = 0; o < no; o++) logits[b][o] = out[b][o];
      }
      break;
    }
    if (c->batchnorm)
      for (int o = 0; o < no; o++) {
        double mu = 0, var = 0;
        for (int b = 0; b < B; b++) mu += out[b][o];
        mu /= B;
        for (int b = 0; b < B; b++) var += (out[b][o] - mu) * (out[b][o] - mu);
        var /= B;  /* biased variance normalises, as torch.nn.BatchNorm1d */
        double rs = 1.0 / sqrt(var + m->eps);
        for (int b = 0; b < B; b++)
          out[b][o] = th[m->L.gamma[l] + o] * (out[b][o] - mu) * rs + th[m->L.beta[l] + o];
      }
    for (int b = 0; b < B; b++)
      for (int o = 0; o < no; o++) {
        if (pre) pre[l][b][o] = out[b][o];
        double a = act_d(c->act, out[b][o], m->slope);
        if (c->dropout > 0)
          a *= drop_factor(m, c->dropout, DS_STREAM_DROPOUT + (uint32_t)(l + 1), (size_t)b * no + o);
        in[b][o] = a;
      }
  }
  return loss / B;
}

static int kinked(ds_activation a) { return a == DS_ACT_RELU || a == DS_ACT_LEAKY_RELU; }

/* Whether any hidden pre-activation changed sign between two passes. */
static int signs_differ(double p[NL - 1][B][H0], double q[NL - 1][B][H0]) {
  for (int l = 0; l < NL - 1; l++)
    for (int b = 0; b < B; b++)
      for (int o = 0; o < widths[l + 1]; o++)
        if ((p[l][b][o] > 0) != (q[l][b][o] > 0)) return 1;
  return 0;
}

static void run_case(const gc_case *c, const ds_dataset *ds) {
  const ds_backend *be = ds_backend_cpu();
  ds_train_config cfg;
  ds_train_config_defaults(&cfg);
  cfg.model.n_hidden = NL - 1;
  cfg.model.hidden[0] = H0;
  cfg.model.hidden[1] = H1;
  cfg.model.activation = c->act;
  cfg.model.leaky_slope = 0.1f;  /* larger than the default so a slope bug is visible */
  cfg.model.batchnorm = c->batchnorm;
  cfg.model.dropout = c->dropout;
  cfg.model.input_dropout = c->input_dropout;
  cfg.model.dropout_form = c->form;
  cfg.batch_size = B;
  cfg.seed = c->seed;
  cfg.quiet = 1;
  ds_trainer t;
  ds_trainer_init(&t, be, &cfg, ds, ds);

  model_ctx *m = calloc(1, sizeof *m);
  m->c = c;
  m->L = make_layout(c->batchnorm);
  m->slope = cfg.model.leaky_slope;
  m->eps = cfg.model.bn_eps;
  m->micro_step = 3;  /* any step: the masks differ per step, the check holds for each */

  /* the trainer's layout is the documented one */
  size_t np = t.model.n_params;
  CHECK(np == m->L.n, "%s: %zu parameters, documented layout gives %zu", c->name, np, m->L.n);
  for (int l = 0; l < NL; l++) {
    const ds_layer *Ly = &t.model.layers[l];
    CHECK(Ly->weight.offset == m->L.W[l] && Ly->bias.offset == m->L.b[l], "%s: layer %d W/b offsets", c->name, l);
    if (c->batchnorm && l < NL - 1)
      CHECK(Ly->gamma.offset == m->L.gamma[l] && Ly->beta.offset == m->L.beta[l], "%s: layer %d BN offsets",
            c->name, l);
  }
  if (np != m->L.n) { ds_trainer_free(&t); free(m); return; }

  /* Non-trivial biases and BN affine parameters (init gives 0 / 1 / 0), so
   * every term of the gradient is exercised. */
  float *hp = malloc(np * sizeof(float));
  be->download(hp, t.params, np * sizeof(float));
  for (int l = 0; l < NL; l++)
    for (int o = 0; o < widths[l + 1]; o++) {
      hp[m->L.b[l] + o] = (float)(0.3 * check_uniform());
      if (c->batchnorm && l < NL - 1) {
        hp[m->L.gamma[l] + o] = (float)(1.0 + 0.4 * check_uniform());
        hp[m->L.beta[l] + o] = (float)(0.3 * check_uniform());
      }
    }
  be->upload(t.params, hp, np * sizeof(float));

  /* one micro-batch, as ds_trainer_update */
  t.micro_step = (long)m->micro_step;
  t.h_keys[0] = m->micro_step; /* the dropout key, in the step block as ds_trainer_update writes it */
  memcpy(t.h_indices, batch_idx, sizeof batch_idx);
  be->upload(t.d_step, t.h_step, t.step_bytes);
  be->gather_forward(t.x, t.d_labels, t.train_images, t.train_labels, t.d_indices, B, t.d, t.scale, t.shift);
  be->zero(t.grads, np * sizeof(float));
  be->zero(t.d_acc, 2 * sizeof(double));
  ds_trainer_forward(&t, t.params, B, 1, t.d_keys);
  const ds_layer_ws *ow = &t.ws[t.model.n_layers - 1];
  be->softmax_xent(ow->dz, t.d_acc, ow->z, t.d_labels, B, t.model.n_classes, 1.0f / (float)B);
  ds_trainer_backward(&t, t.params, B, t.d_keys);

  float *g = malloc(np * sizeof(float)), *hx = malloc((size_t)B * D_IN * sizeof(float));
  float hz[B * N_CLS];
  int32_t hy[B];
  double acc[2];
  be->download(g, t.grads, np * sizeof(float));
  be->download(acc, t.d_acc, sizeof acc);
  be->download(hx, t.x, (size_t)B * D_IN * sizeof(float));
  be->download(hy, t.d_labels, sizeof hy);
  be->download(hz, ow->z, sizeof hz);

  /* the gathered batch: x = byte / 255 (no standardisation), labels */
  int bad_x = 0;
  for (int b = 0; b < B; b++) {
    m->y[b] = ds->labels[batch_idx[b]];
    bad_x += hy[b] != m->y[b];
    for (int i = 0; i < D_IN; i++) {
      m->x[b][i] = ds->images[(size_t)batch_idx[b] * D_IN + i] / 255.0;
      bad_x += !(fabs(hx[b * D_IN + i] - m->x[b][i]) <= 2 * FLT_EPSILON);
    }
  }
  CHECK(bad_x == 0, "%s: gathered batch differs from bytes/255 in %d entries", c->name, bad_x);

  double *th = malloc(np * sizeof(double));
  for (size_t i = 0; i < np; i++) th[i] = hp[i];
  static double pre0[NL - 1][B][H0], pre1[NL - 1][B][H0], pre2[NL - 1][B][H0];
  double logits[B][N_CLS];
  double loss = forward_d(m, th, pre0, logits);

  /* forward agreement: logits and the loss (mean CE over the batch) */
  int bad_z = 0;
  for (int b = 0; b < B; b++)
    for (int o = 0; o < N_CLS; o++) bad_z += !(fabs(hz[b * N_CLS + o] - logits[b][o]) <= 1e-5 * (1 + fabs(logits[b][o])));
  CHECK(bad_z == 0, "%s: %d logits differ from the double forward", c->name, bad_z);
  CHECK_CLOSE(acc[0] / B, loss, 1e-5, 1e-5, "%s: loss", c->name);

  /* a kink within float noise of a pre-activation would make the float and
   * double passes disagree on a derivative: require a margin (the data and
   * seeds are fixed, so this is a property of the chosen case) */
  if (kinked(c->act)) {
    double mn = 1e9;
    for (int l = 0; l < NL - 1; l++)
      for (int b = 0; b < B; b++)
        for (int o = 0; o < widths[l + 1]; o++) mn = fmin(mn, fabs(pre0[l][b][o]));
    CHECK(mn > 1e-4, "%s: a pre-activation is %.3g from the kink; pick another seed", c->name, mn);
  }

  const double h = 1e-5;
  int bad = 0, skipped = 0;
  double max_err = 0;
  for (size_t i = 0; i < np; i++) {
    double keep = th[i];
    th[i] = keep + h;
    double lp = forward_d(m, th, pre1, NULL);
    th[i] = keep - h;
    double lm = forward_d(m, th, pre2, NULL);
    th[i] = keep;
    if (kinked(c->act) && (signs_differ(pre0, pre1) || signs_differ(pre0, pre2))) { skipped++; continue; }
    double fd = (lp - lm) / (2 * h);
    double err = fabs(g[i] - fd);
    if (err > max_err) max_err = err;
    if (!(err <= 5e-6 + 1e-4 * fabs(fd))) {
      if (bad++ < 8) fprintf(stderr, "  %s: grad[%zu] = %.8g, central difference %.8g\n", c->name, i, g[i], fd);
    }
  }
  CHECK(bad == 0, "%s: %d of %zu gradient entries differ from central differences", c->name, bad, np);
  CHECK(skipped <= (int)np / 20, "%s: %d entries skipped at ReLU kinks (too many to be a check)", c->name, skipped);
  printf("%-28s %3zu params, loss %.6f, max |grad - fd| %.2e, %d skipped at kinks\n", c->name, np, loss,
         max_err, skipped);
  free(th); free(g); free(hx); free(hp); free(m);
  ds_trainer_free(&t);
}

int main(void) {
  /* the dataset: 9 images of 6 bytes (2x3), labels 0..3 */
  uint8_t images[N_IMG * D_IN], labels[N_IMG];
  for (int i = 0; i < N_IMG * D_IN; i++) images[i] = (uint8_t)((check_uniform() + 1.0) * 127.99);
  for (int i = 0; i < N_IMG; i++) labels[i] = (uint8_t)((i * 3 + 1) % N_CLS);
  ds_dataset ds = {.n = N_IMG, .d = D_IN, .rows = 2, .cols = 3, .n_classes = N_CLS, .images = images, .labels = labels};

  const gc_case cases[] = {
    {"relu bn dropout", DS_ACT_RELU, 1, 0.3f, 0.2f, DS_DROPOUT_INVERTED, 11},
    {"leaky_relu bn dropout", DS_ACT_LEAKY_RELU, 1, 0.3f, 0.2f, DS_DROPOUT_INVERTED, 12},
    {"tanh bn dropout", DS_ACT_TANH, 1, 0.3f, 0.2f, DS_DROPOUT_INVERTED, 13},
    {"sigmoid bn dropout", DS_ACT_SIGMOID, 1, 0.3f, 0.2f, DS_DROPOUT_INVERTED, 14},
    {"tanh dropout scale-at-test", DS_ACT_TANH, 0, 0.4f, 0.0f, DS_DROPOUT_SCALE_AT_TEST, 15},
    {"relu plain", DS_ACT_RELU, 0, 0.0f, 0.0f, DS_DROPOUT_INVERTED, 16},
    {"sigmoid bn", DS_ACT_SIGMOID, 1, 0.0f, 0.0f, DS_DROPOUT_INVERTED, 17},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], &ds);
  return check_finish("test_gradcheck");
}
