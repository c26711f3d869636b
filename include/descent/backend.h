/* descent — the backend interface.
 *
 * A backend is a table of function pointers: memory management and every op
 * of the MLP. Host code (host/) calls ops only through this table, so the CPU
 * reference (kernels/backend_cpu.c) and CUDA (kernels/backend_cuda.cu) are
 * interchangeable and can be run side by side on the same data.
 *
 * Conventions for every op:
 *   - all pointers are backend memory (device memory for CUDA);
 *   - argument order: outputs, saved state, inputs, weights, sizes, options;
 *   - row-major tensors; a batch of activations is [B, C];
 *     a weight matrix is [C_out, C_in] as in torch.nn.Linear;
 *   - gradients of parameters ACCUMULATE (+=) so that micro-batches can be
 *     summed; gradients of activations are OVERWRITTEN;
 *   - sizes (B, C, n) are element counts, not bytes, unless named `bytes`;
 *     they are not checked: buffers too small for them are undefined
 *     behaviour, as with memcpy;
 *   - ops are asynchronous on CUDA (one stream, in issue order); download and
 *     synchronize wait for them;
 *   - a failed device call (CUDA, cuBLAS) prints one line naming the op and
 *     the error and exits 1; alloc exits 1 naming `what` and the sizes.
 * Thread safety: the CPU table's ops keep no state of their own and may run
 * from several threads on disjoint buffers. The CUDA backend is one per
 * process (one stream, cuBLAS handle, staging buffers and device scratch for
 * reductions): use it from one thread at a time.
 */
#ifndef DESCENT_BACKEND_H
#define DESCENT_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include "descent/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { DS_ACT_RELU, DS_ACT_LEAKY_RELU, DS_ACT_TANH, DS_ACT_SIGMOID } ds_activation;
typedef enum { DS_DROPOUT_INVERTED, DS_DROPOUT_SCALE_AT_TEST } ds_dropout_form;

/* What a hidden layer does after its linear map (see hidden_forward). */
typedef struct {
  int batchnorm;             /* BatchNorm1d first */
  float bn_momentum, bn_eps;
  ds_activation act;
  float slope;               /* leaky ReLU's negative slope */
  float p;                   /* dropout probability; the dropout output is written only when o != NULL */
  ds_dropout_form form;
  uint64_t seed;             /* dropout mask: ds_philox_word(seed, stream, *step, element0 + element) */
  uint32_t stream;
  uint64_t element0;         /* index of element 0 in the whole batch: rows * C before this process's
                                slice of a batch split across processes (host/dist), else 0 */
} ds_hidden_spec;

typedef struct ds_backend {
  const char *name;          /* "cpu" or "cuda" */
  const char *device;        /* human-readable device description */

  /* ---- memory (bytes) -------------------------------------------------- */
  void *(*alloc)(size_t bytes, const char *what);   /* zeroed; exits 1 with sizes on OOM */
  void (*free)(void *ptr);
  void (*upload)(void *dst, const void *src, size_t bytes);     /* host -> backend */
  void (*download)(void *dst, const void *src, size_t bytes);   /* backend -> host */
  void (*copy)(void *dst, const void *src, size_t bytes);       /* backend -> backend, no overlap */
  void (*zero)(void *dst, size_t bytes);
  void (*synchronize)(void);

  /* ---- ops ------------------------------------------------------------- */
  /* x[B,D] = images[indices[b], :] * scale + shift;  y[B] = labels[indices[b]]
   * images: [N, D] uint8, labels: [N] uint8, indices: [B] int32 */
  void (*gather_forward)(float *x, int32_t *y, const uint8_t *images, const uint8_t *labels,
                         const int32_t *indices, int B, int D, float scale, float shift);

  /* out[B,C_out] = inp[B,C_in] @ weight[C_out,C_in]^T + bias[C_out] */
  void (*linear_forward)(float *out, const float *inp, const float *weight, const float *bias,
                         int B, int C_in, int C_out);
  /* dinp[B,C_in] = dout @ weight            (skipped when dinp is NULL)
   * dweight[C_out,C_in] += dout^T @ inp;  dbias[C_out] += sum_b dout[b,:] */
  void (*linear_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                          const float *inp, const float *weight, int B, int C_in, int C_out);

  /* out[n] = act(inp[n]); slope is leaky ReLU's negative slope */
  void (*activation_forward)(float *out, const float *inp, size_t n, ds_activation act, float slope);
  /* dinp[n] = dout[n] * act'(.) computed from the saved OUTPUT out[n] (may alias dout) */
  void (*activation_backward)(float *dinp, const float *dout, const float *out, size_t n,
                              ds_activation act, float slope);

  /* BatchNorm1d over inp[B,C] with PyTorch semantics.
   * training: mean/var over the batch (biased var normalises), saves mean[C]
   *   and rstd[C] = 1/sqrt(var+eps), updates running_mean/var[C] with
   *   momentum (unbiased var, B/(B-1)); requires B > 1.
   * inference: normalises with running_mean/var; mean/rstd untouched. */
  void (*batchnorm_forward)(float *out, float *mean, float *rstd, float *running_mean,
                            float *running_var, const float *inp, const float *gamma,
                            const float *beta, int B, int C, int training, float momentum, float eps);
  /* dinp[B,C] (overwritten); dgamma[C], dbeta[C] accumulate. Uses the saved mean/rstd. */
  void (*batchnorm_backward)(float *dinp, float *dgamma, float *dbeta, const float *dout,
                             const float *inp, const float *mean, const float *rstd,
                             const float *gamma, int B, int C);

  /* Dropout of probability p over n elements. Element e is kept when
   * ds_philox_word(seed, stream, *step, element0 + e) < ds_dropout_threshold(p)
   * (element0: where these n elements start in the whole batch when it is
   * split across processes, so that every split draws the same masks; 0 else).
   * inverted: kept * 1/(1-p) in training, identity at test;
   * scale-at-test: kept * 1 in training, x*(1-p) at test. out may alias inp.
   * `step` is ONE value in backend memory, read by the op when it runs (only
   * in training with p > 0), so that a captured CUDA graph replays with the
   * key the host wrote before the replay. */
  void (*dropout_forward)(float *out, const float *inp, size_t n, float p, ds_dropout_form form,
                          int training, uint64_t seed, uint32_t stream, uint64_t element0, const uint64_t *step);
  /* dinp[n] = dout[n] * mask * scale (the mask is regenerated, not stored) */
  void (*dropout_backward)(float *dinp, const float *dout, size_t n, float p, ds_dropout_form form,
                           uint64_t seed, uint32_t stream, uint64_t element0, const uint64_t *step);

  /* A hidden layer after its linear map, fused (one kernel each way on the GPU):
   *   h = BatchNorm(z) (spec->batchnorm; else h = z),  a = act(h),  o = dropout(a).
   * Exactly batchnorm_forward, activation_forward and dropout_forward in that
   * order (same floats): z[B,C] in; a[B,C] out (saved: the backward's
   * derivative); o[B,C] out when non-NULL; with BatchNorm in training
   * mean/rstd[C] are saved and running_mean/var[C] updated (gamma, beta[C];
   * unused and may be NULL without BatchNorm). h is never stored. */
  void (*hidden_forward)(float *a, float *o, float *mean, float *rstd, float *running_mean, float *running_var,
                         const float *z, const float *gamma, const float *beta, int B, int C, int training,
                         const ds_hidden_spec *spec, const uint64_t *step);
  /* Its backward: dout[B,C] is the gradient of the layer's output (o, or a
   * without dropout; it is used as scratch and overwritten);
   *   da = dropout_backward(dout) (when has_dropout),  dh = da * act'(a),
   *   dz[B,C] = batchnorm_backward(dh) (dgamma, dbeta[C] accumulate), or dh.
   * dz may alias dout. */
  void (*hidden_backward)(float *dz, float *dgamma, float *dbeta, float *dout, const float *a, const float *z,
                          const float *mean, const float *rstd, const float *gamma, int B, int C, int has_dropout,
                          const ds_hidden_spec *spec, const uint64_t *step);

  /* Fused, numerically stable softmax + cross-entropy on logits[B,C], labels[B].
   * acc[0] += sum_b loss_b; acc[1] += number of rows whose argmax is the label.
   * dlogits[B,C] = (softmax - onehot) * grad_scale (skipped when dlogits is NULL). */
  void (*softmax_xent)(float *dlogits, double *acc, const float *logits, const int32_t *labels,
                       int B, int C, float grad_scale);

  /* One optimizer update over all n parameters (see descent/optim.h for the
   * order of clipping, decay and update). Indices < n_decay are weight
   * matrices. grad is only read: clipping and decay are applied on the fly.
   * `buf` and `cfg` are host structs; `s` (lr after schedule, bias
   * corrections, t) is in BACKEND memory and read when the update runs, so a
   * captured graph replays with the scalars of the current step. */
  void (*optim_step)(const ds_optim_buffers *buf, size_t n, size_t n_decay,
                     const ds_optim_config *cfg, const ds_optim_scalars *s);

  /* out[n] = a[n] + alpha * b[n] (used for Nesterov look-ahead weights) */
  void (*axpy)(float *out, const float *a, float alpha, const float *b, size_t n);

  /* ---- monitoring (kernels/monitor_cpu.c; host/train/monitor.c) --------------- *
   * Small reductions for the training log and the non-finite check. Results
   * stay in backend memory until the host reads them at a log point. A table
   * that leaves these NULL still trains: host/train/monitor.c then downloads the
   * buffer and runs the CPU op on the host (log points only, plus every step
   * with --on-nonfinite skip). */
  /* Statistics of activations x[B,C], ACCUMULATED into out[4] (double):
   *   out[0] += sum x;  out[1] += sum x^2;
   *   out[2] += number of columns c with x[b,c] <= 0 for every row b (dead ReLU units);
   *   out[3] += number of elements with x <= lo or x >= hi (saturated tanh/sigmoid). */
  void (*monitor_stats)(double *out, const float *x, int B, int C, float lo, float hi);
  /* out[0] += sum_i (x[i] - y[i])^2 over x[n], y[n]; y NULL means 0 (sum of squares). */
  void (*monitor_sumsq)(double *out, const float *x, const float *y, size_t n);
  /* First non-finite element of x[n]: when rec[0] < 0 (nothing recorded yet) and x
   * holds a NaN or Inf, rec[0..2] = {*step, smallest such index i, isnan(x[i]) ? 1 : 2};
   * otherwise rec[3] (int64) is left unchanged, so the first record sticks.
   * `step` is one value in backend memory (as dropout's). */
  void (*monitor_nonfinite)(int64_t *rec, const float *x, size_t n, const int64_t *step);

  /* ---- execution options (NULL where they mean nothing: the CPU) ---------- */
  /* TF32 tensor-core GEMMs (10-bit mantissa inputs, FP32 accumulation). */
  void (*set_tf32)(int on);
  /* Ask for bit-identical results run to run at some cost in speed. NULL
   * where the backend always gives them: the CPU, and CUDA (fixed-order
   * reductions without float atomics, one stream, fixed cuBLAS workspaces;
   * cuBLAS promises identical bits for the same GPU model, SM count and
   * library version). */
  void (*set_deterministic)(int on);

  /* ---- graphs (NULL: the backend runs every op eagerly) ------------------- *
   * Record the ops issued between graph_begin and graph_end instead of
   * running them; graph_launch replays them all with one launch. Only ops may
   * be recorded (no alloc, free, upload, download or synchronize). Scalars
   * passed by value are frozen at capture; per-step values must live in
   * backend memory (the step pointers above). */
  void (*graph_begin)(void);
  void *(*graph_end)(void);
  void (*graph_launch)(void *graph);
  void (*graph_free)(void *graph);

  /* ---- timing and caches (benchmarks; NULL: host clock, host cache) -------- */
  /* Record mark 0 or 1 on the backend's stream; timer_ms() waits for mark 1
   * and returns the device time between the two, in milliseconds. */
  void (*timer_mark)(int which);
  double (*timer_ms)(void);
  /* Evict the device's last-level cache (write a buffer twice its size). */
  void (*flush_cache)(void);

  /* ---- fault injection (tests) ---------------------------------------------- *
   * Make the device fail as a faulting kernel would (a trapping kernel on the
   * GPU, after which the context is lost) and report it at once: one line
   * naming `op` and the error, exit 1. */
  void (*inject_fault)(const char *op);

  /* ---- memory --------------------------------------------------------------- *
   * Bytes the backend could still allocate (the host's MemAvailable; the
   * GPU's free memory), 0 when unknown: the trainer refuses a run that will
   * not fit before it allocates anything. */
  size_t (*memory_available)(void);

  /* ---- BatchNorm of a batch split across processes (--sync-bn; host/dist) ---- *
   * The training BatchNorm of batchnorm_forward/backward in phases, so that the
   * per-feature sums of every process's rows can be all-reduced in between:
   * with `count` the rows of the whole batch and the sums all-reduced (summed
   * over processes) after each *_sums call, every process gets the statistics
   * of the whole batch; with one process (count = B) the results are
   * batchnorm_forward/backward's, bit for bit (same formulas, double sums).
   *   forward:  batchnorm_sums(pass 0), all-reduce sums[0,C);
   *             batchnorm_sums(pass 1), all-reduce sums[C,2C);
   *             batchnorm_forward_synced.
   *   backward: batchnorm_backward_sums, all-reduce sums[0,2C);
   *             batchnorm_backward_synced.
   * pass 0: sums[c] = sum_b inp[b,c];
   * pass 1: sums[C+c] = sum_b (inp[b,c] - sums[c]/count)^2 (sums[c] is the whole batch's sum).
   * inp[B,C]; sums[2C] (double). */
  void (*batchnorm_sums)(double *sums, const float *inp, int B, int C, int pass, int count);
  /* out[B,C], mean/rstd[C] saved, running_mean/var[C] updated (unbiased: count/(count-1))
   * <- inp[B,C], gamma/beta[C], sums[2C] of the whole batch (mean = sums[c]/count,
   * biased var = sums[C+c]/count). Requires count > 1. */
  void (*batchnorm_forward_synced)(float *out, float *mean, float *rstd, float *running_mean, float *running_var,
                                   const float *inp, const float *gamma, const float *beta, const double *sums,
                                   int B, int C, int count, float momentum, float eps);
  /* sums[c] = sum_b dout[b,c], sums[C+c] = sum_b dout[b,c] * xhat[b,c] over this
   * process's rows; dbeta[C] += sums[c], dgamma[C] += sums[C+c] (the parameter
   * gradients are all-reduced with the others). dout, inp[B,C]; mean/rstd[C]. */
  void (*batchnorm_backward_sums)(double *sums, float *dgamma, float *dbeta, const float *dout, const float *inp,
                                  const float *mean, const float *rstd, int B, int C);
  /* dinp[B,C] = rstd * (gamma*dout - gamma*S1/count - xhat * gamma*S2/count) with the whole
   * batch's S1 = sums[c], S2 = sums[C+c] (all-reduced). dinp may not alias dout. */
  void (*batchnorm_backward_synced)(float *dinp, const float *dout, const float *inp, const float *mean,
                                    const float *rstd, const float *gamma, const double *sums, int B, int C,
                                    int count);
  /* The stream the ops run on (a cudaStream_t), for a collective library
   * (NCCL) to enqueue its all-reduce in order with them and inside a
   * captured graph; NULL where ops run on the calling thread (the CPU). */
  void *(*native_stream)(void);
} ds_backend;

/* The CPU reference backend (always present). */
const ds_backend *ds_backend_cpu(void);
/* The threads every CPU op runs on, its GEMMs included (OPENBLAS_NUM_THREADS,
 * else GOTO_NUM_THREADS or OMP_NUM_THREADS, else one per CPU; any build).
 * CPU results are bit-identical for the same machine, build and thread count:
 * OpenBLAS blocks each thread's share of a GEMM by its size. With the
 * built-in C GEMM the thread count does not change the bits. */
int ds_backend_cpu_threads(void);
/* Call first thing in main(argc, argv). OpenBLAS chooses its kernels once,
 * when it loads; one older than the CPU does not recognise it and falls back
 * to its SSE3 "Prescott" kernels (2-3x slower: Debian 12's OpenBLAS 0.3.21 on
 * a 5th-generation Xeon). When it did, the CPU has better ones ("SkylakeX"
 * for AVX-512, "Haswell" for AVX2 + FMA) and OPENBLAS_CORETYPE is unset, this
 * sets it (and DESCENT_OPENBLAS_CORETYPE to the value and this process's id,
 * so that `descent --version` can say who chose) and executes the same
 * program again with the same argv (/proc/self/exe: Linux). It returns
 * without doing anything otherwise, when
 * the program was started through the dynamic loader (`ld.so program`, where
 * /proc/self/exe is the loader), or when the exec fails. A user who wants
 * OpenBLAS's own choice sets OPENBLAS_CORETYPE=Prescott. The descent binary
 * and the benchmarks call it; it costs one more start of the program (about
 * 0.1 s: the shared libraries load twice). */
void ds_backend_cpu_blas_reexec(char **argv);
/* The kernels ds_backend_cpu_blas_reexec chose for this very process, or NULL
 * (nothing chosen, or OPENBLAS_CORETYPE came from the user or a parent).
 * Static string. */
const char *ds_backend_cpu_blas_coretype_set(void);

/* The CUDA backend, or NULL with the reason in `why` (built without CUDA,
 * no driver, no device). `device` selects the GPU (0-based index); the
 * first successful call picks it for the process; another index later
 * gives NULL ("one device per process"). */
const ds_backend *ds_backend_cuda(int device, char *why, size_t why_len);

/* Resolve "cpu", "cuda" or "auto" (NULL means "cpu"). cuda with no GPU exits
 * 77; auto falls back to the CPU with a note when CUDA support is compiled in
 * but no GPU is found; any other name exits 2. The table returned is static:
 * never free it. */
const ds_backend *ds_backend_select(const char *name, int device);

/* Whether CUDA support was compiled into this build. */
int ds_cuda_compiled(void);

#ifdef __cplusplus
}
#endif
#endif
