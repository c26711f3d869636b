#!/usr/bin/env bash
# A newcomer's trial, by kind of fault (each check failed before its fix):
#  1. labels: a gap in the classes (one corrupt label 255) or a single class
#     is refused naming the file; --classes N sets the count;
#  2. flags mean what they say: every optimizer's defaults as torch.optim's;
#     flags the optimizer or schedule does not read are refused, as are
#     degenerate schedules; near misses get a suggestion; silent adjustments
#     are said; --quiet leaves stderr empty (train, eval, playground);
#  3. numerics: centered RMSprop with a nearly constant gradient stays finite
#     (float64: x = 999.986 at step 24); a finite diverging loss stops with
#     exit 1; no dead-unit warning from one-row batches;
#  4. messages: no "-nan", huge numbers as 2.1e+31, shortest floats in CSV,
#     the memory a run needs refused before allocating.
set -u -o pipefail
: "${DESCENT:?DESCENT must point at the descent binary}"
FASHION=${DS_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
[ -r "$FASHION/t10k-images-idx3-ubyte.gz" ] || { echo "test_newcomer: no Fashion-MNIST in $FASHION: skipped"; exit 77; }
command -v python3 >/dev/null || { echo "test_newcomer: needs python3: skipped"; exit 77; }
W=$(mktemp -d "${TMPDIR:-/tmp}/test_newcomer.XXXXXX")
trap 'rm -rf "$W"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
# expect CODE NEEDLE ARGS...: exit CODE, NEEDLE (fixed string) on stderr
expect() {
  local code=$1 needle=$2 rc
  shift 2
  "$DESCENT" "$@" >"$W/out" 2>"$W/err"
  rc=$?
  [ $rc = "$code" ] && grep -qF -- "$needle" "$W/err" || fail "descent $*: exit $rc, want $code and '$needle': $(head -c 300 "$W/err")"
}

# 500 Fashion-MNIST test images, and label files with faults
python3 - "$FASHION" "$W" <<'EOF' || { echo "test_newcomer: cannot write the data" >&2; exit 1; }
import gzip, struct, sys
src, out = sys.argv[1], sys.argv[2]
im = gzip.open(src + '/t10k-images-idx3-ubyte.gz').read()
lb = gzip.open(src + '/t10k-labels-idx1-ubyte.gz').read()
n = 500
gzip.open(out + '/im.gz', 'wb').write(struct.pack('>IIII', 0x803, n, 28, 28) + im[16:16 + n * 784])
labels = bytearray(lb[8:8 + n])
gzip.open(out + '/lb.gz', 'wb').write(struct.pack('>II', 0x801, n) + bytes(labels))
bad = bytearray(labels); bad[7] = 255
gzip.open(out + '/lb255.gz', 'wb').write(struct.pack('>II', 0x801, n) + bytes(bad))
gzip.open(out + '/lb200.gz', 'wb').write(struct.pack('>II', 0x801, n) + bytes([200] * n))
EOF
D=(--backend cpu --train-images "$W/im.gz" --test-fraction 0.2 --hidden 16)
T=(train "${D[@]}" --train-labels "$W/lb.gz")

# ---- 1. labels and classes
expect 2 "lb255.gz: the labels go up to 255, but 245 of the 256 classes 0..255 never occur" \
  train "${D[@]}" --train-labels "$W/lb255.gz" --steps 1
grep -qF -- "--classes 256" "$W/err" || fail "the gap refusal does not say how to proceed: $(cat "$W/err")"
expect 2 "every label is 200, a single class" train "${D[@]}" --train-labels "$W/lb200.gz" --steps 1
expect 2 "holds label 255, but --classes 10 allows 0..9" train "${D[@]}" --train-labels "$W/lb255.gz" --classes 10 --steps 1
"$DESCENT" train "${D[@]}" --train-labels "$W/lb255.gz" --classes 256 --steps 1 --json --quiet --save "$W/c256.ckpt" >"$W/out" ||
  fail "--classes 256 with a label 255: refused"
"$DESCENT" eval --backend cpu --train-images "$W/im.gz" --train-labels "$W/lb255.gz" --test-fraction 0.2 \
  --checkpoint "$W/c256.ckpt" --quiet >/dev/null || fail "eval of a --classes 256 checkpoint"

# ---- 2. flags
# defaults: torch.optim's lr (SGD has none: 0.1 here), read from the run's header line
for v in sgd:0.1 momentum:0.1 nesterov:0.1 adagrad:0.01 rmsprop:0.01 adam:0.001 adamw:0.001; do
  "$DESCENT" "${T[@]}" --optimizer "${v%%:*}" --steps 1 >/dev/null 2>"$W/err"
  grep -q "${v%%:*} lr ${v#*:}, batch" "$W/err" || fail "--optimizer ${v%%:*}: default lr is not ${v#*:}: $(grep 'lr' "$W/err" | head -1)"
done
"$DESCENT" train --help >"$W/help"
grep -q -- '--lr X .*0.01 rmsprop' "$W/help" || fail "train --help does not give rmsprop's lr 0.01"
# the README's optimizer table says the same as --help (the code's one table)
README=${DS_SOURCE_DIR:-$(dirname "$0")/..}/README.md
python3 - "$README" "$W/help" <<'EOF' || fail "README's optimizer table and --help disagree on a default"
import re, sys
readme, helptext = open(sys.argv[1]).read(), open(sys.argv[2]).read()
def defaults(flag):
    line = next(l for l in helptext.splitlines() if l.strip().startswith(flag + " "))
    return {name: float(v) for v, name in re.findall(r"([0-9.e+-]+) (sgd|adagrad|rmsprop|adam|adamw)\b", line)}
lr, eps = defaults("--lr"), defaults("--eps")
rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(sgd|adagrad|rmsprop|adam)` \| (.*)$", readme, re.M)}
bad = []
for name, row in rows.items():
    m = re.search(r"`--lr` \(([0-9.e+-]+)\)", row)
    if not m or float(m.group(1)) != lr[name]: bad.append(f"{name} lr: README {m and m.group(1)}, --help {lr[name]}")
    m = re.search(r"`--eps` \(([0-9.e+-]+)\)", row)
    if m and float(m.group(1)) != eps[name]: bad.append(f"{name} eps: README {m.group(1)}, --help {eps[name]}")
assert len(rows) == 4 and not bad, (sorted(rows), bad)
EOF
expect 2 "--amsgrad: applies to adam and adamw, not to --optimizer sgd" "${T[@]}" --amsgrad --steps 1
expect 2 "--centered: applies to rmsprop" "${T[@]}" --optimizer adam --centered --steps 1
expect 2 "--beta1: applies to adam and adamw" "${T[@]}" --beta1 0.8 --steps 1
expect 2 "--beta2: applies to adam and adamw" "${T[@]}" --beta2 0.9 --steps 1
expect 2 "--eps: applies to adagrad, rmsprop, adam and adamw" "${T[@]}" --eps 1e-6 --steps 1
expect 2 "--lr-decay: applies to adagrad" "${T[@]}" --lr-decay 0.1 --steps 1
expect 2 "--t-max: applies to --schedule cosine, not to --schedule constant" "${T[@]}" --t-max 5 --steps 1
expect 2 "--step-size: applies to --schedule step" "${T[@]}" --schedule cosine --t-max 5 --step-size 2 --steps 1
expect 2 "--gamma: applies to --schedule step" "${T[@]}" --gamma 0.5 --steps 1
expect 2 "--decay: applies to --schedule exponential and inverse" "${T[@]}" --schedule step --step-size 2 --decay 0.1 --steps 1
expect 2 "--schedule step: needs --step-size" "${T[@]}" --schedule step --steps 1
expect 2 "--dampening: applies to --momentum-form pytorch only" "${T[@]}" --optimizer momentum --momentum-form ema --dampening 0.1 --steps 1
expect 2 "--schedule exponential: needs --decay" "${T[@]}" --schedule exponential --steps 1
expect 2 "--schedule inverse: needs --decay" "${T[@]}" --schedule inverse --steps 1
# a flag applies when one optimizer of a playground list reads it
"$DESCENT" playground --fn bowl --optimizer sgd,adam --beta1 0.8 --steps 3 --quiet >/dev/null ||
  fail "playground sgd,adam --beta1: refused although adam reads it"
expect 2 "--beta1: applies to adam and adamw" playground --fn bowl --optimizer sgd,momentum --beta1 0.8 --steps 3
# near misses
expect 2 "did you mean --epochs?" "${T[@]}" --epoch 2
expect 2 "did you mean --batch-size?" "${T[@]}" --batch_size 32
expect 2 "did you mean --lr?" "${T[@]}" --learning-rate 0.1
expect 2 "--hidden takes one comma-separated list (--hidden 256,128)" train --hidden 256 128
expect 2 "a width is at most 1000000" train --hidden 100000000
# silent adjustments are said
expect 0 "--batch-size 100000: more than the 400 training rows; using 400" "${T[@]}" --batch-size 100000 --steps 1
expect 0 "leaves only 4 training rows of 400" "${T[@]}" --val-fraction 0.99 --steps 1
expect 0 "--epochs 0: nothing is trained" "${T[@]}" --epochs 0
# --quiet: nothing on stderr but errors
"$DESCENT" "${T[@]}" --batch-size 100000 --steps 2 --quiet --save "$W/q.ckpt" >/dev/null 2>"$W/err" || fail "train --quiet failed"
[ -s "$W/err" ] && fail "train --quiet wrote to stderr: $(cat "$W/err")"
"$DESCENT" eval --backend auto --train-images "$W/im.gz" --train-labels "$W/lb.gz" --test-fraction 0.2 \
  --checkpoint "$W/q.ckpt" --quiet >/dev/null 2>"$W/err" || fail "eval --quiet failed: $(cat "$W/err")"
[ -s "$W/err" ] && fail "eval --quiet wrote to stderr: $(cat "$W/err")"
"$DESCENT" playground --fn parabola --lr 1.05 --steps 2000 --quiet >/dev/null 2>"$W/err" || fail "playground --quiet failed"
[ -s "$W/err" ] && fail "playground --quiet wrote to stderr: $(cat "$W/err")"

# ---- 3. numerics
"$DESCENT" playground --fn parabola --x0 1000 --clip-value 0.3 --optimizer rmsprop --centered --alpha 0.5 \
  --lr 1e-6 --steps 30 >"$W/rms.csv" 2>"$W/err"
grep -q 'overflow\|diverged' "$W/err" && fail "centered rmsprop with a constant gradient overflowed: $(cat "$W/err")"
x24=$(awk -F, '$2 == 24 { print $3 }' "$W/rms.csv")
awk -v x="$x24" 'BEGIN { exit !(x > 999.9 && x < 1000.0) }' ||
  fail "centered rmsprop: x at step 24 is '$x24' (float64: 999.986)"
expect 1 "training diverged: the training loss is" "${T[@]}" --lr 1e6 --epochs 3
grep -q 'over 100 times ln(10)' "$W/err" || fail "the divergence line does not give its rule: $(cat "$W/err")"
grep -q -- '-nan' "$W/out" "$W/err" && fail "a diverged run printed -nan"
"$DESCENT" "${T[@]}" --batch-size 1 --steps 60 --log-every 20 >/dev/null 2>"$W/err" || fail "--batch-size 1 run failed"
grep -q 'dead_fc1' "$W/err" && fail "--batch-size 1: a dead-unit warning from one-row batches: $(grep dead_fc1 "$W/err" | head -1)"

# labels: the training part decides (a test tail cannot hide a single-class training part)
python3 - "$W" <<'EOF' || fail "cannot write the split labels"
import gzip, struct, sys
out = sys.argv[1]
labels = bytes([3] * 400) + bytes(i % 10 for i in range(100))
gzip.open(out + '/lbsplit.gz', 'wb').write(struct.pack('>II', 0x801, 500) + labels)
EOF
expect 2 "a single class" train "${D[@]}" --train-labels "$W/lbsplit.gz" --steps 1

# ---- 4. messages and numbers
"$DESCENT" "${T[@]}" --steps 5 --log-every 5 --log "$W/t.csv" --quiet >/dev/null || fail "a short logged run failed"
"$DESCENT" plot "$W/t.csv" -o "$W/t.svg" --title "$(printf 'a\001b\377c')" || fail "plot with control bytes in the title"
python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' "$W/t.svg" 2>/dev/null ||
  fail "plot: a title with control bytes and broken UTF-8 makes invalid XML"
"$DESCENT" playground --fn parabola --lr 0.9 --steps 1 >"$W/pg.csv"
sed -n 2p "$W/pg.csv" | grep -q '^sgd,0,8.7,' || fail "playground CSV: x0 is not printed as 8.7: $(sed -n 2p "$W/pg.csv")"
"$DESCENT" "${T[@]}" --steps 10 --log-every 10 --log "$W/l.csv" --quiet >/dev/null || fail "a logged run failed"
python3 - "$W/l.csv" <<'EOF' || fail "the log's lr is not written as 0.1: $(cut -d, -f1-4 "$W/l.csv")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert rows[0]["lr"] == "0.1", rows[0]["lr"]
assert int(rows[0]["gemm_threads"]) >= 1, "the log does not record the GEMM threads"
EOF
t0=$(date +%s)
expect 1 "GiB of host memory" "${T[@]}" --hidden 1000000,100000 --steps 1
[ $(($(date +%s) - t0)) -le 5 ] || fail "the memory refusal took $(($(date +%s) - t0)) s: was something allocated first?"
"$DESCENT" --version >"$W/version"
if grep -q '^cuda: compiled in; no usable' "$W/version" && [ ! -e /proc/driver/nvidia ]; then
  grep -q 'no NVIDIA driver found' "$W/version" || fail "without a driver, --version does not say so: $(grep cuda "$W/version")"
fi
grep -Eq '^cpu: .*[0-9]+ threads?$' "$W/version" || fail "--version does not give the GEMM's threads: $(grep cpu "$W/version")"

if [ $failures -ne 0 ]; then
  echo "test_newcomer: $failures check(s) FAILED"
  exit 1
fi
echo "test_newcomer: all checks passed"
