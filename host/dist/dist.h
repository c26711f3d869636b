/* host/dist — data-parallel training across processes (`mpirun -np N
 * descent train`): MPI for the processes and the CPU all-reduce, NCCL
 * (bootstrapped through MPI) for the GPU all-reduce. Both are optional at
 * build time (DS_HAVE_MPI, DS_HAVE_NCCL); without MPI every function here
 * works for one process (rank 0 of 1), and a run started by a launcher as one
 * of several processes is refused.
 *
 * The process group is global to the process, like MPI itself. The trainer
 * (host/train) calls it at a few points: the gradient all-reduce of every
 * update, the BatchNorm sums of --sync-bn, the sharded evaluation, the
 * checks at log points; the command (host/cli) at start and end.
 *
 * Collectives must be called by every rank, in the same order. Every MPI and
 * NCCL call is checked: a failure ends the whole job (MPI_Abort) with one
 * line naming the call and the rank. */
#ifndef DS_DIST_H
#define DS_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "descent/backend.h"
#include "descent/data.h"
#include "descent/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Join the job, if this process was started as one of several by a launcher
 * (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_SIZE or MV2_COMM_WORLD_SIZE > 1):
 * MPI_Init, and from then on ds_fatal names the rank and ends the whole job
 * (MPI_Abort). A single process started without a launcher does not touch
 * MPI. Exits 2 with one line when the launcher says several processes but
 * this build has no MPI (every process would train alone and write the same
 * files), or the launcher belongs to another MPI than the one linked.
 * Idempotent. */
void ds_dist_init(void);

/* This process's rank in [0, size), the number of processes, and its rank
 * among the processes on the same machine (which GPU it uses). 0, 1, 0 for a
 * single process. */
int ds_dist_rank(void);
int ds_dist_size(void);
int ds_dist_local_rank(void);

/* "MPI (Open MPI v4.1.4), NCCL 2.27.7", "MPI (...), no NCCL" or "not compiled
 * in", for descent --version. */
const char *ds_dist_describe(char *buf, size_t len);

/* The command's setup under several processes (a no-op for one), after its
 * flags are parsed and before any output is checked or data loaded:
 *   - --batch-size (the GLOBAL batch) must be divisible by the number of
 *     processes: else exit 2, one line naming both numbers;
 *   - every process must have been given the same configuration: a hash of
 *     cfg, the data source, the backend and the resume file is compared
 *     (exit 2 naming the ranks that differ from rank 0);
 *   - ranks other than 0 write nothing: their log path and --json are
 *     cleared, notes and progress silenced (--save stays: the trainer's
 *     checkpoints are written by rank 0 alone, see ds_dist_writes);
 *   - *device becomes *device + the local rank (one GPU per process).
 * `extra` names other settings (the optimizer name) to hash; may be NULL. */
void ds_dist_train_setup(ds_train_config *cfg, const ds_data_source *src, const char *backend, const char *resume,
                         const char *extra, int *json, int *device);

/* Whether this process writes the run's files and stdout (rank 0). */
int ds_dist_writes(void);

/* After the backend is chosen: with CUDA and NCCL, create the NCCL
 * communicator (its unique id broadcast from rank 0 through MPI) on the
 * backend's device and stream. Collective; a no-op for one process. */
void ds_dist_use_backend(const ds_backend *be);

/* Whether ds_dist_allreduce_* may be captured into a backend graph: true for
 * one process, for NCCL, and where the backend has no graphs (the CPU); false
 * for CUDA without NCCL, whose all-reduce goes through host memory. */
int ds_dist_graph_safe(const ds_backend *be);

/* buf[n] (BACKEND memory) = its sum over all processes, in place. On the CPU
 * MPI_Allreduce; on CUDA an NCCL all-reduce enqueued on the backend's stream
 * (no host synchronisation; inside a capture it becomes part of the graph),
 * or, without NCCL, download + MPI_Allreduce + upload. A no-op for one
 * process. Every rank gets the same bits (the reduction is the library's:
 * the order of the partial sums is fixed for a given rank count). */
void ds_dist_allreduce_float(const ds_backend *be, float *buf, size_t n);
void ds_dist_allreduce_double(const ds_backend *be, double *buf, size_t n);

/* bytes of buf (HOST memory) from rank `root` to every process (MPI_Bcast). */
void ds_dist_broadcast_host(void *buf, size_t bytes, int root);

/* Text from this process to process `dest` (HOST memory, len bytes; len 0
 * is a message too): a blocking send (descent sweep brings its result lines
 * to rank 0 this way). A no-op for one process. */
void ds_dist_send_text(int dest, const char *text, size_t len);
/* A text message waiting for this process from any other (non-blocking):
 * 1 with *text (heap, NUL-terminated; the caller frees it), *len and
 * *source set, 0 when none is waiting (always 0 for one process). */
int ds_dist_poll_text(char **text, size_t *len, int *source);

/* buf[n] (HOST memory) = its sum over all processes (MPI_Allreduce). */
void ds_dist_sum_host(double *buf, size_t n);
/* Whether `flag` is non-zero on any process. */
int ds_dist_any(int flag);

/* buf[n] (BACKEND memory) = its mean over all processes (through host
 * memory; log points only: the BatchNorm running statistics without
 * --sync-bn). */
void ds_dist_average(const ds_backend *be, float *buf, size_t n);

/* The parameters params[n] (BACKEND memory) after update `step` must be
 * bit-identical on every process: a checksum of each is compared (one small
 * all-gather). When they differ, exit 1 on every rank, rank 0 printing one
 * line naming the ranks that differ from it. Test hook:
 * DESCENT_DIST_DIVERGE_RANK=R perturbs one parameter on rank R before the
 * first check. */
void ds_dist_check_identical(const ds_backend *be, const float *params, size_t n, long step);

/* Test hook: with DESCENT_DIST_DUMP=PREFIX each process writes its params[n]
 * (BACKEND memory) as raw little-endian float32 to PREFIX.rankR (atomically),
 * so a test can compare the ranks' bits. A no-op without the variable. */
void ds_dist_dump_params(const ds_backend *be, const float *params, size_t n);

/* What the all-reduces of gradients cost so far: calls, bytes each, and the
 * seconds spent in them (host-side: on CUDA with NCCL only the enqueue). */
void ds_dist_stats(long *calls, double *bytes, double *seconds);

/* Leave the job: rank 0 notes the all-reduce statistics (unless quiet), then
 * MPI_Finalize. Call once, at the end of a successful command. */
void ds_dist_finalize(int quiet);

/* End the whole job with `code` now (MPI_Abort; exit(code) for one process). */
void ds_dist_abort(int code);

#ifdef __cplusplus
}
#endif
#endif
