#!/usr/bin/env bash
# descent sweep and the time-to-target protocol, on real digits (the MNIST
# test set, 8000 train / 2000 test, 10% of the training part held out for
# validation):
# 1. a 2 x 3 x 2 sweep (sgd, adam x 3 learning rates x 2 seeds) writes 12
#    valid JSON lines whose figures agree with their own curves and configs;
# 2. the same sweep interrupted (SIGINT) halfway, with a half-written line
#    appended, then rerun, equals the uninterrupted file up to the timings;
# 3. time_to_target / steps_to_target equal the first curve point that
#    reaches the target, and a missed target is null;
# 4. evaluation time is off the training clock: --eval-every 1 keeps
#    train_seconds near a run with rare evaluations while eval_seconds grows;
# 5. random and quasirandom search draw inside their ranges, repeatably;
# 6. bad usage is refused (exit 2) before any trial runs or the file is made.
set -u -o pipefail
. "$(dirname "$0")/mnist_suite.sh" test_sweep
command -v python3 >/dev/null || { echo "test_sweep: python3 is needed to read the JSON: skipped"; exit 77; }

DATA=(--train-images "$IMAGES" --train-labels "$LABELS" --test-fraction 0.2)
GRID=(--optimizer sgd,adam --lr 1e-3:1e-1:3log --seeds 1-2 "${DATA[@]}" --hidden 32 --steps 120
      --val-fraction 0.1 --eval-every 40 --target-accuracy 0.8)
cd "$W" || exit 1

# ---- 1. the sweep
"$DESCENT" sweep --out a.jsonl --jobs 2 "${GRID[@]}" 2>a.err || fail "the sweep failed: $(tail -n 2 a.err)"
python3 - a.jsonl <<'PYEOF' || fail "the result file is wrong (above)"
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bad = []
def check(c, what):
    if not c: bad.append(what)
check(len(rows) == 12, f"12 lines, got {len(rows)}")
check(len({r["trial"] for r in rows}) == 12, "12 distinct trials")
for r in rows:
    t = r["trial"]
    check(r["format"] == "descent-sweep/1" and r["status"] == "ok" and r["exit_code"] == 0, f"{t}: ok")
    check(r["optimizer"] in ("sgd", "adam") and r["config"]["optimizer"] == r["optimizer"], f"{t}: optimizer")
    check(r["seed"] in (1, 2) and r["config"]["seed"] == r["seed"], f"{t}: seed")
    lr = r["hyperparameters"]["lr"]
    check(any(abs(lr - v) <= 1e-9 * v for v in (1e-3, 1e-2, 1e-1)), f"{t}: lr {lr} on the grid")
    check(abs(r["config"]["lr"] - lr) <= 1e-6 * lr, f"{t}: config lr {r['config']['lr']} = {lr}")
    check(r["args"][-2:] == ["--seed", str(r["seed"])], f"{t}: args end in the seed")
    check(r["problem"] == rows[0]["problem"] and r["problem"].endswith("/784-32-10"), f"{t}: problem {r['problem']}")
    curve, f = r["curve"], r["final"]
    check(len(curve) >= 1 and [p["step"] for p in curve] == sorted(p["step"] for p in curve), f"{t}: curve steps rise")
    check(f["steps"] == curve[-1]["step"] and f["val_accuracy"] == curve[-1]["val_accuracy"]
          and f["test_accuracy"] == curve[-1]["test_accuracy"], f"{t}: final = the last curve point")
    check(f["train_seconds"] <= f["seconds"] + 1e-6 and f["eval_seconds"] >= 0, f"{t}: clocks")
    # 3. time to target against the curve
    target = r["target"]
    check(target == {"metric": "val_accuracy", "value": 0.8}, f"{t}: target {target}")
    first = next((p for p in curve if p["val_accuracy"] is not None and p["val_accuracy"] >= 0.8), None)
    if first is None:
        check(f["steps_to_target"] is None and f["time_to_target"] is None, f"{t}: a missed target is null")
        check(f["stopped"] == "steps" and f["steps"] == 120, f"{t}: ran to --steps")
    else:
        check(f["steps_to_target"] == first["step"], f"{t}: steps_to_target {f['steps_to_target']} = {first['step']}")
        check(abs(f["time_to_target"] - first["train_seconds"]) < 1e-9, f"{t}: time_to_target = the point's clock")
        check(f["stopped"] == "target" and curve[-1] is first, f"{t}: the run stopped at the target")
reached = sum(r["final"]["steps_to_target"] is not None for r in rows)
check(0 < reached < 12, f"some trials reach 0.8 and some do not ({reached} of 12): the check means something")
for b in bad: print("FAIL:", b)
sys.exit(1 if bad else 0)
PYEOF

# the report of that sweep, recomputed here from its lines
if "$DESCENT" --version | grep -q '^json: Jansson'; then
  "$DESCENT" report a.jsonl --out arep 2>arep.err || fail "report on the sweep failed: $(cat arep.err)"
  python3 - a.jsonl arep <<'PYEOF2' || fail "the report's table differs from a recomputation (above)"
import json, os, statistics, sys, xml.etree.ElementTree as ET
rows = [json.loads(l) for l in open(sys.argv[1])]
md = open(os.path.join(sys.argv[2], "report.md")).read()
table = {}
for line in md.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if line.startswith("| ") and cells[0] in ("sgd", "adam"):
        table[cells[0]] = cells
bad = []
for opt in ("sgd", "adam"):
    by_lr = {}
    for r in rows:
        if r["optimizer"] == opt:
            by_lr.setdefault(r["hyperparameters"]["lr"], []).append(r)
    # the best lr: the highest mean final val_accuracy over the seeds (ties: lower mean val_loss)
    lr = max(by_lr, key=lambda k: (statistics.fmean(r["final"]["val_accuracy"] for r in by_lr[k]),
                                   -statistics.fmean(r["final"]["val_loss"] for r in by_lr[k])))
    rs = by_lr[lr]
    acc = [r["final"]["test_accuracy"] for r in rs]
    reached = [r for r in rs if r["final"]["steps_to_target"] is not None]
    c = table.get(opt)
    if not c:
        bad.append(f"no row for {opt}")
        continue
    if c[1] != "lr=%.6g" % lr: bad.append(f"{opt}: best {c[1]}, recomputed lr={lr:.6g}")
    if c[2] != "2": bad.append(f"{opt}: n {c[2]}")
    mean_txt, sd_txt = [x.strip() for x in c[5].split("±")]
    if abs(float(mean_txt) - statistics.fmean(acc)) > 6e-5: bad.append(f"{opt}: test mean {mean_txt} vs {statistics.fmean(acc):.5f}")
    if abs(float(sd_txt) - statistics.stdev(acc)) > 6e-5: bad.append(f"{opt}: test sd {sd_txt} vs {statistics.stdev(acc):.5f}")
    want_k = f"{len(reached)}/2"
    if want_k not in c[6]: bad.append(f"{opt}: steps to target '{c[6]}', want k/n {want_k}")
    if reached:
        med = statistics.median(r["final"]["steps_to_target"] for r in reached)
        if not c[6].startswith("%g" % med): bad.append(f"{opt}: median steps '{c[6]}' vs {med:g}")
svgs = [f for f in os.listdir(sys.argv[2]) if f.endswith(".svg")]
if len(svgs) != 2: bad.append(f"2 pictures expected, got {svgs}")
for f in svgs:
    ET.parse(os.path.join(sys.argv[2], f))  # well-formed XML
for b in bad: print("FAIL:", b)
sys.exit(1 if bad else 0)
PYEOF2
fi

# ---- 2. interrupted halfway, a half-written line, resumed
"$DESCENT" sweep --out b.jsonl --jobs 1 "${GRID[@]}" 2>b.err &
pid=$!
for _ in $(seq 1 600); do [ "$(lines b.jsonl)" -ge 5 ] && break; sleep 0.05; done
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 130 ] || fail "an interrupted sweep exits 130, got $rc: $(tail -n 2 b.err)"
n=$(lines b.jsonl)
{ [ "$n" -ge 5 ] && [ "$n" -lt 12 ]; } || fail "interrupted halfway: $n lines"
python3 -c "import json,sys; [json.loads(l) for l in open('b.jsonl')]" || fail "the interrupted file is not valid JSON lines"
printf '{"format":"descent-sweep/1","trial":"00' >>b.jsonl # a line cut by a crash
"$DESCENT" sweep --out b.jsonl --jobs 2 "${GRID[@]}" 2>b2.err || fail "the resumed sweep failed: $(tail -n 2 b2.err)"
grep -q "already in b.jsonl" b2.err || fail "the resumed sweep did not say what it skipped"
grep -q "half-written last line" b2.err || fail "the half-written line was not reported"
python3 - a.jsonl b.jsonl <<'PYEOF' || fail "the resumed file differs from the uninterrupted one"
import json, sys
def strip(r):
    r = dict(r)
    r["final"] = {k: v for k, v in r["final"].items() if "second" not in k and k != "time_to_target" and k != "device"}
    r["curve"] = [{k: v for k, v in p.items() if "second" not in k} for p in r["curve"]]
    return r
a = {r["trial"]: strip(r) for r in map(json.loads, open(sys.argv[1]))}
b = [json.loads(l) for l in open(sys.argv[2])]
ids = [r["trial"] for r in b]
ok = len(b) == 12 and len(set(ids)) == 12 and all(a[r["trial"]] == strip(r) for r in b)
if not ok: print("FAIL:", len(b), "lines;", [i for i in ids if i not in a])
sys.exit(0 if ok else 1)
PYEOF
"$DESCENT" sweep --out b.jsonl --jobs 2 "${GRID[@]}" 2>b3.err || fail "a finished sweep rerun failed"
[ "$(lines b.jsonl)" -eq 12 ] || fail "rerunning a finished sweep added lines"

# a trial that failed (here an injected fault) runs again on the rerun; report reads its last line
FAIL_GRID=(--lr 0.1,0.01 "${DATA[@]}" --hidden 16 --steps 30)
DESCENT_FAULT_AT_UPDATE=5 "$DESCENT" sweep --out f.jsonl "${FAIL_GRID[@]}" 2>f1.err
[ $? -eq 1 ] || fail "a sweep with failed trials exits 1"
grep -c '"status":"failed"' f.jsonl | grep -qx 2 || fail "2 failed lines expected: $(cat f.jsonl)"
grep -q '"error":"CPU backend: injected fault' f.jsonl || fail "the failed line lacks the trial's error"
"$DESCENT" sweep --out f.jsonl "${FAIL_GRID[@]}" 2>f2.err || fail "the rerun failed: $(tail -n 2 f2.err)"
grep -q "2 failed trial lines; they run again" f2.err || fail "the rerun did not say it reruns the failed trials: $(cat f2.err)"
[ "$(grep -c '"status":"ok"' f.jsonl)" -eq 2 ] && [ "$(lines f.jsonl)" -eq 4 ] || fail "the rerun did not append 2 ok lines"
if "$DESCENT" --version | grep -q '^json: Jansson'; then
  "$DESCENT" report f.jsonl --out frep 2>f3.err || fail "report on a rerun file failed: $(cat f3.err)"
  grep -q "2 lines of a trial that has a later line" f3.err || fail "report did not note the replaced lines"
  grep -q '| sgd | lr=0.1 | 1 | 0 |' frep/report.md || fail "report did not take the rerun's lines: $(cat frep/report.md)"
fi

# ---- 4. evaluation off the training clock
clock() {
  "$DESCENT" train "${DATA[@]}" --val-fraction 0.1 --hidden 128 --steps 100 --eval-every "$1" --json --quiet |
    python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d["train_seconds"], d["eval_seconds"])'
}
read -r t_often e_often < <(clock 1) || fail "--eval-every 1 failed"
read -r t_rare e_rare < <(clock 1000) || fail "--eval-every 1000 failed"
python3 -c "
import sys
t1, e1, t2, e2 = map(float, sys.argv[1:])
# a leak would add all of e1 (100 evaluations) to t1; evaluating between
# updates may still slow the updates a little (caches), so the bound is a
# tenth of e1 above the rare-evaluation clock
ok = t1 < t2 + 0.1 * e1 + 0.05 and e1 > 20 * e2
print(('' if ok else 'FAIL: ') + f'train_seconds {t1:.3f} (eval every update) vs {t2:.3f} (rarely); eval_seconds {e1:.3f} vs {e2:.4f}')
sys.exit(0 if ok else 1)" "$t_often" "$e_often" "$t_rare" "$e_rare" || fail "evaluation time leaks into the training clock"

# ---- 5. random and quasirandom search
for s in random:6 quasirandom:6; do
  "$DESCENT" sweep --dry-run --search $s --search-seed 3 --lr 1e-4:1e-1:log --momentum 0.5:0.99 --optimizer sgd \
    --seeds 1,2 "${DATA[@]}" >"$s.1" || fail "--search $s --dry-run failed"
  "$DESCENT" sweep --dry-run --search $s --search-seed 3 --lr 1e-4:1e-1:log --momentum 0.5:0.99 --optimizer sgd \
    --seeds 1,2 "${DATA[@]}" >"$s.2"
  cmp -s "$s.1" "$s.2" || fail "--search $s is not repeatable"
  python3 - "$s.1" <<'PYEOF' || fail "--search $s drew outside its ranges"
import sys
rows = [l.split() for l in open(sys.argv[1])]
vals = [(float(r[r.index("--lr") + 1]), float(r[r.index("--momentum") + 1])) for r in rows]
ok = len(rows) == 12 and all(1e-4 <= lr <= 1e-1 and 0.5 <= m <= 0.99 for lr, m in vals) and len(set(vals)) == 6
if not ok: print("FAIL:", vals)
sys.exit(0 if ok else 1)
PYEOF
done
cmp -s random:6.1 quasirandom:6.1 && fail "random and quasirandom drew the same points"

# ---- 7. the three seeds: each alone decides its part, and --seed sets all three
seedrun() {
  "$DESCENT" train "${DATA[@]}" --hidden 16 --dropout 0.3 --steps 40 --eval-every 40 --json --quiet "$@" |
    python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d["test_loss"], d["curve"][0]["train_loss"] if d["curve"] else None)'
}
init0() { "$DESCENT" train "${DATA[@]}" --hidden 16 --epochs 0 --json --quiet "$@" | sed -n 's/.*"test_loss":\([^,]*\).*/\1/p'; }
base=$(seedrun --seed 1)
[ "$(seedrun --seed 2 --init-seed 1 --data-seed 1 --dropout-seed 1)" = "$base" ] ||
  fail "--seed 2 with the three seeds at 1 differs from --seed 1"
for s in --init-seed --data-seed --dropout-seed; do
  [ "$(seedrun --seed 1 $s 2)" != "$base" ] || fail "$s 2 changed nothing"
done
[ "$(init0 --seed 1 --init-seed 2)" != "$(init0 --seed 1)" ] || fail "--init-seed does not change the initial model"
[ "$(init0 --seed 1 --data-seed 2 --dropout-seed 2)" = "$(init0 --seed 1)" ] ||
  fail "--data-seed or --dropout-seed changed the initial model"

# ---- 8. presets: defaults that flags override, recorded in the configuration
cfg=$("$DESCENT" train --preset deepobs-fmnist-mlp --optimizer momentum --lr 0.01 --epochs 3 --dry-run "${DATA[@]}") || fail "--preset --dry-run failed"
python3 -c '
import json, sys
c = json.loads(sys.argv[1])
want = {"hidden": "1000,500,100", "activation": "relu", "init": "trunc-normal:0.03", "batch_size": "128",
        "epochs": 3, "optimizer": "momentum", "lr": 0.01, "weight_decay": 0, "preset": "deepobs-fmnist-mlp"}
bad = {k: (c.get(k), v) for k, v in want.items() if c.get(k) != v}
print("FAIL: preset config", bad) if bad else None
sys.exit(1 if bad else 0)' "$cfg" || fail "deepobs-fmnist-mlp did not set its values (or a flag did not win)"
cfg=$("$DESCENT" train --preset algoperf-mnist --dry-run "${DATA[@]}") || fail "--preset algoperf-mnist --dry-run failed"
case $cfg in *'"hidden":"128"'*'"activation":"sigmoid"'*'"normalize":"0.1307,0.3081"'*) ;; *) fail "algoperf-mnist: $cfg" ;; esac
case $cfg in *'"val_fraction":0.16666667'*'"target_accuracy":0.97,"max_seconds":60'*) ;; *) fail "algoperf-mnist timing: $cfg" ;; esac
"$DESCENT" train --preset nope --dry-run 2>p.err; [ $? -eq 2 ] && grep -q "unknown preset 'nope'" p.err || fail "an unknown preset: $(cat p.err)"
# the preset's --dataset gives way to explicit files; a missing file is refused by --dry-run
"$DESCENT" train --dry-run --train-images nope.gz --train-labels "$LABELS" --test-fraction 0.2 2>p.err
[ $? -eq 2 ] && grep -q "nope.gz: cannot open" p.err || fail "--dry-run did not check the input files: $(cat p.err)"
refused_early() { "$DESCENT" sweep --out d.jsonl "$@" 2>d.err; [ $? -eq 2 ] && [ ! -e d.jsonl ] || fail "sweep $*: not refused before the trials: $(cat d.err)"; }
refused_early --lr 0.1,0.2 --train-images nope.gz --train-labels "$LABELS" --test-fraction 0.2

# ---- 6. refused before anything runs
refused() { # want_text args...
  local want=$1; shift
  "$DESCENT" sweep --out c.jsonl "$@" >c.out 2>c.err
  local rc=$?
  [ "$rc" -eq 2 ] || fail "sweep $*: exit $rc, want 2"
  grep -q -- "$want" c.err || fail "sweep $*: stderr lacks '$want': $(cat c.err)"
  [ "$(wc -l <c.err)" -eq 1 ] || fail "sweep $*: more than one line on stderr: $(cat c.err)"
  [ -e c.jsonl ] && fail "sweep $*: the result file was created"
  rm -f c.jsonl
}
refused "unknown flag '--lrr'" --lrr 0.1,0.2 "${DATA[@]}"
refused "trial 2 of 2" --lr 0.1,abc "${DATA[@]}"
refused "more than --max-trials 10" --lr 1e-4:1:13log "${DATA[@]}" --max-trials 10
refused "is a range" --lr 1e-4:1e-1:log "${DATA[@]}"
refused "give the seeds with --seeds" --seed 3 "${DATA[@]}"
refused "every trial would write the same file" --save x.ckpt "${DATA[@]}"
refused "a log scale needs lo > 0" --lr 0:1:5log "${DATA[@]}"
refused "expected grid, random:N or quasirandom:N" --search sobol:4 "${DATA[@]}"
echo '{"step":1}' >foreign.jsonl
"$DESCENT" sweep --out foreign.jsonl --lr 0.1 "${DATA[@]}" --steps 1 2>f.err
[ $? -eq 2 ] && grep -q "foreign.jsonl:1: not a descent sweep record" f.err || fail "a foreign result file was not refused: $(cat f.err)"
[ "$(cat foreign.jsonl)" = '{"step":1}' ] || fail "the foreign file was changed"

[ "$failures" -eq 0 ] || { echo "test_sweep: $failures failure(s)"; exit 1; }
echo "test_sweep: all checks passed"
