#!/usr/bin/env bash
# Data-parallel training on this machine's CPU (host/dist): the same run as
# 1 process x 2 GEMM threads and as 2 processes x 1 thread (mpirun), same
# global batch, model 784-1024-1024-10 with BatchNorm (--sync-bn), dropout 0.2
# and Adam: 1,867,786 parameters (BatchNorm's gamma and beta included), so
# 4 x 1,867,786 = 7.47 MB all-reduced per update. Prints a Markdown table:
# samples/s of each, the all-reduce's time per update (on the host: it
# includes waiting for the slower rank) and its bytes (rank 0's closing note).
#   bench/bench_dist.sh [BUILD]   (BENCH_DIST_STEPS, BENCH_DIST_BATCH; BENCH_QUICK=1: fewer steps)
set -uo pipefail
build=${1:-build}
D="$build/descent"
steps=${BENCH_DIST_STEPS:-$([ "${BENCH_QUICK:-0}" = 1 ] && echo 10 || echo 40)}
batch=${BENCH_DIST_BATCH:-512}
command -v mpirun >/dev/null || { echo "bench_dist: no mpirun (make deps installs Open MPI): skipped" >&2; exit 0; }
"$D" --version | grep -q '^mpi: MPI' || { echo "bench_dist: $D has no MPI: skipped" >&2; exit 0; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
RUN=(train --backend cpu --hidden 1024,1024 --batchnorm --sync-bn --dropout 0.2 --optimizer adam --lr 1e-3
     --batch-size "$batch" --steps "$steps" --log-every "$steps" --seed 1 --json)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sps() { sed -n 's/.*"samples_per_second":\([^,}]*\).*/\1/p' "$1" | tail -n 1; }
OPENBLAS_NUM_THREADS=2 "$D" "${RUN[@]}" >"$tmp/one" 2>"$tmp/one.err" ||
  { echo "bench_dist: 1 process failed: $(tail -n 2 "$tmp/one.err")" >&2; exit 1; }
mpirun --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 -x OPENBLAS_NUM_THREADS=1 -np 2 "$D" "${RUN[@]}" \
  >"$tmp/two" 2>"$tmp/two.err" || { echo "bench_dist: 2 processes failed: $(tail -n 3 "$tmp/two.err")" >&2; exit 1; }
note=$(grep 'gradient all-reduces' "$tmp/two.err")
bytes=$(printf '%s\n' "$note" | sed -n 's/.* all-reduces of \([0-9]*\) bytes.*/\1/p')
ms=$(printf '%s\n' "$note" | sed -n 's/.*, \([0-9.]*\) ms each.*/\1/p')
echo "784-1024-1024-10, BatchNorm (--sync-bn), dropout 0.2, Adam; global batch $batch, $steps updates, CPU backend:"
echo
echo "| run | samples/s | all-reduce per update | bytes all-reduced per update |"
echo "|---|---:|---:|---:|"
echo "| 1 process x 2 GEMM threads | $(sps "$tmp/one") | - | - |"
echo "| 2 processes x 1 GEMM thread (mpirun) | $(sps "$tmp/two") | ${ms:-?} ms | ${bytes:-?} |"
