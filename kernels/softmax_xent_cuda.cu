/* Fused softmax + cross-entropy, CUDA (CPU twin: softmax_xent_cpu.c).
 * loss_b = logsumexp(logits[b,:]) - logits[b, y_b], computed as
 * (max - l_y) + log(sum exp(l - max)) so that no exp overflows and no
 * log-probability is rounded at the magnitude of the logits (the CPU's order).
 *
 * One launch computes the loss, the correct count and dlogits. A warp owns a
 * row (max and first argmax, sum of exponentials, then the gradient); each
 * block writes its partial sums, and the last block to finish (an integer
 * atomic ticket, the pattern of CUDA's threadFenceReduction sample) adds the
 * partials in block order and accumulates them into acc[2] on the device:
 * deterministic, no float atomics, no host round trip. */
#include <climits>
#include <math.h>

#include "cuda_common.cuh"

#define DS_SX_WARPS 8          /* rows in flight per block: one per warp */
#define DS_SX_MAX_BLOCKS 1024  /* partials slots; larger batches loop */

static __device__ double sx_partial_loss[DS_SX_MAX_BLOCKS];
static __device__ double sx_partial_correct[DS_SX_MAX_BLOCKS];
static __device__ unsigned int sx_blocks_done;

/* dlogits[B,C], acc[2] (+= loss sum, correct count) <- logits[B,C], labels[B].
 * dlogits may alias logits (a row is fully read before it is written). */
static __global__ void softmax_xent_kernel(float *dlogits, double *acc, const float *logits,
                                           const int32_t *labels, int B, int C, float grad_scale) {
  const unsigned int full = 0xffffffffu;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  double loss_sum = 0.0, correct = 0.0; /* meaningful in lane 0 */
  for (int b = blockIdx.x * DS_SX_WARPS + warp; b < B; b += gridDim.x * DS_SX_WARPS) {
    const float *l = logits + (size_t)b * C;
    int y = labels[b];
    /* max and its first index, as the CPU's scan finds them: it starts from
     * l[0] and takes a column only when strictly greater, so it keeps the
     * first maximum, skips NaNs after column 0, and stops at a NaN in column 0.
     * Each lane scans its columns with the same strict '>', the warp keeps the
     * smallest index among equal maxima, and l[0] wins when nothing exceeds
     * it (all -inf) or when it is NaN. */
    float maxv = -INFINITY;
    int argmax = INT_MAX;
    for (int c = lane; c < C; c += 32) {
      float v = l[c];
      if (v > maxv) {
        maxv = v;
        argmax = c;
      }
    }
    for (int off = 16; off > 0; off >>= 1) {
      float ov = __shfl_xor_sync(full, maxv, off);
      int oa = __shfl_xor_sync(full, argmax, off);
      if (ov > maxv || (ov == maxv && oa < argmax)) {
        maxv = ov;
        argmax = oa;
      }
    }
    if (argmax == INT_MAX || isnan(l[0])) {
      maxv = l[0];
      argmax = 0;
    }
    float sum = 0.0f;
    for (int c = lane; c < C; c += 32) sum += expf(l[c] - maxv);
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(full, sum, off); /* same in every lane */
    float log_sum = logf(sum);
    if (lane == 0) {
      float ly = y >= 0 && y < C ? l[y] : NAN; /* a bad label poisons the loss instead of faulting */
      loss_sum += (double)((maxv - ly) + log_sum);
      correct += argmax == y ? 1.0 : 0.0;
    }
    __syncwarp(); /* l[y] is read before any lane overwrites it (in-place use) */
    if (dlogits) {
      float *d = dlogits + (size_t)b * C;
      for (int c = lane; c < C; c += 32) {
        float prob = expf((l[c] - maxv) - log_sum);
        d[c] = (prob - (c == y ? 1.0f : 0.0f)) * grad_scale;
      }
    }
  }

  __shared__ double warp_loss[DS_SX_WARPS], warp_correct[DS_SX_WARPS];
  __shared__ int is_last;
  if (lane == 0) {
    warp_loss[warp] = loss_sum;
    warp_correct[warp] = correct;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double bl = 0.0, bc = 0.0;
    for (int w = 0; w < DS_SX_WARPS; w++) {
      bl += warp_loss[w];
      bc += warp_correct[w];
    }
    sx_partial_loss[blockIdx.x] = bl;
    sx_partial_correct[blockIdx.x] = bc;
    __threadfence(); /* the partials are visible device-wide before the ticket */
    is_last = atomicAdd(&sx_blocks_done, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!is_last) return;
  double tl = 0.0, tc = 0.0;
  for (unsigned int i = threadIdx.x; i < gridDim.x; i += blockDim.x) { /* __ldcg: skip L1, read what others wrote */
    tl += __ldcg(&sx_partial_loss[i]);
    tc += __ldcg(&sx_partial_correct[i]);
  }
  tl = ds_block_sum(tl);
  tc = ds_block_sum(tc);
  if (threadIdx.x == 0) {
    acc[0] += tl;
    acc[1] += tc;
    sx_blocks_done = 0; /* ready for the next launch (and graph replay) */
  }
}

static void softmax_xent_launch(float *dlogits, double *acc, const float *logits, const int32_t *labels,
                                int B, int C, float grad_scale) {
  size_t blocks = ((size_t)B + DS_SX_WARPS - 1) / DS_SX_WARPS;
  if (blocks > DS_SX_MAX_BLOCKS) blocks = DS_SX_MAX_BLOCKS;
  softmax_xent_kernel<<<(unsigned int)blocks, 32 * DS_SX_WARPS, 0, ds_cuda.stream>>>(dlogits, acc, logits, labels,
                                                                                    B, C, grad_scale);
  DS_LAUNCH_CHECK("softmax_xent_kernel");
}

/* dlogits[B,C], acc[2] (+= loss sum, correct count) <- logits[B,C], labels[B] */
extern "C" void softmax_xent_cuda(float *dlogits, double *acc, const float *logits, const int32_t *labels,
                                  int B, int C, float grad_scale) {
  DS_CUDA_REQUIRE(B >= 0 && C >= 1, "softmax_xent_cuda", "bad shape B=%d C=%d", B, C);
  DS_CUDA_REQUIRE(acc && logits && labels, "softmax_xent_cuda", "NULL buffer");
  if (B == 0) return;
  softmax_xent_launch(dlogits, acc, logits, labels, B, C, grad_scale);
}
