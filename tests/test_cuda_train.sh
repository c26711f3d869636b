#!/usr/bin/env bash
# Training on the GPU through the CLI (exit 77, skipped, where there is none):
#   1. the captured CUDA graph: a run that replays it ends bit-identical to the
#      same run with --no-graph (same kernels, same arguments, same order), and
#      --json reports how many updates were replays (> 0, and 0 with --no-graph);
#      with --accum 2 and a short last batch per epoch (eager updates mixed in);
#   2. --deterministic: two runs give byte-identical checkpoints and JSON
#      (timings aside), with --tf32 as well;
#   3. descent verify on its default model, with --no-graph and with --tf32:
#      exit 0 (within the documented tolerances);
#   4. a device fault mid-run (DESCENT_FAULT_AT_UPDATE): exit 1, one line with
#      the CUDA error naming the injected kernel, and the last checkpoint intact
#      (resuming from it ends byte-identical to the run without the fault);
#   5. --on-nonfinite skip and a log every 10 updates (eager updates between
#      replays) train to a sane accuracy;
#   6. real non-finite values (lr 3e38 overflows by the second update): stop
#      mode exits 1 naming the same update as the CPU run, skip mode finishes
#      with the CPU run's skip count and a loadable checkpoint;
#   7. descent predict on the GPU: its logits (.npy) agree with the CPU's to
#      1e-4 relative (each row against its largest logit), and eval's
#      confusion matrix on the GPU sums to the test set with the accuracy on
#      its diagonal.
set -u -o pipefail
MNIST_ONLY=1 # the accuracy thresholds below are for digits
. "$(dirname "$0")/mnist_suite.sh" test_cuda_train
field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" "$2"; }
strip_timing() { sed -e 's/"seconds":[^,}]*//' -e 's/"samples_per_second":[^,}]*//' "$1"; }

DATAFLAGS=(--train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2)
# 8000 training images in batches of 100 with --accum 2: 40 full updates per epoch
COMMON=(train --backend cuda "${DATAFLAGS[@]}" --hidden 256,128 --batchnorm --dropout 0.2
        --input-dropout 0.1 --optimizer adam --clip-norm 1 --batch-size 100 --accum 2 --seed 7 --quiet --json)

"$DESCENT" "${COMMON[@]}" --steps 1 >/dev/null 2>"$W/err"
rc=$?
if [ "$rc" -eq 77 ]; then
  echo "test_cuda_train: skipped: $(cat "$W/err")"
  exit 77
fi
[ "$rc" -eq 0 ] || fail "a one-step CUDA run failed (exit $rc): $(cat "$W/err")"

# ---- 1. graph replay == eager
"$DESCENT" "${COMMON[@]}" --epochs 2 --save "$W/graph.ckpt" >"$W/graph.json" 2>"$W/err" || fail "graph run: $(cat "$W/err")"
"$DESCENT" "${COMMON[@]}" --epochs 2 --save "$W/eager.ckpt" --no-graph >"$W/eager.json" 2>"$W/err" || fail "--no-graph run: $(cat "$W/err")"
cmp -s "$W/graph.ckpt" "$W/eager.ckpt" || fail "graph replays and --no-graph end in different checkpoints"
[ "$(strip_timing "$W/graph.json" | sed 's/"graph_updates":[0-9]*//')" = "$(strip_timing "$W/eager.json" | sed 's/"graph_updates":[0-9]*//')" ] ||
  fail "graph and --no-graph JSON differ: $(cat "$W/graph.json") vs $(cat "$W/eager.json")"
g=$(field graph_updates "$W/graph.json"); e=$(field graph_updates "$W/eager.json")
[ -n "$g" ] && [ "$g" -gt 0 ] || fail "graph run: graph_updates '$g', want > 0"
[ "$e" = 0 ] || fail "--no-graph run: graph_updates '$e', want 0"
acc=$(field test_accuracy "$W/graph.json")
awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }' || fail "2 epochs on the GPU: test accuracy $acc, want >= 0.9"

# ---- 2. --deterministic (and with --tf32)
for extra in "" "--tf32"; do
  # shellcheck disable=SC2086
  "$DESCENT" "${COMMON[@]}" --steps 60 --deterministic $extra --save "$W/d1.ckpt" >"$W/d1.json" 2>"$W/err" || fail "deterministic run 1 $extra: $(cat "$W/err")"
  # shellcheck disable=SC2086
  "$DESCENT" "${COMMON[@]}" --steps 60 --deterministic $extra --save "$W/d2.ckpt" >"$W/d2.json" 2>"$W/err" || fail "deterministic run 2 $extra: $(cat "$W/err")"
  cmp -s "$W/d1.ckpt" "$W/d2.ckpt" || fail "--deterministic $extra: two runs end in different checkpoints"
  [ "$(strip_timing "$W/d1.json")" = "$(strip_timing "$W/d2.json")" ] || fail "--deterministic $extra: JSON differs"
done

# ---- 3. verify
for extra in "" "--no-graph" "--tf32"; do
  # shellcheck disable=SC2086
  "$DESCENT" verify "${DATAFLAGS[@]}" --quiet $extra >"$W/verify.out" 2>"$W/err"
  rc=$?
  [ "$rc" -eq 0 ] || fail "verify $extra: exit $rc: $(tail -n 3 "$W/verify.out") $(cat "$W/err")"
  grep -q '^verify: OK' "$W/verify.out" || fail "verify $extra: no OK line: $(tail -n 3 "$W/verify.out")"
done

# ---- 4. a device fault in epoch 2 (update 60 of 40 per epoch)
RUN=("${COMMON[@]}" --epochs 2 --save-every 1)
"$DESCENT" "${RUN[@]}" --save "$W/clean.ckpt" >/dev/null 2>"$W/err" || fail "clean run: $(cat "$W/err")"
DESCENT_FAULT_AT_UPDATE=60 "$DESCENT" "${RUN[@]}" --save "$W/run.ckpt" >/dev/null 2>"$W/err"
rc=$?
[ "$rc" -eq 1 ] || fail "faulted run: exit $rc, want 1: $(cat "$W/err")"
[ "$(lines "$W/err")" -eq 1 ] || fail "faulted run: $(lines "$W/err") lines on stderr, want 1: $(cat "$W/err")"
grep -q 'CUDA error' "$W/err" && grep -q 'optim_step (fault_injection_kernel' "$W/err" ||
  fail "faulted run: the message lacks the CUDA error or the op: $(cat "$W/err")"
"$DESCENT" "${RUN[@]}" --resume "$W/run.ckpt" --save "$W/resumed.ckpt" >/dev/null 2>"$W/err" ||
  fail "resuming from the surviving checkpoint: $(cat "$W/err")"
cmp -s "$W/resumed.ckpt" "$W/clean.ckpt" || fail "the checkpoint left by the faulted run does not resume to the clean run's end"
DESCENT_CUDA_SYNC=1 DESCENT_FAULT_AT_UPDATE=3 "$DESCENT" "${COMMON[@]}" --steps 5 >/dev/null 2>"$W/err"
rc=$?
[ "$rc" -eq 1 ] && grep -q 'in optim_step (fault_injection_kernel' "$W/err" ||
  fail "DESCENT_CUDA_SYNC=1: the fault is not reported at its own launch (exit $rc): $(cat "$W/err")"

# ---- 5. skip mode and frequent log points
"$DESCENT" "${COMMON[@]}" --epochs 1 --on-nonfinite skip --log-every 10 --log "$W/log.csv" >"$W/skip.json" 2>"$W/err" ||
  fail "skip mode: $(cat "$W/err")"
acc=$(field test_accuracy "$W/skip.json")
awk -v a="$acc" 'BEGIN { exit !(a >= 0.85) }' || fail "skip mode, log every 10: test accuracy $acc, want >= 0.85"
[ "$(lines "$W/log.csv")" -ge 5 ] || fail "skip mode: the log has $(lines "$W/log.csv") lines"

# ---- 6. real NaN/Inf in stop and skip mode, against the CPU
NF=(train "${DATAFLAGS[@]}" --hidden 16,8 --seed 3 --lr 3e38 --quiet)
update_of() { sed -n 's/.* at update \([0-9]*\).*/\1/p' "$1" | head -n 1; }
"$DESCENT" "${NF[@]}" --backend cpu --epochs 2 >/dev/null 2>"$W/nf-cpu.err"
"$DESCENT" "${NF[@]}" --backend cuda --epochs 2 >/dev/null 2>"$W/nf-gpu.err"
rc=$?
[ "$rc" -eq 1 ] || fail "stop mode on the GPU: exit $rc, want 1: $(cat "$W/nf-gpu.err")"
grep -Eq 'diverged: the gradient of fc[0-9] (weight|bias) is (NaN|Inf) at update [0-9]+' "$W/nf-gpu.err" ||
  fail "stop mode on the GPU: the line does not name the tensor, NaN/Inf and the update: $(cat "$W/nf-gpu.err")"
[ -n "$(update_of "$W/nf-cpu.err")" ] && [ "$(update_of "$W/nf-gpu.err")" = "$(update_of "$W/nf-cpu.err")" ] ||
  fail "stop mode: the GPU stops at update '$(update_of "$W/nf-gpu.err")', the CPU at '$(update_of "$W/nf-cpu.err")'"
"$DESCENT" "${NF[@]}" --backend cpu --epochs 1 --on-nonfinite skip --json >"$W/nf-cpu.json" 2>/dev/null
"$DESCENT" "${NF[@]}" --backend cuda --epochs 1 --on-nonfinite skip --json --save "$W/nf.ckpt" >"$W/nf-gpu.json" 2>"$W/err"
rc=$?
[ "$rc" -eq 0 ] || fail "skip mode on the GPU: exit $rc: $(cat "$W/err")"
sc=$(field skipped_steps "$W/nf-cpu.json"); sg=$(field skipped_steps "$W/nf-gpu.json")
[ -n "$sc" ] && [ "$sc" -gt 0 ] && [ "$sg" = "$sc" ] || fail "skip mode: the GPU skipped '$sg' updates, the CPU '$sc'"
"$DESCENT" eval --backend cuda "${DATAFLAGS[@]}" --checkpoint "$W/nf.ckpt" >/dev/null 2>"$W/err" ||
  fail "skip mode: the GPU's checkpoint does not load: $(cat "$W/err")"

# ---- 7. predictions and the confusion matrix on the GPU
"$DESCENT" predict --backend cuda --checkpoint "$W/graph.ckpt" --images "$IMAGES" --out "$W/gpu.npy" 2>"$W/err" ||
  fail "predict on the GPU: $(cat "$W/err")"
"$DESCENT" predict --backend cpu --checkpoint "$W/graph.ckpt" --images "$IMAGES" --out "$W/cpu.npy" 2>"$W/err" ||
  fail "predict on the CPU: $(cat "$W/err")"
python3 - "$W/gpu.npy" "$W/cpu.npy" <<'PY' || fail "predict: the GPU's logits differ from the CPU's"
import array, ast, sys
def load(path):  # a float32 .npy (format 1.0), without numpy
    b = open(path, "rb").read()
    hl = int.from_bytes(b[8:10], "little")
    h = ast.literal_eval(b[10:10 + hl].decode())
    a = array.array("f")
    a.frombytes(b[10 + hl:])
    return h["shape"], a
(sg, g), (sc, c) = load(sys.argv[1]), load(sys.argv[2])
if sg != sc:
    sys.exit(f"shapes {sg} and {sc}")
n, C = sc
worst = 0.0
for i in range(n):
    rg, rc = g[i * C:(i + 1) * C], c[i * C:(i + 1) * C]
    worst = max(worst, max(abs(x - y) for x, y in zip(rg, rc)) / (max(abs(v) for v in rc) or 1.0))
print(f"test_cuda_train: predict: {n} images, GPU vs CPU logits: worst relative error {worst:.2g}")
sys.exit(0 if worst <= 1e-4 else 1)
PY
"$DESCENT" eval --backend cuda "${DATAFLAGS[@]}" --checkpoint "$W/graph.ckpt" --json >"$W/eval.json" 2>"$W/err" ||
  fail "eval on the GPU: $(cat "$W/err")"
python3 - "$W/eval.json" <<'PY' || fail "eval on the GPU: the confusion matrix does not match: $(head -c 300 "$W/eval.json")"
import json, sys
e = json.load(open(sys.argv[1]))
cm = e["confusion"]
total = sum(map(sum, cm))
diag = sum(cm[i][i] for i in range(len(cm)))
sys.exit(0 if total == e["test_samples"] and abs(diag / total - e["test_accuracy"]) < 1e-9 else 1)
PY

if [ "$failures" -gt 0 ]; then
  echo "test_cuda_train: $failures check(s) FAILED"
  exit 1
fi
echo "test_cuda_train: all checks passed"
