#!/usr/bin/env bash
# Determinism: the same seed, flags and backend give bit-identical results.
#
# CPU (always): two runs of the same command write byte-identical checkpoints
# (every parameter, BatchNorm statistic and optimizer state bit, and the
# step/epoch counters) and identical --json and per-epoch lines apart from
# the timings. The models use every source of randomness there is (init,
# shuffling or sampling with replacement, dropout on inputs and hidden
# units) and multi-threaded OpenBLAS. A third run with another seed must
# differ, so the comparison is known to be able to fail.
#
# GPU (only where one is present and CUDA is compiled in): the same with
# --backend cuda --deterministic. Without a GPU that part is skipped (the
# CPU part always runs, so the suite never exits 77).
set -u -o pipefail
D=${DESCENT:?DESCENT must point at the descent binary}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ds-test-determinism-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
checks=0
fail() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }

# 1200 synthetic 28x28 digits of 10 classes: class-dependent blobs plus noise
# (enough structure that training moves every weight).
python3 - "$tmp" <<'EOF' || { echo "test_determinism: cannot write the data" >&2; exit 1; }
import random, struct, sys
t = sys.argv[1]
rng = random.Random(3)
n = 1200
labels = [i % 10 for i in range(n)]
px = bytearray()
for y in labels:
    cx, cy = 6 + 2 * (y % 5), 8 + 6 * (y // 5)
    for r in range(28):
        for c in range(28):
            v = 200 if (r - cy) ** 2 + (c - cx) ** 2 < 20 else 0
            px.append(max(0, min(255, v + rng.randrange(-40, 40))))
open(t + '/im', 'wb').write(struct.pack('>IIII', 0x803, n, 28, 28) + bytes(px))
open(t + '/lb', 'wb').write(struct.pack('>II', 0x801, n) + bytes(labels))
EOF

strip_timing() { sed -e 's/"[a-z_]*second[a-z_]*":[^,}]*//g' -e 's/"time_to_target":[^,}]*//' -e 's/ *[0-9.]* samples\/s//' "$@"; }

# run NAME ARGS...: descent train ARGS --save $tmp/NAME.ckpt --json; leaves
# $tmp/NAME.json and $tmp/NAME.log (timings stripped)
run() {
  local name=$1
  shift
  "$D" train --train-images "$tmp/im" --train-labels "$tmp/lb" --test-fraction 0.2 "$@" \
    --save "$tmp/$name.ckpt" --json >"$tmp/$name.out" 2>"$tmp/$name.err"
  local rc=$?
  checks=$((checks + 1))
  if [ $rc != 0 ] || [ ! -s "$tmp/$name.ckpt" ]; then
    fail "$name: exit $rc: $(head -c 400 "$tmp/$name.err")"
    return 1
  fi
  strip_timing "$tmp/$name.out" >"$tmp/$name.json"
  grep -v '^descent: note:' "$tmp/$name.err" | strip_timing >"$tmp/$name.log"
}

# same A B: byte-identical checkpoints, JSON and epoch lines
same() {
  checks=$((checks + 1))
  cmp -s "$tmp/$1.ckpt" "$tmp/$2.ckpt" || fail "$1 vs $2: the checkpoints differ ($(cmp "$tmp/$1.ckpt" "$tmp/$2.ckpt" | head -n 1))"
  checks=$((checks + 1))
  cmp -s "$tmp/$1.json" "$tmp/$2.json" || fail "$1 vs $2: --json differs: $(cat "$tmp/$1.json") vs $(cat "$tmp/$2.json")"
  checks=$((checks + 1))
  cmp -s "$tmp/$1.log" "$tmp/$2.log" || fail "$1 vs $2: the epoch lines differ: $(diff "$tmp/$1.log" "$tmp/$2.log" | head -n 4)"
  checks=$((checks + 1))
  grep -q '^epoch' "$tmp/$1.log" || fail "$1: no epoch lines to compare: $(head -c 300 "$tmp/$1.log")"
}

# ---- CPU ---------------------------------------------------------------------
# Two OpenBLAS threads (a user's default is one per core): GEMM partitions
# its work the same way in every run, so threads do not break determinism.
export OPENBLAS_NUM_THREADS=2
M1=(--backend cpu --hidden 64,32 --batchnorm --dropout 0.2 --input-dropout 0.1 --optimizer adam --amsgrad
    --clip-norm 1 --weight-decay 1e-4 --schedule cosine --t-max 40 --warmup 4 --batch-size 64 --accum 2
    --epochs 2 --seed 7)
M2=(--backend cpu --hidden 48 --activation tanh --dropout 0.3 --optimizer rmsprop --centered --momentum 0.5
    --sampling replacement --batch-size 50 --epochs 2 --seed 11)
if run cpu-a "${M1[@]}" && run cpu-b "${M1[@]}"; then
  same cpu-a cpu-b
fi
if run cpu-c "${M1[@]}" --seed 8 && [ -s "$tmp/cpu-a.ckpt" ]; then
  checks=$((checks + 1))
  cmp -s "$tmp/cpu-a.ckpt" "$tmp/cpu-c.ckpt" && fail "--seed 7 and --seed 8 wrote the same checkpoint"
fi
if run cpu-d "${M2[@]}" && run cpu-e "${M2[@]}"; then
  same cpu-d cpu-e
fi

# ---- GPU ---------------------------------------------------------------------
gpu=0
if nvidia-smi -L 2>/dev/null | grep -q '^GPU' && "$D" --version | grep -q '^cuda: compiled in' &&
  ! "$D" --version | grep -q 'no usable'; then
  gpu=1
fi
if [ $gpu = 1 ]; then
  # --deterministic is what the README documents for bit-identical GPU runs;
  # where the binary does not have it (yet), the default GPU path is checked
  # and the gap is said, not hidden.
  DET=(--deterministic)
  if ! "$D" train --help | grep -q -- '--deterministic'; then
    echo "note: descent train has no --deterministic flag: checking the default GPU path"
    DET=()
  fi
  G=("${M1[@]}" --backend cuda "${DET[@]}")   # the later --backend wins
  if run gpu-a "${G[@]}" && run gpu-b "${G[@]}"; then
    same gpu-a gpu-b
    checks=$((checks + 1))
    grep -q '"backend":"cuda"' "$tmp/gpu-a.out" || fail "the GPU runs did not run on cuda: $(cat "$tmp/gpu-a.out")"
  fi
  G2=("${M2[@]}" --backend cuda "${DET[@]}")
  if run gpu-c "${G2[@]}" && run gpu-d "${G2[@]}"; then
    same gpu-c gpu-d
  fi
else
  echo "note: no GPU (or CUDA not compiled in): the --backend cuda --deterministic part is skipped"
fi

if [ "$fails" != 0 ]; then
  echo "test_determinism: $fails of $checks checks FAILED" >&2
  exit 1
fi
echo "test_determinism: all $checks checks passed ($([ $gpu = 1 ] && echo 'CPU and GPU' || echo 'CPU only'))"
