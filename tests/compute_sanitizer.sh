#!/usr/bin/env bash
# compute-sanitizer over the GPU suite: memcheck (with the device-leak
# check), racecheck, initcheck and synccheck, each over
#   - every GPU test program (tests/test_*.cu, built into BUILD/tests/),
#   - a short `descent train --backend cuda`: a dozen updates that use every
#     GPU op (BatchNorm, dropout on inputs and hidden units, Adam with AMSGrad,
#     clipping, a schedule, accumulation, one CUDA-graph capture and its
#     replays, the monitoring at two log points, evaluation) and save a
#     checkpoint,
#   - `descent eval` of that checkpoint, the playground, and `descent verify`
#     where the binary has it.
# Exit 0 only when every run is clean; 77 (skipped) when BUILD has no CUDA
# compiled in or finds no usable GPU. Exit 1 when compute-sanitizer is
# missing, a program fails, or
# a tool reports an error, a race, a leak or a synchronisation hazard. CUDA
# API errors that a library returns and handles inside itself (cuBLAS probing
# a feature) are not reported (--report-api-errors no): descent checks every
# status it gets, so one of its own ends the program with exit 1, a failure
# here. Each run gets CS_TIMEOUT seconds (default 1200). Not a ctest suite (it needs a GPU and takes
# minutes): run it by hand, or scripts/gpu-check.sh runs it on the train
# program.
#
#   tests/compute_sanitizer.sh [BUILD]        (BUILD defaults to ./build)
#   TOOLS="memcheck initcheck" PROGRAMS="train eval" tests/compute_sanitizer.sh build
# PROGRAMS: any of the GPU test programs' names (test_cuda_ops), train, eval, predict,
# playground, verify (default: all).
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=$(cd "${1:-$src/build}" 2>/dev/null && pwd) || { echo "compute_sanitizer: no build folder ${1:-$src/build}" >&2; exit 1; }
tools=${TOOLS:-memcheck racecheck initcheck synccheck}
programs=${PROGRAMS:-}
D=$build/descent

die() { echo "compute_sanitizer: $*" >&2; exit 1; }

skip() { echo "compute_sanitizer: $*: skipped" >&2; exit 77; }
[ -x "$D" ] || die "$D does not exist: build first (cmake -S . -B $build && cmake --build $build)"
"$D" --version | grep -q '^cuda: compiled in' || skip "$D was built without CUDA"
"$D" --version | grep -q '^cuda:.*no usable' && skip "$D finds no usable GPU: $("$D" --version | grep '^cuda')"
cs=$(command -v compute-sanitizer || true)
if [ -z "$cs" ]; then
  for d in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda "$(dirname "$(command -v nvcc 2>/dev/null || echo /x/x)")/.."; do
    [ -n "$d" ] && [ -x "$d/bin/compute-sanitizer" ] && { cs=$d/bin/compute-sanitizer; break; }
    [ -n "$d" ] && [ -x "$d/compute-sanitizer/compute-sanitizer" ] && { cs=$d/compute-sanitizer/compute-sanitizer; break; }
  done
fi
[ -n "$cs" ] || die "compute-sanitizer not found (PATH, \$CUDA_HOME/bin, /usr/local/cuda/bin); it comes with the CUDA toolkit"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ds-compute-sanitizer-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# A small real-looking data set (600 synthetic 28x28 digits, 10 classes).
python3 - "$tmp" <<'EOF' || die "cannot write the test data"
import random, struct, sys
t = sys.argv[1]
rng = random.Random(5)
n = 600
labels = [i % 10 for i in range(n)]
px = bytes(max(0, min(255, (200 if (r - 8 - 6 * (y // 5)) ** 2 + (c - 6 - 2 * (y % 5)) ** 2 < 20 else 0)
                      + rng.randrange(-40, 40))) for y in labels for r in range(28) for c in range(28))
open(t + '/im', 'wb').write(struct.pack('>IIII', 0x803, n, 28, 28) + px)
open(t + '/lb', 'wb').write(struct.pack('>II', 0x801, n) + bytes(labels))
EOF
DATA=(--train-images "$tmp/im" --train-labels "$tmp/lb" --test-fraction 0.2)

# The programs, one per line: NAME<TAB>command...
progs=$tmp/programs
: >"$progs"
for cu in "$src"/tests/test_*.cu; do
  [ -e "$cu" ] || continue
  name=$(basename "$cu" .cu)
  [ -x "$build/tests/$name" ] || die "$build/tests/$name is not built (a CUDA build builds every tests/test_*.cu)"
  printf '%s\t%s\n' "$name" "$build/tests/$name" >>"$progs"
done
printf '%s\t%s\n' train "$D train --backend cuda ${DATA[*]} --hidden 32,16 --batchnorm --dropout 0.2 --input-dropout 0.1 --optimizer adam --amsgrad --clip-norm 1 --schedule cosine --t-max 20 --warmup 2 --accum 2 --batch-size 32 --steps 12 --log-every 6 --log $tmp/train.csv --quiet --json --save $tmp/model.ckpt" >>"$progs"
printf '%s\t%s\n' eval "$D eval --backend cuda ${DATA[*]} --checkpoint $tmp/model.ckpt --json" >>"$progs"
printf '%s\t%s\n' predict "$D predict --backend cuda --checkpoint $tmp/model.ckpt --images $tmp/im --out $tmp/logits.npy" >>"$progs"
printf '%s\t%s\n' playground "$D playground --backend cuda --fn rosenbrock --optimizer adam,rmsprop,nesterov --steps 50" >>"$progs"
if "$D" --help | grep -q '^  verify '; then
  printf '%s\t%s\n' verify "$D verify ${DATA[*]} --hidden 32,16 --batchnorm --dropout 0.2 --optimizer adam --steps 3" >>"$progs"
fi

if [ -n "$programs" ]; then # keep the named ones, in their order here
  awk -F '\t' -v keep=" $programs " 'index(keep, " " $1 " ")' "$progs" >"$progs.kept"
  mv "$progs.kept" "$progs"
  [ -s "$progs" ] || die "PROGRAMS='$programs' names none of: test_*.cu programs, train, eval, predict, playground, verify"
fi
export DS_SOURCE_DIR=$src DS_SHARED_DIR=${DS_SHARED_DIR:-$src/../shared} DESCENT=$D OPENBLAS_NUM_THREADS=1
echo "compute_sanitizer: $cs ($("$cs" --version | grep -m1 -o 'Version [0-9.]*'))"
failed=0
runs=0
for tool in $tools; do
  # CUDA API errors that a library returns and handles inside itself are not
  # reported (descent checks every status it gets: one of its own ends the
  # program with exit 1, which fails the run below)
  opts=(--tool "$tool" --error-exitcode 99 --print-limit 20 --report-api-errors no)
  case $tool in
    memcheck) opts+=(--leak-check full) ;;
    racecheck) opts+=(--racecheck-report all) ;;
  esac
  while IFS=$'\t' read -r name cmd; do
    runs=$((runs + 1))
    log=$tmp/$tool-$name.log
    t0=$(date +%s)
    # shellcheck disable=SC2086  # cmd is a word list built above (no spaces in paths of tmp)
    timeout "${CS_TIMEOUT:-1200}" "$cs" "${opts[@]}" $cmd >"$log" 2>&1 </dev/null
    rc=$?
    secs=$(($(date +%s) - t0))
    summary=$(grep -E '(ERROR|RACECHECK|LEAK) SUMMARY' "$log" | tr '\n' ' ')
    # clean: exit 0, no hazard line, every summary line (when the tool prints one) says 0
    if [ $rc -ne 0 ] || grep -Eq '(ERROR|RACECHECK|LEAK) SUMMARY: [1-9]' "$log" ||
      grep -Eq '^========= (Invalid|Uninitialized|Race|Barrier|Leaked|Program hit|Error:|Target application returned an error)' "$log"; then
      failed=$((failed + 1))
      echo "FAIL $tool $name (exit $rc, ${secs}s): $summary" >&2
      grep -E '^=========' "$log" | head -n 30 | sed 's/^/    /' >&2
      [ $rc -eq 77 ] && echo "    (exit 77: the program found no GPU)" >&2
    else
      echo "ok   $tool $name (${secs}s) $summary"
    fi
  done <"$progs"
done
if [ $failed -ne 0 ]; then
  echo "compute_sanitizer: $failed of $runs runs FAILED" >&2
  exit 1
fi
echo "compute_sanitizer: all $runs runs clean ($tools)"
