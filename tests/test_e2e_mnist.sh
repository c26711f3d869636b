#!/usr/bin/env bash
# End to end on real digits: the 10,000 MNIST test digits (found as
# tests/mnist_suite.sh says), first 8,000 to train, last 2,000 to test,
# a 784-128-10 ReLU MLP with plain SGD (lr 0.1, batch 64) for 20 epochs
# (about 1.2 s per run on one core). Two seeds run; each must pass.
#
# Thresholds, from seeds 1-12 of this run: test accuracy 0.9495-0.9560 (mean
# 0.9535, sd 0.002), test loss 0.142-0.161. A linear model (--hidden none)
# trained the same way gets 0.933-0.936 and loss 0.232-0.254 (these last
# 2,000 digits are the easier half of t10k), chance is 0.10. So: accuracy
# >= 0.94 (over 4 sd below the MLP's mean) and test loss < 0.20 (midway
# between the MLP's worst and the linear model's best) pass the MLP on any
# seed and fail a pipeline that learns no more than a linear model.
set -u
D=${DESCENT:?DESCENT must point at the descent binary}
MNIST_ONLY=1 # the thresholds below are for digits
. "$(dirname "$0")/mnist_suite.sh" test_e2e_mnist
fails=0
for seed in 1 2; do
  out=$("$D" train --backend cpu --train-images "$IMAGES" \
    --train-labels "$LABELS" --test-fraction 0.2 --hidden 128 \
    --optimizer sgd --lr 0.1 --batch-size 64 --epochs 20 --seed "$seed" --json --quiet)
  rc=$?
  if [ "$rc" != 0 ]; then
    echo "FAIL: seed $seed: descent exited $rc" >&2
    fails=$((fails + 1))
    continue
  fi
  if ! python3 - "$seed" "$out" <<'EOF'; then fails=$((fails + 1)); fi
import json, sys
seed, r = sys.argv[1], json.loads(sys.argv[2].strip().splitlines()[-1])
print('seed %s: test_accuracy %.4f test_loss %.4f train_loss %.4f steps %d %.2f s' %
      (seed, r['test_accuracy'], r['test_loss'], r['train_loss'], r['steps'], r['seconds']))
ok = True
# 8000 training digits, batch 64: ceil(8000/64) = 125 updates per epoch
if r['steps'] != 2500 or r['epochs'] != 20:
    print('FAIL: %d steps in %d epochs, want 2500 in 20' % (r['steps'], r['epochs']), file=sys.stderr); ok = False
if not r['test_accuracy'] >= 0.94:
    print('FAIL: test accuracy %.4f < 0.94' % r['test_accuracy'], file=sys.stderr); ok = False
if not r['test_loss'] < 0.20:
    print('FAIL: test loss %.4f >= 0.20' % r['test_loss'], file=sys.stderr); ok = False
sys.exit(0 if ok else 1)
EOF
done
if [ "$fails" != 0 ]; then
  echo "test_e2e_mnist: $fails run(s) FAILED" >&2
  exit 1
fi
echo "test_e2e_mnist: passed"
