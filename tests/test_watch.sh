#!/usr/bin/env bash
# Progress, logs, validation, early stopping and non-finite values through the
# CLI, on real digits ($DS_SHARED_DIR/datasets/mnist-t10k: 8000 train / 2000
# held out) and tiny MLPs, so every run takes well under a second.
#
#  - a huge learning rate stops with exit 1 and one line naming the update, the
#    layer and NaN/Inf; --on-nonfinite skip finishes and counts the skips;
#  - --log FILE.csv / .jsonl: the columns, one row per log point, warnings;
#  - --val-fraction and --early-stop: the kept parameters are those of the
#    best validation loss (the final test loss equals the logged one there);
#  - Ctrl-C: the run ends after the current update with exit 130, a loadable
#    checkpoint and a complete log;
#  - a terminal gets a progress bar, a pipe plain lines, --quiet nothing;
#  - descent plot writes valid SVG (and PNG through rsvg-convert).
set -u -o pipefail
. "$(dirname "$0")/mnist_suite.sh" test_watch
command -v python3 >/dev/null || { echo "test_watch: needs python3: skipped"; exit 77; }
T=(train --backend cpu --train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2 --hidden 16,8 --seed 3)
notes() { grep -v '^descent: note: ' "$1"; }

# ---- non-finite values
"$DESCENT" "${T[@]}" --epochs 2 --lr 3e38 --quiet >"$W/out" 2>"$W/err"; rc=$?
[ $rc = 1 ] || fail "lr 3e38: exit $rc, want 1"
[ "$(notes "$W/err" | wc -l)" = 1 ] || fail "lr 3e38: want one line on stderr: $(cat "$W/err")"
grep -Eq 'diverged: the gradient of fc[0-9] (weight|bias) is (NaN|Inf) at update [0-9]+' "$W/err" ||
  fail "lr 3e38: the line names the layer, NaN/Inf and the update: $(cat "$W/err")"
[ -s "$W/out" ] && fail "lr 3e38: wrote results on stdout: $(cat "$W/out")"
"$DESCENT" "${T[@]}" --epochs 2 --lr 3e38 --quiet --save "$W/nf.ckpt" >/dev/null 2>&1
[ -e "$W/nf.ckpt" ] && fail "a diverged run wrote a checkpoint"
"$DESCENT" "${T[@]}" --epochs 1 --lr 3e38 --on-nonfinite skip --json --quiet --save "$W/skip.ckpt" >"$W/out" 2>"$W/err"; rc=$?
[ $rc = 0 ] || fail "skip mode: exit $rc: $(cat "$W/err")"
python3 - "$W/out" <<'EOF' || fail "skip mode: JSON"
import json, sys
r = json.loads(open(sys.argv[1]).read())
# the first update (finite gradient) makes the weights ~1e37; every later
# forward pass overflows, so every later update is skipped
assert r['steps'] == 125 and r['skipped_steps'] == 124, r
EOF
"$DESCENT" eval --backend cpu --train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2 \
  --checkpoint "$W/skip.ckpt" >/dev/null 2>&1 || fail "skip mode: its checkpoint does not load (non-finite?)"

# ---- the log: columns and rows
"$DESCENT" "${T[@]}" --epochs 3 --val-fraction 0.1 --log "$W/a.csv" --json >"$W/out" 2>"$W/err" || fail "--log csv: $(cat "$W/err")"
python3 - "$W/a.csv" "$W/out" "$W/err" <<'EOF' || fail "--log csv: columns or rows"
import csv, json, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
r = json.loads(open(sys.argv[2]).read())
err = open(sys.argv[3]).read()
need = ['epoch', 'step', 'lr', 'train_loss', 'train_accuracy', 'val_loss', 'val_accuracy', 'test_loss',
        'test_accuracy', 'samples_per_second', 'skipped', 'grad_norm', 'warnings']
for l in ('fc1', 'fc2', 'fc3'):
    need += ['grad_norm_' + l, 'update_ratio_' + l]
for l in ('fc1', 'fc2'):
    need += ['act_mean_' + l, 'act_std_' + l, 'dead_' + l]
missing = [k for k in need if k not in rows[0]]
assert not missing, missing
assert 'dead_fc3' not in rows[0] and 'saturated_fc1' not in rows[0]
assert len(rows) == 3, len(rows)                       # once per epoch by default
assert [int(x['step']) for x in rows] == [113, 226, 339], [x['step'] for x in rows]   # 7200 / 64 = 113 updates
assert [float(x['epoch']) for x in rows] == [1, 2, 3]
last = rows[-1]
for k in ('test_loss', 'test_accuracy', 'val_loss', 'val_accuracy'):
    assert abs(float(last[k]) - r[k]) < 1e-6, (k, last[k], r[k])   # JSON prints 6 decimals
g = math.sqrt(sum(float(last['grad_norm_' + l]) ** 2 for l in ('fc1', 'fc2', 'fc3')))
assert abs(g - float(last['grad_norm'])) <= 1e-6 * g, (g, last['grad_norm'])
for x in rows:
    for l in ('fc1', 'fc2'):
        assert 0 <= float(x['dead_' + l]) <= 1 and float(x['act_std_' + l]) > 0
    for l in ('fc1', 'fc2', 'fc3'):
        assert 1e-5 < float(x['update_ratio_' + l]) < 1, x
assert '7200 train / 800 validation / 2000 test' in err, err
assert err.count('val_loss') == 3, err                  # one plain line per log point (stderr is a file)
EOF
"$DESCENT" "${T[@]}" --steps 50 --log-every 20 --activation tanh --log "$W/b.jsonl" --quiet >/dev/null 2>"$W/err" || fail "--log jsonl"
[ -s "$W/err" ] && fail "--quiet still wrote to stderr: $(cat "$W/err")"
python3 - "$W/b.jsonl" <<'EOF' || fail "--log jsonl: rows"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [x['step'] for x in rows] == [20, 40, 50], [x['step'] for x in rows]   # every 20, and the last update
assert all('saturated_fc1' in x and 'dead_fc1' not in x and 'val_loss' not in x for x in rows)
assert all(isinstance(x['warnings'], list) for x in rows)
EOF

# ---- warnings: lr 1e-6 barely moves the weights
"$DESCENT" "${T[@]}" --epochs 2 --lr 1e-6 --log "$W/w.csv" >/dev/null 2>"$W/err" || fail "small lr run failed"
[ "$(grep -c 'warning: update [0-9]*: update_ratio_fc1' "$W/err")" = 1 ] ||
  fail "update_ratio warning: want it once on stderr (when it starts): $(cat "$W/err")"
python3 - "$W/w.csv" <<'EOF' || fail "update_ratio warning in every log row"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 2 and all('update_ratio_fc1' in x['warnings'] for x in rows), [x['warnings'] for x in rows]
EOF

# ---- early stopping: a high learning rate overfits 720 training items fast
E=(train --backend cpu --train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2 --hidden 64 --seed 3
   --val-fraction 0.91 --optimizer adam --lr 0.01 --epochs 60 --early-stop 3 --json --quiet)
"$DESCENT" "${E[@]}" --log "$W/e.csv" --save "$W/e.ckpt" >"$W/out" 2>"$W/err" || fail "--early-stop: $(cat "$W/err")"
python3 - "$W/e.csv" "$W/out" <<'EOF' || fail "--early-stop: keeps the best validation loss"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
r = json.loads(open(sys.argv[2]).read())
assert r['stopped_early'] is True and len(rows) < 60, (r, len(rows))
vals = [float(x['val_loss']) for x in rows]
best = min(range(len(rows)), key=lambda i: vals[i])
assert len(rows) - 1 - best == 3, (best, len(rows))      # 3 evaluations without improvement
assert r['best_step'] == int(rows[best]['step']), (r['best_step'], rows[best]['step'])
# the reported test numbers are those of the kept (best) parameters
assert abs(r['test_loss'] - float(rows[best]['test_loss'])) < 1e-6, (r['test_loss'], rows[best]['test_loss'])
assert abs(r['val_loss'] - vals[best]) < 1e-6
EOF
"$DESCENT" eval --backend cpu --train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2 \
  --checkpoint "$W/e.ckpt" --json >"$W/ev" 2>&1 || fail "eval of the early-stopped checkpoint"
python3 - "$W/ev" "$W/out" <<'EOF' || fail "the saved checkpoint holds the best parameters"
import json, sys
e = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
r = json.loads(open(sys.argv[2]).read())
assert abs(e['test_loss'] - r['test_loss']) < 1e-6, (e, r)
EOF
"$DESCENT" "${T[@]}" --early-stop 2 >/dev/null 2>"$W/err"; rc=$?
[ $rc = 2 ] && grep -q -- '--early-stop' "$W/err" || fail "--early-stop without --val-fraction: exit $rc, want 2"
"$DESCENT" "${T[@]}" --log "$W/x.txt" >/dev/null 2>"$W/err"; rc=$?
[ $rc = 2 ] && grep -q -- '--log' "$W/err" || fail "--log x.txt: exit $rc, want 2"

# ---- Ctrl-C: finish the update, save, exit 130
# (the signal goes once the first log row is written, so it never arrives
# before the handler is installed, however loaded the machine is)
"$DESCENT" "${T[@]}" --epochs 100000 --log-every 50 --log "$W/i.csv" --save "$W/i.ckpt" \
  --quiet >"$W/out" 2>"$W/err" &
pid=$!
for _ in $(seq 300); do
  [ "$(lines "$W/i.csv")" -ge 2 ] && break
  sleep 0.1
done
kill -INT $pid
wait $pid; rc=$?
[ $rc = 130 ] || fail "SIGINT: exit $rc, want 130: $(cat "$W/err")"
grep -q 'interrupted after update [0-9]*; checkpoint written to' "$W/err" || fail "SIGINT: message: $(cat "$W/err")"
[ -s "$W/out" ] && fail "SIGINT: wrote results on stdout"
"$DESCENT" eval --backend cpu --train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2 \
  --checkpoint "$W/i.ckpt" >/dev/null 2>&1 || fail "SIGINT: the checkpoint does not load"
[ "$(wc -l <"$W/i.csv")" -ge 2 ] && [ "$(tail -c 1 "$W/i.csv" | od -An -c | tr -d ' ')" = '\n' ] ||
  fail "SIGINT: the log is empty or ends mid-row"

# ---- progress: a bar on a terminal
if command -v script >/dev/null; then
  script -qec "$(printf '%q ' "$DESCENT" "${T[@]}" --epochs 2)" /dev/null >"$W/tty" 2>&1 </dev/null
  grep -q 'ETA' "$W/tty" && grep -q $'\r' "$W/tty" && grep -q 'test_acc' "$W/tty" ||
    fail "terminal: no progress bar (ETA, carriage return) and log lines: $(head -c 600 "$W/tty" | od -c | head)"
fi
grep -q 'ETA' "$W/err" && fail "a progress bar was drawn into a file"

# ---- descent plot
"$DESCENT" plot "$W/a.csv" -o "$W/a.svg" || fail "plot csv"
"$DESCENT" plot "$W/b.jsonl" -o "$W/b.svg" --title "tanh run" || fail "plot jsonl"
for f in a b; do
  python3 - "$W/$f.svg" <<'EOF' || fail "plot $f: SVG"
import sys, xml.dom.minidom
doc = xml.dom.minidom.parse(sys.argv[1])
text = ' '.join(t.firstChild.data for t in doc.getElementsByTagName('text') if t.firstChild)
for want in ('loss', 'accuracy', 'gradient norm per layer', 'update ratio', 'fc1', 'fc2', 'fc3', 'train', 'test'):
    assert want in text, want
paths = [p for p in doc.getElementsByTagName('path') if 'L' in p.getAttribute('d')]
assert len(paths) >= 10, len(paths)   # train/test loss and accuracy, 3 grad norms + total, 3 ratios
EOF
done
grep -q 'validation' "$W/a.svg" || fail "plot: the validation curve is missing"
grep -q 'tanh run' "$W/b.svg" || fail "plot --title"
if command -v rsvg-convert >/dev/null; then
  "$DESCENT" plot "$W/a.csv" -o "$W/a.png" && [ "$(head -c 4 "$W/a.png" | od -An -c | tr -d ' ')" = '211PNG' ] ||
    fail "plot png"
fi
PATH=/nonexistent "$DESCENT" plot "$W/a.csv" -o "$W/n.png" 2>"$W/err"; rc=$?
[ $rc = 2 ] && grep -q 'rsvg-convert' "$W/err" && grep -q '\.svg' "$W/err" || fail "plot png without rsvg-convert: exit $rc: $(cat "$W/err")"
"$DESCENT" plot "$W/no-such.csv" -o "$W/x.svg" 2>/dev/null; [ $? = 2 ] || fail "plot of a missing log: want exit 2"
"$DESCENT" plot "$IMAGES" -o "$W/x.svg" 2>/dev/null; [ $? = 2 ] || fail "plot of a non-log: want exit 2"
"$DESCENT" plot "$W/a.csv" -o "$W/x.pdf" 2>/dev/null; [ $? = 2 ] || fail "plot -o x.pdf: want exit 2"

if [ $failures -gt 0 ]; then
  echo "test_watch: $failures failures"
  exit 1
fi
echo "test_watch: all passed"
