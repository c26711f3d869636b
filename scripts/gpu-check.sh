#!/usr/bin/env bash
# The GPU check: everything a GPU session needs to learn, as ONE command that
# fits a 9-minute window, run from the repository root on the GPU machine
# (with .gpu/ beside it: scripts/gpu-carry.sh fills it with the datasets and
# zlib on a machine that has them).
#
#   OUT=DIR scripts/gpu-check.sh          (OUT defaults to ./gpu-out)
#
# Steps, in order of value; before each, the time left is checked against the
# step's estimate, and each runs under a timeout of what is left, so a slow
# step costs its own result, not the record of the others:
#   env         GPU, driver, nvcc, compute-sanitizer, PyTorch, the commit
#   build       CMake for the GPU found (sm_90a on Hopper), only the GPU
#               targets (descent, test_cuda_ops, bench_optim, bench_train),
#               no -Werror (a new compiler warning must not cost the run)
#   ops         test_cuda_ops with DESCENT_CUDA_SYNC=1 (every launch checked
#               at once, so a faulting kernel is named at its own launch)
#   verify      descent verify: default, --no-graph, --tf32, and --accum 3
#               --clip-norm 1 --on-nonfinite skip
#   train       tests/test_cuda_train.sh
#   sanitizer   compute-sanitizer memcheck, initcheck, synccheck and racecheck
#               over one short training run (every op, one graph capture)
#   bench       bench_optim (every optimizer at 1e6, 1e7, 1e8 parameters
#               against the same-run device copy), bench_train (batch 128 and
#               4096, FP32 and TF32; time to 0.88 test accuracy), PyTorch on
#               the GPU at the same sizes (eager and CUDA graphs)
# CPU-side suites and CPU benchmarks never run here.
#
# $OUT receives at most 7 files, each written as the run goes (a kill at the
# limit loses only the step that was running):
#   summary.log   one line per step: exit status and seconds, or why skipped
#   steps.log     every step's output
#   results.md    the record for bench/results/<date>-h200.md: machine,
#                 commit, commands, verify tables, sanitizer results,
#                 benchmark tables with their ratios
#   bench.jsonl   the raw benchmark records (descent and PyTorch)
# Exit 0 when every step that ran passed (steps skipped for want of a GPU or
# of time are not failures; summary.log says which), 1 otherwise.
#
# Environment:
#   GPU_CHECK_BUDGET   seconds for the whole script (default 530)
#   GPU_CHECK_BUILD    a build folder that already holds the targets: used as
#                      it is, neither configured nor built (the dry run of
#                      tests/test_gpu_check.sh)
#   GPU_CHECK_STEPS    a subset of the steps above (default: all)
set -u -o pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
start=$SECONDS
budget=${GPU_CHECK_BUDGET:-530}
out=${OUT:-$root/gpu-out}
mkdir -p "$out" || { echo "gpu-check: cannot create $out" >&2; exit 1; }
out=$(cd "$out" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
summary=$out/summary.log
log=$out/steps.log
results=$out/results.md
jsonl=$out/bench.jsonl
: >"$summary"
: >"$log"
: >"$jsonl"
g=$root/.gpu
steps=${GPU_CHECK_STEPS:-env build ops verify train sanitizer bench}
build=${GPU_CHECK_BUILD:-$root/build-gpu}
export g build
prebuilt=${GPU_CHECK_BUILD:+1}
failed=0

note() { echo "$*" | tee -a "$summary"; }
left() { echo $((budget - (SECONDS - start))); }
wants() { case " $steps " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
md() { printf '%s\n' "$@" >>"$results"; }

# run NAME ESTIMATE command...: the command under a timeout of the time left,
# its output appended to steps.log, one summary line. 77 (no GPU) is a skip.
# Returns the command's status (124 on timeout, 75 when there was no time).
run() {
  local name=$1 estimate=$2 t0=$SECONDS rc remaining
  shift 2
  remaining=$(left)
  if [ "$remaining" -lt "$estimate" ]; then
    note "$name: skipped: $remaining s left, it needs about $estimate s"
    return 75
  fi
  printf '\n==== %s (%s s left): %s\n' "$name" "$remaining" "$*" >>"$log"
  if declare -F "$1" >/dev/null; then # a function of this script: in a child bash, so it can be timed out
    set -- bash -c "set -o pipefail; $(declare -f "$1"); $*"
  fi
  timeout --kill-after=5 "$remaining" "$@" >>"$log" 2>&1 </dev/null
  rc=$?
  case $rc in
    0) note "$name: ok in $((SECONDS - t0)) s" ;;
    77) note "$name: skipped (exit 77: no usable GPU) in $((SECONDS - t0)) s" ;;
    124 | 137) note "$name: TIMED OUT after $((SECONDS - t0)) s (the budget ran out)"; failed=$((failed + 1)) ;;
    *) note "$name: FAILED (exit $rc) in $((SECONDS - t0)) s"; failed=$((failed + 1)) ;;
  esac
  return $rc
}

# ---- the record's head --------------------------------------------------------
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | grep -v ' bench/results/' | head -n 1)
gpu_line=$(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>/dev/null | head -n 1)
{
  echo "# descent on the GPU, $(date -u +%F)"
  echo
  echo "Written by scripts/gpu-check.sh in one run; do not edit by hand."
  echo
  echo "- commit: $commit${dirty:+ (with uncommitted changes)}"
  echo "- GPU: ${gpu_line:-none found}"
  echo "- CUDA: $(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p' | head -n 1)"
  echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) threads"
  echo "- PyTorch: $(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo 'not installed')"
} >"$results"
note "gpu-check: $(date -u +%FT%TZ) commit $commit, budget $budget s"

env_report() {
  nvidia-smi || echo "nvidia-smi: none"
  nvcc --version | tail -n 2
  cmake --version | head -n 1
  echo "threads: $(nproc)"
  command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer
  python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))'
  ls /usr/include/zlib.h /usr/lib/x86_64-linux-gnu/libopenblas* 2>&1 | head -n 3
  du -sh "$g" 2>&1
  return 0
}
wants env && run env 5 env_report

# ---- build ---------------------------------------------------------------------
# the datasets where the tests and descent look for them
if [ -d "$g/fashion-mnist" ] && [ ! -d /usr/share/datasets/fashion-mnist ]; then
  mkdir -p /usr/share/datasets 2>/dev/null && ln -s "$g/fashion-mnist" /usr/share/datasets/fashion-mnist 2>/dev/null
fi
[ -d "$g/datasets/mnist-t10k" ] && export DS_SHARED_DIR=$g
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

configure_and_build() {
  local zflags=() arch
  [ -f /usr/include/zlib.h ] || zflags=(-DZLIB_INCLUDE_DIR="$g/zlib/include" -DZLIB_LIBRARY="$g/zlib/libz.a")
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d '. ')
  [ "$arch" = 90 ] && arch=90a
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDESCENT_WERROR=OFF -DDESCENT_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${arch:-90a}" -DDS_SHARED_DIR="${DS_SHARED_DIR:-$g}" "${zflags[@]}" &&
    cmake --build "$build" -j"$(nproc)" --target descent_cli || return 1
  # the rest on its own: a target that fails to build costs its own steps only
  cmake --build "$build" -j"$(nproc)" --target test_cuda_ops bench_optim bench_train ||
    echo "build: a test or benchmark target failed to build; its steps will fail"
}
if [ -n "$prebuilt" ]; then
  note "build: using $build as it is (GPU_CHECK_BUILD)"
elif wants build; then
  run build 240 configure_and_build || { note "gpu-check: the build failed: nothing else can run"; exit 1; }
fi
D=$build/descent
[ -x "$D" ] || { note "gpu-check: $D is not built"; exit 1; }
have_cuda=0
"$D" --version 2>/dev/null | grep -q '^cuda: compiled in' && have_cuda=1
md "- descent: $("$D" --version 2>/dev/null | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
md ""
if [ $have_cuda = 0 ]; then
  note "gpu-check: $D has no CUDA compiled in: the GPU steps are skipped"
fi

# gpu_run NAME ESTIMATE command...: run, or a skip line where CUDA is not built
gpu_run() {
  if [ $have_cuda = 0 ]; then
    note "$1: skipped (CUDA not compiled in)"
    return 77
  fi
  run "$@"
}

M=(--train-images "${DS_SHARED_DIR:-$g}/datasets/mnist-t10k/t10k-images-idx3-ubyte.gz"
   --train-labels "${DS_SHARED_DIR:-$g}/datasets/mnist-t10k/t10k-labels-idx1-ubyte.gz" --test-fraction 0.2)
[ -r "${M[1]}" ] || M=() # the default data set (Fashion-MNIST) then

# ---- test_cuda_ops ----------------------------------------------------------------
if wants ops; then
  if [ -x "$build/tests/test_cuda_ops" ]; then
    gpu_run ops 150 env DESCENT_CUDA_SYNC=1 DESCENT="$D" "$build/tests/test_cuda_ops"
  else
    note "ops: skipped ($build/tests/test_cuda_ops is not built)"
  fi
fi

# ---- descent verify ----------------------------------------------------------------
if wants verify; then
  md "## descent verify (largest error per tensor after 20 updates)" ""
  for v in "default|" "no-graph|--no-graph" "tf32|--tf32" "accum-clip-skip|--accum 3 --clip-norm 1 --on-nonfinite skip"; do
    name=${v%%|*} extra=${v#*|}
    # shellcheck disable=SC2086
    gpu_run "verify-$name" 40 "$D" verify "${M[@]}" --quiet $extra
    rc=$?
    if [ $rc -eq 0 ] || [ $rc -eq 1 ]; then # the table of this run, from steps.log
      md "### verify $extra" "" '```'
      awk -v want="==== verify-$name " 'index($0, want) == 1 { on = 1; next } /^==== / { on = 0 } on' "$log" >>"$results"
      md '```' ""
    fi
  done
fi

# ---- the GPU training suite ---------------------------------------------------------
if wants train; then
  gpu_run train 150 env DESCENT="$D" DS_SOURCE_DIR="$root" bash tests/test_cuda_train.sh
fi

# ---- compute-sanitizer -------------------------------------------------------------------
if wants sanitizer; then
  # each of the 4 runs gets a quarter of the time left (a nested timeout is not
  # reached by this script's own: it must end first)
  gpu_run sanitizer 120 env PROGRAMS=train TOOLS="memcheck initcheck synccheck racecheck" \
    CS_TIMEOUT=$((($(left) - 10) / 4)) bash tests/compute_sanitizer.sh "$build"
  md "## compute-sanitizer (one training run: a dozen updates, every op, one graph capture)" "" '```'
  awk '/^==== sanitizer /{ on = 1; next } /^==== /{ on = 0 } on && /^(ok|FAIL|compute_sanitizer)/' "$log" >>"$results"
  md '```' ""
fi

# ---- benchmarks ----------------------------------------------------------------------------
if wants bench; then
  # each benchmark's JSON lines go to bench.jsonl as they come, and to a
  # scratch copy per kind for the tables
  bench() { # NAME ESTIMATE KIND COMMAND-STRING
    gpu_run "$1" "$2" bash -c "set -o pipefail; $4 | tee -a '$jsonl' >>'$tmp/$3.jsonl'"
  }
  torch_bench() {
    run "$1" "$2" bash -c "set -o pipefail; $4 | tee -a '$jsonl' >>'$tmp/$3.jsonl'"
  }
  bench bench-optim 90 optim "'$build/bench/bench_optim' --backend cuda --optimizer all --params 1e6,1e7,1e8 --json"
  bench bench-train 60 train "'$build/bench/bench_train' --backend cuda --batch-size 128,4096 --steps 200 --json"
  bench bench-train-tf32 60 train "'$build/bench/bench_train' --backend cuda --batch-size 128,4096 --steps 200 --tf32 --json"
  bench bench-target 60 target "'$build/bench/bench_train' --backend cuda --batch-size 128 --steps 50 --target 0.88 --max-epochs 10 --json"
  if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    torch_bench torch-train 90 torch "python3 bench/pytorch_baseline.py train --device cuda --batch-size 128,4096 --steps 200 --impl foreach,graph"
    torch_bench torch-train-tf32 90 torch "python3 bench/pytorch_baseline.py train --device cuda --batch-size 128,4096 --steps 200 --impl foreach,graph --tf32"
    torch_bench torch-optim 60 torch-optim "python3 bench/pytorch_baseline.py optim --device cuda --params 1e6,1e7,1e8"
  else
    note "torch: skipped (PyTorch with CUDA not available)"
  fi
  if [ -s "$tmp/optim.jsonl" ]; then
    md "## Optimizer step (bench_optim; ratio = GB/s / the same-run device copy's)" ""
    python3 bench/compare.py optim-table "$tmp/optim.jsonl" >>"$results" 2>>"$log"
    md ""
  fi
  if [ -s "$tmp/train.jsonl" ]; then
    md "## Training step (bench_train: 784-1024-1024-10, BatchNorm, dropout 0.2, Adam)" ""
    python3 bench/compare.py train-table "$tmp/train.jsonl" >>"$results" 2>>"$log"
    md ""
    if [ -s "$tmp/torch.jsonl" ]; then
      md "Against PyTorch on the same GPU in the same run (ratio = descent / PyTorch samples/s):" ""
      python3 bench/compare.py train "$tmp/train.jsonl" "$tmp/torch.jsonl" >>"$results" 2>>"$log"
      md ""
    fi
  fi
  if [ -s "$tmp/optim.jsonl" ] && [ -s "$tmp/torch-optim.jsonl" ]; then
    md "Adam step against PyTorch (ratio = PyTorch time / descent time):" ""
    python3 bench/compare.py optim "$tmp/optim.jsonl" "$tmp/torch-optim.jsonl" >>"$results" 2>>"$log"
    md ""
  fi
  if [ -s "$tmp/target.jsonl" ]; then
    md "Time to 0.88 test accuracy on Fashion-MNIST (batch 128; training time, evaluation excluded):" ""
    sed 's/^/    /' "$tmp/target.jsonl" >>"$results"
    md ""
  fi
fi

md "## Steps" "" '```'
cat "$summary" >>"$results"
md '```'
note "gpu-check: done in $((SECONDS - start)) s, $failed step(s) failed"
[ $failed -eq 0 ]
