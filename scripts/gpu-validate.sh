#!/usr/bin/env bash
# Run ON the GPU machine, from the repository root, with .gpu/ carried (see
# scripts/gpu-carry.sh): everything a GPU session checks. One line per step
# goes to $OUT/summary.log; each step's output is packed into $OUT/logs.tgz
# (the device tool returns at most 8 files), and the benchmark results file
# is copied to $OUT. A call may run 10 minutes: split the steps over two calls,
#   STEPS="env build ctest verify" ... then STEPS="sanitizer bench" ...
# (build-gpu/ is git-ignored, so it stays on a warm machine between calls).
#   env        what the machine has (GPU, driver, nvcc, zlib, BLAS, PyTorch)
#   build      CMake for the GPU found (sm_90a on Hopper), -Werror, no OpenBLAS
#              needed (plain C GEMM), carried zlib where the system has none
#   ctest      every suite, the GPU ones included (test_cuda_ops, test_cuda_train)
#   verify     descent verify: default, --no-graph, --tf32, relu
#   sanitizer  tests/compute_sanitizer.sh (memcheck, racecheck, initcheck, synccheck)
#   bench      bench/run.sh (bench_optim, bench_train, the PyTorch baseline)
#   STEPS="build ctest" scripts/gpu-validate.sh   runs a subset (build always first)
set -u -o pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${OUT:-$root/gpu-out}
logs=$out/logs
mkdir -p "$logs"
trap 'tar czf "$out/logs.tgz" -C "$out" logs 2>/dev/null' EXIT
g=$root/.gpu
build=${BUILD:-build-gpu}
steps=${STEPS:-env build ctest verify sanitizer bench}
summary=$out/summary.log
note() { echo "$*" | tee -a "$summary"; }
step() { # NAME command...: run it, log to $out/NAME.log, one summary line
  local name=$1 t0=$SECONDS rc
  shift
  "$@" >"$logs/$name.log" 2>&1
  rc=$?
  note "$name: exit $rc in $((SECONDS - t0)) s"
  return $rc
}
wants() { case " $steps " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

env_report() {
  nvidia-smi || true
  nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv || true
  nvcc --version; cmake --version | head -1; nproc
  ls -l /usr/include/zlib.h 2>&1; ls /usr/lib/x86_64-linux-gnu/libopenblas* /usr/lib/x86_64-linux-gnu/libcblas* 2>&1
  command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>&1
  python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))' 2>&1
  du -sh "$g"/* 2>&1
}

configure_and_build() {
  local zflags=() arch
  [ -f /usr/include/zlib.h ] || zflags=(-DZLIB_INCLUDE_DIR="$g/zlib/include" -DZLIB_LIBRARY="$g/zlib/libz.a")
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
  [ "$arch" = 90 ] && arch=90a
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDESCENT_WERROR=ON -DDESCENT_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${arch:-90a}" -DDS_SHARED_DIR="$g" "${zflags[@]}" &&
    cmake --build "$build" -j"$(nproc)"
}

# the default dataset where the tests and `make run` look for it
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ -d "$g/fashion-mnist" ]; then
  mkdir -p /usr/share/datasets && ln -s "$g/fashion-mnist" /usr/share/datasets/fashion-mnist
fi
export DS_SHARED_DIR=$g
: >"$summary"
note "gpu-validate: $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
wants env && step env env_report
step build configure_and_build || { note "build failed: see logs/build.log"; exit 1; }
D=$build/descent
M=(--train-images "$g/datasets/mnist-t10k/t10k-images-idx3-ubyte.gz"
   --train-labels "$g/datasets/mnist-t10k/t10k-labels-idx1-ubyte.gz" --test-fraction 0.2)
wants ctest && step ctest bash -c "cd '$build' && ctest --output-on-failure -j4"
if wants verify; then
  step verify "$D" verify "${M[@]}"
  step verify-no-graph "$D" verify "${M[@]}" --no-graph
  step verify-tf32 "$D" verify "${M[@]}" --tf32
  step verify-relu "$D" verify "${M[@]}" --activation relu --optimizer adam
fi
wants sanitizer && step sanitizer bash tests/compute_sanitizer.sh "$build"
if wants bench; then
  step bench bash bench/run.sh "$build"
  cp "$(ls -t bench/results/*.md | head -1)" "$out/" 2>/dev/null
fi
note "gpu-validate: done"
