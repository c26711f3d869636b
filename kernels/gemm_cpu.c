/* Row-major SGEMM: CBLAS when available, otherwise a plain C fallback whose
 * loop orders keep the innermost loop contiguous so the compiler vectorises it. */
#include "gemm_cpu.h"

#include <stddef.h>

#ifdef DS_HAVE_CBLAS
#include <cblas.h>

void gemm_cpu(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
const char *gemm_cpu_impl(void) { return "cblas (OpenBLAS)"; }
int gemm_cpu_threads(void) { return openblas_get_num_threads(); }

#else

static void scale_c(int M, int N, float beta, float *C, int ldc) {
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) C[(size_t)m * ldc + n] = beta == 0.0f ? 0.0f : beta * C[(size_t)m * ldc + n];
}

void gemm_cpu(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
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
int gemm_cpu_threads(void) { return 1; }

#endif
