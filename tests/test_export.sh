#!/usr/bin/env bash
# Models that leave descent, checked by independent readers (the `safetensors`
# and `numpy` packages from PyPI, installed here into a venv in the build
# folder; skipped, 77, when they cannot be installed) on real digits:
#  - export a trained checkpoint (BatchNorm, dropout, input dropout); rebuild
#    its forward pass in NumPy from the file's metadata; its predictions on
#    1,000 test images equal `descent predict`'s and the logits (.npy) agree
#    to 1e-5 relative; the CSV's probabilities are the softmax of the logits;
#  - the same for a tanh model with scale-at-test dropout and --standardize;
#  - the .npz loads with numpy.load to the same arrays;
#  - --init-from round trips: export -> train --init-from -> --epochs 0
#    --save -> export gives byte-identical tensors, also from a file the
#    safetensors package rewrote in its own layout;
#  - eval's confusion matrix sums to the test set, its diagonal is the
#    accuracy, and it equals the one counted from predict's classes;
#  - malformed safetensors files are refused with exit 2 and one line.
set -u -o pipefail
. "$(dirname "$0")/mnist_suite.sh" test_export
SRC=${DS_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=$(dirname "$DESCENT")
CHECK=$SRC/tests/export_check.py

# ---- the Python readers: numpy + safetensors, from PyPI into a venv
PY=""
if python3 -c 'import numpy, safetensors' 2>/dev/null; then
  PY=python3
else
  venv=${DESCENT_PYENV:-$BUILD/pyenv}
  if ! "$venv/bin/python" -c 'import numpy, safetensors' 2>/dev/null; then
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >"$W/venv.log" 2>&1 ||
       ! timeout 600 "$venv/bin/pip" install -q numpy safetensors >>"$W/venv.log" 2>&1; then
      echo "test_export: numpy and safetensors cannot be installed from PyPI here (python3-venv, network): skipped"
      tail -n 3 "$W/venv.log"
      exit 77
    fi
  fi
  PY=$venv/bin/python
fi

D() { "$DESCENT" "$@"; }
base=(--backend cpu --train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2 --quiet)
check() { "$PY" "$CHECK" "$@" || fail "export_check.py $1"; }

# ---- 1. a BatchNorm + dropout model: export, NumPy forward, predict
arch=(--hidden 64,32 --batchnorm --dropout 0.2 --input-dropout 0.1)
D train "${base[@]}" "${arch[@]}" --optimizer adam --lr 1e-3 --epochs 1 --save "$W/m.ckpt" >/dev/null ||
  { fail "training failed"; exit 1; }
D export "$W/m.ckpt" "$W/m.safetensors" --quiet || fail "export .safetensors failed"
D export "$W/m.ckpt" "$W/m.npz" --quiet || fail "export .npz failed"
# the 1,000 images: the first of the held-out tail (the last 2,000 of the file)
n_all=$("$PY" -c "import sys; sys.path.insert(0, '$SRC/tests'); import export_check as e; print(len(e.read_idx('$LABELS')))")
"$PY" "$CHECK" subset "$IMAGES" "$LABELS" $((n_all - n_all / 5)) 1000 "$W/img1000" "$W/lab1000"
D predict --backend cpu --checkpoint "$W/m.ckpt" --images "$W/img1000" --out "$W/logits.npy" || fail "predict --out .npy failed"
D predict --backend cpu --checkpoint "$W/m.ckpt" --images "$W/img1000" >"$W/pred.csv" || fail "predict (CSV) failed"
check forward "$W/m.safetensors" "$W/img1000" "$W/logits.npy" "$W/pred.csv"
check npz "$W/m.safetensors" "$W/m.npz"
D predict --backend cpu --checkpoint "$W/m.ckpt" --images "$W/img1000" --out "$W/pred2.csv" || fail "predict --out .csv failed"
cmp -s "$W/pred.csv" "$W/pred2.csv" || fail "predict --out FILE.csv differs from the CSV on stdout"
D predict --backend cpu --checkpoint "$W/m.ckpt" --images "$W/img1000" --top 2 >"$W/top.csv" || fail "predict --top failed"
# --top 2: the first pick is the class column, probabilities descending
awk -F, 'NR == 1 { if ($0 != "index,class,top1,p_top1,top2,p_top2") bad = 1; next }
         { if ($2 != $3 || $4 + 0 < $6 + 0 || NF != 6) bad = 1 }
         END { exit bad }' "$W/top.csv" || fail "predict --top 2: $(head -n 3 "$W/top.csv")"

# ---- 2. tanh, scale-at-test dropout, --standardize: the metadata carries them
arch2=(--hidden 32 --activation tanh --dropout 0.3 --dropout-form scale-at-test --standardize)
D train "${base[@]}" "${arch2[@]}" --epochs 1 --lr 0.05 --save "$W/t.ckpt" >/dev/null || fail "training (tanh) failed"
D export "$W/t.ckpt" "$W/t.safetensors" --quiet || fail "export (tanh) failed"
D predict --backend cpu --checkpoint "$W/t.ckpt" --images "$W/img1000" --out "$W/tl.npy" &&
  D predict --backend cpu --checkpoint "$W/t.ckpt" --images "$W/img1000" --out "$W/tp.csv" || fail "predict (tanh) failed"
check forward "$W/t.safetensors" "$W/img1000" "$W/tl.npy" "$W/tp.csv"

# ---- 3. --init-from round trips
D train "${base[@]}" "${arch[@]}" --optimizer adam --epochs 0 --init-from "$W/m.safetensors" --save "$W/r.ckpt" >/dev/null ||
  fail "train --init-from failed"
D export "$W/r.ckpt" "$W/r.safetensors" --quiet || fail "export of the --init-from checkpoint failed"
check same "$W/m.safetensors" "$W/r.safetensors"
check resave "$W/m.safetensors" "$W/py.safetensors"
D train "${base[@]}" "${arch[@]}" --epochs 0 --init-from "$W/py.safetensors" --save "$W/p.ckpt" >/dev/null ||
  fail "train --init-from a file the safetensors package wrote failed"
D export "$W/p.ckpt" "$W/p.safetensors" --quiet && check same "$W/m.safetensors" "$W/p.safetensors"
# and the model evaluates as it did (same test accuracy and loss)
a=$(D eval --backend cpu --train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2 --checkpoint "$W/m.ckpt" --json)
b=$(D eval --backend cpu --train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2 --checkpoint "$W/r.ckpt" --json)
[ "${a#*test_loss}" = "${b#*test_loss}" ] || fail "the --init-from model evaluates differently: ${a:0:300} vs ${b:0:300}"

# ---- 3b. the deepest model (15 hidden layers, BatchNorm, dropout: 107 tensors)
deep=(--hidden 8,8,8,8,8,8,8,8,8,8,8,8,8,8,8 --batchnorm --dropout 0.1)
D train "${base[@]}" "${deep[@]}" --steps 3 --save "$W/deep.ckpt" >/dev/null &&
  D export "$W/deep.ckpt" "$W/deep.safetensors" --quiet && D export "$W/deep.ckpt" "$W/deep.npz" --quiet &&
  D train "${base[@]}" "${deep[@]}" --epochs 0 --init-from "$W/deep.safetensors" --save "$W/deep2.ckpt" >/dev/null &&
  D export "$W/deep2.ckpt" "$W/deep2.safetensors" --quiet || fail "the 15-layer model: train, export or --init-from failed"
check npz "$W/deep.safetensors" "$W/deep.npz"
check same "$W/deep.safetensors" "$W/deep2.safetensors"

# ---- 4. the confusion matrix, against predict on the same held-out images
D eval --backend cpu --train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2 --checkpoint "$W/m.ckpt" \
  --json --confusion "$W/cm.svg" >"$W/eval.json" || fail "eval --json --confusion failed"
"$PY" "$CHECK" subset "$IMAGES" "$LABELS" $((n_all - n_all / 5)) $((n_all / 5)) "$W/img-test" "$W/lab-test"
D predict --backend cpu --checkpoint "$W/m.ckpt" --images "$W/img-test" --out "$W/test.csv" || fail "predict on the test part failed"
check confusion "$W/eval.json" "$W/test.csv" "$W/lab-test"
check svg "$W/cm.svg" 10
D eval --backend cpu --train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2 --checkpoint "$W/m.ckpt" >"$W/eval.txt" ||
  fail "eval failed"
grep -q '^confusion matrix (rows: true class, columns: predicted class)' "$W/eval.txt" || fail "eval prints no confusion table"
[ "$(grep -cE '^ +[0-9]+ +[0-9]+ +(0|1)\.[0-9]+$' "$W/eval.txt")" = 10 ] || fail "eval's per-class table: $(cat "$W/eval.txt")"

# ---- 5. malformed files: exit 2, one line naming the file
"$PY" "$CHECK" malformed "$W/m.safetensors" "$W"
for bad in header-beyond-file overlap gap dtype-f16 trailing missing-name extra-name size-mismatch wrong-shape not-json short; do
  f=$W/$bad.safetensors
  D train "${base[@]}" "${arch[@]}" --epochs 0 --init-from "$f" >/dev/null 2>"$W/err"
  rc=$?
  if [ $rc != 2 ] || [ "$(lines "$W/err")" != 1 ] || ! grep -qF "$f" "$W/err"; then
    fail "$bad: exit $rc (expected 2 and one line naming the file): $(cat "$W/err")"
  else
    echo "test_export: $bad: $(cat "$W/err")"
  fi
done
D train "${base[@]}" "${arch[@]}" --epochs 0 --init-from "$W/m.safetensors" --resume "$W/m.ckpt" >/dev/null 2>"$W/err"
[ $? = 2 ] || fail "--init-from with --resume: not refused: $(cat "$W/err")"
D export "$W/m.ckpt" "$W/m.bin" 2>"$W/err"; [ $? = 2 ] || fail "export to .bin: not refused"
D predict --checkpoint "$W/m.ckpt" --images "$W/img1000" --out "$W/x.npy" --top 3 2>"$W/err"; [ $? = 2 ] ||
  fail "predict --top with .npy: not refused"
[ -e "$W/x.npy" ] && fail "a refused predict wrote its output"

if [ "$failures" -ne 0 ]; then
  echo "test_export: $failures failure(s)"
  exit 1
fi
echo "test_export: export, NumPy forward, .npz, --init-from round trips, confusion matrix, malformed files: ok"
