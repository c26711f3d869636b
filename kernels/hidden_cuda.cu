/* A hidden layer after its linear map (BatchNorm -> activation -> dropout),
 * CUDA, one fused kernel each way (CPU twin: hidden_cpu.c, the three ops in
 * sequence; contract: descent/backend.h, hidden_forward).
 *
 * With BatchNorm the kernels use the column layout of batchnorm_math.cuh: a
 * block owns 32 features and all B rows, reduces the per-feature statistics
 * (forward: mean and variance; backward: sum dh and sum dh*xhat) in a fixed
 * order, then makes its elementwise pass, so one launch does what took three.
 * Without BatchNorm they are grid-stride elementwise kernels over groups of 4
 * elements (one Philox block serves a group, as in dropout_cuda.cu).
 *
 * The dropout mask is ds_philox_word(seed, stream, *step, element), as the
 * CPU's: the column kernels evaluate one Philox block per element (a group's
 * 4 elements belong to 4 different threads there), which costs arithmetic,
 * not memory. Every float is computed as the separate ops compute it
 * (activation_math.cuh, batchnorm_math.cuh, __fmul_rn for the masks), so the
 * fused kernels give the unfused CUDA ops' results bit for bit. */
#include "activation_math.cuh"
#include "batchnorm_math.cuh"
#include "cuda_common.cuh"
#include "descent/philox.h"

/* The dropout of one layer, resolved on the host: whether a mask applies
 * (training with p > 0), its threshold, and the scales. */
typedef struct {
  int masked;
  uint32_t threshold;
  float train_scale;       /* kept elements in training: 1/(1-p) inverted, 1 scale-at-test */
  float test_scale;        /* no mask: 1 inverted, 1-p scale-at-test */
  uint64_t seed;
  uint32_t stream;
  uint64_t element0;       /* the slice's first element in the whole batch (ds_hidden_spec) */
} hidden_dropout;

static hidden_dropout hidden_dropout_of(const ds_hidden_spec *spec, int training, int present) {
  hidden_dropout d;
  d.masked = present && training && spec->p > 0.0f;
  d.threshold = ds_dropout_threshold(spec->p);
  d.train_scale = spec->form == DS_DROPOUT_INVERTED ? 1.0f / (1.0f - spec->p) : 1.0f;
  d.test_scale = spec->form == DS_DROPOUT_INVERTED ? 1.0f : 1.0f - spec->p;
  d.seed = spec->seed;
  d.stream = spec->stream;
  d.element0 = spec->element0;
  return d;
}

/* dropout_forward of one element with its word */
__device__ __forceinline__ float hidden_drop(float y, uint32_t word, const hidden_dropout &d) {
  if (!d.masked) return __fmul_rn(y, d.test_scale);
  return word < d.threshold ? __fmul_rn(y, d.train_scale) : 0.0f;
}

/* dh = dropout_backward(dout) * act'(a) of one element with its word */
__device__ __forceinline__ float hidden_dh(float dout, float a, uint32_t word, const hidden_dropout &d,
                                           ds_activation act, float slope) {
  float da = d.masked ? (word < d.threshold ? __fmul_rn(dout, d.train_scale) : 0.0f) : dout;
  return __fmul_rn(da, ds_act_derivative(a, act, slope));
}

/* ---- with BatchNorm: the column kernels ----------------------------------------------- */

/* a[B,C], o[B,C] (optional), mean/rstd[C], running_mean/var[C] <- z[B,C], gamma/beta[C] */
static __global__ void hidden_forward_bn_kernel(float *a, float *o, float *mean, float *rstd, float *running_mean,
                                                float *running_var, const float *z, const float *gamma,
                                                const float *beta, int B, int C, int training, float momentum,
                                                float eps, ds_activation act, float slope, hidden_dropout d,
                                                const uint64_t *step) {
  __shared__ ds_bn_scratch red;
  int c = blockIdx.x * DS_BN_COLS + threadIdx.x;
  int col = c < C;
  float mu, rs;
  bn_column_statistics(&mu, &rs, mean, rstd, running_mean, running_var, z, B, C, c, col, training, momentum, eps,
                       red);
  if (!col) return;
  uint64_t key = d.masked ? *step : 0;
  float g = gamma[c], bt = beta[c];
  for (int b = threadIdx.y; b < B; b += DS_BN_ROWS) {
    size_t i = (size_t)b * C + c;
    float y = ds_act_forward(bn_normalise(z[i], mu, rs, g, bt), act, slope);
    a[i] = y;
    if (o) o[i] = hidden_drop(y, d.masked ? ds_philox_word(d.seed, d.stream, key, d.element0 + i) : 0u, d);
  }
}

/* dz[B,C], dgamma/dbeta[C] += <- dout[B,C], a[B,C], z[B,C], mean/rstd/gamma[C].
 * dh is computed twice (for the sums, then for dz) rather than stored. */
static __global__ void hidden_backward_bn_kernel(float *dz, float *dgamma, float *dbeta, const float *dout,
                                                 const float *a, const float *z, const float *mean,
                                                 const float *rstd, const float *gamma, int B, int C,
                                                 ds_activation act, float slope, hidden_dropout d,
                                                 const uint64_t *step) {
  __shared__ ds_bn_scratch red;
  int c = blockIdx.x * DS_BN_COLS + threadIdx.x;
  int col = c < C;
  float mu = col ? mean[c] : 0.0f, rs = col ? rstd[c] : 0.0f, g = col ? gamma[c] : 0.0f;
  uint64_t key = d.masked ? *step : 0;
  double sum_dy = 0.0, sum_dy_xhat = 0.0;
  if (col)
    for (int b = threadIdx.y; b < B; b += DS_BN_ROWS) {
      size_t i = (size_t)b * C + c;
      uint32_t word = d.masked ? ds_philox_word(d.seed, d.stream, key, d.element0 + i) : 0u;
      float dh = hidden_dh(dout[i], a[i], word, d, act, slope);
      sum_dy += dh;
      sum_dy_xhat += (double)dh * bn_xhat(z[i], mu, rs);
    }
  float k1, k2;
  bn_backward_coefficients(&k1, &k2, dgamma, dbeta, sum_dy, sum_dy_xhat, c, col, g, B, red);
  if (!col) return;
  for (int b = threadIdx.y; b < B; b += DS_BN_ROWS) {
    size_t i = (size_t)b * C + c;
    uint32_t word = d.masked ? ds_philox_word(d.seed, d.stream, key, d.element0 + i) : 0u;
    float dh = hidden_dh(dout[i], a[i], word, d, act, slope);
    dz[i] = bn_dx(dh, bn_xhat(z[i], mu, rs), rs, g, k1, k2); /* dout[i] was read above: dz may alias it */
  }
}

/* ---- without BatchNorm: elementwise over groups of 4 ------------------------------------- */

/* a[n], o[n] (optional) <- z[n] */
static __global__ void hidden_forward_kernel(float *a, float *o, const float *z, size_t n, ds_activation act,
                                             float slope, hidden_dropout d, const uint64_t *step) {
  uint64_t key = d.masked ? *step : 0;
  size_t groups = (n + 3) / 4;
  for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < groups; q += (size_t)gridDim.x * blockDim.x) {
    ds_philox_ctr r = {{0u, 0u, 0u, 0u}};
    int aligned = (d.element0 & 3u) == 0; /* else: a slice starting inside a group, one word per element */
    if (d.masked && aligned) r = ds_philox_block(d.seed, d.stream, key, (d.element0 >> 2) + q);
#pragma unroll
    for (int j = 0; j < 4; j++) { /* unrolled: r stays in registers */
      size_t i = 4 * q + j;
      if (i >= n) break;
      float y = ds_act_forward(z[i], act, slope);
      a[i] = y;
      uint32_t word = aligned || !d.masked ? r.v[j] : ds_philox_word(d.seed, d.stream, key, d.element0 + i);
      if (o) o[i] = hidden_drop(y, word, d);
    }
  }
}

/* dz[n] <- dout[n], a[n] (dz may alias dout) */
static __global__ void hidden_backward_kernel(float *dz, const float *dout, const float *a, size_t n,
                                              ds_activation act, float slope, hidden_dropout d,
                                              const uint64_t *step) {
  uint64_t key = d.masked ? *step : 0;
  size_t groups = (n + 3) / 4;
  for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < groups; q += (size_t)gridDim.x * blockDim.x) {
    ds_philox_ctr r = {{0u, 0u, 0u, 0u}};
    int aligned = (d.element0 & 3u) == 0;
    if (d.masked && aligned) r = ds_philox_block(d.seed, d.stream, key, (d.element0 >> 2) + q);
#pragma unroll
    for (int j = 0; j < 4; j++) {
      size_t i = 4 * q + j;
      if (i >= n) break;
      uint32_t word = aligned || !d.masked ? r.v[j] : ds_philox_word(d.seed, d.stream, key, d.element0 + i);
      dz[i] = hidden_dh(dout[i], a[i], word, d, act, slope);
    }
  }
}

/* ---- launchers ------------------------------------------------------------------------------- */

static void hidden_forward_launch(float *a, float *o, float *mean, float *rstd, float *running_mean,
                                  float *running_var, const float *z, const float *gamma, const float *beta, int B,
                                  int C, int training, const ds_hidden_spec *spec, const uint64_t *step) {
  hidden_dropout d = hidden_dropout_of(spec, training, o != NULL);
  if (spec->batchnorm) {
    unsigned int blocks = (unsigned int)((C + DS_BN_COLS - 1) / DS_BN_COLS);
    hidden_forward_bn_kernel<<<blocks, dim3(DS_BN_COLS, DS_BN_ROWS), 0, ds_cuda.stream>>>(
        a, o, mean, rstd, running_mean, running_var, z, gamma, beta, B, C, training, spec->bn_momentum,
        spec->bn_eps, spec->act, spec->slope, d, step);
    DS_LAUNCH_CHECK("hidden_forward_bn_kernel");
  } else {
    size_t n = (size_t)B * (size_t)C;
    hidden_forward_kernel<<<ds_cuda_grid((n + 3) / 4, 256, 16), 256, 0, ds_cuda.stream>>>(a, o, z, n, spec->act,
                                                                                         spec->slope, d, step);
    DS_LAUNCH_CHECK("hidden_forward_kernel");
  }
}

static void hidden_backward_launch(float *dz, float *dgamma, float *dbeta, float *dout, const float *a,
                                   const float *z, const float *mean, const float *rstd, const float *gamma, int B,
                                   int C, int has_dropout, const ds_hidden_spec *spec, const uint64_t *step) {
  hidden_dropout d = hidden_dropout_of(spec, 1, has_dropout);
  if (spec->batchnorm) {
    unsigned int blocks = (unsigned int)((C + DS_BN_COLS - 1) / DS_BN_COLS);
    hidden_backward_bn_kernel<<<blocks, dim3(DS_BN_COLS, DS_BN_ROWS), 0, ds_cuda.stream>>>(
        dz, dgamma, dbeta, dout, a, z, mean, rstd, gamma, B, C, spec->act, spec->slope, d, step);
    DS_LAUNCH_CHECK("hidden_backward_bn_kernel");
  } else {
    size_t n = (size_t)B * (size_t)C;
    hidden_backward_kernel<<<ds_cuda_grid((n + 3) / 4, 256, 16), 256, 0, ds_cuda.stream>>>(dz, dout, a, n, spec->act,
                                                                                          spec->slope, d, step);
    DS_LAUNCH_CHECK("hidden_backward_kernel");
  }
}

/* ---- the ops ------------------------------------------------------------------------------------ */

/* a[B,C], o[B,C] (optional), mean/rstd[C] (BN training), running_mean/var[C] (BN)
 *   <- z[B,C], gamma/beta[C] (BN) */
extern "C" void hidden_forward_cuda(float *a, float *o, float *mean, float *rstd, float *running_mean,
                                    float *running_var, const float *z, const float *gamma, const float *beta, int B,
                                    int C, int training, const ds_hidden_spec *spec, const uint64_t *step) {
  DS_CUDA_REQUIRE(spec && B >= 1 && C >= 1, "hidden_forward_cuda", "bad shape B=%d C=%d or NULL spec", B, C);
  DS_CUDA_REQUIRE(a && z, "hidden_forward_cuda", "NULL buffer");
  DS_CUDA_REQUIRE(spec->act >= DS_ACT_RELU && spec->act <= DS_ACT_SIGMOID, "hidden_forward_cuda", "unknown activation %d",
                  (int)spec->act);
  DS_CUDA_REQUIRE(!o || (spec->p >= 0.0f && spec->p < 1.0f), "hidden_forward_cuda", "p = %g outside [0,1)", (double)spec->p);
  DS_CUDA_REQUIRE(!spec->batchnorm || (running_mean && running_var && gamma && beta && (!training || (mean && rstd))),
                  "hidden_forward_cuda", "BatchNorm needs gamma, beta, running statistics (and mean, rstd in training)");
  DS_CUDA_REQUIRE(!(o && training && spec->p > 0.0f) || step, "hidden_forward_cuda", "NULL step (a training dropout needs the key)");
  hidden_forward_launch(a, o, mean, rstd, running_mean, running_var, z, gamma, beta, B, C, training, spec, step);
}

/* dz[B,C]; dgamma/dbeta[C] += (BN) <- dout[B,C], a[B,C], z[B,C], mean/rstd/gamma[C] (BN) */
extern "C" void hidden_backward_cuda(float *dz, float *dgamma, float *dbeta, float *dout, const float *a,
                                     const float *z, const float *mean, const float *rstd, const float *gamma, int B,
                                     int C, int has_dropout, const ds_hidden_spec *spec, const uint64_t *step) {
  DS_CUDA_REQUIRE(spec && B >= 1 && C >= 1, "hidden_backward_cuda", "bad shape B=%d C=%d or NULL spec", B, C);
  DS_CUDA_REQUIRE(dz && dout && a, "hidden_backward_cuda", "NULL buffer");
  DS_CUDA_REQUIRE(spec->act >= DS_ACT_RELU && spec->act <= DS_ACT_SIGMOID, "hidden_backward_cuda",
                  "unknown activation %d", (int)spec->act);
  DS_CUDA_REQUIRE(!spec->batchnorm || (dgamma && dbeta && z && mean && rstd && gamma), "hidden_backward_cuda",
                  "BatchNorm needs dgamma, dbeta, z, mean, rstd and gamma");
  DS_CUDA_REQUIRE(!(has_dropout && spec->p > 0.0f) || step, "hidden_backward_cuda", "NULL step");
  hidden_backward_launch(dz, dgamma, dbeta, dout, a, z, mean, rstd, gamma, B, C, has_dropout, spec, step);
}
