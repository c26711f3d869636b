#!/usr/bin/env bash
# The descent binary's contract with its user: exit status (0 ok, 1 runtime,
# 2 usage or input, 77 no GPU) and a one-line message on stderr that names the
# flag or file; --help/--version; the --json object of a tiny real run.
set -u
D=${DESCENT:?DESCENT must point at the descent binary}
# the data checks cut small files from Fashion-MNIST's test set (`make deps`)
FASHION=${DS_FASHION_DIR:-/usr/share/datasets/fashion-mnist}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ds-test-cli-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
checks=0

fail() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }
ok() { checks=$((checks + 1)); }

# run ARGS...: runs descent, leaves rc, $tmp/out, $tmp/err
run() {
  "$D" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
}

# The stderr lines that are not notes (errors must be exactly one such line).
err_lines() { grep -v '^descent: note: ' "$tmp/err"; }

# expect CODE NEEDLE ARGS...: exit status CODE and exactly one stderr line (not
# counting notes) that contains NEEDLE (fixed string).
expect() {
  local code=$1 needle=$2
  shift 2
  run "$@"
  ok
  if [ "$rc" != "$code" ]; then
    fail "descent $*: exit $rc, want $code; stderr: $(head -c 400 "$tmp/err")"
    return
  fi
  local n
  n=$(err_lines | wc -l)
  if [ "$n" != 1 ]; then
    fail "descent $*: $n stderr lines (want 1): $(head -c 400 "$tmp/err")"
  elif ! err_lines | grep -qF -- "$needle"; then
    fail "descent $*: message does not name '$needle': $(cat "$tmp/err")"
  fi
}

# ---- --help and --version -------------------------------------------------

run --help
ok; [ "$rc" = 0 ] || fail "descent --help: exit $rc"
cp "$tmp/out" "$tmp/help"
for w in train --version --help "exit status" 77; do
  ok; grep -qF -- "$w" "$tmp/help" || fail "descent --help does not mention '$w'"
done
# every command the help lists has its own --help that exits 0 and shows its usage
cmds=$(awk '/^commands:/{on=1; next} on && /^$/{on=0} on && /^  [a-z]/{print $1}' "$tmp/help")
ok; [ -n "$cmds" ] || fail "descent --help lists no commands"
for c in $cmds; do
  run "$c" --help
  ok; [ "$rc" = 0 ] || fail "descent $c --help: exit $rc"
  ok; grep -q "usage: descent $c" "$tmp/out" || fail "descent $c --help: no usage line"
done

run --version
ok; [ "$rc" = 0 ] || fail "descent --version: exit $rc"
ok; grep -Eq '^descent [0-9]+\.[0-9]+\.[0-9]+' "$tmp/out" || fail "descent --version: no version: $(cat "$tmp/out")"
ok; grep -q '^cuda: ' "$tmp/out" || fail "descent --version: does not say whether CUDA is compiled in"
# OpenBLAS's kernels: on a CPU with AVX-512 or AVX2 + FMA descent never runs
# the SSE3 "Prescott" ones by itself (an OpenBLAS older than the CPU picks
# them; descent re-executes once with OPENBLAS_CORETYPE set), a user's
# OPENBLAS_CORETYPE is obeyed, and the choice reaches the child processes
if grep -q "OpenBLAS" "$tmp/out"; then
  flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
  if [[ " $flags " == *" avx512f "* || ( " $flags " == *" avx2 "* && " $flags " == *" fma "* ) ]]; then
    ok; (unset OPENBLAS_CORETYPE DESCENT_OPENBLAS_CORETYPE; "$D" --version) | grep -q "OpenBLAS, Prescott kernels" &&
      fail "descent runs OpenBLAS's SSE3 Prescott kernels on a CPU with AVX2/AVX-512: $(grep '^cpu' "$tmp/out")"
    ok; OPENBLAS_CORETYPE=Prescott "$D" --version | grep -q "OpenBLAS, Prescott kernels" ||
      fail "OPENBLAS_CORETYPE=Prescott was not obeyed: $(OPENBLAS_CORETYPE=Prescott "$D" --version | grep '^cpu')"
    ok; [ "$(unset OPENBLAS_CORETYPE; "$D" --version | grep -c '^cpu: OpenBLAS did not recognise')" -le 1 ] ||
      fail "--version repeats the kernel note"
    # a value that came from elsewhere is not claimed as descent's choice
    ok; DESCENT_OPENBLAS_CORETYPE=SkylakeX OPENBLAS_CORETYPE=SkylakeX "$D" --version | grep -q '^cpu: OpenBLAS did not' &&
      fail "--version claims a preset OPENBLAS_CORETYPE as descent's choice"
    # started through the dynamic loader: /proc/self/exe is the loader, so no
    # re-execution (descent runs, with OpenBLAS's own choice)
    ldso=$(readelf -l "$D" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
    if [ -n "$ldso" ] && [ -x "$ldso" ]; then
      ok; (unset OPENBLAS_CORETYPE; "$ldso" "$D" --version) | grep -q '^descent [0-9]' ||
        fail "descent started through $ldso does not run: $( (unset OPENBLAS_CORETYPE; "$ldso" "$D" --version) 2>&1 | head -2)"
    fi
  fi
fi
cuda_line=$(grep '^cuda: ' "$tmp/out")

run train --help
ok; [ "$rc" = 0 ] || fail "descent train --help: exit $rc"
# the flag groups, and a flag of each
for w in "Data:" "Model:" "Optimizer:" "Regularisation and clipping:" "Learning-rate schedule:" \
  "Training loop:" "Run:" --data --test-fraction --hidden --batchnorm --dropout --init --optimizer --lr \
  --momentum --nesterov --beta1 --eps --weight-decay --clip-norm --schedule --warmup --epochs \
  --batch-size --sampling --accum --seed --backend --json; do
  ok; grep -qF -- "$w" "$tmp/out" || fail "descent train --help does not mention '$w'"
done
ok; [ -s "$tmp/err" ] && fail "descent train --help wrote to stderr: $(cat "$tmp/err")"

# no command, unknown command
run
ok; [ "$rc" = 2 ] || fail "descent with no command: exit $rc, want 2"
expect 2 frobnicate frobnicate

# ---- bad flags: exit 2, one line naming the flag --------------------------
# (parsing happens before any data is read, so no data is needed)
expect 2 --bogus train --bogus
expect 2 --lr train --lr                      # missing value
expect 2 --epochs train --epochs
expect 2 --lr train --lr 0.1x                 # trailing junk
expect 2 --lr train --lr ''                   # empty
expect 2 --lr train --lr nan                  # not finite
expect 2 --lr train --lr inf
expect 2 --lr train --lr 1e999                # overflows to inf
expect 2 --lr train --lr 0                    # out of range (0, inf)
expect 2 --lr train --lr -0.1
expect 2 --dropout train --dropout 1          # [0,1)
expect 2 --dropout train --dropout -0.1
expect 2 --beta1 train --beta1 1
expect 2 --beta2 train --beta2 1.5
expect 2 --momentum train --momentum -1
expect 2 --eps train --eps 0
expect 2 --batch-size train --batch-size 0
expect 2 --batch-size train --batch-size 64x
expect 2 --hidden train --hidden 0
expect 2 --hidden train --hidden 256,
expect 2 --hidden train --hidden 256,,128
expect 2 --hidden train --hidden abc
expect 2 --epochs train --epochs 1.5
expect 2 --epochs train --epochs -1
expect 2 --seed train --seed -1
expect 2 --seed train --seed ' -1'           # strtoull would wrap it to 2^64-1
expect 2 --accum train --accum 0
expect 2 --activation train --activation relu6
expect 2 --json train --json=yes              # a switch takes no value
expect 2 --optimizer train --optimizer sgdd
expect 2 --nesterov train --optimizer adam --nesterov
expect 2 --backend train --backend tpu
expect 2 --test-fraction train --test-fraction 1

# ---- --backend cuda without a GPU: 77 ------------------------------------
# Independent evidence of a GPU: nvidia-smi listing one.
if nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then have_gpu=1; else have_gpu=0; fi
if [ "$have_gpu" = 0 ] || echo "$cuda_line" | grep -q 'not compiled in'; then
  expect 77 "--backend cuda" train --backend cuda --epochs 1
  # auto falls back to the CPU with a note, it does not fail (checked below
  # with data); an unusable device index is still "no GPU"
  expect 77 "--backend cuda" train --backend cuda --device 3 --epochs 1
else
  echo "note: a GPU is present ($cuda_line); --backend cuda is checked with data below"
fi

# ---- data: bad files exit 2 naming the file -------------------------------
data_skipped=0
if [ ! -f "$FASHION/t10k-images-idx3-ubyte.gz" ] || [ ! -f "$FASHION/t10k-labels-idx1-ubyte.gz" ]; then
  echo "test_cli: no Fashion-MNIST in $FASHION (make deps installs it): the data checks are skipped"
  data_skipped=1
else
  python3 - "$FASHION" "$tmp" <<'EOF'
import gzip, struct, sys
src, out = sys.argv[1], sys.argv[2]
im = gzip.open(src + '/t10k-images-idx3-ubyte.gz').read()
lb = gzip.open(src + '/t10k-labels-idx1-ubyte.gz').read()
n = 500  # a few hundred real images keep the run to a fraction of a second
small_im = struct.pack('>IIII', 0x803, n, 28, 28) + im[16:16 + n * 784]
small_lb = struct.pack('>II', 0x801, n) + lb[8:8 + n]
def w(name, data, gz=True):
    (gzip.open if gz else open)(out + '/' + name, 'wb').write(data)
w('small-images.gz', small_im); w('small-labels.gz', small_lb)
w('small-images', small_im, gz=False); w('small-labels', small_lb, gz=False)
w('badmagic-images.gz', struct.pack('>I', 0x804) + small_im[4:])
w('truncated-images.gz', small_im[:-100])
w('truncated-images', small_im[:-100], gz=False)
w('mismatch-labels.gz', struct.pack('>II', 0x801, n - 1) + lb[8:8 + n - 1])
w('header-images', small_im[:10], gz=False)
w('labels-as-images.gz', small_lb)
# a gzip stream cut short
g = open(out + '/small-images.gz', 'rb').read()
open(out + '/cutgz-images.gz', 'wb').write(g[:len(g) // 2])
# a folder with the four standard files (train 400 / t10k 100)
import os
os.mkdir(out + '/std')
def std(name, magic, dims, payload):
    w('std/' + name, struct.pack('>' + 'I' * (1 + len(dims)), magic, *dims) + payload)
std('train-images-idx3-ubyte.gz', 0x803, (400, 28, 28), im[16:16 + 400 * 784])
std('train-labels-idx1-ubyte.gz', 0x801, (400,), lb[8:408])
std('t10k-images-idx3-ubyte.gz', 0x803, (100, 28, 28), im[16 + 400 * 784:16 + 500 * 784])
std('t10k-labels-idx1-ubyte.gz', 0x801, (100,), lb[408:508])
EOF
  ok; [ -f "$tmp/small-images.gz" ] || fail "could not write the test data files"
  SI=$tmp/small-images.gz
  SL=$tmp/small-labels.gz
  DATA=(train --backend cpu --epochs 1 --test-fraction 0.2)
  expect 2 "$tmp/badmagic-images.gz" "${DATA[@]}" --train-images "$tmp/badmagic-images.gz" --train-labels "$SL"
  expect 2 "$tmp/truncated-images.gz" "${DATA[@]}" --train-images "$tmp/truncated-images.gz" --train-labels "$SL"
  expect 2 "$tmp/truncated-images" "${DATA[@]}" --train-images "$tmp/truncated-images" --train-labels "$SL"
  expect 2 "$tmp/header-images" "${DATA[@]}" --train-images "$tmp/header-images" --train-labels "$SL"
  expect 2 "$tmp/cutgz-images.gz" "${DATA[@]}" --train-images "$tmp/cutgz-images.gz" --train-labels "$SL"
  expect 2 "$tmp/labels-as-images.gz" "${DATA[@]}" --train-images "$tmp/labels-as-images.gz" --train-labels "$SL"
  expect 2 "$tmp/mismatch-labels.gz" "${DATA[@]}" --train-images "$SI" --train-labels "$tmp/mismatch-labels.gz"
  expect 2 "$tmp/no-such-file.gz" "${DATA[@]}" --train-images "$tmp/no-such-file.gz" --train-labels "$SL"
  expect 2 "$tmp/no-such-dir" train --backend cpu --data "$tmp/no-such-dir"
  expect 2 "$tmp" train --backend cpu --data "$tmp"   # a folder without the four files
  expect 2 --train-labels train --backend cpu --train-images "$SI" --test-fraction 0.2

  # ---- a tiny successful run and its JSON --------------------------------
  run train --backend cpu --train-images "$SI" --train-labels "$SL" --test-fraction 0.2 --epochs 1 \
    --hidden 64 --optimizer adam --lr 3e-3 --json
  ok; [ "$rc" = 0 ] || fail "tiny run: exit $rc: $(cat "$tmp/err")"
  ok; [ "$(wc -l <"$tmp/out")" = 1 ] || fail "tiny run --json: stdout is not one line: $(cat "$tmp/out")"
  # 400 training samples, batch 64: ceil(400/64) = 7 updates in 1 epoch
  python3 - "$tmp/out" <<'EOF' || fail "tiny run --json: $(cat "$tmp/out")"
import json, math, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
need = ['test_accuracy', 'test_loss', 'train_loss', 'epochs', 'steps', 'seconds', 'samples_per_second', 'backend']
missing = [k for k in need if k not in r]
assert not missing, 'missing keys %s' % missing
assert r['backend'] == 'cpu', r['backend']
assert r['epochs'] == 1 and r['steps'] == 7, (r['epochs'], r['steps'])
assert 0.0 <= r['test_accuracy'] <= 1.0, r['test_accuracy']
for k in ('test_loss', 'train_loss', 'seconds', 'samples_per_second'):
    assert isinstance(r[k], (int, float)) and math.isfinite(r[k]) and r[k] >= 0, (k, r[k])
# one epoch of Adam on 400 images already beats chance (0.1) by far; the loss starts at ~ln 10
assert r['test_accuracy'] > 0.4 and r['train_loss'] < math.log(10) + 0.5, r
EOF
  ok
  # raw files, the same result as gzipped (same bytes, same seed)
  run train --backend cpu --train-images "$tmp/small-images" --train-labels "$tmp/small-labels" \
    --test-fraction 0.2 --epochs 1 --hidden 64 --json
  ok; [ "$rc" = 0 ] || fail "raw files: exit $rc: $(cat "$tmp/err")"
  cp "$tmp/out" "$tmp/raw.json"
  run train --backend cpu --train-images "$SI" --train-labels "$SL" --test-fraction 0.2 --epochs 1 --hidden 64 --json
  python3 - "$tmp/raw.json" "$tmp/out" <<'EOF' || fail "raw and gzipped inputs trained differently"
import json, sys
a, b = (json.loads(open(p).read()) for p in sys.argv[1:3])
keys = ('test_accuracy', 'test_loss', 'train_loss', 'steps')
assert all(a[k] == b[k] for k in keys), [(k, a[k], b[k]) for k in keys]
EOF
  ok
  # a --data folder; --steps and --batch-size full count updates
  run train --backend cpu --data "$tmp/std" --hidden 32 --steps 3 --json
  ok; [ "$rc" = 0 ] || fail "--data folder: exit $rc: $(cat "$tmp/err")"
  python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["steps"]==3, r' <"$tmp/out" ||
    fail "--steps 3: $(cat "$tmp/out")"
  ok
  run train --backend cpu --data "$tmp/std" --hidden 32 --batch-size full --epochs 2 --json
  python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["steps"]==2 and r["epochs"]==2, r' \
    <"$tmp/out" || fail "--batch-size full --epochs 2: $(cat "$tmp/out")"
  ok
  # a diverging run is a runtime failure (1) with one line that says so
  expect 1 diverged train --backend cpu --data "$tmp/std" --epochs 1 --lr 1e30 --quiet
  # --backend auto never fails for want of a GPU
  run train --backend auto --data "$tmp/std" --hidden 32 --epochs 1 --json --quiet
  ok; [ "$rc" = 0 ] || fail "--backend auto: exit $rc: $(cat "$tmp/err")"
  if [ "$have_gpu" = 1 ] && ! echo "$cuda_line" | grep -q 'not compiled in'; then
    run train --backend cuda --data "$tmp/std" --hidden 32 --epochs 1 --json --quiet
    ok
    if [ "$rc" != 0 ] || ! grep -q '"backend":"cuda"' "$tmp/out"; then
      fail "--backend cuda with a GPU ($cuda_line): exit $rc: $(cat "$tmp/err")"
    fi
  fi
fi

if [ "$fails" != 0 ]; then
  echo "test_cli: $fails of $checks checks FAILED" >&2
  exit 1
fi
if [ "$data_skipped" = 1 ]; then
  echo "test_cli: all $checks checks passed, the data checks skipped"
  exit 77
fi
echo "test_cli: all $checks checks passed"
