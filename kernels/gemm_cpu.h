/* Row-major single-precision GEMM for the CPU reference:
 *   C[M,N] = alpha * op(A) @ op(B) + beta * C,  op(X) = X or X^T
 * CBLAS (OpenBLAS) when the build found it, else a plain C loop nest. */
#ifndef DS_GEMM_CPU_H
#define DS_GEMM_CPU_H

void gemm_cpu(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
/* "cblas (OpenBLAS)" or "built-in C" */
const char *gemm_cpu_impl(void);
/* The threads a GEMM runs on (OPENBLAS_NUM_THREADS; 1 for the built-in C).
 * CPU results are bit-identical for the same machine and thread count only:
 * OpenBLAS splits the reductions by thread. */
int gemm_cpu_threads(void);

#endif
