#!/usr/bin/env bash
# make bench: every benchmark on every backend present, the PyTorch baseline
# in the same run where PyTorch is installed, and a results file written by
# this script (never edited by hand): bench/results/<date>-<device>.md.
# BENCH_QUICK=1 runs fewer sizes and steps; its report is not a record and
# goes to bench/out/ with the raw JSON lines (git-ignored), as does everything
# else that is not the record itself.
# A record never replaces another silently: a second run on the same day is
# written to <date>-<device>-2.md (then -3, ...) and the script says so.
#
# OpenBLAS older than the CPU (0.3.21 on a 2023 Xeon: family 6 model 207)
# does not recognise it and falls back to its SSE3 "Prescott" kernels, 2-3x
# slower than the CPU's AVX2/AVX-512 ones. descent and its benchmarks then set
# OPENBLAS_CORETYPE to the CPU's own kernels themselves (they re-execute once:
# ds_backend_cpu_blas_reexec); the header of the record says so.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out="$here/out"   # raw JSON lines and non-record reports of the last run (git-ignored)
rm -rf "$out"
mkdir -p "$out"
coretype_note=$("$build/descent" --version | sed -n 's/^cpu: OpenBLAS did not recognise/OpenBLAS did not recognise/p')
backends=(cpu)
if "$build/descent" --version | grep -q "^cuda: compiled in; " && ! "$build/descent" --version | grep -qi "no usable\|no cuda\|not implemented"; then
  backends+=(cuda)
else
  echo "bench: no usable GPU here; GPU cases skipped ($("$build/descent" --version | grep '^cuda:'))" >&2
fi
gpu=$(command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1 || true)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
threads=$(nproc)
if [ "${BENCH_QUICK:-0}" = 1 ]; then sizes="1e5,4e6,mlp"; steps=20; batches=128,512; else sizes="1e4,1e5,1e6,4e6,1e7,mlp"; steps=50; batches=128,512,4096; fi
[ "${backends[*]}" = cpu ] || sizes="$sizes,1e8"
cmds=()
run() { cmds+=("$*"); echo "+ $*" >&2; "$@"; }
for be in "${backends[@]}"; do
  run "$build/bench/bench_optim" --backend "$be" --params "$sizes" --json >>"$out/optim.jsonl"
  # Adam back to back (no flush), for the PyTorch side-by-side in both conditions
  run "$build/bench/bench_optim" --backend "$be" --optimizer adam --params 4e6,mlp --no-flush --json >>"$out/optim_noflush.jsonl"
  run "$build/bench/bench_train" --backend "$be" --batch-size "$batches" --steps "$steps" --json >>"$out/train.jsonl"
  # the goals hold with and without BatchNorm/dropout and for every optimizer:
  # the plain model, and two more optimizers (their own update loops)
  run "$build/bench/bench_train" --backend "$be" --no-batchnorm --dropout 0 --batch-size 128,512 --steps "$steps" --json >>"$out/train.jsonl"
  if [ "${BENCH_QUICK:-0}" != 1 ]; then
    run "$build/bench/bench_train" --backend "$be" --optimizer momentum --lr 0.01 --batch-size 128,512 --steps "$steps" --json >>"$out/train.jsonl"
    run "$build/bench/bench_train" --backend "$be" --optimizer adam --amsgrad --batch-size 128 --steps "$steps" --json >>"$out/train.jsonl"
  fi
done
# data parallel (mpirun, CPU ranks) where MPI is compiled in
dist_table=$(bash "$here/bench_dist.sh" "$build") || dist_table=""
[ -z "$dist_table" ] || cmds+=("bench/bench_dist.sh $build")
have_torch=0
if python3 -c 'import torch' 2>/dev/null; then
  have_torch=1
  for be in "${backends[@]}"; do
    run python3 "$here/pytorch_baseline.py" optim --device "$be" --params 4e6,1863690 --threads "$threads" >>"$out/torch_optim.jsonl"
    run python3 "$here/pytorch_baseline.py" optim --device "$be" --params 4e6,1863690 --threads "$threads" --no-flush >>"$out/torch_optim_noflush.jsonl"
    # a shared machine's load comes and goes: each side runs the training
    # case twice, taking turns, and each side's better run is compared
    run python3 "$here/pytorch_baseline.py" train --device "$be" --batch-size "$batches" --steps "$steps" --threads "$threads" >>"$out/torch_train.jsonl"
    run "$build/bench/bench_train" --backend "$be" --batch-size "$batches" --steps "$steps" --json >>"$out/train_again.jsonl"
    run python3 "$here/pytorch_baseline.py" train --device "$be" --batch-size "$batches" --steps "$steps" --threads "$threads" >>"$out/torch_train.jsonl"
  done
fi
# the commit the numbers belong to; the results folder itself does not make it dirty
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no -- . ':!bench/results' 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes)"
fi
device=$([ -n "$gpu" ] && echo "$gpu" | cut -d, -f1 | tr ' ' '-' | tr 'A-Z' 'a-z' || echo cpu)
if [ "${BENCH_QUICK:-0}" = 1 ]; then
  res="$out/$(date +%F)-$device-quick.md"   # not a record
else
  mkdir -p "$here/results"
  res="$here/results/$(date +%F)-$device.md"
  k=2
  while [ -e "$res" ]; do  # never replace a record of the same day
    res="$here/results/$(date +%F)-$device-$k.md"
    k=$((k + 1))
  done
  [ $k = 2 ] || echo "bench: a record of today exists already; this one is ${res#$root/}" >&2
fi
{
  echo "# descent benchmarks, $(date +%F)"
  echo
  echo "Written by bench/run.sh; do not edit by hand."
  echo
  echo "- commit: $commit"
  echo "- CPU: $cpu, $threads threads; $("$build/descent" --version | sed -n 's/^cpu: CPU, //p')"
  [ -z "$coretype_note" ] || echo "- $coretype_note"
  [ "${BENCH_QUICK:-0}" != 1 ] || echo "- BENCH_QUICK=1: fewer sizes and steps; not a record"
  echo "- GPU: ${gpu:-none}"
  echo "- PyTorch: $([ $have_torch = 1 ] && python3 -c 'import torch; print(torch.__version__)' || echo 'not installed')"
  echo
  echo "Commands:"
  echo
  for c in "${cmds[@]}"; do echo "    ${c//$root\//}"; done
  echo
  echo "## Optimizer step (bench_optim)"
  echo
  python3 "$here/compare.py" optim-table "$out/optim.jsonl"
  echo
  echo "## Training step (bench_train)"
  echo
  echo "GEMM floor: the same step's GEMMs alone (every layer's forward, input-gradient and weight-gradient"
  echo "GEMM, the engine's own GEMM on the same threads), one round timed right after each update;"
  echo "step / GEMM floor = the median over updates of update / the round after it. The last column:"
  echo "the same round on OpenBLAS's own threads (timed after the updates), the median."
  echo
  python3 "$here/compare.py" train-table "$out/train.jsonl"
  if [ -n "$dist_table" ]; then
    echo
    echo "## Data parallel on the CPU (bench_dist.sh)"
    echo
    echo "$dist_table"
  fi
  if [ $have_torch = 1 ]; then
    echo
    echo "## Against PyTorch (same machine, same run)"
    echo
    echo "Adam step, descent vs PyTorch (ratio = PyTorch time / descent time), the cache flushed before each"
    echo "step on both sides (as in a training loop, where forward and backward run between two steps):"
    echo
    python3 "$here/compare.py" optim "$out/optim.jsonl" "$out/torch_optim.jsonl"
    echo
    echo "The same, back-to-back steps on both sides (--no-flush: what stays in the last-level cache is reused):"
    echo
    python3 "$here/compare.py" optim "$out/optim_noflush.jsonl" "$out/torch_optim_noflush.jsonl"
    echo
    echo "Training step, 784-1024-1024-10, BatchNorm, dropout 0.2, Adam (ratio = descent / PyTorch samples/s;"
    echo "each side ran twice, taking turns with the other, and its better run is shown; PyTorch's default"
    echo "Adam on the CPU is the for-loop one):"
    echo
    python3 "$here/compare.py" train "$out/train.jsonl" "$out/train_again.jsonl" "$out/torch_train.jsonl"
  else
    echo
    echo "PyTorch is not installed on this machine: no side-by-side baseline in this run."
  fi
} >"$res"
cat "$res"
echo "bench: wrote ${res#$root/}" >&2
