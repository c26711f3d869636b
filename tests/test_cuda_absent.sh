#!/usr/bin/env bash
# The GPU-less machine, as users meet it:
#   descent train --backend cuda   exits 77 with one line on stderr (and nothing on stdout);
#   descent verify                 exits 77 the same way, before it reads any data;
#   descent train --backend auto   trains on the CPU, with a note when CUDA support
#                                  is compiled in (no GPU to use) and none when it is not;
#   descent --version              says what it found.
# Where a GPU IS present this suite is skipped (77): tests/test_cuda_ops.cu
# covers that machine.
set -u
: "${DESCENT:?DESCENT must point at the descent binary}"
shared=${DS_SHARED_DIR:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
lines() { if [ -s "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }

# --data names a folder that does not exist: without a GPU the backend check
# comes first (77); with one, loading the data fails (2).
"$DESCENT" train --backend cuda --data "$tmp/no-such-dir" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q -- "--data" "$tmp/err"; then
  echo "skipped: a usable GPU is present ($("$DESCENT" --version | grep '^cuda:'))"
  exit 77
fi

# 1. --backend cuda
[ "$rc" -eq 77 ] || fail "train --backend cuda: exit $rc, want 77 ($(cat "$tmp/err"))"
[ "$(lines "$tmp/err")" -eq 1 ] || fail "train --backend cuda: $(lines "$tmp/err") lines on stderr, want 1: $(cat "$tmp/err")"
grep -q '^descent: --backend cuda: ' "$tmp/err" || fail "train --backend cuda: message does not name the flag: $(cat "$tmp/err")"
[ ! -s "$tmp/out" ] || fail "train --backend cuda: wrote to stdout: $(cat "$tmp/out")"

# 2. verify: checks for the GPU first, so the missing folder is never looked at
"$DESCENT" verify --data "$tmp/no-such-dir" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 77 ] || fail "verify: exit $rc, want 77 ($(cat "$tmp/err"))"
[ "$(lines "$tmp/err")" -eq 1 ] || fail "verify: $(lines "$tmp/err") lines on stderr, want 1: $(cat "$tmp/err")"
grep -q '^descent: verify: ' "$tmp/err" || fail "verify: message does not name the command: $(cat "$tmp/err")"
grep -q 'no-such-dir' "$tmp/err" && fail "verify: looked at the data before the GPU: $(cat "$tmp/err")"
[ ! -s "$tmp/out" ] || fail "verify: wrote to stdout: $(cat "$tmp/out")"

# 3. --version
"$DESCENT" --version >"$tmp/out" 2>"$tmp/err" || fail "--version: exit $?"
grep -q '^cuda: ' "$tmp/out" || fail "--version: no cuda line: $(cat "$tmp/out")"
compiled=0
grep -q '^cuda: compiled in' "$tmp/out" && compiled=1

# 4. --backend auto trains on the CPU (real images: Fashion-MNIST's test set)
fashion=${DS_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
images="$fashion/t10k-images-idx3-ubyte.gz"
labels="$fashion/t10k-labels-idx1-ubyte.gz"
if [ -f "$images" ] && [ -f "$labels" ]; then
  "$DESCENT" train --backend auto --train-images "$images" --train-labels "$labels" --test-fraction 0.2 \
    --hidden 8 --batch-size 32 --steps 2 --json >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [ "$rc" -eq 0 ] || fail "train --backend auto: exit $rc: $(cat "$tmp/err")"
  grep -q '"backend":"cpu"' "$tmp/out" || fail "train --backend auto: did not run on the CPU: $(cat "$tmp/out")"
  notes=$(grep -c '^descent: note: --backend auto: .*; using the CPU$' "$tmp/err")
  if [ "$compiled" -eq 1 ]; then
    [ "$notes" -eq 1 ] || fail "train --backend auto: want one note about the fallback, got: $(cat "$tmp/err")"
  else
    [ "$notes" -eq 0 ] || fail "train --backend auto: a build without CUDA should not mention a fallback: $(cat "$tmp/err")"
  fi
  # --quiet: nothing on stderr at all
  "$DESCENT" train --backend auto --train-images "$images" --train-labels "$labels" --test-fraction 0.2 \
    --hidden 8 --batch-size 32 --steps 2 --quiet >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] || fail "train --backend auto --quiet: exit $rc, stderr: $(cat "$tmp/err")"
else
  echo "note: $images not found; --backend auto not exercised"
fi

if [ "$failures" -gt 0 ]; then
  echo "test_cuda_absent: $failures check(s) FAILED"
  exit 1
fi
echo "test_cuda_absent: all checks passed"
exit 0
