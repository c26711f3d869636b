/* The per-element optimizer update, shared verbatim by optim_cpu.c and
 * optim_cuda.cu so that both backends compute the same arithmetic in the same
 * order. Formulas are torch.optim's documented algorithms; the course's other
 * notations are the named options (see descent/optim.h for the order of
 * clipping, decay and update).
 *
 * State roles (ds_optim_buffers):
 *   sgd      m = momentum buffer b (pytorch, ema) or velocity v (keras, lookahead)
 *   adagrad  v = sum of squared gradients
 *   rmsprop  v = square average (centered: the variance around gavg), gavg = gradient
 *            average (centered), m = momentum buffer
 *   adam(w)  m = first moment, v = second moment, vmax = max of v (amsgrad) */
#ifndef DS_OPTIM_MATH_H
#define DS_OPTIM_MATH_H

#include <math.h>
#include <stddef.h>

#include "descent/optim.h"
#include "descent/philox.h" /* DS_HD */

DS_HD float ds_clip_value(float g, float u) {
  if (u > 0.0f) g = g < -u ? -u : (g > u ? u : g);
  return g;
}

/* sign(w) in {-1, 0, 1} (0 for NaN), written without branches so loops vectorise */
DS_HD float ds_sign(float w) { return (float)(w > 0.0f) - (float)(w < 0.0f); }

/* Denominator of the adaptive methods: sqrt(s) + eps, or sqrt(s + eps). */
DS_HD float ds_adaptive_denom(float s, float eps, int eps_in_sqrt) {
  return eps_in_sqrt ? sqrtf(s + eps) : sqrtf(s) + eps;
}

/* Update element i. clip_coef is the global-norm clip factor (1 when off);
 * decay says whether weight decay / L1 apply to this element. */
DS_HD void ds_optim_element(size_t i, const ds_optim_config *c, const ds_optim_scalars *s,
                            float clip_coef, int decay, float *param, const float *grad, float *m,
                            float *v, float *vmax, float *gavg) {
  float w = param[i];
  float g = ds_clip_value(grad[i], c->clip_value) * clip_coef;
  if (decay) {
    if (c->kind != DS_OPT_ADAMW) g += c->weight_decay * w;
    g += c->l1 * ds_sign(w);
  }
  float lr = s->lr;
  switch (c->kind) {
    case DS_OPT_SGD: {
      float mu = c->momentum;
      if (mu == 0.0f) {
        w -= lr * g;
      } else if (c->momentum_form == DS_MOMENTUM_KERAS) {
        float vel = mu * m[i] - lr * g;                   /* v = mu v - lr g */
        m[i] = vel;
        w += c->nesterov ? mu * vel - lr * g : vel;      /* w += v  |  w += mu v - lr g */
      } else if (c->nesterov && c->nesterov_form == DS_NESTEROV_LOOKAHEAD) {
        float vel = mu * m[i] + lr * g;                   /* g was taken at w - mu v */
        m[i] = vel;
        w -= vel;
      } else if (c->momentum_form == DS_MOMENTUM_EMA) {
        float b = mu * m[i] + (1.0f - mu) * g;            /* b0 = 0, no special first step */
        m[i] = b;
        w -= lr * (c->nesterov ? (1.0f - mu) * g + mu * b : b);
      } else {
        float b = s->t == 1 ? g : mu * m[i] + (1.0f - c->dampening) * g;
        m[i] = b;
        w -= lr * (c->nesterov ? g + mu * b : b);
      }
      break;
    }
    case DS_OPT_ADAGRAD: {
      float sum = v[i] + g * g;
      v[i] = sum;
      w -= lr * g / ds_adaptive_denom(sum, c->eps, c->eps_in_sqrt);
      break;
    }
    case DS_OPT_RMSPROP: {
      float a = c->alpha;
      float avg;
      if (c->centered) {
        /* v keeps the EMA variance itself: v = a*v + a*(1-a)*(g - gavg)^2 is,
           in real arithmetic, torch's square_avg - grad_avg^2 (both start at
           0). The difference of the two averages cancels catastrophically in
           float when the gradient is nearly constant (0 or below 0, and the
           step lr*g/eps); this recursion never goes negative. */
        float d = g - gavg[i];
        float var = a * v[i] + a * (1.0f - a) * d * d;
        v[i] = var;
        gavg[i] = a * gavg[i] + (1.0f - a) * g;
        avg = var;
      } else {
        float sq = a * v[i] + (1.0f - a) * g * g;
        v[i] = sq;
        avg = sq;
      }
      float denom = ds_adaptive_denom(avg, c->eps, c->eps_in_sqrt);
      if (c->momentum > 0.0f) {
        float b = c->momentum * m[i] + g / denom;
        m[i] = b;
        w -= lr * b;
      } else {
        w -= lr * g / denom;
      }
      break;
    }
    default: { /* DS_OPT_ADAM, DS_OPT_ADAMW */
      if (decay && c->kind == DS_OPT_ADAMW) w *= 1.0f - lr * c->weight_decay;
      float m1 = c->beta1 * m[i] + (1.0f - c->beta1) * g;
      float v1 = c->beta2 * v[i] + (1.0f - c->beta2) * g * g;
      m[i] = m1;
      v[i] = v1;
      if (c->amsgrad) {
        v1 = vmax[i] > v1 ? vmax[i] : v1;
        vmax[i] = v1;
      }
      /* torch: denom = sqrt(v)/sqrt(bc2) + eps; w -= (lr/bc1) * m/denom. The
         constants come from the host (ds_optim_scalars_at): one division per
         element instead of two, the divider being what bounds this loop */
      float denom = c->eps_in_sqrt ? sqrtf(v1 * s->adam_inv_bc2 + c->eps)
                                   : sqrtf(v1) * s->adam_inv_sqrt_bc2 + c->eps;
      w -= s->adam_step_size * m1 / denom;
      break;
    }
  }
  param[i] = w;
}

#endif
