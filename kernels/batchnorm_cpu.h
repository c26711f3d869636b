/* BatchNorm1d on a block of columns [c0, c1) of a [B, C] row-major matrix:
 * the pieces batchnorm_cpu.c and the fused hidden layer (hidden_cpu.c) run on
 * each pool thread's own columns. Walking the rows of a narrow block keeps
 * every access contiguous; each column is still summed over b in order, so
 * the floats are those of one thread walking column by column. Internal to
 * kernels/. */
#ifndef DS_BATCHNORM_CPU_H
#define DS_BATCHNORM_CPU_H

/* The widest block the pieces take (their stack arrays hold this many). Each
 * thread walks its whole share of the columns at once up to this width:
 * narrower blocks keep a block in L1 at small batches but, with rows 4 KiB
 * apart (1024 columns), a 64-column block touches 4 cache lines per page,
 * which defeats the prefetcher and, at batch 4096, the L2's associativity
 * (measured: 1.6-2x slower forward and backward at batch 4096, no gain at 128). */
#ifndef DS_BN_BLOCK
#define DS_BN_BLOCK 1024
#endif

/* mu[c1-c0], rs[c1-c0]: the mean and 1/sqrt(var + eps) that normalise columns
 * [c0, c1) of inp[B,C]. Training: from the batch (sums in double), also stored
 * in mean/rstd[C], and running_mean/var[C] updated; inference: from
 * running_mean/var. */
void batchnorm_block_stats_cpu(float *mu, float *rs, float *mean, float *rstd, float *running_mean,
                               float *running_var, const float *inp, int B, int C, int c0, int c1, int training,
                               float momentum, float eps);

/* dinp[B, c0:c1] (may alias dout); dgamma, dbeta[c0:c1] += from dout[B, c0:c1].
 * prepare (optional) is called with row r just before row r of dout is first
 * read, so a fused caller can write that row of dout then, while it is in
 * cache (the fused hidden layer: dropout mask and act'). */
typedef void (*ds_bn_row_fn)(void *ctx, int r, int c0, int c1);
void batchnorm_block_backward_cpu(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *inp,
                                  const float *mean, const float *rstd, const float *gamma, int B, int C, int c0,
                                  int c1, ds_bn_row_fn prepare, void *ctx);

#endif
