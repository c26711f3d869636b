#!/usr/bin/env bash
# A run's life through the CLI, on 10,000 real images (tests/mnist_suite.sh):
#  1. resume: --epochs counts from the start of the run; a checkpoint taken
#     inside an epoch (--steps, Ctrl-C) continues it exactly: the end is
#     byte-identical (cmp) to the uninterrupted run; nothing left to do says so;
#  2. resume refuses each setting that changes the stored state's meaning,
#     naming it and both values; an allowed change is noted;
#  3. output targets are checked before any work (each refusal well under a
#     second on a run that would take minutes): missing folder, a directory, a
#     device, a symbolic link (written through, the link kept), playground and
#     plot pictures;
#  4. --log: appended on resume (the header once), locked against a second
#     process; descent plot names a malformed row's line;
#  5. early stopping: the kept state is said, and the figures say whose;
#     no finite val_loss at all: the note, the kept state and the JSON agree;
#  6. eval is the model training evaluated: stored input scaling (--standardize,
#     --val-fraction), only the test files needed;
#  7. JSON: valid (no NaN) from train and eval on a diverged run; Ctrl-C still
#     prints it; --steps reports fractional epochs; "1 epoch".
set -u -o pipefail
. "$(dirname "$0")/mnist_suite.sh" test_run_life
command -v python3 >/dev/null || { echo "test_run_life: needs python3: skipped"; exit 77; }
DATA=(--train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2)
# 8000 training images, batches of 64, --accum 2: 63 updates per epoch
CQ=(train --backend cpu "${DATA[@]}" --hidden 16,8 --batchnorm --dropout 0.1 --optimizer adam
    --batch-size 64 --accum 2 --seed 5)
C=("${CQ[@]}" --quiet)
field() { python3 -c 'import json,sys; r=json.loads(sys.stdin.read().strip().splitlines()[-1]); v=r.get(sys.argv[1]); print("null" if v is None else v)' "$1"; }
strictjson() { # FILE: every line that starts with { parses as strict JSON (no NaN/Infinity)
  python3 - "$1" <<'EOF'
import json, sys
def bad(c): raise ValueError("not JSON: " + c)
for line in open(sys.argv[1]):
    if line.startswith("{"):
        json.loads(line, parse_constant=bad)
EOF
}
elapsed_ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# ---- 1. resume inside an epoch, exactly
"$DESCENT" "${C[@]}" --epochs 2 --save "$W/straight.ckpt" --json >"$W/straight.json" || fail "straight run"
"$DESCENT" "${C[@]}" --steps 37 --save "$W/part.ckpt" --json >"$W/part.json" || fail "first part (--steps 37)"
ep=$(field epochs <"$W/part.json")
[ "$ep" = "0.592" ] || fail "--steps 37 (74 of 125 batches): epochs $ep, want 0.592"
"$DESCENT" "${C[@]}" --epochs 2 --resume "$W/part.ckpt" --save "$W/resumed.ckpt" --json >"$W/resumed.json" ||
  fail "resumed run"
cmp -s "$W/straight.ckpt" "$W/resumed.ckpt" || fail "--steps 37, then --resume --epochs 2: not byte-identical to 2 epochs"
[ "$(field steps <"$W/resumed.json")" = 126 ] && [ "$(field epochs <"$W/resumed.json")" = 2 ] ||
  fail "resumed run reports $(field steps <"$W/resumed.json") updates and $(field epochs <"$W/resumed.json") epochs, want 126 and 2"
# Ctrl-C inside the second epoch, then resume; --json still prints its object
"$DESCENT" "${C[@]}" --epochs 300 --log-every 5 --log "$W/int.csv" --save "$W/int.ckpt" --json \
  >"$W/int.json" 2>"$W/int.err" &
pid=$!
for _ in $(seq 300); do [ "$(lines "$W/int.csv")" -ge 16 ] && break; sleep 0.05; done
kill -INT $pid
wait $pid
rc=$?
[ $rc = 130 ] || fail "Ctrl-C: exit $rc, want 130"
[ "$(field interrupted <"$W/int.json")" = True ] || fail "Ctrl-C with --json: no object with interrupted true: $(cat "$W/int.json")"
strictjson "$W/int.json" || fail "Ctrl-C: the JSON does not parse"
stopped=$(field steps <"$W/int.json")
"$DESCENT" "${C[@]}" --epochs 300 --steps $((stopped + 50)) --resume "$W/int.ckpt" --save "$W/int2.ckpt" >/dev/null ||
  fail "resuming after Ctrl-C"
"$DESCENT" "${C[@]}" --epochs 300 --steps $((stopped + 50)) --save "$W/int-straight.ckpt" >/dev/null || fail "straight to the same update"
cmp -s "$W/int2.ckpt" "$W/int-straight.ckpt" || fail "Ctrl-C at update $stopped + resume: not byte-identical to a straight run"
# nothing left to do
"$DESCENT" "${CQ[@]}" --epochs 2 --resume "$W/straight.ckpt" >/dev/null 2>"$W/err"
rc=$?
[ $rc = 0 ] && grep -q 'nothing left to do' "$W/err" || fail "resume of a finished run: exit $rc, no 'nothing left to do': $(cat "$W/err")"

# ---- 2. settings a resume refuses, each named with both values; allowed changes noted
refuse() { # NEEDLE FLAGS...: resuming part.ckpt (inside epoch 1) with FLAGS exits 2 naming NEEDLE
  local needle=$1
  shift
  "$DESCENT" train --backend cpu "${DATA[@]}" --hidden 16,8 --batchnorm --dropout 0.1 --optimizer adam \
    --batch-size 64 --accum 2 --seed 5 --quiet --epochs 2 --resume "$W/part.ckpt" "$@" >/dev/null 2>"$W/err"
  local rc=$?
  [ $rc = 2 ] && grep -qF -- "$needle" "$W/err" || fail "resume with $*: exit $rc, want 2 naming '$needle': $(cat "$W/err")"
}
refuse "--hidden: 16,8 in the checkpoint, 16,9 now" --hidden 16,9
refuse "--activation: relu in the checkpoint, tanh now" --activation tanh
refuse "--dropout-form: inverted in the checkpoint, scale-at-test now" --dropout-form scale-at-test
refuse "--optimizer: adam in the checkpoint, sgd now" --optimizer sgd
refuse "--amsgrad: off in the checkpoint, on now" --amsgrad
refuse "--eps-in-sqrt: off in the checkpoint, on now" --eps-in-sqrt
refuse "--standardize: off in the checkpoint, on now" --standardize
refuse "--val-fraction: 0 in the checkpoint, 0.1 now" --val-fraction 0.1
refuse "--batch-size: 64 in the checkpoint, 32 now" --batch-size 32
refuse "--bn-eps: 1e-05 in the checkpoint, 0.1 now" --bn-eps 0.1
refuse "--seed: 5 in the checkpoint, 6 now" --seed 6
# momentum forms: an sgd checkpoint
S=(train --backend cpu "${DATA[@]}" --hidden 16 --optimizer momentum --seed 5 --quiet)
"$DESCENT" "${S[@]}" --steps 20 --save "$W/mom.ckpt" >/dev/null || fail "momentum run"
for v in "--batchnorm|--batchnorm: off in the checkpoint, on now" \
         "--momentum-form keras|--momentum-form: pytorch in the checkpoint, keras now" \
         "--nesterov|--nesterov: off in the checkpoint, on now" \
         "--optimizer rmsprop --centered|--optimizer: sgd in the checkpoint, rmsprop now"; do
  # shellcheck disable=SC2086
  "$DESCENT" "${S[@]}" --epochs 1 --resume "$W/mom.ckpt" ${v%%|*} >/dev/null 2>"$W/err"
  rc=$?
  [ $rc = 2 ] && grep -qF -- "${v#*|}" "$W/err" || fail "resume with ${v%%|*}: exit $rc: $(cat "$W/err")"
done
"$DESCENT" train --backend cpu "${DATA[@]}" --hidden 16 --optimizer rmsprop --seed 5 --quiet --steps 20 \
  --save "$W/rms.ckpt" >/dev/null || fail "rmsprop run"
"$DESCENT" train --backend cpu "${DATA[@]}" --hidden 16 --optimizer rmsprop --centered --seed 5 --quiet --epochs 1 \
  --resume "$W/rms.ckpt" >/dev/null 2>"$W/err"
rc=$?
[ $rc = 2 ] && grep -qF -- "--centered: off in the checkpoint, on now" "$W/err" || fail "resume with --centered: exit $rc: $(cat "$W/err")"
# other data of the same size (same shape, no --standardize): the stored CRC-32 tells
python3 - "$IMAGES" "$W/flip.gz" <<'EOF' || fail "cannot write the other images"
import gzip, sys
rd = lambda p: (gzip.open(p) if p.endswith(".gz") else open(p, "rb")).read()
b = bytearray(rd(sys.argv[1])); b[16 + 784 * 5 + 300] ^= 0xFF  # one pixel of image 5
gzip.open(sys.argv[2], "wb").write(bytes(b))
EOF
"$DESCENT" train --backend cpu --train-images "$W/flip.gz" --train-labels "$LABELS" --test-fraction 0.2 --hidden 16,8 \
  --batchnorm --dropout 0.1 --optimizer adam --batch-size 64 --accum 2 --seed 5 --quiet --epochs 2 \
  --resume "$W/part.ckpt" >/dev/null 2>"$W/err"
rc=$?
[ $rc = 2 ] && grep -q 'the training data: other images or labels' "$W/err" || fail "resume on other images: exit $rc: $(cat "$W/err")"
# at an epoch boundary the batch size may change: noted, trained
"$DESCENT" "${CQ[@]}" --epochs 3 --batch-size 32 --resume "$W/straight.ckpt" --json >"$W/bs.json" 2>"$W/err"
rc=$?
[ $rc = 0 ] && grep -q 'changed settings: .*--batch-size 32 (64 in the checkpoint)' "$W/err" ||
  fail "--batch-size 32 at an epoch boundary: exit $rc: $(cat "$W/err")"
[ "$(field steps <"$W/bs.json")" = $((126 + 125)) ] || fail "--batch-size 32 for the third epoch: $(field steps <"$W/bs.json") updates, want 251"

# ---- 3. output targets, before any work (a default Fashion run of 10 epochs would take minutes)
early() { # CODE NEEDLE ARGS...: exit CODE naming NEEDLE, in under a second
  local code=$1 needle=$2 t0 ms rc
  shift 2
  t0=$(date +%s%N)
  "$DESCENT" "$@" >"$W/out" 2>"$W/err"
  rc=$?
  ms=$(elapsed_ms "$t0")
  [ $rc = "$code" ] && grep -qF -- "$needle" "$W/err" || fail "$*: exit $rc, want $code naming '$needle': $(cat "$W/err")"
  [ "$ms" -lt 1000 ] || fail "$*: refused after $ms ms: the check came after work was spent"
  [ -s "$W/out" ] && fail "$*: wrote to stdout before refusing: $(head -c 200 "$W/out")"
}
mkdir -p "$W/adir"
early 1 "cannot write there: $W/no/such does not exist" train --save "$W/no/such/m.ckpt"
early 2 "is a directory" train --save "$W/adir"
mkfifo "$W/fifo"
early 2 "not a regular file" train --save "$W/fifo"
[ -p "$W/fifo" ] || fail "--save FIFO replaced the FIFO"
mkdir -p "$W/bdir.csv"
early 2 "is a directory" train --log "$W/bdir.csv"
early 2 "name the same file" train --log "$W/same.csv" --save "$W/same.csv"
touch "$W/same2.csv"
ln -s same2.csv "$W/alias.csv"
early 2 "name the same file" train --log "$W/alias.csv" --save "$W/./same2.csv"
early 2 "the file name is too long" train --save "$W/$(printf 'a%.0s' $(seq 253))"
mkdir -p "$W/pics"
mkfifo "$W/pics/playground-saddle-momentum.svg"
early 2 "not a regular file" playground --preset lecture --out "$W/pics"
[ "$(find "$W/pics" -name '*.svg' -type f | wc -l)" = 0 ] || fail "--preset wrote pictures before refusing one"
early 1 "does not exist" playground --fn rosenbrock --steps 3000 --plot "$W/no/such/x.svg"
mkdir -p "$W/pic.svg"
early 2 "is a directory" plot "$W/straight.json" -o "$W/pic.svg"
# a symbolic link is written through and kept
cp "$W/part.ckpt" "$W/real.ckpt"
ln -s real.ckpt "$W/link.ckpt"
"$DESCENT" "${C[@]}" --steps 5 --save "$W/link.ckpt" >/dev/null || fail "--save through a link"
[ -L "$W/link.ckpt" ] || fail "--save through a link replaced the link with a file"
cmp -s "$W/real.ckpt" "$W/part.ckpt" && fail "--save through a link did not write its target"
"$DESCENT" eval --backend cpu "${DATA[@]}" --checkpoint "$W/real.ckpt" >/dev/null || fail "the link's target does not load"

# ---- 4. logs: appended on resume, locked; plot names a bad row
"$DESCENT" "${C[@]}" --steps 30 --log-every 10 --log "$W/a.csv" --save "$W/a.ckpt" >/dev/null || fail "log part 1"
"$DESCENT" "${C[@]}" --epochs 1 --log-every 10 --log "$W/a.csv" --resume "$W/a.ckpt" >/dev/null || fail "log part 2"
python3 - "$W/a.csv" <<'EOF' || fail "resume --log: the log is not one table of both parts: $(cut -c1-40 "$W/a.csv")"
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0][0] == "epoch" and sum(r[0] == "epoch" for r in rows) == 1, "header count"
steps = [int(float(r[1])) for r in rows[1:]]
assert steps == [10, 20, 30, 40, 50, 60, 63], steps
EOF
"$DESCENT" "${C[@]}" --epochs 300 --log-every 5 --log "$W/locked.csv" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 200); do [ -s "$W/locked.csv" ] && break; sleep 0.05; done
early 1 "another descent process is writing this log" "${C[@]}" --epochs 1 --log "$W/locked.csv"
kill $pid 2>/dev/null
wait $pid 2>/dev/null
head -c 300 "$W/a.csv" >"$W/cut.csv"
"$DESCENT" "${C[@]}" --epochs 1 --log-every 10 --log "$W/cut.csv" --resume "$W/a.ckpt" >/dev/null 2>"$W/err"
rc=$?
[ $rc = 2 ] && grep -q 'its last row is cut off' "$W/err" || fail "resume onto a cut-off log: exit $rc: $(cat "$W/err")"
sed '1s/^epoch/epochs/' "$W/a.csv" >"$W/other.csv"
"$DESCENT" "${C[@]}" --epochs 1 --log-every 10 --log "$W/other.csv" --resume "$W/a.ckpt" >/dev/null 2>"$W/err"
rc=$?
[ $rc = 2 ] && grep -q 'are not this run' "$W/err" || fail "resume onto a log of other columns: exit $rc: $(cat "$W/err")"
{ head -n 3 "$W/a.csv"; echo "1,2,3"; } >"$W/broken.csv"
"$DESCENT" plot "$W/broken.csv" -o "$W/broken.svg" >/dev/null 2>"$W/err"
rc=$?
[ $rc = 2 ] && grep -q 'broken.csv:4:' "$W/err" || fail "plot of a broken row: exit $rc, want 2 naming line 4: $(cat "$W/err")"
{ head -n 2 "$W/a.csv"; sed -n 3p "$W/a.csv" | sed 's/^[^,]*,[^,]*,/0.5,abc,/'; } >"$W/junk.csv"
"$DESCENT" plot "$W/junk.csv" -o "$W/junk.svg" >/dev/null 2>"$W/err"
rc=$?
[ $rc = 2 ] && grep -q "junk.csv:3: column 'step' holds 'abc'" "$W/err" || fail "plot of a junk cell: exit $rc: $(cat "$W/err")"

# ---- 5. early stopping: what is kept is said; no finite val_loss at all
V=(train --backend cpu "${DATA[@]}" --hidden 32 --optimizer adam --lr 0.01 --seed 3 --val-fraction 0.1)
"$DESCENT" "${V[@]}" --log-every 20 --epochs 4 --early-stop 1000 --json >"$W/es.json" 2>"$W/err" || fail "early-stop run: $(cat "$W/err")"
best=$(field best_step <"$W/es.json"); last=$(field steps <"$W/es.json"); kept=$(field eval_step <"$W/es.json")
[ "$kept" = "$best" ] || fail "--early-stop: eval_step $kept is not best_step $best"
if [ "$best" != "$last" ]; then
  grep -q "keeping the state of update $best" "$W/err" || fail "--early-stop kept update $best of $last without a word: $(cat "$W/err")"
  "$DESCENT" "${V[@]}" --epochs 4 --early-stop 1000 --log-every 20 >"$W/es.txt" 2>/dev/null
  grep -q "the state after update $best" "$W/es.txt" || fail "the summary does not say whose figures: $(cat "$W/es.txt")"
else
  echo "note: the best validation loss came at the last update; the kept-state note is not exercised"
fi
# (sgd: the first update makes the weights ~1e37 and every later forward pass overflows)
"$DESCENT" "${V[@]}" --log-every 20 --optimizer sgd --lr 3e38 --epochs 2 --early-stop 2 --on-nonfinite skip --json --save "$W/nf.ckpt" \
  >"$W/nf.json" 2>"$W/err"
rc=$?
[ $rc = 0 ] || fail "no finite val_loss: exit $rc: $(cat "$W/err")"
strictjson "$W/nf.json" || fail "diverged run: the JSON does not parse: $(cat "$W/nf.json")"
[ "$(field best_step <"$W/nf.json")" = null ] && [ "$(field stopped_early <"$W/nf.json")" = True ] ||
  fail "no finite val_loss: want best_step null and stopped_early true: $(cat "$W/nf.json")"
grep -q 'has not been finite' "$W/err" && grep -q "keeping the last state (update $(field steps <"$W/nf.json"))" "$W/err" ||
  fail "no finite val_loss: the note does not say what is kept: $(cat "$W/err")"
"$DESCENT" eval --backend cpu "${DATA[@]}" --checkpoint "$W/nf.ckpt" --json >"$W/nfe.json" 2>"$W/err" ||
  fail "eval of the diverged checkpoint: $(cat "$W/err")"
# the same run in stop mode (the default), a log point after every update:
# after update 1 the weights are huge but finite, the gradient was finite, and
# the validation loss is not: a divergence, whatever early stopping would keep
"$DESCENT" "${V[@]}" --log-every 1 --optimizer sgd --lr 3e38 --epochs 2 --early-stop 1 >"$W/nfs.txt" 2>"$W/err"
rc=$?
[ $rc = 1 ] && [ "$(grep -c . "$W/err")" -ge 1 ] && grep -q "training diverged: the validation loss is \(NaN\|Inf\) after update" "$W/err" ||
  fail "stop mode, no finite val_loss: exit $rc, want 1 naming the validation loss: $(cat "$W/err")"
strictjson "$W/nfe.json" || fail "eval --json of a diverged model does not parse: $(cat "$W/nfe.json")"

# ---- 6. eval is training's model: stored scaling, only the test files
"$DESCENT" "${V[@]}" --standardize --epochs 1 --save "$W/std.ckpt" --json >"$W/std.json" 2>"$W/err" || fail "--standardize run: $(cat "$W/err")"
"$DESCENT" eval --backend cpu "${DATA[@]}" --checkpoint "$W/std.ckpt" --json >"$W/stde.json" || fail "eval --standardize"
[ "$(field test_loss <"$W/stde.json")" = "$(field test_loss <"$W/std.json")" ] ||
  fail "eval test_loss $(field test_loss <"$W/stde.json") vs train's $(field test_loss <"$W/std.json") (--standardize --val-fraction)"
python3 - "$IMAGES" "$LABELS" "$W/t10k" <<'EOF' || fail "cannot write the test-only folder"
import gzip, os, sys
img, lab, out = sys.argv[1:4]
os.makedirs(out, exist_ok=True)
rd = lambda p: (gzip.open(p) if p.endswith(".gz") else open(p, "rb")).read()
im, lb = rd(img), rd(lab)
n = 2000  # the tail the training run held out (--test-fraction 0.2 of 10000)
hdr_i = im[:4] + n.to_bytes(4, "big") + im[8:16]
hdr_l = lb[:4] + n.to_bytes(4, "big")
open(out + "/t10k-images-idx3-ubyte", "wb").write(hdr_i + im[16 + 8000 * 784:])
open(out + "/t10k-labels-idx1-ubyte", "wb").write(hdr_l + lb[8 + 8000:])
EOF
"$DESCENT" eval --backend cpu --data "$W/t10k" --checkpoint "$W/std.ckpt" --json >"$W/dir.json" 2>"$W/err" ||
  fail "eval --data DIR with only the t10k files: $(cat "$W/err")"
[ "$(field test_loss <"$W/dir.json")" = "$(field test_loss <"$W/std.json")" ] || fail "eval --data t10k-only: a different test_loss"
"$DESCENT" eval --backend cpu --test-images "$W/t10k/t10k-images-idx3-ubyte" --test-labels "$W/t10k/t10k-labels-idx1-ubyte" \
  --checkpoint "$W/std.ckpt" --json >"$W/tt.json" 2>"$W/err" || fail "eval with --test-images/--test-labels alone: $(cat "$W/err")"
[ "$(field test_loss <"$W/tt.json")" = "$(field test_loss <"$W/std.json")" ] || fail "eval --test-images: a different test_loss"

# ---- 7. counting
"$DESCENT" "${CQ[@]}" --epochs 1 >"$W/one.txt" 2>/dev/null || fail "one epoch"
grep -q '(1 epoch, 63 updates' "$W/one.txt" || fail "one epoch reads: $(cat "$W/one.txt")"

if [ "$failures" -gt 0 ]; then
  echo "test_run_life: $failures check(s) FAILED"
  exit 1
fi
echo "test_run_life: all checks passed"
