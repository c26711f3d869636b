/* Row-major SGEMM: CBLAS when available, otherwise a plain C fallback whose
 * loop orders keep the innermost loop contiguous so the compiler vectorises it.
 * Both run one part per pool thread (parallel_cpu.h). */
#include "gemm_cpu.h"

#include <stddef.h>
#include <stdio.h>
#include <strings.h>

#include "parallel_cpu.h"

#ifdef DS_HAVE_CBLAS
#include <cblas.h>

void gemm_cpu_serial(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
  if (M <= 0 || N <= 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
/* "cblas (OpenBLAS, Haswell kernels)": the kernels OpenBLAS picked for this
 * CPU. An OpenBLAS older than the CPU falls back to its SSE3 "Prescott"
 * kernels (2-3x slower on an AVX-512 machine; OPENBLAS_CORETYPE overrides
 * it), so the choice is shown wherever the device is. */
const char *gemm_cpu_impl(void) {
  static char impl[64];
  if (!impl[0]) {
    const char *core = openblas_get_corename();
    snprintf(impl, sizeof impl, "cblas (OpenBLAS, %s kernels)", core && *core ? core : "unknown");
  }
  return impl;
}

/* The CPU's own kernels when OpenBLAS fell back to Prescott on a CPU with
 * AVX-512 (SkylakeX: F, BW, VL, DQ, as OpenBLAS requires) or AVX2 + FMA
 * (Haswell); NULL otherwise. */
const char *gemm_cpu_better_coretype(void) {
  const char *core = openblas_get_corename();
  if (!core || strcasecmp(core, "Prescott") != 0) return NULL;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return NULL;
}

#else

const char *gemm_cpu_better_coretype(void) { return NULL; }

static void scale_c(int M, int N, float beta, float *C, int ldc) {
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) C[(size_t)m * ldc + n] = beta == 0.0f ? 0.0f : beta * C[(size_t)m * ldc + n];
}

void gemm_cpu_serial(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
  scale_c(M, N, beta, C, ldc);
  if (!trans_b) {
    /* C[m,:] += alpha * a(m,k) * B[k,:]   (B rows contiguous) */
    for (int m = 0; m < M; m++) {
      float *c = C + (size_t)m * ldc;
      for (int k = 0; k < K; k++) {
        float a = alpha * (trans_a ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k]);
        const float *b = B + (size_t)k * ldb;
        for (int n = 0; n < N; n++) c[n] += a * b[n];
      }
    }
  } else if (!trans_a) {
    /* C[m,n] += alpha * dot(A[m,:], B[n,:])   (both rows contiguous) */
    for (int m = 0; m < M; m++) {
      const float *a = A + (size_t)m * lda;
      for (int n = 0; n < N; n++) {
        const float *b = B + (size_t)n * ldb;
        float s = 0.0f;
        for (int k = 0; k < K; k++) s += a[k] * b[k];
        C[(size_t)m * ldc + n] += alpha * s;
      }
    }
  } else {
    for (int m = 0; m < M; m++)
      for (int n = 0; n < N; n++) {
        float s = 0.0f;
        for (int k = 0; k < K; k++) s += A[(size_t)k * lda + m] * B[(size_t)n * ldb + k];
        C[(size_t)m * ldc + n] += alpha * s;
      }
  }
}
const char *gemm_cpu_impl(void) { return "built-in C"; }

#endif

int gemm_cpu_threads(void) { return ds_cpu_threads(); }

void gemm_cpu_split(int M, int N, int part, int parts, int *m0, int *m1, int *n0, int *n1) {
  size_t b, e;
  if (N >= M) {
    ds_cpu_split((size_t)N, part, parts, 16, &b, &e);
    *m0 = 0, *m1 = M, *n0 = (int)b, *n1 = (int)e;
  } else {
    ds_cpu_split((size_t)M, part, parts, 16, &b, &e);
    *m0 = (int)b, *m1 = (int)e, *n0 = 0, *n1 = N;
  }
}

/* op(A) rows m0.. start at A + m0*lda (A[M,K]) or A + m0 (A[K,M]); op(B)
 * columns n0.. at B + n0 (B[K,N]) or B + n0*ldb (B[N,K]). */
void gemm_cpu_block(int trans_a, int trans_b, int K, float alpha, const float *A, int lda, const float *B,
                    int ldb, float beta, float *C, int ldc, int m0, int m1, int n0, int n1) {
  if (m1 <= m0 || n1 <= n0) return;
  const float *a = trans_a ? A + m0 : A + (size_t)m0 * lda;
  const float *b = trans_b ? B + (size_t)n0 * ldb : B + n0;
  gemm_cpu_serial(trans_a, trans_b, m1 - m0, n1 - n0, K, alpha, a, lda, b, ldb, beta, C + (size_t)m0 * ldc + n0, ldc);
}

typedef struct {
  int trans_a, trans_b, M, N, K;
  float alpha, beta;
  const float *A, *B;
  float *C;
  int lda, ldb, ldc;
} gemm_job;

static void gemm_part(void *p, int part, int parts) {
  const gemm_job *j = p;
  int m0, m1, n0, n1;
  gemm_cpu_split(j->M, j->N, part, parts, &m0, &m1, &n0, &n1);
  gemm_cpu_block(j->trans_a, j->trans_b, j->K, j->alpha, j->A, j->lda, j->B, j->ldb, j->beta, j->C, j->ldc, m0, m1,
                 n0, n1);
}

void gemm_cpu(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
  gemm_job j = {trans_a, trans_b, M, N, K, alpha, beta, A, B, C, lda, ldb, ldc};
  /* work ~ the multiply-adds over 16: a small GEMM stays on one thread */
  ds_cpu_parallel(gemm_part, &j, (size_t)M * (size_t)N * (size_t)(K > 0 ? K : 1) / 16);
}
