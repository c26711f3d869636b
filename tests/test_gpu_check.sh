#!/usr/bin/env bash
# A dry run of scripts/gpu-check.sh, the GPU session's one command, on a
# machine without a GPU, with the build ctest already made (GPU_CHECK_BUILD):
#   - it finishes in seconds with exit 0: every GPU step reports a skip
#     (exit 77, or CUDA not compiled in), none fails;
#   - every step has its line in summary.log, and results.md holds the head
#     of the record and the step list;
#   - it leaves at most 7 files in its output folder (the device tool returns 8);
#   - with no time left (GPU_CHECK_BUDGET=1) each step says it was skipped for
#     time instead of starting.
# Skipped (77) where a GPU is usable: there, run the script itself.
set -u -o pipefail
: "${DESCENT:?DESCENT must point at the descent binary}"
SRC="${DS_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
BUILD=$(cd "$(dirname "$DESCENT")" && pwd)
if "$DESCENT" --version 2>/dev/null | grep '^cuda:' | grep -q 'compiled in' &&
  ! "$DESCENT" --version 2>/dev/null | grep '^cuda:' | grep -qi 'no usable\|no cuda\|not found'; then
  echo "test_gpu_check: a GPU is usable here: run scripts/gpu-check.sh itself; skipped"
  exit 77
fi
W=$(mktemp -d "${TMPDIR:-/tmp}/test_gpu_check.XXXXXX")
trap 'rm -rf "$W"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

t0=$SECONDS
OUT="$W/out" GPU_CHECK_BUILD="$BUILD" bash "$SRC/scripts/gpu-check.sh" >"$W/stdout" 2>&1
rc=$?
secs=$((SECONDS - t0))
[ $rc -eq 0 ] || fail "dry run: exit $rc, want 0: $(tail -n 5 "$W/stdout")"
[ $secs -le 60 ] || fail "dry run: took $secs s, want seconds (nothing but skips)"
S="$W/out/summary.log"
for step in env ops verify-default verify-no-graph verify-tf32 verify-accum-clip-skip train sanitizer \
            bench-optim bench-train bench-train-tf32 bench-target; do
  line=$(grep -m1 "^$step: " "$S")
  [ -n "$line" ] || { fail "summary.log has no line for '$step'"; continue; }
  [ "$step" = env ] && continue
  case $line in
    *"skipped (exit 77"* | *"skipped (CUDA not compiled in)"* | *"skipped ("*"is not built)"*) ;;
    *) fail "dry run, $step: want a skip for want of a GPU, got: $line" ;;
  esac
done
grep -q FAILED "$S" && fail "dry run: a step failed: $(grep FAILED "$S")"
n=$(find "$W/out" -type f | wc -l)
[ "$n" -le 7 ] || fail "the output folder holds $n files, at most 7 may go back: $(ls "$W/out")"
grep -q '^# descent on the GPU' "$W/out/results.md" && grep -q '^## Steps' "$W/out/results.md" ||
  fail "results.md lacks its head or the step list: $(head -n 5 "$W/out/results.md")"

OUT="$W/out2" GPU_CHECK_BUILD="$BUILD" GPU_CHECK_BUDGET=1 bash "$SRC/scripts/gpu-check.sh" >"$W/stdout" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "no time left: exit $rc, want 0"
grep -q '^verify-default: skipped: .* s left, it needs about' "$W/out2/summary.log" ||
  fail "no time left: verify was not skipped for time: $(cat "$W/out2/summary.log")"

if [ $failures -ne 0 ]; then
  echo "test_gpu_check: $failures failure(s)"
  exit 1
fi
echo "test_gpu_check: the dry run skipped every GPU step in $secs s and left $n files"
