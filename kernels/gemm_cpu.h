/* Row-major single-precision GEMM for the CPU reference:
 *   C[M,N] = alpha * op(A) @ op(B) + beta * C,  op(X) = X or X^T
 * CBLAS (OpenBLAS) when the build found it, else a plain C loop nest.
 * gemm_cpu splits C between the pool's threads (parallel_cpu.h), each part a
 * single-threaded GEMM of its own rows or columns of C. */
#ifndef DS_GEMM_CPU_H
#define DS_GEMM_CPU_H

/* On all threads. Which rows or columns each thread computes depends only on
 * (M, N, K) and the thread count (gemm_cpu_split), so the same thread count
 * gives the same bits. */
void gemm_cpu(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
/* On the calling thread only (the body of one part). */
void gemm_cpu_serial(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc);
/* Part `part` of `parts` of C[M,N]: rows [*m0,*m1) x columns [*n0,*n1). The
 * longer side is split, in blocks of 16, so that each part packs half of one
 * operand and all of the other. */
void gemm_cpu_split(int M, int N, int part, int parts, int *m0, int *m1, int *n0, int *n1);
/* The serial GEMM of one part: C[m0:m1, n0:n1] of the full problem. */
void gemm_cpu_block(int trans_a, int trans_b, int K, float alpha, const float *A, int lda, const float *B,
                    int ldb, float beta, float *C, int ldc, int m0, int m1, int n0, int n1);
/* "cblas (OpenBLAS)" or "built-in C" */
const char *gemm_cpu_impl(void);
/* The OPENBLAS_CORETYPE of this CPU's own kernels ("SkylakeX", "Haswell")
 * when OpenBLAS fell back to Prescott on it, else NULL (see
 * ds_backend_cpu_blas_reexec, descent/backend.h). */
const char *gemm_cpu_better_coretype(void);
/* The threads a GEMM runs on: the pool's (ds_cpu_threads). CPU results are
 * bit-identical for the same machine, build and thread count only: OpenBLAS
 * picks its kernels and blocking by the size of each part. */
int gemm_cpu_threads(void);

#endif
