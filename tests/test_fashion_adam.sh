#!/usr/bin/env bash
# Acceptance criterion of the optimizers issue:
#   descent train --optimizer adam --lr 1e-3 --hidden 256,128 --batchnorm --dropout 0.2
# reaches at least 0.89 test accuracy on Fashion-MNIST within 10 epochs on the CPU.
# Measured on this code: final test accuracy 0.8944 (seed 1), 0.8917 (seed 2),
# 0.8882 (seed 3). The suite runs the default seed and requires that one of the
# 10 per-epoch evaluations reaches 0.89. About 40-60 s on two cores.
set -u
D=${DESCENT:?DESCENT must point at the descent binary}
DATA=/usr/share/datasets/fashion-mnist
if [ ! -f "$DATA/train-images-idx3-ubyte.gz" ] && [ ! -f "$DATA/train-images-idx3-ubyte" ]; then
  echo "test_fashion_adam: skipped: $DATA is missing (make deps installs dataset-fashion-mnist)"
  exit 77
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$D" train --backend cpu --optimizer adam --lr 1e-3 --hidden 256,128 --batchnorm --dropout 0.2 \
  --epochs 10 --json 2>"$log" >"$log.json"
rc=$?
cat "$log"
if [ $rc != 0 ]; then echo "FAIL: descent exited $rc" >&2; exit 1; fi
python3 - "$log" "$log.json" <<'PY'
import json, re, sys
accs = [float(m.group(1)) for m in re.finditer(r"test_acc (\d\.\d+)", open(sys.argv[1]).read())]
r = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
ok = True
if len(accs) != 10 or r["epochs"] != 10:
    print("FAIL: expected 10 epoch lines and epochs=10, got %d lines, epochs=%s" % (len(accs), r["epochs"]), file=sys.stderr)
    ok = False
if abs(accs[-1] - r["test_accuracy"]) > 1e-4:
    print("FAIL: last epoch line %.4f disagrees with JSON %.4f" % (accs[-1], r["test_accuracy"]), file=sys.stderr)
    ok = False
best = max(accs) if accs else 0.0
print("best test accuracy over 10 epochs %.4f, final %.4f" % (best, r["test_accuracy"]))
if best < 0.89:
    print("FAIL: no epoch reached 0.89", file=sys.stderr)
    ok = False
sys.exit(0 if ok else 1)
PY
rc=$?
rm -f "$log.json"
exit $rc
