#!/usr/bin/env bash
# Checkpoint and resume through the CLI, on real digits (the MNIST test set in
# $DS_SHARED_DIR/datasets/mnist-t10k, 8000 train / 2000 held out), a tiny
# MLP with batchnorm, dropout and Adam (every kind of state a run carries:
# parameters, BN running statistics, m and v, the step/epoch/micro-step counters).
#
# 1. 2 epochs straight  ==  1 epoch + --save, then --resume for the second:
#    the final checkpoints are byte-identical (cmp) and the --json output is
#    identical apart from the timings. Exact equality is the right bar: the CPU
#    backend is deterministic and a resumed run replays the same operations.
# 2. `descent eval` on the final checkpoint reproduces train's test numbers.
# 3. Bad checkpoints (flipped byte, truncated, wrong magic, wrong shape) exit 2
#    naming the file; failed saves exit 1 naming the path and leave the previous
#    checkpoint intact.
set -u -o pipefail
. "$(dirname "$0")/mnist_suite.sh" test_resume

DATAFLAGS=(--train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2)
COMMON=(train --backend cpu "${DATAFLAGS[@]}" --hidden 16,8 --batchnorm --dropout 0.1
        --optimizer adam --batch-size 128 --seed 5 --quiet --json)
field() { printf '%s\n' "$2" | sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p"; }
strip_timing() { printf '%s\n' "$1" | sed -e 's/"curve":\[[^]]*\]//' -e 's/"[a-z_]*second[a-z_]*":[^,}]*//g' -e 's/"time_to_target":[^,}]*//'; }

# ---- 1. straight vs resumed
A=$("$DESCENT" "${COMMON[@]}" --epochs 2 --save "$W/a2.ckpt" | tail -n 1) || fail "straight run failed"
"$DESCENT" "${COMMON[@]}" --epochs 1 --save "$W/b1.ckpt" >/dev/null || fail "first half failed"
cp "$W/b1.ckpt" "$W/b1.orig"
B=$("$DESCENT" "${COMMON[@]}" --epochs 2 --resume "$W/b1.ckpt" --save "$W/b2.ckpt" | tail -n 1) || fail "resumed run failed"
cmp -s "$W/a2.ckpt" "$W/b2.ckpt" || fail "2 epochs straight and 1+1 resumed give different checkpoints"
cmp -s "$W/b1.ckpt" "$W/b2.ckpt" && fail "the resumed run did not change the model"
cmp -s "$W/b1.ckpt" "$W/b1.orig" || fail "--resume modified its input file"
for f in test_loss test_accuracy train_loss train_accuracy epochs steps; do
  a=$(field "$f" "$A"); b=$(field "$f" "$B")
  [ -n "$a" ] && [ "$a" = "$b" ] || fail "$f: straight '$a' vs resumed '$b'"
done
[ "$(field epochs "$B")" = 2 ] || fail "resumed run reports epochs $(field epochs "$B"), expected 2"
[ "$(strip_timing "$A")" = "$(strip_timing "$B")" ] || fail "JSON differs beyond timings: $A vs $B"

# ---- 2. eval rebuilds the model from the header
E=$("$DESCENT" eval --backend cpu "${DATAFLAGS[@]}" --checkpoint "$W/a2.ckpt" --json) || fail "eval failed"
[ "$(field test_loss "$E")" = "$(field test_loss "$A")" ] || fail "eval test_loss $(field test_loss "$E") vs train $(field test_loss "$A")"
[ "$(field test_accuracy "$E")" = "$(field test_accuracy "$A")" ] || fail "eval test_accuracy differs: $E"
"$DESCENT" eval --backend cpu "${DATAFLAGS[@]}" >/dev/null 2>&1; [ $? = 2 ] || fail "eval without --checkpoint: expected exit 2"

# ---- 3. bad checkpoints: exit 2, one message naming the file
expect2() { # NAME FILE [extra flags]: resume from FILE must exit 2 naming it
  local name=$1 file=$2; shift 2
  local err rc
  err=$("$DESCENT" "${COMMON[@]}" --epochs 2 --resume "$file" "$@" 2>&1 >/dev/null); rc=$?
  [ $rc = 2 ] || fail "$name: exit $rc, expected 2 ($err)"
  [[ "$err" == *"$file"* ]] || fail "$name: message does not name the file: $err"
  printf '%s\n' "$err"
}
size=$(stat -c %s "$W/a2.ckpt")
cp "$W/a2.ckpt" "$W/flip.ckpt"
printf '\x55' | dd of="$W/flip.ckpt" bs=1 seek=$((size - 9)) conv=notrunc status=none
expect2 "flipped tensor byte" "$W/flip.ckpt" | grep -q checksum || fail "flipped byte: no checksum message"
head -c $((size - 100)) "$W/a2.ckpt" > "$W/trunc.ckpt"
expect2 "truncated" "$W/trunc.ckpt" >/dev/null
{ printf 'NOTCKPT!'; tail -c +9 "$W/a2.ckpt"; } > "$W/magic.ckpt"
expect2 "wrong magic" "$W/magic.ckpt" >/dev/null
expect2 "missing file" "$W/none.ckpt" >/dev/null
expect2 "wrong width" "$W/a2.ckpt" --hidden 16,9 | grep -q -- "--hidden: 16,8 in the checkpoint, 16,9 now" || fail "wrong width: the widths are not named"
err=$("$DESCENT" train --backend cpu "${DATAFLAGS[@]}" --hidden 16,8 --batchnorm --optimizer sgd --quiet \
      --epochs 2 --resume "$W/a2.ckpt" 2>&1 >/dev/null); rc=$?
[ $rc = 2 ] && [[ "$err" == *optimizer* ]] || fail "resume with another optimizer: exit $rc: $err"
err=$("$DESCENT" eval --backend cpu "${DATAFLAGS[@]}" --checkpoint "$W/flip.ckpt" 2>&1 >/dev/null); rc=$?
[ $rc = 2 ] && [[ "$err" == *"$W/flip.ckpt"* ]] || fail "eval of a damaged checkpoint: exit $rc: $err"

# ---- failed saves: exit 1 naming the path, previous checkpoint intact
QUICK=(train --backend cpu "${DATAFLAGS[@]}" --hidden 8 --steps 2 --quiet)
err=$("$DESCENT" "${QUICK[@]}" --save "$W/no/such/dir/x.ckpt" 2>&1 >/dev/null); rc=$?
[ $rc = 1 ] && [[ "$err" == *"$W/no/such/dir/x.ckpt"* ]] || fail "save into a missing folder: exit $rc: $err"
cp "$W/a2.ckpt" "$W/keep.ckpt"
ln -s /dev/full "$W/keep.ckpt.tmp"   # every write of the temporary fails (ENOSPC)
err=$("$DESCENT" "${QUICK[@]}" --save "$W/keep.ckpt" 2>&1 >/dev/null); rc=$?
[ $rc = 1 ] && [[ "$err" == *"$W/keep.ckpt"* ]] || fail "save to a full disk: exit $rc: $err"
cmp -s "$W/a2.ckpt" "$W/keep.ckpt" || fail "a failed save changed the previous checkpoint"
[ -e "$W/keep.ckpt.tmp" ] && fail "the temporary was left behind"

if [ $failures -ne 0 ]; then
  echo "test_resume: $failures failure(s)" >&2
  exit 1
fi
echo "test_resume: all checks passed"
