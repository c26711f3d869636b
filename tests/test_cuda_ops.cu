/* GPU suite: every CUDA op (through ds_backend_cuda()'s table) against its CPU
 * twin (ds_backend_cpu()) on random inputs of odd shapes — batch 1, 3, 129,
 * 4096; widths 1, 7, 10, 1000, 1024 — plus what only the GPU side has:
 * Philox against cuRAND and the Random123 known answers, launch counts,
 * misaligned (non-float4) buffers, CUDA-graph replay, the TF32 switch and the
 * out-of-memory message. Exits 77 when no GPU is present.
 *
 * Tolerances (each justified where it is used; the principle): where the CUDA
 * kernel performs the CPU's operations in the CPU's order (__f*_rn, no FMA
 * contraction) the results must be equal BIT FOR BIT: gather, dropout masks
 * and values, relu/leaky relu, every activation backward, axpy. Elsewhere the
 * two sides sum in different orders, or nvcc contracts a*b+c into an FMA
 * (ds_optim_element is shared source), or CUDA's expf/tanhf differ from
 * glibc's by an ulp or two; those are compared against a bound on rounding
 * error that is far (>= 10x) above what correct code produces and far
 * (>= 100x) below what a wrong formula, index or missing accumulation gives.
 *
 * Parameter gradients are pre-filled with random values so that accumulation
 * (+=) is checked; activation gradients with NaN so that overwriting is. */
#include <cuda_runtime.h>
#include <curand_kernel.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_cuda.h"
#include "check.h"
#include "descent/backend.h"
#include "descent/common.h"
#include "descent/optim.h"
#include "descent/philox.h"
#include "descent/train.h"

static const ds_backend *cpu, *gpu;

/* ---- helpers ------------------------------------------------------------ */

static float *hvec(size_t n) { return (float *)ds_xcalloc(n ? n : 1, sizeof(float), "test buffer"); }
static float *hcopy(const float *x, size_t n) {
  float *y = hvec(n);
  memcpy(y, x, n * sizeof(float));
  return y;
}
static float *habs(const float *x, size_t n) {
  float *y = hvec(n);
  for (size_t i = 0; i < n; i++) y[i] = fabsf(x[i]);
  return y;
}
static float unif(double lo, double hi) { return (float)(lo + (hi - lo) * 0.5 * (check_uniform() + 1.0)); }
static void fill(float *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) x[i] = unif(lo, hi);
}
static void fill_nan(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = NAN;
}
static float *dvec(size_t n) { return (float *)gpu->alloc((n ? n : 1) * sizeof(float), "test buffer"); }
static float *to_gpu(const float *h, size_t n) {
  float *d = dvec(n);
  gpu->upload(d, h, n * sizeof(float));
  return d;
}
static float *from_gpu(const float *d, size_t n) {
  float *h = hvec(n);
  gpu->download(h, d, n * sizeof(float));
  return h;
}

/* One CHECK per array: the worst element of |got - want| / (atol + rtol*scale),
 * scale[i] (or |want[i]| when scale is NULL). NaN only matches NaN. */
static void check_close_array(const char *what, const float *got, const float *want, const float *scale,
                              size_t n, double rtol, double atol) {
  double worst = 0.0, wg = 0.0, ww = 0.0, wtol = 0.0;
  size_t wi = 0;
  for (size_t i = 0; i < n; i++) {
    double g = got[i], w = want[i];
    double tol = atol + rtol * (scale ? fabs((double)scale[i]) : fabs(w));
    double r;
    if (isnan(g) || isnan(w)) r = isnan(g) && isnan(w) ? 0.0 : INFINITY;
    else if (g == w) r = 0.0;
    else r = tol > 0.0 ? fabs(g - w) / tol : INFINITY;
    if (r > worst) {
      worst = r;
      wi = i;
      wg = g;
      ww = w;
      wtol = tol;
    }
  }
  CHECK(worst <= 1.0, "%s: element %zu of %zu: got %.9g want %.9g (|diff| %.3g > tol %.3g)", what, wi, n, wg, ww,
        fabs(wg - ww), wtol);
}

/* Bit-for-bit equality. */
static void check_equal_array(const char *what, const float *got, const float *want, size_t n) {
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < n; i++)
    if (memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      if (!bad) first = i;
      bad++;
    }
  CHECK(bad == 0, "%s: %zu of %zu elements differ in their bits; first at %zu: got %.9g want %.9g", what, bad, n,
        first, bad ? (double)got[first] : 0.0, bad ? (double)want[first] : 0.0);
}

static long launches_since(long before) { return ds_cuda_launch_count() - before; }

static const int batches[] = {1, 3, 129, 4096};
static const int widths[] = {1, 7, 10, 1000, 1024};
#define NB (int)(sizeof batches / sizeof batches[0])
#define NW (int)(sizeof widths / sizeof widths[0])

/* ---- memory -------------------------------------------------------------- */
static void test_alloc_zeroed(void) {
  size_t n = (1u << 20) + 3;
  float *d = dvec(n);
  float *h = hvec(n);
  fill(h, n, 1.0, 2.0); /* nonzero, so a download that does nothing is caught */
  gpu->download(h, d, n * sizeof(float));
  size_t nonzero = 0;
  for (size_t i = 0; i < n; i++) nonzero += h[i] != 0.0f;
  CHECK(nonzero == 0, "alloc: %zu of %zu floats of a fresh buffer are not zero", nonzero, n);
  /* copy and zero round trip */
  float *src = hvec(n);
  fill(src, n, -1.0, 1.0);
  float *d2 = to_gpu(src, n);
  gpu->copy(d, d2, n * sizeof(float));
  float *back = from_gpu(d, n);
  check_equal_array("upload/copy/download round trip", back, src, n);
  gpu->zero(d, 17 * sizeof(float));
  free(back);
  back = from_gpu(d, n);
  CHECK(back[0] == 0.0f && back[16] == 0.0f && back[17] == src[17], "zero: wrong range zeroed");
  gpu->free(d);
  gpu->free(d2);
  free(h);
  free(src);
  free(back);
}

/* ---- Philox --------------------------------------------------------------- */
/* ours/ref[4i..4i+3] = Philox4x32-10(ctr_i, key_i) by descent/philox.h and by
 * cuRAND; words[e] = ds_philox_word(seed, stream, step, e) on the device. */
static __global__ void philox_kernel(uint32_t *ours, uint32_t *ref, uint32_t *words, const uint32_t *ctrs,
                                     const uint32_t *keys, int n, uint64_t seed, uint32_t stream, uint64_t step,
                                     int n_words) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    ds_philox_ctr c = {{ctrs[4 * i], ctrs[4 * i + 1], ctrs[4 * i + 2], ctrs[4 * i + 3]}};
    ds_philox_key k = {{keys[2 * i], keys[2 * i + 1]}};
    ds_philox_ctr r = ds_philox4x32_10(c, k);
    uint4 cc = make_uint4(c.v[0], c.v[1], c.v[2], c.v[3]);
    uint2 kk = make_uint2(k.v[0], k.v[1]);
    uint4 rr = curand_Philox4x32_10(cc, kk);
    for (int j = 0; j < 4; j++) ours[4 * i + j] = r.v[j];
    ref[4 * i + 0] = rr.x;
    ref[4 * i + 1] = rr.y;
    ref[4 * i + 2] = rr.z;
    ref[4 * i + 3] = rr.w;
  }
  if (i < n_words) words[i] = ds_philox_word(seed, stream, step, (uint64_t)i);
}

static void test_philox(void) {
  /* Random123's kat_vectors for philox4x32_10: counter, key -> output */
  static const uint32_t kat[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u},
      {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du, 0x41c83b0eu,
       0xa20bc7c6u, 0x6d5451fdu},
      {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u, 0xd16cfe09u, 0x94fdccebu,
       0x5001e420u, 0x24126ea1u}};
  const int n = 4099, n_words = 1031;
  const uint64_t seed = 0x0123456789abcdefull, step = (1ull << 33) + 7;
  const uint32_t stream = DS_STREAM_DROPOUT + 2;
  uint32_t *ctrs = (uint32_t *)ds_xcalloc(4 * n, sizeof(uint32_t), "ctrs");
  uint32_t *keys = (uint32_t *)ds_xcalloc(2 * n, sizeof(uint32_t), "keys");
  for (int i = 0; i < n; i++) { /* the three known answers, then random counters and keys */
    for (int j = 0; j < 4; j++) ctrs[4 * i + j] = i < 3 ? kat[i][j] : (uint32_t)((check_uniform() + 1.0) * 2147483648.0);
    for (int j = 0; j < 2; j++) keys[2 * i + j] = i < 3 ? kat[i][4 + j] : (uint32_t)((check_uniform() + 1.0) * 2147483648.0);
  }
  uint32_t *d_ctrs, *d_keys, *d_ours, *d_ref, *d_words;
  cudaMalloc(&d_ctrs, 4 * n * sizeof(uint32_t));
  cudaMalloc(&d_keys, 2 * n * sizeof(uint32_t));
  cudaMalloc(&d_ours, 4 * n * sizeof(uint32_t));
  cudaMalloc(&d_ref, 4 * n * sizeof(uint32_t));
  cudaMalloc(&d_words, n_words * sizeof(uint32_t));
  cudaMemcpy(d_ctrs, ctrs, 4 * n * sizeof(uint32_t), cudaMemcpyHostToDevice);
  cudaMemcpy(d_keys, keys, 2 * n * sizeof(uint32_t), cudaMemcpyHostToDevice);
  philox_kernel<<<(n + 255) / 256, 256>>>(d_ours, d_ref, d_words, d_ctrs, d_keys, n, seed, stream, step, n_words);
  cudaError_t err = cudaGetLastError();
  CHECK(err == cudaSuccess, "philox_kernel launch: %s", cudaGetErrorString(err));
  uint32_t *ours = (uint32_t *)ds_xcalloc(4 * n, sizeof(uint32_t), "ours");
  uint32_t *ref = (uint32_t *)ds_xcalloc(4 * n, sizeof(uint32_t), "ref");
  uint32_t *words = (uint32_t *)ds_xcalloc(n_words, sizeof(uint32_t), "words");
  err = cudaMemcpy(ours, d_ours, 4 * n * sizeof(uint32_t), cudaMemcpyDeviceToHost);
  CHECK(err == cudaSuccess, "philox_kernel: %s", cudaGetErrorString(err));
  cudaMemcpy(ref, d_ref, 4 * n * sizeof(uint32_t), cudaMemcpyDeviceToHost);
  cudaMemcpy(words, d_words, n_words * sizeof(uint32_t), cudaMemcpyDeviceToHost);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++)
      CHECK(ours[4 * i + j] == kat[i][6 + j], "philox KAT %d word %d: device %08x, Random123 %08x", i, j,
            ours[4 * i + j], kat[i][6 + j]);
  int vs_curand = 0, vs_host = 0, word_bad = 0;
  for (int i = 0; i < n; i++) {
    ds_philox_ctr c = {{ctrs[4 * i], ctrs[4 * i + 1], ctrs[4 * i + 2], ctrs[4 * i + 3]}};
    ds_philox_key k = {{keys[2 * i], keys[2 * i + 1]}};
    ds_philox_ctr h = ds_philox4x32_10(c, k);
    for (int j = 0; j < 4; j++) {
      vs_curand += ours[4 * i + j] != ref[4 * i + j];
      vs_host += ours[4 * i + j] != h.v[j];
    }
  }
  for (int e = 0; e < n_words; e++) word_bad += words[e] != ds_philox_word(seed, stream, step, (uint64_t)e);
  CHECK(vs_curand == 0, "philox: %d of %d device words differ from cuRAND's curand_Philox4x32_10", vs_curand, 4 * n);
  CHECK(vs_host == 0, "philox: %d of %d device words differ from the host's", vs_host, 4 * n);
  CHECK(word_bad == 0, "ds_philox_word: %d of %d device words differ from the host's", word_bad, n_words);
  cudaFree(d_ctrs);
  cudaFree(d_keys);
  cudaFree(d_ours);
  cudaFree(d_ref);
  cudaFree(d_words);
  free(ctrs);
  free(keys);
  free(ours);
  free(ref);
  free(words);
}

/* ---- gather: exact ------------------------------------------------------------ */
static void test_gather(void) {
  const int N = 300;
  const int dims[] = {1, 7, 784};
  for (int bi = 0; bi < NB; bi++)
    for (int di = 0; di < 3; di++) {
      int B = batches[bi], D = dims[di];
      uint8_t *img = (uint8_t *)ds_xcalloc((size_t)N * D, 1, "images");
      uint8_t lab[300];
      for (size_t i = 0; i < (size_t)N * D; i++) img[i] = (uint8_t)((i * 37 + 11 * D) & 255);
      for (int i = 0; i < N; i++) lab[i] = (uint8_t)((i * 7) % 10);
      int32_t *idx = (int32_t *)ds_xcalloc(B, sizeof(int32_t), "idx");
      for (int b = 0; b < B; b++) idx[b] = (int32_t)((check_uniform() + 1.0) * 0.5 * N) % N;
      const float scale = 1.0f / 255.0f / 0.3081f, shift = -0.1307f / 0.3081f;
      float *x_c = hvec((size_t)B * D);
      int32_t *y_c = (int32_t *)ds_xcalloc(B, sizeof(int32_t), "y");
      cpu->gather_forward(x_c, y_c, img, lab, idx, B, D, scale, shift);
      uint8_t *d_img = (uint8_t *)gpu->alloc((size_t)N * D, "images");
      uint8_t *d_lab = (uint8_t *)gpu->alloc(N, "labels");
      int32_t *d_idx = (int32_t *)gpu->alloc(B * sizeof(int32_t), "idx");
      int32_t *d_y = (int32_t *)gpu->alloc(B * sizeof(int32_t), "y");
      float *d_x = dvec((size_t)B * D);
      gpu->upload(d_img, img, (size_t)N * D);
      gpu->upload(d_lab, lab, N);
      gpu->upload(d_idx, idx, B * sizeof(int32_t));
      long before = ds_cuda_launch_count();
      gpu->gather_forward(d_x, d_y, d_img, d_lab, d_idx, B, D, scale, shift);
      CHECK(launches_since(before) == 1, "gather: %ld launches, want 1", launches_since(before));
      float *x_g = from_gpu(d_x, (size_t)B * D);
      int32_t *y_g = (int32_t *)ds_xcalloc(B, sizeof(int32_t), "y");
      gpu->download(y_g, d_y, B * sizeof(int32_t));
      char what[64];
      snprintf(what, sizeof what, "gather B=%d D=%d", B, D);
      check_equal_array(what, x_g, x_c, (size_t)B * D);
      CHECK(memcmp(y_g, y_c, B * sizeof(int32_t)) == 0, "%s: labels differ", what);
      gpu->free(d_img);
      gpu->free(d_lab);
      gpu->free(d_idx);
      gpu->free(d_y);
      gpu->free(d_x);
      free(img);
      free(idx);
      free(x_c);
      free(y_c);
      free(x_g);
      free(y_g);
    }
}

/* ---- linear --------------------------------------------------------------------
 * Tolerance: each output is a K-term dot product (plus bias / old gradient).
 * Summed in any order in FP32 its error is a few 2^-24 times sum|terms| in
 * practice (random-walk rounding; the worst-case bound is K*2^-24); 1e-5 of
 * sum|terms| is >= 10x that for K <= 4096, and a wrong transpose, index or
 * accumulation is an O(1) fraction of it. sum|terms| is computed by running
 * the CPU op on absolute values. */
static long linear_lt_runs; /* forwards that ran as the cuBLASLt epilogue */

static double linear_case(int B, int C_in, int C_out, int misalign, int check_no_dinp, double rtol) {
  char what[128];
  size_t ni = (size_t)B * C_in, nw = (size_t)C_out * C_in, no = (size_t)B * C_out;
  float *inp = hvec(ni), *w = hvec(nw), *b = hvec(C_out), *dout = hvec(no), *dw0 = hvec(nw), *db0 = hvec(C_out);
  fill(inp, ni, -1.0, 1.0);
  fill(w, nw, -0.5, 0.5);
  fill(b, C_out, -1.0, 1.0);
  fill(dout, no, -1.0, 1.0);
  fill(dw0, nw, -1.0, 1.0);
  fill(db0, C_out, -1.0, 1.0);

  float *out_c = hvec(no), *dinp_c = hvec(ni), *dw_c = hcopy(dw0, nw), *db_c = hcopy(db0, C_out);
  cpu->linear_forward(out_c, inp, w, b, B, C_in, C_out);
  cpu->linear_backward(dinp_c, dw_c, db_c, dout, inp, w, B, C_in, C_out);
  float *a_inp = habs(inp, ni), *a_w = habs(w, nw), *a_b = habs(b, C_out), *a_dout = habs(dout, no);
  float *out_s = hvec(no), *dinp_s = hvec(ni), *dw_s = habs(dw0, nw), *db_s = habs(db0, C_out);
  cpu->linear_forward(out_s, a_inp, a_w, a_b, B, C_in, C_out);
  cpu->linear_backward(dinp_s, dw_s, db_s, a_dout, a_inp, a_w, B, C_in, C_out);

  /* misalign: inp, weight and bias one float past a 256-byte boundary, as the
   * views of a flat parameter buffer can be (no float4, no cuBLASLt bias epilogue) */
  float *inp_buf = dvec(ni + 1), *w_buf = dvec(nw + 1), *b_buf = dvec(C_out + 1);
  float *d_inp = inp_buf + misalign, *d_w = w_buf + misalign, *d_b = b_buf + misalign;
  gpu->upload(d_inp, inp, ni * sizeof(float));
  gpu->upload(d_w, w, nw * sizeof(float));
  gpu->upload(d_b, b, C_out * sizeof(float));
  float *nan_out = hvec(no > ni ? no : ni);
  fill_nan(nan_out, no > ni ? no : ni);
  float *d_out = to_gpu(nan_out, no), *d_dinp = to_gpu(nan_out, ni);
  float *d_dout = to_gpu(dout, no), *d_dw = to_gpu(dw0, nw), *d_db = to_gpu(db0, C_out);

  long lt0, fb0, lt1, fb1;
  ds_cuda_linear_paths(&lt0, &fb0);
  long before = ds_cuda_launch_count();
  gpu->linear_forward(d_out, d_inp, d_w, d_b, B, C_in, C_out);
  long fwd = launches_since(before);
  ds_cuda_linear_paths(&lt1, &fb1);
  snprintf(what, sizeof what, "linear B=%d C_in=%d C_out=%d%s", B, C_in, C_out, misalign ? " misaligned" : "");
  /* 1 launch: cuBLASLt with the bias epilogue; 2: bias broadcast + cuBLAS
   * (a bias not 16-byte aligned, or no algorithm accepted). With every pointer
   * and leading dimension 16-byte aligned the epilogue path must run. */
  int took_lt = lt1 - lt0 == 1 && fb1 == fb0, took_fallback = fb1 - fb0 == 1 && lt1 == lt0;
  if (misalign)
    CHECK(took_fallback && fwd == 2, "%s forward: %ld launches (lt %ld, fallback %ld), want the 2 of bias broadcast + GEMM",
          what, fwd, lt1 - lt0, fb1 - fb0);
  else if (C_in % 4 == 0 && C_out % 4 == 0 && B > 1) /* B = 1 is a GEMV: the epilogue may not be offered */
    CHECK(took_lt && fwd == 1, "%s forward: %ld launches (lt %ld, fallback %ld), want the one cuBLASLt bias-epilogue "
          "matmul on aligned shapes", what, fwd, lt1 - lt0, fb1 - fb0);
  else
    CHECK((took_lt && fwd == 1) || (took_fallback && fwd == 2), "%s forward: %ld launches (lt %ld, fallback %ld)",
          what, fwd, lt1 - lt0, fb1 - fb0);
  linear_lt_runs += took_lt;
  before = ds_cuda_launch_count();
  gpu->linear_backward(d_dinp, d_dw, d_db, d_dout, d_inp, d_w, B, C_in, C_out);
  CHECK(launches_since(before) == 3, "%s backward: %ld launches, want 3", what, launches_since(before));

  float *out_g = from_gpu(d_out, no), *dinp_g = from_gpu(d_dinp, ni), *dw_g = from_gpu(d_dw, nw),
        *db_g = from_gpu(d_db, C_out);
  char w2[160];
  double worst_fwd = 0.0; /* returned for the TF32 comparison: max |gpu-cpu| / sum|terms| */
  for (size_t i = 0; i < no; i++) {
    double r = out_s[i] > 0 ? fabs((double)out_g[i] - out_c[i]) / out_s[i] : 0.0;
    if (r > worst_fwd) worst_fwd = r;
  }
  snprintf(w2, sizeof w2, "%s out", what);
  check_close_array(w2, out_g, out_c, out_s, no, rtol, 0.0);
  snprintf(w2, sizeof w2, "%s dinp", what);
  check_close_array(w2, dinp_g, dinp_c, dinp_s, ni, rtol, 0.0);
  snprintf(w2, sizeof w2, "%s dweight (+=)", what);
  check_close_array(w2, dw_g, dw_c, dw_s, nw, rtol, 0.0);
  snprintf(w2, sizeof w2, "%s dbias (+=)", what);
  check_close_array(w2, db_g, db_c, db_s, C_out, rtol, 0.0);

  if (check_no_dinp) { /* dinp == NULL: only the parameter gradients, one launch fewer */
    gpu->upload(d_dw, dw0, nw * sizeof(float));
    gpu->upload(d_db, db0, C_out * sizeof(float));
    before = ds_cuda_launch_count();
    gpu->linear_backward(NULL, d_dw, d_db, d_dout, d_inp, d_w, B, C_in, C_out);
    CHECK(launches_since(before) == 2, "%s backward without dinp: %ld launches, want 2", what, launches_since(before));
    free(dw_g);
    free(db_g);
    dw_g = from_gpu(d_dw, nw);
    db_g = from_gpu(d_db, C_out);
    snprintf(w2, sizeof w2, "%s dweight (dinp NULL)", what);
    check_close_array(w2, dw_g, dw_c, dw_s, nw, rtol, 0.0);
    snprintf(w2, sizeof w2, "%s dbias (dinp NULL)", what);
    check_close_array(w2, db_g, db_c, db_s, C_out, rtol, 0.0);
  }

  float *hb[] = {inp, w, b, dout, dw0, db0, out_c, dinp_c, dw_c, db_c, a_inp, a_w, a_b, a_dout, out_s, dinp_s,
                 dw_s, db_s, nan_out, out_g, dinp_g, dw_g, db_g};
  for (size_t i = 0; i < sizeof hb / sizeof hb[0]; i++) free(hb[i]);
  float *db[] = {inp_buf, w_buf, b_buf, d_out, d_dinp, d_dout, d_dw, d_db};
  for (size_t i = 0; i < sizeof db / sizeof db[0]; i++) gpu->free(db[i]);
  return worst_fwd;
}

static void test_linear(void) {
  /* every batch with small widths and width 1024 on one side; the 1000x1024
   * products only at B <= 129, so the CPU reference (maybe the plain C GEMM on
   * a GPU machine without OpenBLAS) stays within seconds */
  static const int pairs[][2] = {{1, 1}, {7, 10}, {10, 7}, {1, 1024}, {1024, 1}, {1024, 10}, {1000, 1024}, {1024, 1000}};
  int n_pairs = (int)(sizeof pairs / sizeof pairs[0]);
  int k = 0;
  for (int bi = 0; bi < NB; bi++)
    for (int p = 0; p < n_pairs; p++) {
      int B = batches[bi], C_in = pairs[p][0], C_out = pairs[p][1];
      if ((size_t)B * C_in * C_out > (size_t)150000000) continue;
      linear_case(B, C_in, C_out, k % 2, k % 5 == 0, 1e-5);
      k++;
    }
  /* TF32: the switch must change the arithmetic (larger error than FP32, yet
   * within TF32's 10-bit mantissa: inputs rounded to 2^-11 relative, so at
   * most ~2^-10 of sum|terms|) and switching back must restore FP32. */
  int dev = 0, major = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  if (major >= 8) {
    double e32 = linear_case(32, 1000, 1024, 0, 0, 1e-5);
    ds_cuda_set_tf32(1);
    double etf = linear_case(32, 1000, 1024, 0, 0, 2e-3);
    ds_cuda_set_tf32(0);
    double eback = linear_case(32, 1000, 1024, 0, 0, 1e-5);
    printf("linear 32x1000->1024: max |gpu-cpu|/sum|terms| FP32 %.3g, TF32 %.3g\n", e32, etf);
    CHECK(etf > 10.0 * e32 && etf > 1e-6, "TF32 on: error %.3g not clearly above FP32's %.3g (TF32 not used?)", etf, e32);
    CHECK(etf < 2e-3, "TF32 on: error %.3g beyond TF32 rounding (2^-10 of sum|terms|)", etf);
    CHECK(eback <= 1e-5, "TF32 off again: error %.3g, want FP32 (<= 1e-5)", eback);
  }
  printf("linear: %ld forwards ran as the cuBLASLt bias-epilogue matmul\n", linear_lt_runs);
}

/* ---- activations ----------------------------------------------------------------
 * relu/leaky forward and all backwards: bit for bit (same operations, no FMA).
 * tanh/sigmoid forward: CUDA's tanhf/expf are within 2 ulp and glibc's within
 * 1-2 ulp, so the two differ by at most ~4 ulp = 4 * 2^-23 relative; 1e-6
 * (~8 ulp) leaves margin; a wrong function is off by > 1e-2. */
static void test_activation(void) {
  static const size_t sizes[] = {1, 7, 129 * 10, (size_t)4096 * 1024 + 3};
  static const char *names[] = {"relu", "leaky_relu", "tanh", "sigmoid"};
  for (int si = 0; si < 4; si++)
    for (int a = 0; a < 4; a++) {
      size_t n = sizes[si];
      ds_activation act = (ds_activation)a;
      float slope = 0.01f;
      float *x = hvec(n), *dy = hvec(n);
      fill(x, n, -6.0, 6.0);
      if (n > 4) {
        x[0] = 0.0f;
        x[1] = -0.0f;
        x[2] = 1e-30f;
      }
      fill(dy, n, -1.0, 1.0);
      float *y_c = hvec(n), *dx_c = hvec(n);
      cpu->activation_forward(y_c, x, n, act, slope);
      cpu->activation_backward(dx_c, dy, y_c, n, act, slope);
      float *d_x = to_gpu(x, n), *d_y = dvec(n), *d_dy = to_gpu(dy, n), *d_yc = to_gpu(y_c, n), *d_dx = dvec(n);
      long before = ds_cuda_launch_count();
      gpu->activation_forward(d_y, d_x, n, act, slope);
      gpu->activation_backward(d_dx, d_dy, d_yc, n, act, slope); /* from the CPU's y: isolates backward */
      CHECK(launches_since(before) == 2, "activation: %ld launches for forward+backward, want 2", launches_since(before));
      float *y_g = from_gpu(d_y, n), *dx_g = from_gpu(d_dx, n);
      char what[96];
      snprintf(what, sizeof what, "%s forward n=%zu", names[a], n);
      if (act == DS_ACT_RELU || act == DS_ACT_LEAKY_RELU) check_equal_array(what, y_g, y_c, n);
      else check_close_array(what, y_g, y_c, NULL, n, 1e-6, 1e-30);
      snprintf(what, sizeof what, "%s backward n=%zu", names[a], n);
      check_equal_array(what, dx_g, dx_c, n);
      /* in place, as the trainer uses it: dinp aliases dout */
      gpu->activation_backward(d_dy, d_dy, d_yc, n, act, slope);
      free(dx_g);
      dx_g = from_gpu(d_dy, n);
      snprintf(what, sizeof what, "%s backward in place n=%zu", names[a], n);
      check_equal_array(what, dx_g, dx_c, n);
      float *hb[] = {x, dy, y_c, dx_c, y_g, dx_g};
      for (int i = 0; i < 6; i++) free(hb[i]);
      float *db[] = {d_x, d_y, d_dy, d_yc, d_dx};
      for (int i = 0; i < 5; i++) gpu->free(db[i]);
    }
}

/* ---- batchnorm -------------------------------------------------------------------
 * Statistics are reduced in double on both sides (different orders: ~1e-16
 * relative), then rounded to float: mean, rstd and the running statistics
 * agree to 1 ulp (2.5e-7 relative allows 2). With those, out differs by the
 * rounding of (x - mean) when mean differs by an ulp: bounded by
 * 1e-6 * |gamma| * rstd * (|x| + |mean|) + 1e-6 * |beta| (several ulp).
 * Backward: xhat is bit-identical (same saved mean/rstd); k1, k2 may differ
 * by an ulp, so dinp within 2e-6 of rstd * (|gamma dy| + |k1| + |xhat k2|);
 * dgamma/dbeta within 1e-6 of their |start| + sum|terms|. A biased/unbiased
 * or a missing term is > 1e-3 off at these shapes. */
static void batchnorm_case(int B, int C, int training, int in_place) {
  size_t n = (size_t)B * C;
  float *x = hvec(n), *gamma = hvec(C), *beta = hvec(C), *rm0 = hvec(C), *rv0 = hvec(C), *dy = hvec(n);
  for (int c = 0; c < C; c++) {
    gamma[c] = unif(0.5, 1.5);
    beta[c] = unif(-0.5, 0.5);
    rm0[c] = unif(-1.0, 1.0);
    rv0[c] = unif(0.5, 2.0);
  }
  for (int b = 0; b < B; b++)
    for (int c = 0; c < C; c++) x[(size_t)b * C + c] = 3.0f + (1.0f + (float)(c % 5)) * unif(-1.0, 1.0);
  fill(dy, n, -1.0, 1.0);
  const float momentum = 0.1f, eps = 1e-5f;
  float *out_c = hvec(n), *mean_c = hvec(C), *rstd_c = hvec(C), *rm_c = hcopy(rm0, C), *rv_c = hcopy(rv0, C);
  cpu->batchnorm_forward(out_c, mean_c, rstd_c, rm_c, rv_c, x, gamma, beta, B, C, training, momentum, eps);

  float *d_x = to_gpu(x, n), *d_gamma = to_gpu(gamma, C), *d_beta = to_gpu(beta, C);
  float *d_rm = to_gpu(rm0, C), *d_rv = to_gpu(rv0, C), *d_mean = dvec(C), *d_rstd = dvec(C);
  float *d_out = in_place ? d_x : dvec(n);
  long before = ds_cuda_launch_count();
  gpu->batchnorm_forward(d_out, d_mean, d_rstd, d_rm, d_rv, d_x, d_gamma, d_beta, B, C, training, momentum, eps);
  CHECK(launches_since(before) == 1, "batchnorm forward: %ld launches, want 1", launches_since(before));
  float *out_g = from_gpu(d_out, n), *rm_g = from_gpu(d_rm, C), *rv_g = from_gpu(d_rv, C);
  char what[128], w2[160];
  snprintf(what, sizeof what, "batchnorm B=%d C=%d %s%s", B, C, training ? "training" : "inference",
           in_place ? " in place" : "");
  /* the statistics each output was normalised with */
  float *mu = training ? mean_c : rm0;
  float *out_s = hvec(n);
  for (int b = 0; b < B; b++)
    for (int c = 0; c < C; c++) {
      size_t i = (size_t)b * C + c;
      double rs = training ? rstd_c[c] : 1.0 / sqrt((double)rv0[c] + eps);
      out_s[i] = (float)(fabs((double)gamma[c]) * rs * (fabs((double)x[i]) + fabs((double)mu[c])) +
                         fabs((double)beta[c]));
    }
  snprintf(w2, sizeof w2, "%s out", what);
  check_close_array(w2, out_g, out_c, out_s, n, 1e-6, 0.0);
  snprintf(w2, sizeof w2, "%s running_mean", what);
  check_close_array(w2, rm_g, rm_c, NULL, C, 2.5e-7, 1e-12);
  snprintf(w2, sizeof w2, "%s running_var", what);
  check_close_array(w2, rv_g, rv_c, NULL, C, 2.5e-7, 1e-12);
  if (training) {
    float *mean_g = from_gpu(d_mean, C), *rstd_g = from_gpu(d_rstd, C);
    snprintf(w2, sizeof w2, "%s mean", what);
    check_close_array(w2, mean_g, mean_c, NULL, C, 2.5e-7, 1e-12);
    snprintf(w2, sizeof w2, "%s rstd", what);
    check_close_array(w2, rstd_g, rstd_c, NULL, C, 2.5e-7, 0.0);
    free(mean_g);
    free(rstd_g);

    /* backward from the CPU's saved statistics (isolates the backward) */
    float *dg0 = hvec(C), *db0 = hvec(C);
    fill(dg0, C, -1.0, 1.0);
    fill(db0, C, -1.0, 1.0);
    float *dx_c = hvec(n), *dg_c = hcopy(dg0, C), *db_c = hcopy(db0, C);
    cpu->batchnorm_backward(dx_c, dg_c, db_c, dy, x, mean_c, rstd_c, gamma, B, C);
    float *d_dy = to_gpu(dy, n), *d_dg = to_gpu(dg0, C), *d_db = to_gpu(db0, C);
    float *d_meanc = to_gpu(mean_c, C), *d_rstdc = to_gpu(rstd_c, C), *d_xc = to_gpu(x, n);
    float *d_dx = in_place ? d_dy : dvec(n);
    before = ds_cuda_launch_count();
    gpu->batchnorm_backward(d_dx, d_dg, d_db, d_dy, d_xc, d_meanc, d_rstdc, d_gamma, B, C);
    CHECK(launches_since(before) == 1, "batchnorm backward: %ld launches, want 1", launches_since(before));
    float *dx_g = from_gpu(d_dx, n), *dg_g = from_gpu(d_dg, C), *db_g = from_gpu(d_db, C);
    float *dx_s = hvec(n), *dg_s = habs(dg0, C), *db_s = habs(db0, C);
    for (int c = 0; c < C; c++) {
      double sdy = 0.0, sdyx = 0.0;
      for (int b = 0; b < B; b++) {
        size_t i = (size_t)b * C + c;
        double xhat = ((double)x[i] - mean_c[c]) * rstd_c[c];
        sdy += dy[i];
        sdyx += dy[i] * xhat;
        dg_s[c] += (float)fabs(dy[i] * xhat);
        db_s[c] += fabsf(dy[i]);
      }
      double k1 = fabs(gamma[c] * sdy / B), k2 = fabs(gamma[c] * sdyx / B);
      for (int b = 0; b < B; b++) {
        size_t i = (size_t)b * C + c;
        double xhat = ((double)x[i] - mean_c[c]) * rstd_c[c];
        dx_s[i] = (float)(rstd_c[c] * (fabs((double)gamma[c] * dy[i]) + k1 + fabs(xhat) * k2));
      }
    }
    snprintf(w2, sizeof w2, "%s dinp", what);
    check_close_array(w2, dx_g, dx_c, dx_s, n, 2e-6, 0.0);
    snprintf(w2, sizeof w2, "%s dgamma (+=)", what);
    check_close_array(w2, dg_g, dg_c, dg_s, C, 1e-6, 0.0);
    snprintf(w2, sizeof w2, "%s dbeta (+=)", what);
    check_close_array(w2, db_g, db_c, db_s, C, 1e-6, 0.0);
    float *hb[] = {dg0, db0, dx_c, dg_c, db_c, dx_g, dg_g, db_g, dx_s, dg_s, db_s};
    for (size_t i = 0; i < sizeof hb / sizeof hb[0]; i++) free(hb[i]);
    float *db[] = {d_dy, d_dg, d_db, d_meanc, d_rstdc, d_xc};
    for (size_t i = 0; i < sizeof db / sizeof db[0]; i++) gpu->free(db[i]);
    if (!in_place) gpu->free(d_dx);
  }
  float *hb[] = {x, gamma, beta, rm0, rv0, dy, out_c, mean_c, rstd_c, rm_c, rv_c, out_g, rm_g, rv_g, out_s};
  for (size_t i = 0; i < sizeof hb / sizeof hb[0]; i++) free(hb[i]);
  float *db[] = {d_x, d_gamma, d_beta, d_rm, d_rv, d_mean, d_rstd};
  for (size_t i = 0; i < sizeof db / sizeof db[0]; i++) gpu->free(db[i]);
  if (!in_place) gpu->free(d_out);
}

static void test_batchnorm(void) {
  for (int bi = 0; bi < NB; bi++)
    for (int wi = 0; wi < NW; wi++) {
      int B = batches[bi], C = widths[wi];
      if (B > 1) batchnorm_case(B, C, 1, 0);
      if (B == 1 || B == 129) batchnorm_case(B, C, 0, 0);
    }
  batchnorm_case(129, 10, 1, 1); /* out aliases inp, dinp aliases dout */
}

/* ---- dropout: masks and values bit for bit ---------------------------------------
 * Plus one check that does not lean on the CPU twin: the kept fraction of a
 * large mask is 1-p within 5 binomial standard deviations. */
static void test_dropout(void) {
  static const size_t sizes[] = {1, 3, 4, 5, 7, 129 * 10, (size_t)4096 * 1000 + 3};
  static const float ps[] = {0.0f, 0.1f, 0.5f, 0.9f}; /* p = 0 keeps everything */
  const uint64_t seed = 0xfedcba9876543210ull, step = (1ull << 32) + 3;
  for (int si = 0; si < 7; si++)
    for (int pi = 0; pi < 4; pi++)
      for (int form = 0; form < 2; form++)
        for (int misalign = 0; misalign < 2; misalign++) {
          size_t n = sizes[si];
          if (n > 1000000 && misalign) continue; /* the scalar path is covered by the small sizes */
          float p = ps[pi];
          ds_dropout_form f = (ds_dropout_form)form;
          uint32_t stream = DS_STREAM_DROPOUT + 1 + (uint32_t)si;
          float *x = hvec(n), *dy = hvec(n);
          fill(x, n, -2.0, 2.0);
          fill(dy, n, -1.0, 1.0);
          float *y_c = hvec(n), *yt_c = hvec(n), *dx_c = hvec(n);
          cpu->dropout_forward(y_c, x, n, p, f, 1, seed, stream, 0, &step);
          cpu->dropout_forward(yt_c, x, n, p, f, 0, seed, stream, 0, &step);
          cpu->dropout_backward(dx_c, dy, n, p, f, seed, stream, 0, &step);
          uint64_t *d_step = (uint64_t *)gpu->alloc(sizeof step, "the dropout key"); /* read on the device */
          gpu->upload(d_step, &step, sizeof step);
          float *xb = dvec(n + 1), *yb = dvec(n + 1), *dyb = dvec(n + 1), *dxb = dvec(n + 1);
          float *d_x = xb + misalign, *d_y = yb + misalign, *d_dy = dyb + misalign, *d_dx = dxb + misalign;
          gpu->upload(d_x, x, n * sizeof(float));
          gpu->upload(d_dy, dy, n * sizeof(float));
          long before = ds_cuda_launch_count();
          gpu->dropout_forward(d_y, d_x, n, p, f, 1, seed, stream, 0, d_step);
          gpu->dropout_backward(d_dx, d_dy, n, p, f, seed, stream, 0, d_step);
          CHECK(launches_since(before) == 2, "dropout: %ld launches for forward+backward, want 2", launches_since(before));
          float *y_g = from_gpu(d_y, n), *dx_g = from_gpu(d_dx, n);
          char what[128];
          snprintf(what, sizeof what, "dropout n=%zu p=%g form=%d%s", n, (double)p, form, misalign ? " misaligned" : "");
          check_equal_array(what, y_g, y_c, n);
          char w2[160];
          snprintf(w2, sizeof w2, "%s backward", what);
          check_equal_array(w2, dx_g, dx_c, n);
          /* inference */
          gpu->dropout_forward(d_y, d_x, n, p, f, 0, seed, stream, 0, NULL); /* inference reads no key */
          free(y_g);
          y_g = from_gpu(d_y, n);
          snprintf(w2, sizeof w2, "%s inference", what);
          check_equal_array(w2, y_g, yt_c, n);
          /* in place, as the trainer's backward uses it */
          gpu->dropout_backward(d_dy, d_dy, n, p, f, seed, stream, 0, d_step);
          free(dx_g);
          dx_g = from_gpu(d_dy, n);
          snprintf(w2, sizeof w2, "%s backward in place", what);
          check_equal_array(w2, dx_g, dx_c, n);
          if (n > 1000000 && !misalign) {
            size_t kept = 0;
            for (size_t i = 0; i < n; i++) kept += dx_g[i] != 0.0f; /* dy is never exactly 0 here */
            double frac = (double)kept / n, sd = sqrt(p * (1.0 - p) / n);
            CHECK(fabs(frac - (1.0 - p)) <= 5.0 * sd, "%s: kept fraction %.5f, want %.5f +- %.5f", what, frac,
                  1.0 - p, 5.0 * sd);
          }
          float *hb[] = {x, dy, y_c, yt_c, dx_c, y_g, dx_g};
          for (int i = 0; i < 7; i++) free(hb[i]);
          float *db[] = {xb, yb, dyb, dxb};
          for (int i = 0; i < 4; i++) gpu->free(db[i]);
          gpu->free(d_step);
        }
}

/* ---- a batch split across processes (host/dist) ----------------------------------- *
 * Dropout and the fused hidden layer with element0 (a slice that starts inside
 * a Philox group: 3 rows of 33) draw the CPU's masks bit for bit; the phased
 * BatchNorm of --sync-bn (sums, forward, backward sums, backward) agrees with
 * the CPU's phases (column sums in another order: 1e-5). */
static void test_split_batch(void) {
  const int B = 129, C = 33;
  size_t n = (size_t)B * C, e0 = 3 * (size_t)C;
  float *x = hvec(n), *g = hvec(n);
  fill(x, n, -2.0, 2.5);
  fill(g, n, -1.0, 1.0);
  uint64_t step = 99, *d_step = (uint64_t *)gpu->alloc(sizeof step, "step");
  gpu->upload(d_step, &step, sizeof step);
  float *d_x = to_gpu(x, n), *d_y = dvec(n);
  for (int k = 0; k < 2; k++) {
    uint64_t off = k == 0 ? e0 : 4 * e0; /* inside a group, and aligned */
    float *y = hvec(n);
    cpu->dropout_forward(y, x, n, 0.3f, DS_DROPOUT_INVERTED, 1, 5, 7, off, &step);
    gpu->dropout_forward(d_y, d_x, n, 0.3f, DS_DROPOUT_INVERTED, 1, 5, 7, off, d_step);
    float *got = from_gpu(d_y, n);
    check_equal_array(k == 0 ? "dropout, element0 % 4 = 3" : "dropout, element0 % 4 = 0", got, y, n);
    ds_hidden_spec hs = {0};
    hs.act = DS_ACT_RELU;
    hs.p = 0.3f;
    hs.seed = 5;
    hs.stream = 8;
    hs.element0 = off;
    float *a = hvec(n), *o = hvec(n), *d_a = dvec(n), *d_o = dvec(n);
    cpu->hidden_forward(a, o, NULL, NULL, NULL, NULL, x, NULL, NULL, B, C, 1, &hs, &step);
    gpu->hidden_forward(d_a, d_o, NULL, NULL, NULL, NULL, d_x, NULL, NULL, B, C, 1, &hs, d_step);
    float *go = from_gpu(d_o, n);
    check_equal_array("hidden layer dropout with element0", go, o, n);
    free(y), free(got), free(a), free(o), free(go);
    gpu->free(d_a), gpu->free(d_o);
  }
  /* phased BatchNorm, one part (count = B) */
  float gamma[33], beta[33], rm[33] = {0}, rv[33], mean[33], rstd[33], dgam[33] = {0}, dbet[33] = {0};
  fill(gamma, C, 0.5, 1.5);
  fill(beta, C, -0.5, 0.5);
  for (int c = 0; c < C; c++) rv[c] = 1.0f;
  double sums[66] = {0}, bsums[66];
  cpu->batchnorm_sums(sums, x, B, C, 0, B);
  cpu->batchnorm_sums(sums, x, B, C, 1, B);
  float *out = hvec(n), *dx = hvec(n);
  cpu->batchnorm_forward_synced(out, mean, rstd, rm, rv, x, gamma, beta, sums, B, C, B, 0.1f, 1e-5f);
  cpu->batchnorm_backward_sums(bsums, dgam, dbet, g, x, mean, rstd, B, C);
  cpu->batchnorm_backward_synced(dx, g, x, mean, rstd, gamma, bsums, B, C, B);
  double *d_sums = (double *)gpu->alloc(66 * sizeof(double), "sums");
  float *d_gamma = to_gpu(gamma, C), *d_beta = to_gpu(beta, C), *d_mean = dvec(C), *d_rstd = dvec(C);
  float zeros[33] = {0}, ones[33];
  for (int c = 0; c < C; c++) ones[c] = 1.0f;
  float *d_rm = to_gpu(zeros, C), *d_rv = to_gpu(ones, C), *d_dg = to_gpu(zeros, C), *d_db = to_gpu(zeros, C);
  float *d_g = to_gpu(g, n), *d_dx = dvec(n);
  gpu->batchnorm_sums(d_sums, d_x, B, C, 0, B);
  gpu->batchnorm_sums(d_sums, d_x, B, C, 1, B);
  gpu->batchnorm_forward_synced(d_y, d_mean, d_rstd, d_rm, d_rv, d_x, d_gamma, d_beta, d_sums, B, C, B, 0.1f, 1e-5f);
  gpu->batchnorm_backward_sums(d_sums + 2 * C, d_dg, d_db, d_g, d_x, d_mean, d_rstd, B, C);
  gpu->batchnorm_backward_synced(d_dx, d_g, d_x, d_mean, d_rstd, d_gamma, d_sums + 2 * C, B, C, B);
  float *got_out = from_gpu(d_y, n), *got_dx = from_gpu(d_dx, n), *got_rv = from_gpu(d_rv, C), *got_dg = from_gpu(d_dg, C);
  float *scale = habs(dx, n);
  check_close_array("--sync-bn forward (one part)", got_out, out, NULL, n, 1e-5, 1e-6);
  check_close_array("--sync-bn running var", got_rv, rv, NULL, C, 1e-5, 1e-6);
  check_close_array("--sync-bn backward dx", got_dx, dx, scale, n, 1e-4, 1e-6);
  check_close_array("--sync-bn dgamma", got_dg, dgam, NULL, C, 1e-4, 1e-5);
  free(x), free(g), free(out), free(dx), free(got_out), free(got_dx), free(got_rv), free(got_dg), free(scale);
  void *bufs[] = {d_step, d_x, d_y, d_sums, d_gamma, d_beta, d_mean, d_rstd, d_rm, d_rv, d_dg, d_db, d_g, d_dx};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gpu->free(bufs[i]);
}

/* ---- the fused hidden layer (BatchNorm -> activation -> dropout) ------------------------
 * hidden_forward / hidden_backward are one kernel each; they must give the
 * separate CUDA ops (batchnorm, activation, dropout, each checked against the
 * CPU above) bit for bit, since every float is computed by the same code in the
 * same order, and the CPU twin (the separate CPU ops) within the tolerance of
 * those: 1e-4 relative on the outputs of tanh/sigmoid and BatchNorm (ulps of
 * tanhf/expf and the order of the column sums). */
static void hidden_case(int B, int C, int bn, ds_activation act, float p, int training) {
  size_t n = (size_t)B * C;
  ds_hidden_spec hs = {0};
  hs.batchnorm = bn;
  hs.bn_momentum = 0.1f;
  hs.bn_eps = 1e-5f;
  hs.act = act;
  hs.slope = 0.01f;
  hs.p = p;
  hs.form = DS_DROPOUT_INVERTED;
  hs.seed = 0x5eedull + (uint64_t)C;
  hs.stream = DS_STREAM_DROPOUT + 2;
  const uint64_t step = 41;
  int has_dropout = p > 0.0f;
  float *z = hvec(n), *dout = hvec(n), *gamma = hvec(C), *beta = hvec(C), *rm = hvec(C), *rv = hvec(C);
  fill(z, n, -2.0, 2.0);
  fill(dout, n, -1.0, 1.0);
  fill(gamma, C, 0.5, 1.5);
  fill(beta, C, -0.5, 0.5);
  fill(rv, C, 0.5, 2.0);
  /* the CPU twin */
  float *a_c = hvec(n), *o_c = hvec(n), *mean_c = hvec(C), *rstd_c = hvec(C), *rm_c = hcopy(rm, C), *rv_c = hcopy(rv, C);
  float *dz_c = hvec(n), *dg_c = hvec(C), *db_c = hvec(C), *scratch_c = hcopy(dout, n);
  cpu->hidden_forward(a_c, has_dropout ? o_c : NULL, mean_c, rstd_c, rm_c, rv_c, z, gamma, beta, B, C, training, &hs, &step);
  if (training)
    cpu->hidden_backward(dz_c, dg_c, db_c, scratch_c, a_c, z, mean_c, rstd_c, gamma, B, C, has_dropout, &hs, &step);
  /* fused CUDA, and the separate CUDA ops on a second set of buffers */
  uint64_t *d_step = (uint64_t *)gpu->alloc(sizeof step, "the dropout key");
  gpu->upload(d_step, &step, sizeof step);
  float *d_z = to_gpu(z, n), *d_gamma = to_gpu(gamma, C), *d_beta = to_gpu(beta, C);
  float *d_a[2], *d_o[2], *d_mean[2], *d_rstd[2], *d_rm[2], *d_rv[2], *d_dz[2], *d_dg[2], *d_db[2], *d_dout[2];
  for (int k = 0; k < 2; k++) {
    d_a[k] = dvec(n), d_o[k] = dvec(n), d_mean[k] = dvec(C), d_rstd[k] = dvec(C);
    d_rm[k] = to_gpu(rm, C), d_rv[k] = to_gpu(rv, C), d_dz[k] = dvec(n), d_dg[k] = dvec(C), d_db[k] = dvec(C);
    d_dout[k] = to_gpu(dout, n);
  }
  long before = ds_cuda_launch_count();
  gpu->hidden_forward(d_a[0], has_dropout ? d_o[0] : NULL, d_mean[0], d_rstd[0], d_rm[0], d_rv[0], d_z, d_gamma, d_beta,
                      B, C, training, &hs, d_step);
  CHECK(launches_since(before) == 1, "hidden_forward: %ld launches, want 1", launches_since(before));
  if (bn) {
    gpu->batchnorm_forward(d_a[1], d_mean[1], d_rstd[1], d_rm[1], d_rv[1], d_z, d_gamma, d_beta, B, C, training,
                           hs.bn_momentum, hs.bn_eps);
    gpu->activation_forward(d_a[1], d_a[1], n, act, hs.slope);
  } else {
    gpu->activation_forward(d_a[1], d_z, n, act, hs.slope);
  }
  if (has_dropout) gpu->dropout_forward(d_o[1], d_a[1], n, p, hs.form, training, hs.seed, hs.stream, 0, d_step);
  if (training) {
    before = ds_cuda_launch_count();
    gpu->hidden_backward(d_dz[0], d_dg[0], d_db[0], d_dout[0], d_a[0], d_z, d_mean[0], d_rstd[0], d_gamma, B, C,
                         has_dropout, &hs, d_step);
    CHECK(launches_since(before) == 1, "hidden_backward: %ld launches, want 1", launches_since(before));
    if (has_dropout) gpu->dropout_backward(d_dout[1], d_dout[1], n, p, hs.form, hs.seed, hs.stream, 0, d_step);
    if (bn) {
      gpu->activation_backward(d_dout[1], d_dout[1], d_a[1], n, act, hs.slope);
      gpu->batchnorm_backward(d_dz[1], d_dg[1], d_db[1], d_dout[1], d_z, d_mean[1], d_rstd[1], d_gamma, B, C);
    } else {
      gpu->activation_backward(d_dz[1], d_dout[1], d_a[1], n, act, hs.slope);
    }
  }
  char what[160];
  snprintf(what, sizeof what, "hidden B=%d C=%d bn=%d act=%d p=%g %s", B, C, bn, (int)act, (double)p,
           training ? "training" : "inference");
  struct { const char *name; float **d; const float *cpu; size_t len; int used; } outs[] = {
    {"a", d_a, a_c, n, 1}, {"o", d_o, o_c, n, has_dropout}, {"running_mean", d_rm, rm_c, (size_t)C, bn},
    {"running_var", d_rv, rv_c, (size_t)C, bn}, {"dz", d_dz, dz_c, n, training},
    {"dgamma", d_dg, dg_c, (size_t)C, bn && training}, {"dbeta", d_db, db_c, (size_t)C, bn && training}};
  for (size_t k = 0; k < sizeof outs / sizeof outs[0]; k++) {
    if (!outs[k].used) continue;
    float *fused = from_gpu(outs[k].d[0], outs[k].len), *separate = from_gpu(outs[k].d[1], outs[k].len);
    char w2[220];
    snprintf(w2, sizeof w2, "%s %s: fused vs separate CUDA ops", what, outs[k].name);
    check_equal_array(w2, fused, separate, outs[k].len);
    snprintf(w2, sizeof w2, "%s %s: fused CUDA vs CPU", what, outs[k].name);
    float *scale = habs(outs[k].cpu, outs[k].len);
    float peak = 0.0f;
    for (size_t i = 0; i < outs[k].len; i++) peak = scale[i] > peak ? scale[i] : peak;
    check_close_array(w2, fused, outs[k].cpu, NULL, outs[k].len, 1e-4, 1e-5 * (peak > 1.0f ? peak : 1.0f));
    free(fused);
    free(separate);
    free(scale);
  }
  float *hb[] = {z, dout, gamma, beta, rm, rv, a_c, o_c, mean_c, rstd_c, rm_c, rv_c, dz_c, dg_c, db_c, scratch_c};
  for (size_t i = 0; i < sizeof hb / sizeof hb[0]; i++) free(hb[i]);
  for (int k = 0; k < 2; k++) {
    float *db[] = {d_a[k], d_o[k], d_mean[k], d_rstd[k], d_rm[k], d_rv[k], d_dz[k], d_dg[k], d_db[k], d_dout[k]};
    for (size_t i = 0; i < sizeof db / sizeof db[0]; i++) gpu->free(db[i]);
  }
  gpu->free(d_z);
  gpu->free(d_gamma);
  gpu->free(d_beta);
  gpu->free(d_step);
}

static void test_hidden(void) {
  static const int shapes[][2] = {{3, 7}, {129, 10}, {128, 1024}, {4096, 33}, {2, 1}};
  static const ds_activation acts[] = {DS_ACT_RELU, DS_ACT_LEAKY_RELU, DS_ACT_TANH, DS_ACT_SIGMOID};
  for (int s = 0; s < 5; s++)
    for (int bn = 0; bn < 2; bn++)
      for (int a = 0; a < 4; a++)
        for (int drop = 0; drop < 2; drop++)
          for (int training = 0; training < 2; training++)
            hidden_case(shapes[s][0], shapes[s][1], bn, acts[a], drop ? 0.3f : 0.0f, training);
}

/* ---- softmax + cross-entropy ---------------------------------------------------------
 * Both sides compute the same formulas in float; the sum of C exponentials is
 * taken in different orders (typically ~2^-24 * sqrt(C) relative) and
 * expf/logf differ by an ulp or two. Per row the loss is therefore within
 * 1e-6 * (|lse| + |l_y| + sqrt(C)) (>= 10x the expected error), the loss sum
 * within the sum of those, and each dlogit within
 * |scale| * (prob * 2e-6 * (|l| + |lse| + sqrt(C)) + 2.5e-7 * prob + 1.2e-7 * |prob - onehot|).
 * The correct count compares identical floats by the same rule: exact.
 * A wrong label, max or scale is off by far more. */
static void softmax_case(int B, int C, int in_place) {
  size_t n = (size_t)B * C;
  float *l = hvec(n);
  int32_t *y = (int32_t *)ds_xcalloc(B, sizeof(int32_t), "labels");
  for (int b = 0; b < B; b++) {
    float base = b % 5 == 0 ? 80.0f : 0.0f; /* exp would overflow without the max shift */
    float *row = l + (size_t)b * C;
    for (int c = 0; c < C; c++) row[c] = base + unif(-4.0, 4.0);
    int m = 0;
    for (int c = 1; c < C; c++)
      if (row[c] > row[m]) m = c;
    if (C >= 3 && b % 3 == 0) row[(m + C / 2) % C] = row[m]; /* a tie for the max, before or after it */
    y[b] = b % 4 == 0 ? m : (int32_t)(((check_uniform() + 1.0) * 0.5) * C) % C;
  }
  const float grad_scale = 1.0f / (float)B;
  double acc_c[2] = {1.5, 2.0}, acc_g[2] = {1.5, 2.0};
  float *dl_c = hvec(n);
  cpu->softmax_xent(dl_c, acc_c, l, y, B, C, grad_scale);

  float *d_l = to_gpu(l, n), *d_dl = in_place ? d_l : dvec(n);
  int32_t *d_y = (int32_t *)gpu->alloc(B * sizeof(int32_t), "labels");
  double *d_acc = (double *)gpu->alloc(2 * sizeof(double), "acc");
  gpu->upload(d_y, y, B * sizeof(int32_t));
  gpu->upload(d_acc, acc_g, sizeof acc_g);
  long before = ds_cuda_launch_count();
  gpu->softmax_xent(d_dl, d_acc, d_l, d_y, B, C, grad_scale);
  CHECK(launches_since(before) == 1, "softmax_xent: %ld launches, want 1", launches_since(before));
  gpu->download(acc_g, d_acc, sizeof acc_g);
  float *dl_g = from_gpu(d_dl, n);

  double loss_tol = 0.0;
  float *dl_s = hvec(n);
  for (int b = 0; b < B; b++) {
    const float *row = l + (size_t)b * C;
    double mx = row[0], s = 0.0;
    for (int c = 1; c < C; c++) mx = row[c] > mx ? row[c] : mx;
    for (int c = 0; c < C; c++) s += exp(row[c] - mx);
    double lse = mx + log(s);
    loss_tol += 1e-6 * (fabs(lse) + fabs((double)row[y[b]]) + sqrt((double)C));
    for (int c = 0; c < C; c++) {
      double prob = exp(row[c] - lse), onehot = c == y[b] ? 1.0 : 0.0;
      dl_s[(size_t)b * C + c] = (float)(fabs(grad_scale) * (prob * 2e-6 * (fabs((double)row[c]) + fabs(lse) + sqrt((double)C)) +
                                                            2.5e-7 * prob + 1.2e-7 * fabs(prob - onehot)));
    }
  }
  char what[96], w2[128];
  snprintf(what, sizeof what, "softmax_xent B=%d C=%d%s", B, C, in_place ? " in place" : "");
  CHECK(fabs(acc_g[0] - acc_c[0]) <= loss_tol, "%s: loss sum %.12g, CPU %.12g (diff %.3g > %.3g)", what, acc_g[0],
        acc_c[0], fabs(acc_g[0] - acc_c[0]), loss_tol);
  CHECK(acc_g[1] == acc_c[1], "%s: correct count %.0f, CPU %.0f (accumulated onto 2)", what, acc_g[1], acc_c[1]);
  snprintf(w2, sizeof w2, "%s dlogits", what);
  check_close_array(w2, dl_g, dl_c, dl_s, n, 1.0, 0.0);

  if (!in_place) { /* evaluation: no dlogits, accumulators only */
    double e_c[2] = {0.0, 0.0}, e_g[2] = {0.0, 0.0};
    cpu->softmax_xent(NULL, e_c, l, y, B, C, 0.0f);
    gpu->zero(d_acc, sizeof e_g);
    gpu->softmax_xent(NULL, d_acc, d_l, d_y, B, C, 0.0f);
    gpu->download(e_g, d_acc, sizeof e_g);
    CHECK(fabs(e_g[0] - e_c[0]) <= loss_tol && e_g[1] == e_c[1], "%s without dlogits: loss %.12g / %.0f, CPU %.12g / %.0f",
          what, e_g[0], e_g[1], e_c[0], e_c[1]);
  }
  free(l);
  free(y);
  free(dl_c);
  free(dl_g);
  free(dl_s);
  gpu->free(d_l);
  if (!in_place) gpu->free(d_dl);
  gpu->free(d_y);
  gpu->free(d_acc);
}

static void test_softmax(void) {
  for (int bi = 0; bi < NB; bi++)
    for (int wi = 0; wi < NW; wi++) softmax_case(batches[bi], widths[wi], 0);
  softmax_case(129, 10, 1);
  softmax_case(9000, 10, 0); /* more rows than one grid holds: the kernel loops */
}

/* ---- axpy: exact ------------------------------------------------------------------------ */
static void test_axpy(void) {
  static const size_t sizes[] = {1, 7, 1290, (size_t)4096 * 1000 + 1};
  for (int si = 0; si < 4; si++) {
    size_t n = sizes[si];
    float *a = hvec(n), *b = hvec(n), *o_c = hvec(n);
    fill(a, n, -1.0, 1.0);
    fill(b, n, -1.0, 1.0);
    cpu->axpy(o_c, a, -0.9f, b, n);
    float *d_a = to_gpu(a, n), *d_b = to_gpu(b, n), *d_o = dvec(n);
    long before = ds_cuda_launch_count();
    gpu->axpy(d_o, d_a, -0.9f, d_b, n);
    CHECK(launches_since(before) == 1, "axpy: %ld launches, want 1", launches_since(before));
    float *o_g = from_gpu(d_o, n);
    char what[64];
    snprintf(what, sizeof what, "axpy n=%zu", n);
    check_equal_array(what, o_g, o_c, n);
    gpu->axpy(d_a, d_a, -0.9f, d_b, n); /* in place */
    free(o_g);
    o_g = from_gpu(d_a, n);
    snprintf(what, sizeof what, "axpy in place n=%zu", n);
    check_equal_array(what, o_g, o_c, n);
    free(a);
    free(b);
    free(o_c);
    free(o_g);
    gpu->free(d_a);
    gpu->free(d_b);
    gpu->free(d_o);
  }
}

/* ---- optimizers -----------------------------------------------------------------------------
 * Every optimizer and option: 30 updates with fresh random gradients (5% exact
 * zeros) on both backends from the same start, then parameters and every state
 * buffer compared. Both run ds_optim_element (optim_math.h); nvcc contracts
 * a*b+c into FMAs where gcc (ISO C, -ffp-contract=off) does not, so each
 * update differs by an ulp or so, and with fresh gradients each step the
 * differences add up linearly, not chaotically: 30 steps * a few 2^-24
 * relative ~ 1e-6 at most. Tolerance 1e-5 relative + 1e-6 absolute (values
 * are O(0.1..10)); a wrong formula (bias correction, dampening, decay on the
 * wrong elements, clipping) moves values by > 1e-3 over 30 steps at these
 * learning rates. The gradient buffer must come back untouched, and each
 * step is ONE launch (two with clip-by-norm). */
typedef struct {
  const char *name;
  ds_optimizer kind;
  void (*tweak)(ds_optim_config *c);
} optim_case;

static void tw_none(ds_optim_config *c) { (void)c; }
static void tw_sgd(ds_optim_config *c) { c->lr = 0.05f; }
static void tw_momentum(ds_optim_config *c) { c->lr = 0.05f; c->momentum = 0.9f; }
static void tw_dampening(ds_optim_config *c) { tw_momentum(c); c->dampening = 0.3f; }
static void tw_nesterov(ds_optim_config *c) { tw_momentum(c); c->nesterov = 1; }
static void tw_ema(ds_optim_config *c) { tw_momentum(c); c->momentum_form = DS_MOMENTUM_EMA; }
static void tw_ema_nesterov(ds_optim_config *c) { tw_ema(c); c->nesterov = 1; }
static void tw_keras(ds_optim_config *c) { tw_momentum(c); c->momentum_form = DS_MOMENTUM_KERAS; }
static void tw_keras_nesterov(ds_optim_config *c) { tw_keras(c); c->nesterov = 1; }
static void tw_lookahead(ds_optim_config *c) { tw_nesterov(c); c->nesterov_form = DS_NESTEROV_LOOKAHEAD; }
static void tw_l2_l1(ds_optim_config *c) { tw_sgd(c); c->weight_decay = 0.01f; c->l1 = 0.001f; }
static void tw_decay_all(ds_optim_config *c) { tw_momentum(c); c->weight_decay = 0.05f; c->decay_all = 1; }
static void tw_clip_value(ds_optim_config *c) { tw_sgd(c); c->clip_value = 0.5f; }
static void tw_clip_norm(ds_optim_config *c) { tw_sgd(c); c->clip_norm = 1.0f; }
static void tw_clip_both(ds_optim_config *c) { tw_momentum(c); c->clip_value = 0.3f; c->clip_norm = 5.0f; }
static void tw_schedule(ds_optim_config *c) {
  tw_momentum(c);
  c->schedule = DS_SCHED_COSINE;
  c->t_max = 25;
  c->lr_min = 0.001f;
  c->warmup = 5;
}
static void tw_adagrad(ds_optim_config *c) { c->lr = 0.05f; c->lr_decay = 0.01f; }
static void tw_adagrad_sqrt(ds_optim_config *c) { c->lr = 0.05f; c->eps_in_sqrt = 1; c->initial_accumulator = 0.1f; }
static void tw_centered(ds_optim_config *c) { c->centered = 1; }
static void tw_rms_momentum(ds_optim_config *c) { c->momentum = 0.9f; }
static void tw_rms_all(ds_optim_config *c) { c->centered = 1; c->momentum = 0.9f; c->eps_in_sqrt = 1; }
static void tw_adam_lr(ds_optim_config *c) { c->lr = 0.01f; }
static void tw_amsgrad(ds_optim_config *c) { tw_adam_lr(c); c->amsgrad = 1; }
static void tw_adam_sqrt_l2(ds_optim_config *c) { tw_adam_lr(c); c->eps_in_sqrt = 1; c->weight_decay = 0.01f; }
static void tw_adamw_ams_clip(ds_optim_config *c) { tw_adam_lr(c); c->amsgrad = 1; c->clip_norm = 1e4f; }

static const optim_case optim_cases[] = {
    {"sgd", DS_OPT_SGD, tw_sgd},
    {"sgd default lr", DS_OPT_SGD, tw_none},
    {"momentum", DS_OPT_SGD, tw_momentum},
    {"momentum dampening", DS_OPT_SGD, tw_dampening},
    {"nesterov", DS_OPT_SGD, tw_nesterov},
    {"momentum ema", DS_OPT_SGD, tw_ema},
    {"nesterov ema", DS_OPT_SGD, tw_ema_nesterov},
    {"momentum keras", DS_OPT_SGD, tw_keras},
    {"nesterov keras", DS_OPT_SGD, tw_keras_nesterov},
    {"nesterov lookahead", DS_OPT_SGD, tw_lookahead},
    {"sgd l2+l1", DS_OPT_SGD, tw_l2_l1},
    {"momentum decay-all", DS_OPT_SGD, tw_decay_all},
    {"sgd clip-value", DS_OPT_SGD, tw_clip_value},
    {"sgd clip-norm", DS_OPT_SGD, tw_clip_norm},
    {"momentum clip-value+norm", DS_OPT_SGD, tw_clip_both},
    {"momentum cosine+warmup", DS_OPT_SGD, tw_schedule},
    {"adagrad lr-decay", DS_OPT_ADAGRAD, tw_adagrad},
    {"adagrad eps-in-sqrt init-acc", DS_OPT_ADAGRAD, tw_adagrad_sqrt},
    {"rmsprop", DS_OPT_RMSPROP, tw_none},
    {"rmsprop centered", DS_OPT_RMSPROP, tw_centered},
    {"rmsprop momentum", DS_OPT_RMSPROP, tw_rms_momentum},
    {"rmsprop centered momentum eps-in-sqrt", DS_OPT_RMSPROP, tw_rms_all},
    {"adam", DS_OPT_ADAM, tw_adam_lr},
    {"adam amsgrad", DS_OPT_ADAM, tw_amsgrad},
    {"adam eps-in-sqrt l2", DS_OPT_ADAM, tw_adam_sqrt_l2},
    {"adamw", DS_OPT_ADAMW, tw_adam_lr},
    {"adamw amsgrad clip-norm (inactive)", DS_OPT_ADAMW, tw_adamw_ams_clip},
};

static void optim_case_run(const optim_case *oc, size_t n, size_t n_decay, int misalign, int steps) {
  ds_optim_config cfg;
  ds_optim_defaults(&cfg, oc->kind);
  oc->tweak(&cfg);
  char err[256], what[160];
  snprintf(what, sizeof what, "optim %s n=%zu n_decay=%zu%s", oc->name, n, n_decay, misalign ? " misaligned" : "");
  CHECK(ds_optim_validate(&cfg, err, sizeof err) == 0, "%s: test configuration rejected: %s", what, err);
  ds_optim_roles roles = ds_optim_state_roles(&cfg);
  int have[4] = {roles.m, roles.v, roles.vmax, roles.gavg};
  float *param = hvec(n), *grad = hvec(n), *state[4] = {NULL, NULL, NULL, NULL};
  fill(param, n, -1.0, 1.0);
  for (size_t i = 0; i < n; i += 97) param[i] = 0.0f; /* sign(0) = 0 for L1 */
  for (int r = 0; r < 4; r++)
    if (have[r]) {
      state[r] = hvec(n);
      if (r == 1 && cfg.kind == DS_OPT_ADAGRAD)
        for (size_t i = 0; i < n; i++) state[r][i] = cfg.initial_accumulator;
    }
  /* GPU copies, each one float past an aligned address when misaligned */
  float *bufs[6], *d[6];
  float *host_of[6] = {param, grad, state[0], state[1], state[2], state[3]};
  for (int r = 0; r < 6; r++) {
    bufs[r] = host_of[r] ? dvec(n + 1) : NULL;
    d[r] = host_of[r] ? bufs[r] + misalign : NULL;
    if (host_of[r]) gpu->upload(d[r], host_of[r], n * sizeof(float));
  }
  ds_optim_buffers hb = {param, grad, state[0], state[1], state[2], state[3]};
  ds_optim_buffers db = {d[0], d[1], d[2], d[3], d[4], d[5]};
  int want_launches = cfg.clip_norm > 0.0f ? 2 : 1;
  int launch_bad = 0;
  ds_optim_scalars *d_s = (ds_optim_scalars *)gpu->alloc(sizeof(ds_optim_scalars), "the step scalars");
  double norm_err = 0.0;
  for (int t = 0; t < steps; t++) {
    float gscale = cfg.clip_norm > 0.0f || cfg.clip_value > 0.0f ? 3.0f : 1.0f; /* so that clipping acts */
    for (size_t i = 0; i < n; i++) grad[i] = check_uniform() < -0.9 ? 0.0f : unif(-gscale, gscale);
    gpu->upload(d[1], grad, n * sizeof(float));
    ds_optim_scalars s = ds_optim_scalars_at(&cfg, t, t / 10, t);
    cpu->optim_step(&hb, n, n_decay, &cfg, &s);
    gpu->upload(d_s, &s, sizeof s); /* the kernel reads the scalars from device memory */
    long before = ds_cuda_launch_count();
    gpu->optim_step(&db, n, n_decay, &cfg, d_s);
    launch_bad += launches_since(before) != want_launches;
    if (cfg.clip_norm > 0.0f) { /* the device's norm against a double one here */
      double ss = 0.0;
      for (size_t i = 0; i < n; i++) {
        double g = cfg.clip_value > 0.0f ? fmin(fmax(grad[i], -cfg.clip_value), cfg.clip_value) : grad[i];
        ss += g * g;
      }
      double e = fabs(ds_cuda_last_grad_norm() - sqrt(ss)) / sqrt(ss);
      if (e > norm_err) norm_err = e;
    }
  }
  CHECK(launch_bad == 0, "%s: %d of %d steps did not take exactly %d launch(es)", what, launch_bad, steps, want_launches);
  if (cfg.clip_norm > 0.0f)
    CHECK(norm_err < 1e-12, "%s: device gradient norm off by %.3g relative (double sums: want < 1e-12)", what, norm_err);
  static const char *roles_names[6] = {"param", "grad", "m", "v", "vmax", "gavg"};
  for (int r = 0; r < 6; r++) {
    if (!host_of[r]) continue;
    float *g = from_gpu(d[r], n);
    char w2[200];
    snprintf(w2, sizeof w2, "%s %s after %d steps", what, roles_names[r], steps);
    if (r == 1) check_equal_array(w2, g, grad, n); /* only read */
    else check_close_array(w2, g, host_of[r], NULL, n, 1e-5, 1e-6);
    free(g);
  }
  for (int r = 0; r < 6; r++) {
    free(host_of[r]);
    if (bufs[r]) gpu->free(bufs[r]);
  }
  gpu->free(d_s);
}

static void test_optim(void) {
  int n_cases = (int)(sizeof optim_cases / sizeof optim_cases[0]);
  for (int i = 0; i < n_cases; i++) {
    optim_case_run(&optim_cases[i], 100003, 60001, 0, 30); /* float4 body + 3-element tail; decay boundary mid-float4 */
    optim_case_run(&optim_cases[i], 1001, 7, 1, 30);       /* unaligned: the scalar path */
  }
  /* the size the issue names: 2M parameters in one launch */
  for (int i = 0; i < n_cases; i++)
    if (strcmp(optim_cases[i].name, "adam") == 0)
      optim_case_run(&optim_cases[i], (size_t)2 * 1024 * 1024 + 3, (size_t)1500000, 0, 2);
}

/* ---- CUDA graph: replay equals eager execution, bit for bit -------------------------------
 * A small training step (zero grads, linear, softmax_xent, linear backward,
 * Adam with clip-by-norm) run 3 times eagerly on one copy of the state and
 * captured once then replayed 3 times on another; same kernels, same inputs,
 * so the results must be identical, and a replay is one launch. The step
 * scalars (lr, bias corrections of steps 1..3) are uploaded before each step
 * and each replay: the replays must use the new values, not the captured ones. */
typedef struct {
  float *P, *G, *m, *v, *out, *dl;
  double *acc;
} graph_state;

static void graph_step(graph_state *st, const float *d_x, const int32_t *d_y, int B, int C_in, int C_out,
                       const ds_optim_config *cfg, const ds_optim_scalars *s) {
  size_t nw = (size_t)C_out * C_in, n = nw + C_out;
  gpu->zero(st->G, n * sizeof(float));
  gpu->linear_forward(st->out, d_x, st->P, st->P + nw, B, C_in, C_out);
  gpu->softmax_xent(st->dl, st->acc, st->out, d_y, B, C_out, 1.0f / (float)B);
  gpu->linear_backward(NULL, st->G, st->G + nw, st->dl, d_x, st->P, B, C_in, C_out);
  ds_optim_buffers buf = {st->P, st->G, st->m, st->v, NULL, NULL};
  gpu->optim_step(&buf, n, nw, cfg, s);
}

static void test_graph(void) {
  const int B = 64, C_in = 36, C_out = 10; /* 360 weights: the bias view is 16-byte aligned (cuBLASLt path) */
  size_t nx = (size_t)B * C_in, nw = (size_t)C_out * C_in, n = nw + C_out;
  float *x = hvec(nx), *p0 = hvec(n);
  int32_t y[64];
  fill(x, nx, 0.0, 1.0);
  fill(p0, n, -0.3, 0.3);
  for (int b = 0; b < B; b++) y[b] = b % C_out;
  float *d_x = to_gpu(x, nx);
  int32_t *d_y = (int32_t *)gpu->alloc(sizeof y, "labels");
  gpu->upload(d_y, y, sizeof y);
  ds_optim_config cfg;
  ds_optim_defaults(&cfg, DS_OPT_ADAM);
  cfg.lr = 0.01f;
  cfg.clip_norm = 0.5f;
  cfg.schedule = DS_SCHED_EXPONENTIAL; /* a different lr at every step */
  cfg.decay = 0.5f;
  ds_optim_scalars *d_s = (ds_optim_scalars *)gpu->alloc(sizeof(ds_optim_scalars), "the step scalars");
  graph_state st[2];
  for (int k = 0; k < 2; k++) {
    st[k].P = to_gpu(p0, n);
    st[k].G = dvec(n);
    st[k].m = dvec(n);
    st[k].v = dvec(n);
    st[k].out = dvec((size_t)B * C_out);
    st[k].dl = dvec((size_t)B * C_out);
    st[k].acc = (double *)gpu->alloc(2 * sizeof(double), "acc");
  }
  for (int i = 0; i < 3; i++) {
    ds_optim_scalars s = ds_optim_scalars_at(&cfg, i, 0, i);
    gpu->upload(d_s, &s, sizeof s);
    graph_step(&st[0], d_x, d_y, B, C_in, C_out, &cfg, d_s);
  }
  ds_cuda_graph_begin();
  graph_step(&st[1], d_x, d_y, B, C_in, C_out, &cfg, d_s);
  ds_cuda_graph *g = ds_cuda_graph_end();
  long before = ds_cuda_launch_count(), uploads = 0;
  for (int i = 0; i < 3; i++) {
    ds_optim_scalars s = ds_optim_scalars_at(&cfg, i, 0, i);
    gpu->upload(d_s, &s, sizeof s);
    uploads++;
    ds_cuda_graph_launch(g);
  }
  CHECK(launches_since(before) == 3 && uploads == 3, "graph: 3 replays counted as %ld launches", launches_since(before));
  float *pe = from_gpu(st[0].P, n), *pg = from_gpu(st[1].P, n);
  float *me = from_gpu(st[0].m, n), *mg = from_gpu(st[1].m, n);
  float *ve = from_gpu(st[0].v, n), *vg = from_gpu(st[1].v, n);
  double ae[2], ag[2];
  gpu->download(ae, st[0].acc, sizeof ae);
  gpu->download(ag, st[1].acc, sizeof ag);
  size_t moved = 0;
  for (size_t i = 0; i < n; i++) moved += pe[i] != p0[i];
  CHECK(moved > n / 2, "graph: eager steps changed only %zu of %zu parameters", moved, n);
  check_equal_array("graph replay vs eager: parameters", pg, pe, n);
  check_equal_array("graph replay vs eager: m", mg, me, n);
  check_equal_array("graph replay vs eager: v", vg, ve, n);
  CHECK(memcmp(ae, ag, sizeof ae) == 0, "graph replay vs eager: loss accumulators %.17g/%.0f vs %.17g/%.0f", ag[0],
        ag[1], ae[0], ae[1]);
  CHECK(ae[0] > 0.0 && ae[1] >= 0.0 && ae[1] <= 3.0 * B, "graph: implausible accumulators %g %g", ae[0], ae[1]);
  ds_cuda_graph_free(g);
  gpu->free(d_s);
  for (int k = 0; k < 2; k++) {
    float *db[] = {st[k].P, st[k].G, st[k].m, st[k].v, st[k].out, st[k].dl};
    for (int i = 0; i < 6; i++) gpu->free(db[i]);
    gpu->free(st[k].acc);
  }
  float *hb[] = {x, p0, pe, pg, me, mg, ve, vg};
  for (int i = 0; i < 8; i++) free(hb[i]);
  gpu->free(d_x);
  gpu->free(d_y);
}

/* ---- the trainer on the GPU: one launch per update, replay == eager ---------------------------
 * A small MLP (BatchNorm, dropout, momentum with clip-by-norm, 2 micro-batches per
 * update) on synthetic bytes. The first full update runs eagerly, the second
 * is captured and replayed, and each later update is exactly one launch; a trainer with --no-graph
 * computes the same parameters bit for bit; the CPU trainer agrees within the
 * verify tolerances. */
static void trainer_fill(ds_dataset *ds, int n, int d, uint32_t salt) {
  ds->n = n;
  ds->d = d;
  ds->rows = 1;
  ds->cols = d;
  ds->n_classes = 10;
  ds->images = (uint8_t *)ds_xmalloc((size_t)n * d, "test images");
  ds->labels = (uint8_t *)ds_xmalloc((size_t)n, "test labels");
  for (int i = 0; i < n; i++) {
    ds->labels[i] = (uint8_t)((i * 7 + salt) % 10);
    for (int j = 0; j < d; j++) /* a class-dependent pattern plus noise */
      ds->images[(size_t)i * d + j] = (uint8_t)(((j % 10) == ds->labels[i] ? 180 : 20) + ((i * 31 + j * 17 + salt) % 50));
  }
}

static void test_trainer_graph(void) {
  ds_dataset train, test;
  trainer_fill(&train, 1000, 50, 1);
  trainer_fill(&test, 200, 50, 2);
  ds_train_config cfg;
  ds_train_config_defaults(&cfg);
  cfg.model.n_hidden = 2;
  cfg.model.hidden[0] = 33;
  cfg.model.hidden[1] = 17;
  cfg.model.batchnorm = 1;
  cfg.model.dropout = 0.25f;
  /* SGD with momentum: Adam would turn the rounding noise in the gradient of
     the biases before BatchNorm (0 in exact arithmetic) into lr-sized steps
     that differ between the backends (see descent verify --help) */
  ds_optim_defaults(&cfg.optim, DS_OPT_SGD);
  cfg.optim.lr = 0.05f;
  cfg.optim.momentum = 0.9f;
  cfg.optim.clip_norm = 1.0f;
  cfg.batch_size = 50;
  cfg.accum = 2;
  cfg.quiet = 1;
  ds_trainer tg, te, tc;
  ds_trainer_init(&tg, gpu, &cfg, &train, &test);
  cfg.no_graph = 1;
  ds_trainer_init(&te, gpu, &cfg, &train, &test);
  ds_trainer_init(&tc, cpu, &cfg, &train, &test);
  ds_trainer *all[3] = {&tg, &te, &tc};
  for (int k = 0; k < 3; k++) ds_sampler_begin_epoch(&all[k]->sampler, 0);
  int bad_launches = 0;
  for (int u = 0; u < 8; u++) { /* 10 updates per epoch: all full */
    long before = ds_cuda_launch_count();
    CHECK(ds_trainer_update(&tg, 2) == 100, "graph trainer: update %d did not use 100 samples", u);
    if (u > 1) bad_launches += launches_since(before) != 1; /* 0: eager warm-up, 1: capture + replay */
    CHECK(ds_trainer_update(&te, 2) == 100, "eager trainer: update %d", u);
    CHECK(ds_trainer_update(&tc, 2) == 100, "cpu trainer: update %d", u);
  }
  CHECK(tg.graph != NULL && tg.graph_replays == 7, "graph trainer: %ld replays of 8 updates, want 7 (the first runs eagerly)",
        tg.graph_replays);
  CHECK(te.graph == NULL && te.graph_replays == 0, "--no-graph trainer replayed a graph");
  CHECK(bad_launches == 0, "graph trainer: %d of 6 updates after the capture were not exactly one launch", bad_launches);
  size_t np = tg.model.n_params, ns = tg.model.n_stats;
  float *pg = from_gpu(tg.params, np), *pe = from_gpu(te.params, np), *sg = from_gpu(tg.stats, ns),
        *se = from_gpu(te.stats, ns);
  check_equal_array("trainer: graph replays vs --no-graph, parameters", pg, pe, np);
  check_equal_array("trainer: graph replays vs --no-graph, BatchNorm statistics", sg, se, ns);
  check_close_array("trainer: GPU vs CPU parameters after 8 updates", pg, tc.params, NULL, np, 1e-3, 1e-5);
  double lg, ag, lc, ac;
  ds_trainer_evaluate(&tg, tg.test_images, tg.test_labels, tg.n_test, &lg, &ag);
  ds_trainer_evaluate(&tc, tc.test_images, tc.test_labels, tc.n_test, &lc, &ac);
  CHECK(fabs(lg - lc) <= 1e-3 * fabs(lc), "trainer: test loss GPU %.9g vs CPU %.9g", lg, lc);
  free(pg);
  free(pe);
  free(sg);
  free(se);
  for (int k = 0; k < 3; k++) ds_trainer_free(all[k]);
  ds_dataset_free(&train);
  ds_dataset_free(&test);
}

/* ---- monitoring ---------------------------------------------------------------
 * monitor_stats / monitor_sumsq accumulate in double: the GPU's fixed-order
 * tree and the CPU's index order differ only by double rounding (1e-12
 * relative is far above it and far below any wrong term); the counts (dead
 * columns, saturated elements) are exact. monitor_nonfinite must name the
 * same first index, step and kind as the CPU, and leave an earlier record. */
static void test_monitor(void) {
  static const int shapes[][2] = {{1, 1}, {3, 7}, {129, 33}, {4096, 10}, {64, 1024}};
  for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
    int B = shapes[k][0], C = shapes[k][1];
    size_t n = (size_t)B * C;
    float *x = hvec(n), *y = hvec(n);
    fill(x, n, -1.0, 1.0);
    fill(y, n, -1.0, 1.0);
    for (int c = 0; c < C; c += 3) /* dead columns: <= 0 in every row (one exactly 0) */
      for (int b = 0; b < B; b++) x[(size_t)b * C + c] = b == 0 ? 0.0f : -fabsf(x[(size_t)b * C + c]);
    for (size_t i = 0; i < n; i += 5) x[i] = i % 2 ? 0.995f : -0.995f; /* saturated at |x| >= 0.99 */
    double want[6] = {0.5, -0.25, 1.0, 2.0, 0.125, 0.0}, got[6];
    cpu->monitor_stats(want, x, B, C, -0.99f, 0.99f);
    cpu->monitor_sumsq(want + 4, x, NULL, n);
    cpu->monitor_sumsq(want + 5, x, y, n);
    double init[6] = {0.5, -0.25, 1.0, 2.0, 0.125, 0.0};
    double *d = (double *)gpu->alloc(sizeof init, "monitor accumulators");
    gpu->upload(d, init, sizeof init);
    float *dx = to_gpu(x, n), *dy = to_gpu(y, n);
    long before = ds_cuda_launch_count();
    gpu->monitor_stats(d, dx, B, C, -0.99f, 0.99f);
    gpu->monitor_sumsq(d + 4, dx, NULL, n);
    gpu->monitor_sumsq(d + 5, dx, dy, n);
    CHECK(launches_since(before) == 3, "monitor B=%d C=%d: %ld launches for stats + 2 sumsq, want 3", B, C,
          launches_since(before));
    gpu->download(got, d, sizeof got);
    static const char *const names[6] = {"sum", "sum of squares", "dead columns", "saturated", "sumsq(x)",
                                         "sumsq(x - y)"};
    for (int i = 0; i < 6; i++) {
      int exact = i == 2 || i == 3;
      double tol = exact ? 0.0 : 1e-12 * (fabs(want[i]) + (double)n);
      CHECK(fabs(got[i] - want[i]) <= tol, "monitor B=%d C=%d %s: GPU %.17g, CPU %.17g", B, C, names[i], got[i],
            want[i]);
    }
    /* non-finite: none, then a NaN and an Inf (the first one is named), then a later call keeps it */
    int64_t step = 41, rec_c[3] = {-1, -1, 0}, rec_g[3];
    int64_t *d_rec = (int64_t *)gpu->alloc(sizeof rec_c, "nonfinite record");
    int64_t *d_step = (int64_t *)gpu->alloc(sizeof step, "step");
    gpu->upload(d_step, &step, sizeof step);
    gpu->upload(d_rec, rec_c, sizeof rec_c);
    gpu->monitor_nonfinite(d_rec, dx, n, d_step);
    gpu->download(rec_g, d_rec, sizeof rec_g);
    CHECK(rec_g[0] == -1 && rec_g[1] == -1 && rec_g[2] == 0, "monitor_nonfinite B=%d C=%d: all finite, yet recorded "
          "{%lld, %lld, %lld}", B, C, (long long)rec_g[0], (long long)rec_g[1], (long long)rec_g[2]);
    size_t first = n / 2, second = n - 1;
    x[second] = INFINITY;
    x[first] = first == second ? INFINITY : NAN;
    gpu->upload(dx, x, n * sizeof(float));
    cpu->monitor_nonfinite(rec_c, x, n, &step);
    gpu->monitor_nonfinite(d_rec, dx, n, d_step);
    gpu->download(rec_g, d_rec, sizeof rec_g);
    CHECK(memcmp(rec_c, rec_g, sizeof rec_c) == 0 && rec_c[1] == (int64_t)first,
          "monitor_nonfinite B=%d C=%d: GPU {%lld, %lld, %lld}, CPU {%lld, %lld, %lld}", B, C, (long long)rec_g[0],
          (long long)rec_g[1], (long long)rec_g[2], (long long)rec_c[0], (long long)rec_c[1], (long long)rec_c[2]);
    step = 99;
    gpu->upload(d_step, &step, sizeof step);
    x[0] = NAN;
    gpu->upload(dx, x, n * sizeof(float));
    gpu->monitor_nonfinite(d_rec, dx, n, d_step);
    gpu->download(rec_g, d_rec, sizeof rec_g);
    CHECK(memcmp(rec_c, rec_g, sizeof rec_c) == 0, "monitor_nonfinite B=%d C=%d: a later call replaced the first "
          "record", B, C);
    void *bufs[] = {d, dx, dy, d_rec, d_step};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gpu->free(bufs[i]);
    free(x);
    free(y);
  }
}

/* ---- out of memory: one line with the sizes, exit 1 ---------------------------------------
 * Through the binary (the message exits the process): a 4 TB parameter buffer. */
static void test_oom(void) {
  const char *bin = getenv("DESCENT"), *shared = getenv("DS_SHARED_DIR");
  if (!bin || !shared) {
    printf("oom: skipped (DESCENT or DS_SHARED_DIR not set)\n");
    return;
  }
  char images[1024], labels[1024], cmd[4096];
  snprintf(images, sizeof images, "%s/datasets/mnist-t10k/t10k-images-idx3-ubyte.gz", shared);
  snprintf(labels, sizeof labels, "%s/datasets/mnist-t10k/t10k-labels-idx1-ubyte.gz", shared);
  FILE *probe = fopen(images, "rb");
  if (!probe) {
    printf("oom: skipped (%s not found)\n", images);
    return;
  }
  fclose(probe);
  snprintf(cmd, sizeof cmd,
           "'%s' train --backend cuda --train-images '%s' --train-labels '%s' --test-fraction 0.1 "
           "--hidden 1000000,1000000 --steps 1 --quiet 2>&1; echo \"exit=$?\"",
           bin, images, labels);
  FILE *f = popen(cmd, "r");
  CHECK(f != NULL, "oom: cannot run %s", bin);
  if (!f) return;
  char line[2048], first[2048] = "";
  int lines = 0, code = -1;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "exit=%d", &code) == 1) continue;
    if (lines++ == 0) snprintf(first, sizeof first, "%s", line);
  }
  pclose(f);
  CHECK(code == 1, "oom: exit status %d, want 1", code);
  CHECK(lines == 1, "oom: %d lines of output, want 1 (first: %s)", lines, first);
  /* the trainer's estimate refuses it before allocating; a failed cudaMalloc would say the same in MiB */
  CHECK((strstr(first, "GiB of GPU memory") && strstr(first, "is available")) ||
            (strstr(first, "out of GPU memory") && strstr(first, "MiB free")),
        "oom: message lacks the sizes: %s", first);
}

int main(void) {
  char why[256] = "";
  gpu = ds_backend_cuda(0, why, sizeof why);
  if (!gpu) {
    printf("test_cuda_ops: skipped: %s\n", why);
    return 77;
  }
  cpu = ds_backend_cpu();
  printf("test_cuda_ops on %s (CPU reference: %s)\n", gpu->device, cpu->device);
  test_alloc_zeroed();
  test_philox();
  test_gather();
  test_linear();
  test_activation();
  test_batchnorm();
  test_dropout();
  test_hidden();
  test_split_batch();
  test_softmax();
  test_axpy();
  test_monitor();
  test_optim();
  test_graph();
  test_trainer_graph();
  test_oom();
  return check_finish("test_cuda_ops");
}
