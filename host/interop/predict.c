/* Predictions: the logits of a set of images in inference mode
 * (include/descent/interop.h). */
#include "descent/interop.h"

void ds_trainer_logits(ds_trainer *t, const uint8_t *images, const uint8_t *labels, int n, float *out) {
  const ds_backend *be = t->be;
  const ds_layer_ws *last = &t->ws[t->model.n_layers - 1];
  int C = t->model.n_classes;
  for (int start = 0; start < n; start += t->cfg.eval_batch) {
    int B = n - start < t->cfg.eval_batch ? n - start : t->cfg.eval_batch;
    for (int b = 0; b < B; b++) t->h_eval_indices[b] = start + b;
    be->upload(t->d_eval_indices, t->h_eval_indices, (size_t)B * sizeof(int32_t));
    /* x[B, d] = byte * scale + shift, exactly as the evaluation gathers it */
    be->gather_forward(t->x, t->d_labels, images, labels, t->d_eval_indices, B, t->d, t->scale, t->shift);
    ds_trainer_forward(t, t->params, B, 0, NULL);
    be->download(out + (size_t)start * (size_t)C, last->z, (size_t)B * (size_t)C * sizeof(float));
  }
}

int ds_argmax(const float *logits, int n_classes) {
  int best = 0; /* the first largest, as softmax_xent counts a correct row */
  for (int c = 1; c < n_classes; c++)
    if (logits[c] > logits[best]) best = c;
  return best;
}
