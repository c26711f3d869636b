/* The CPU backend's threads: one pool, shared by the GEMM and every other op.
 *
 * OpenBLAS is set to one thread at the pool's start; the CPU GEMM splits its
 * output between the pool's threads itself (gemm_cpu.c). So exactly one set of
 * threads exists, and no BLAS worker spins (sched_yield) while the pool runs
 * BatchNorm or the optimizer, and the pool never waits for a BLAS thread.
 *
 * Determinism: every op splits its work so that the split does not change a
 * single bit (each output element, column sum or block sum is computed by one
 * thread, in the same order as the single-thread loop would), except where an
 * op says otherwise. The thread count is fixed for the life of the process.
 *
 * Workers spin briefly after a task (the next op follows within microseconds
 * in a training step), then sleep on a condition variable. */
#ifndef DS_PARALLEL_CPU_H
#define DS_PARALLEL_CPU_H

#include <stddef.h>

/* The most threads the pool starts (a larger count asked for is capped). */
#define DS_POOL_PARTS_MAX 256

/* The pool's threads, the caller included (>= 1): OPENBLAS_NUM_THREADS when
 * set, else GOTO_NUM_THREADS, else OMP_NUM_THREADS, else one per online CPU
 * (OpenBLAS's order; any build, the built-in C GEMM's too). The first call
 * starts the pool and sets OpenBLAS to one thread per call. */
int ds_cpu_threads(void);

/* task(arg, part, parts) for part = 0..parts-1, each on its own thread (the
 * caller runs part 0); returns when every part has returned. parts =
 * ds_cpu_threads(), or 1 when `work` (a rough count of elements touched) is
 * too small to pay for waking the workers, or when called from inside a task. */
typedef void (*ds_cpu_task)(void *arg, int part, int parts);
void ds_cpu_parallel(ds_cpu_task task, void *arg, size_t work);

/* Part `part` of `parts` of [0, n): [*begin, *end), boundaries multiples of
 * `align` (>= 1) except the last; parts differ by at most one align unit. */
static inline void ds_cpu_split(size_t n, int part, int parts, size_t align, size_t *begin, size_t *end) {
  size_t units = (n + align - 1) / align;
  size_t q = units / (size_t)parts, r = units % (size_t)parts;
  size_t p = (size_t)part;
  size_t b = (p * q + (p < r ? p : r)) * align;
  size_t e = b + (q + (p < r ? 1 : 0)) * align;
  *begin = b < n ? b : n;
  *end = e < n ? e : n;
}

/* Wider-vector clones of a hot loop, one picked at load time for the CPU it
 * runs on (x86-64 Linux; elsewhere the plain function): AVX-512, AVX2, and
 * the default SSE2. Their float instructions round exactly as SSE's do, the
 * CPU kernels are compiled with -ffp-contract=off (no a*b+c is fused into an
 * FMA, which AVX2 and AVX-512 machines have) and without -ffast-math (no
 * reduction is reordered, no approximate reciprocal), so every clone
 * computes the same floats; 16 lanes halve the instructions of the loops
 * that the divider or the memory do not bound. */
#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define DS_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef DS_CPU_CLONES
#define DS_CPU_CLONES
#endif

/* The zeroing and copying of the backend's memory on all threads. */
void ds_cpu_zero(void *dst, size_t bytes);
void ds_cpu_copy(void *dst, const void *src, size_t bytes);

#endif

/* Sums over [0, n) in a fixed order whatever the thread count: the range is
 * cut into blocks whose size depends on n only (a power of two >= 2^15, at
 * most DS_CPU_MAX_BLOCKS blocks); block(arg, begin, end, out) adds the k (<= 4)
 * sums of one block into out[0..k) (zeroed first), in index order; the pool
 * runs the blocks, then result[0..k) = the blocks' sums added in block order.
 * So the same input gives the same bits on any number of threads. */
#define DS_CPU_MAX_BLOCKS 1024
typedef void (*ds_cpu_block_sum)(void *arg, size_t begin, size_t end, double *out);
void ds_cpu_block_sums(ds_cpu_block_sum block, void *arg, size_t n, int k, double *result);
