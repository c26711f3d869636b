/* The CUDA backend's own interface, beyond the ds_backend table: the *_cuda
 * ops (the twins of kernels_cpu.h), the launch counter, the TF32 switch and
 * CUDA-graph capture of a sequence of backend calls.
 *
 * Plain C so that host code (descent verify) and tests can include it; the
 * symbols exist only in builds with CUDA (DS_HAVE_CUDA), so C callers guard
 * their uses with #ifdef DS_HAVE_CUDA. Every op needs ds_backend_cuda() to
 * have succeeded first (it selects the device and creates the stream and the
 * cuBLAS handles). */
#ifndef DS_BACKEND_CUDA_H
#define DS_BACKEND_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "descent/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the ops (shapes and formulas: descent/backend.h and kernels_cpu.h) --- */
void gather_forward_cuda(float *x, int32_t *y, const uint8_t *images, const uint8_t *labels,
                         const int32_t *indices, int B, int D, float scale, float shift);
void linear_forward_cuda(float *out, const float *inp, const float *weight, const float *bias,
                         int B, int C_in, int C_out);
void linear_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout,
                          const float *inp, const float *weight, int B, int C_in, int C_out);
void activation_forward_cuda(float *out, const float *inp, size_t n, ds_activation act, float slope);
void activation_backward_cuda(float *dinp, const float *dout, const float *out, size_t n,
                              ds_activation act, float slope);
void batchnorm_forward_cuda(float *out, float *mean, float *rstd, float *running_mean,
                            float *running_var, const float *inp, const float *gamma,
                            const float *beta, int B, int C, int training, float momentum, float eps);
void batchnorm_backward_cuda(float *dinp, float *dgamma, float *dbeta, const float *dout,
                             const float *inp, const float *mean, const float *rstd,
                             const float *gamma, int B, int C);
void dropout_forward_cuda(float *out, const float *inp, size_t n, float p, ds_dropout_form form,
                          int training, uint64_t seed, uint32_t stream, uint64_t element0, const uint64_t *step);
void dropout_backward_cuda(float *dinp, const float *dout, size_t n, float p, ds_dropout_form form,
                           uint64_t seed, uint32_t stream, uint64_t element0, const uint64_t *step);
void hidden_forward_cuda(float *a, float *o, float *mean, float *rstd, float *running_mean, float *running_var,
                         const float *z, const float *gamma, const float *beta, int B, int C, int training,
                         const ds_hidden_spec *spec, const uint64_t *step);
void hidden_backward_cuda(float *dz, float *dgamma, float *dbeta, float *dout, const float *a, const float *z,
                          const float *mean, const float *rstd, const float *gamma, int B, int C, int has_dropout,
                          const ds_hidden_spec *spec, const uint64_t *step);
void batchnorm_sums_cuda(double *sums, const float *inp, int B, int C, int pass, int count);
void batchnorm_forward_synced_cuda(float *out, float *mean, float *rstd, float *running_mean, float *running_var,
                                   const float *inp, const float *gamma, const float *beta, const double *sums,
                                   int B, int C, int count, float momentum, float eps);
void batchnorm_backward_sums_cuda(double *sums, float *dgamma, float *dbeta, const float *dout, const float *inp,
                                  const float *mean, const float *rstd, int B, int C);
void batchnorm_backward_synced_cuda(float *dinp, const float *dout, const float *inp, const float *mean,
                                    const float *rstd, const float *gamma, const double *sums, int B, int C,
                                    int count);
void softmax_xent_cuda(float *dlogits, double *acc, const float *logits, const int32_t *labels,
                       int B, int C, float grad_scale);
void optim_step_cuda(const ds_optim_buffers *buf, size_t n, size_t n_decay,
                     const ds_optim_config *cfg, const ds_optim_scalars *s);
void axpy_cuda(float *out, const float *a, float alpha, const float *b, size_t n);
void monitor_stats_cuda(double *out, const float *x, int B, int C, float lo, float hi);
void monitor_sumsq_cuda(double *out, const float *x, const float *y, size_t n);
void monitor_nonfinite_cuda(int64_t *rec, const float *x, size_t n, const int64_t *step);

/* ---- instrumentation ---------------------------------------------------- */
/* Work submitted to the GPU by this backend since the process started: every
 * kernel launch, every cuBLAS / cuBLASLt call (counted as one even when the
 * library runs more than one kernel for it) and every graph launch. Kernels
 * issued while a graph is being captured count once, at capture; replays
 * count one each. A test asserts, e.g., one launch per optimizer step. */
long ds_cuda_launch_count(void);

/* How many linear forwards ran as one cuBLASLt matmul with the bias epilogue
 * (*lt), and how many as bias broadcast + cublasSgemm (*fallback: a bias not
 * 16-byte aligned, or no algorithm accepted), since the process started. */
void ds_cuda_linear_paths(long *lt, long *fallback);

/* The global gradient norm computed by the last optim_step with clip_norm > 0
 * (before clipping; read back from the device, so this synchronises). */
double ds_cuda_last_grad_norm(void);

/* ---- precision ---------------------------------------------------------- */
/* TF32 tensor-core GEMMs (10-bit mantissa inputs, FP32 accumulation) for the
 * linear layers. Off by default: GEMMs run in full FP32. Takes effect at the
 * next op; may be called before ds_backend_cuda(). */
void ds_cuda_set_tf32(int on);
int ds_cuda_tf32(void);

/* ---- CUDA graphs -------------------------------------------------------- */
/* Capture the backend calls between begin and end into a graph, then replay it
 * with one launch. Only ops may be captured: alloc, free, upload, download and
 * synchronize are refused (exit 1 naming the call) while capturing. The
 * captured kernels keep the scalar arguments (lr, dropout step, batch size)
 * they were captured with; replaying with new values needs those in device
 * memory (see the report on the trainer hook). */
typedef struct ds_cuda_graph ds_cuda_graph;
void ds_cuda_graph_begin(void);
ds_cuda_graph *ds_cuda_graph_end(void);
void ds_cuda_graph_launch(ds_cuda_graph *g);
void ds_cuda_graph_free(ds_cuda_graph *g);

#ifdef __cplusplus
}
#endif
#endif
