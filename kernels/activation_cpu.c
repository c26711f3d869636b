/* Activations, CPU reference (CUDA twin: activation_cuda.cu), on all threads.
 * Formulas: elementwise_cpu.h (backward uses the saved output y). */
#include "elementwise_cpu.h"
#include "kernels_cpu.h"
#include "parallel_cpu.h"

typedef struct {
  float *out;
  const float *inp, *dout;
  size_t n;
  ds_activation act;
  float slope;
} act_job;

/* One loop per activation: the switch is resolved outside the loop, so ReLU's
 * loop vectorises. */
#define ACT_LOOP(ACT, BODY)                        \
  case ACT:                                        \
    for (size_t i = b; i < e; i++) BODY;           \
    break;

static void forward_part(void *p, int part, int parts) {
  const act_job *j = p;
  size_t b, e;
  ds_cpu_split(j->n, part, parts, 16, &b, &e);
  float *out = j->out, slope = j->slope;
  const float *inp = j->inp;
  switch (j->act) {
    ACT_LOOP(DS_ACT_RELU, out[i] = ds_act_forward(DS_ACT_RELU, inp[i], slope))
    ACT_LOOP(DS_ACT_LEAKY_RELU, out[i] = ds_act_forward(DS_ACT_LEAKY_RELU, inp[i], slope))
    ACT_LOOP(DS_ACT_TANH, out[i] = ds_act_forward(DS_ACT_TANH, inp[i], slope))
    default:
      for (size_t i = b; i < e; i++) out[i] = ds_act_forward(DS_ACT_SIGMOID, inp[i], slope);
  }
}

static void backward_part(void *p, int part, int parts) {
  const act_job *j = p;
  size_t b, e;
  ds_cpu_split(j->n, part, parts, 16, &b, &e);
  float *dinp = j->out, slope = j->slope;
  const float *y = j->inp, *dout = j->dout;
  switch (j->act) {
    ACT_LOOP(DS_ACT_RELU, dinp[i] = dout[i] * ds_act_derivative(DS_ACT_RELU, y[i], slope))
    ACT_LOOP(DS_ACT_LEAKY_RELU, dinp[i] = dout[i] * ds_act_derivative(DS_ACT_LEAKY_RELU, y[i], slope))
    ACT_LOOP(DS_ACT_TANH, dinp[i] = dout[i] * ds_act_derivative(DS_ACT_TANH, y[i], slope))
    default:
      for (size_t i = b; i < e; i++) dinp[i] = dout[i] * ds_act_derivative(DS_ACT_SIGMOID, y[i], slope);
  }
}

/* out[n] = act(inp[n]) */
void activation_forward_cpu(float *out, const float *inp, size_t n, ds_activation act, float slope) {
  act_job j = {.out = out, .inp = inp, .n = n, .act = act, .slope = slope};
  ds_cpu_parallel(forward_part, &j, n);
}

/* dinp[n] = dout[n] * act'(from out[n]) */
void activation_backward_cpu(float *dinp, const float *dout, const float *out, size_t n,
                             ds_activation act, float slope) {
  act_job j = {.out = dinp, .inp = out, .dout = dout, .n = n, .act = act, .slope = slope};
  ds_cpu_parallel(backward_part, &j, n);
}
