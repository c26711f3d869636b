#!/usr/bin/env bash
# A device fault in the middle of a run, on the CPU backend (the GPU twin of
# these checks is tests/test_cuda_train.sh). DESCENT_FAULT_AT_UPDATE=N makes
# the backend fail just before the optimizer step of update N, as a faulting
# kernel or a lost device would. Expected:
#   - exit 1 and exactly one line on stderr naming the op that failed;
#   - the checkpoint written at the last epoch end (--save-every 1) is intact:
#     `descent eval` loads it, no temporary file is left behind, and resuming
#     from it ends byte-identical to the same run without the fault;
#   - the log rows written before the fault are all there;
#   - a bad DESCENT_FAULT_AT_UPDATE value is a usage error (exit 2).
set -u -o pipefail
. "$(dirname "$0")/mnist_suite.sh" test_faults

DATAFLAGS=(--train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2)
# 8000 training images in batches of 128: 63 updates per epoch
COMMON=(train --backend cpu "${DATAFLAGS[@]}" --hidden 32,16 --batchnorm --dropout 0.1
        --optimizer adam --batch-size 128 --seed 3 --quiet)

# ---- a clean run of 3 epochs: the reference
RUN=("${COMMON[@]}" --epochs 3 --save-every 1)
"$DESCENT" "${RUN[@]}" --save "$W/clean.ckpt" >/dev/null 2>"$W/clean.err" ||
  fail "clean run failed: $(cat "$W/clean.err")"

# ---- the same run, but the device fails at update 140 (in epoch 3)
DESCENT_FAULT_AT_UPDATE=140 "$DESCENT" "${RUN[@]}" --save "$W/run.ckpt" --log "$W/run.csv" >"$W/out" 2>"$W/err"
rc=$?
[ "$rc" -eq 1 ] || fail "faulted run: exit $rc, want 1 ($(cat "$W/err"))"
[ "$(lines "$W/err")" -eq 1 ] || fail "faulted run: $(lines "$W/err") lines on stderr, want 1: $(cat "$W/err")"
grep -q '^descent: .*fault in optim_step' "$W/err" || fail "faulted run: the message does not name the op: $(cat "$W/err")"
[ -f "$W/run.ckpt" ] || fail "faulted run: the checkpoint of epoch 2 is gone"
ls "$W"/run.ckpt?* >/dev/null 2>&1 && fail "faulted run: left a temporary file: $(ls "$W")"
"$DESCENT" eval --backend cpu "${DATAFLAGS[@]}" --checkpoint "$W/run.ckpt" --json >"$W/eval" 2>&1 ||
  fail "eval of the surviving checkpoint failed: $(cat "$W/eval")"
grep -q '"test_accuracy":0\.[6-9]' "$W/eval" || fail "eval of the surviving checkpoint: implausible accuracy: $(cat "$W/eval")"
# intact = exactly the state after epoch 2: resuming from it reproduces the clean run bit for bit
"$DESCENT" "${RUN[@]}" --resume "$W/run.ckpt" --save "$W/resumed.ckpt" >/dev/null 2>"$W/err" ||
  fail "resuming from the surviving checkpoint failed: $(cat "$W/err")"
cmp -s "$W/resumed.ckpt" "$W/clean.ckpt" ||
  fail "resumed from the surviving checkpoint, the run does not end where the clean run ends"
# the log: header + one row per epoch end before the fault (epochs 1 and 2)
[ "$(lines "$W/run.csv")" -eq 3 ] || fail "faulted run: log has $(lines "$W/run.csv") lines, want 3 (header, epochs 1 and 2)"

# ---- the fault before any checkpoint: exit 1, and no checkpoint file appears
DESCENT_FAULT_AT_UPDATE=5 "$DESCENT" "${COMMON[@]}" --epochs 1 --save "$W/early.ckpt" >/dev/null 2>"$W/err"
rc=$?
[ "$rc" -eq 1 ] || fail "fault at update 5: exit $rc, want 1"
[ -e "$W/early.ckpt" ] && fail "fault at update 5: a checkpoint appeared"

# ---- bad values of the variable
for v in abc 0 -3 1x; do
  DESCENT_FAULT_AT_UPDATE=$v "$DESCENT" "${COMMON[@]}" --steps 2 >/dev/null 2>"$W/err"
  rc=$?
  [ "$rc" -eq 2 ] || fail "DESCENT_FAULT_AT_UPDATE=$v: exit $rc, want 2"
  grep -q 'DESCENT_FAULT_AT_UPDATE' "$W/err" || fail "DESCENT_FAULT_AT_UPDATE=$v: message does not name it: $(cat "$W/err")"
done

if [ "$failures" -gt 0 ]; then
  echo "test_faults: $failures check(s) FAILED"
  exit 1
fi
echo "test_faults: all checks passed"
