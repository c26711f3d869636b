#!/usr/bin/env bash
# Every optimizer trains: on real digits (the MNIST test set in
# $DS_SHARED_DIR/datasets/mnist-t10k, 8000 train / 2000 held out), a small MLP
# trained for 100 updates with each optimizer at its default learning rate must
# end with a much lower held-out loss than the same model untrained.
#
# The untrained loss comes from `descent train --epochs 0`, which reports the
# initial model's test numbers (train_loss is NaN there: no batch was seen).
# It must be near ln(10) = 2.30 (a 10-way classifier with small logits).
# Thresholds: after 100 updates every optimizer reaches a test loss of
# 0.3-0.5 (measured), i.e. ~0.2 of the initial; we require < 0.5 of the
# initial, and a run-average train_loss (it includes the first, untrained
# batches) < 0.8 of the initial: a broken update (no movement, divergence,
# wrong sign) fails both by a wide margin. CPU backend: deterministic, and the
# whole suite takes ~1-2 s.
set -u -o pipefail
. "$(dirname "$0")/mnist_suite.sh" test_optim_train

COMMON=(train --backend cpu --train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2
        --hidden 32 --batch-size 64 --seed 3 --json --quiet)

# field NAME JSON -> the value (the output may hold "nan", which is not JSON, so no jq)
field() { printf '%s\n' "$2" | sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p"; }

# a finite decimal number? ("nan"/"inf" would read as awk variables equal to 0)
is_number() { [[ "$1" =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]]; }

# check CONDITION-in-awk MESSAGE: awk decides, so floats compare as numbers
check() {
  if awk "BEGIN { exit !($1) }"; then :; else
    echo "FAIL: $2" >&2
    failures=$((failures + 1))
  fi
}

out=$("$DESCENT" "${COMMON[@]}" --epochs 0 | tail -n 1) || { echo "FAIL: descent --epochs 0 exited $?" >&2; exit 1; }
init=$(field test_loss "$out")
steps=$(field steps "$out")
if ! is_number "$init"; then echo "FAIL: no finite test_loss in: $out" >&2; exit 1; fi
check "$steps == 0" "--epochs 0 applied $steps updates"
check "$init > 1.8 && $init < 3.5" "untrained test loss $init is not near ln(10) = 2.30"
echo "untrained: test_loss $init"

for opt in sgd momentum nesterov adagrad rmsprop adam adamw; do
  if ! out=$("$DESCENT" "${COMMON[@]}" --optimizer "$opt" --steps 100 | tail -n 1); then
    echo "FAIL: $opt: descent exited with an error" >&2
    failures=$((failures + 1))
    continue
  fi
  test_loss=$(field test_loss "$out")
  train_loss=$(field train_loss "$out")
  steps=$(field steps "$out")
  name=$(field optimizer "$out")
  if ! is_number "$test_loss" || ! is_number "$train_loss"; then
    echo "FAIL: $opt: no finite losses in: $out" >&2
    failures=$((failures + 1))
    continue
  fi
  echo "$opt: train_loss $train_loss test_loss $test_loss"
  check "$steps == 100" "$opt: $steps updates, want 100"
  [ "$name" = "\"$opt\"" ] || { echo "FAIL: $opt: reported optimizer $name" >&2; failures=$((failures + 1)); }
  check "$test_loss < 0.5 * $init" "$opt: test loss $test_loss not below half the untrained $init"
  check "$train_loss < 0.8 * $init" "$opt: mean train loss $train_loss not below 0.8 x untrained $init"
done

if [ "$failures" -ne 0 ]; then
  echo "test_optim_train: $failures checks FAILED" >&2
  exit 1
fi
echo "test_optim_train: all optimizers lowered the loss"
