#!/usr/bin/env python3
"""descent report, checked against an independent recomputation.

Generates sweep result files (docs/sweep-format.md) of two problems (one
without a validation split), two optimizers, a grid of learning rates and
momenta, three seeds, with a failed trial, a diverged trial, a blank line, a
repeated line and a half-written last line; runs `descent report`; and
recomputes here, from the generated records, every number of report.md's
tables (best settings, means, sample sds, k/n, medians, performance profile),
the series of the SVG pictures and the DeepOBS layout.

usage: test_report.py DESCENT WORKDIR   (exit 0 pass, 1 fail)
       test_report.py --generate FILE.jsonl   (only write the records, both
       problems: tests/test_readme.sh runs the README's report examples on them)
"""
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET

DESCENT, WORK = sys.argv[1], sys.argv[2]
GENERATE = DESCENT == "--generate"
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


def run(args, prefix=()):
    p = subprocess.run(list(prefix) + [DESCENT, "report"] + args, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


# ---- the generator ----------------------------------------------------------
rng = random.Random(18)
PROBLEMS = [
    # name, has validation split, target, epoch-0 evaluation in the curve, seconds per step
    ("fashion-mnist/784-256-10", True, 0.84, True, 0.011),
    ("mnist/784-128-10", False, 0.93, False, 0.007),
]
GRID = {
    "sgd": [{"lr": lr, "momentum": mu} for lr in (0.01, 0.03, 0.1, 0.3) for mu in (0.0, 0.9)],
    "adam": [{"lr": lr} for lr in (1e-4, 3e-4, 1e-3, 3e-3)],
}
SEEDS = (1, 2, 3)
EPOCHS, STEPS_PER_EPOCH = 5, 100


def peak(opt, hp, pi):
    """the accuracy a setting approaches: best near one lr per optimizer"""
    best_lr = 0.1 if opt == "sgd" else 1e-3
    eff = hp["lr"] * (10 if hp.get("momentum") == 0.9 else 1) if opt == "sgd" else hp["lr"]
    top = (0.89 if pi == 0 else 0.975) - (0.004 if opt == "adam" else 0.0) * (pi + 1)
    return top - 0.03 * abs(math.log10(eff / best_lr)) ** 1.5


def trial(pi, opt, hp, seed, lineno):
    name, has_val, target, ep0, sps = PROBLEMS[pi]
    a_inf = peak(opt, hp, pi) + rng.uniform(-0.006, 0.006)
    tau = 0.8 + 0.3 * rng.random() + (0.6 if opt == "sgd" else 0.0) * pi
    diverged = opt == "sgd" and hp == {"lr": 0.3, "momentum": 0.9} and seed == 2 and pi == 0
    curve, reached = [], None
    epochs = range(0 if ep0 else 1, EPOCHS + 1)
    for e in epochs:
        acc = a_inf * (1 - math.exp(-(e + 0.2) / tau))
        if diverged and e >= 2:
            break
        step = e * STEPS_PER_EPOCH
        secs = round(step * sps * (1 + 0.05 * rng.random()), 4)
        val = round(acc + rng.uniform(-0.004, 0.004), 4) if has_val else None
        test = round(acc + rng.uniform(-0.005, 0.005), 4)
        loss = round(-math.log(max(acc, 0.05)) + 0.1, 4)
        pt = {"step": step, "epoch": float(e), "lr": hp["lr"], "train_seconds": secs,
              "train_loss": round(loss * 0.95, 4), "train_accuracy": round(min(acc + 0.01, 1), 4),
              "val_loss": round(loss + 0.01, 4) if has_val else None, "val_accuracy": val,
              "test_loss": loss, "test_accuracy": test}
        curve.append(pt)
        if reached is None and (val if has_val else test) is not None and (val if has_val else test) >= target:
            reached = pt
    last = curve[-1]
    final = {"steps": last["step"], "epochs": last["epoch"], "train_loss": last["train_loss"],
             "train_accuracy": last["train_accuracy"], "val_loss": last["val_loss"],
             "val_accuracy": last["val_accuracy"], "test_loss": last["test_loss"],
             "test_accuracy": last["test_accuracy"], "train_seconds": last["train_seconds"],
             "eval_seconds": 0.5, "time_to_target": reached["train_seconds"] if reached else None,
             "steps_to_target": reached["step"] if reached else None, "stopped": "epochs"}
    if diverged:
        for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"):
            final[k] = None
        final["stopped"] = "diverged"
        final["time_to_target"] = final["steps_to_target"] = None
    args = ["--optimizer", opt, "--seed", str(seed)] + sum((["--" + k, repr(v)] for k, v in hp.items()), [])
    cfg = {"optimizer": opt, "lr": hp["lr"], "batch_size": 128, "epochs": EPOCHS, "weight_decay": 0.0}
    return {"format": "descent-sweep/1", "trial": "%016x" % rng.getrandbits(64), "problem": name,
            "optimizer": opt, "seed": seed, "hyperparameters": hp, "args": args, "config": cfg,
            "target": {"metric": "val_accuracy" if has_val else "test_accuracy", "value": target},
            "curve": curve, "final": final, "status": "ok", "exit_code": 0, "error": None}


def failed_trial(pi, opt, hp, seed):
    name = PROBLEMS[pi][0]
    fin = {k: None for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
                              "test_accuracy", "train_seconds", "eval_seconds", "time_to_target",
                              "steps_to_target")}
    fin.update({"steps": 0, "epochs": 0.0, "stopped": "interrupted"})
    return {"format": "descent-sweep/1", "trial": "%016x" % rng.getrandbits(64), "problem": name,
            "optimizer": opt, "seed": seed, "hyperparameters": hp, "args": [], "config": {"lr": hp["lr"]},
            "target": None, "curve": [], "final": fin, "status": "failed", "exit_code": 1,
            "error": "descent train: out of host memory"}


records = []  # (file index, record) in file order
for pi in range(len(PROBLEMS)):
    for opt, grid in GRID.items():
        for hp in grid:
            for seed in SEEDS:
                records.append((pi, trial(pi, opt, hp, seed, len(records) + 1)))
# a failed trial (a fourth seed of adam's best lr on problem 0): left out of every figure
records.append((0, failed_trial(0, "adam", {"lr": 1e-3}, 4)))

if GENERATE:
    with open(WORK, "w") as f:
        for _, r in records:
            f.write(json.dumps(r) + "\n")
    sys.exit(0)
os.makedirs(WORK, exist_ok=True)
files = [os.path.join(WORK, "sweep-a.jsonl"), os.path.join(WORK, "sweep-b.jsonl")]
with open(files[0], "w") as f:
    for fi, r in records:
        if fi == 0:
            f.write(json.dumps(r) + "\n")
    f.write("\n")  # a blank line is skipped
with open(files[1], "w") as f:
    recs_b = [r for fi, r in records if fi == 1]
    for r in recs_b:
        f.write(json.dumps(r) + "\n")
    f.write(json.dumps(recs_b[0]) + "\n")  # a repeated trial (same key): ignored
    half = json.dumps(trial(1, "adam", {"lr": 0.5}, 9, 0))
    f.write(half[: len(half) // 2])  # a half-written last line (a sweep still running)
good = [r for _, r in records]

# ---- the recomputation --------------------------------------------------------
HB = {"val_accuracy": True, "test_accuracy": True, "train_accuracy": True,
      "val_loss": False, "test_loss": False, "train_loss": False}
LOSS_OF = {"val_accuracy": "val_loss", "val_loss": "val_loss", "test_accuracy": "test_loss",
           "test_loss": "test_loss", "train_accuracy": "train_loss", "train_loss": "train_loss"}


def label(hp):
    return ", ".join("%s=%.6g" % (k, hp[k]) for k in sorted(hp)) or "(none)"


def score(r, metric):
    v = r["final"][metric]
    if r["final"]["stopped"] == "diverged" or v is None:
        return 0.0 if HB[metric] else math.inf
    return v


def median(v):
    return statistics.median(v) if v else None


def expected(metric_asked):
    """problem -> metric, {optimizer: row}; profile times"""
    out = {}
    for name, *_ in PROBLEMS:
        rs = [r for r in good if r["problem"] == name]
        metric = metric_asked
        if metric.startswith("val_") and all(r["final"][metric] is None for r in rs if r["status"] == "ok"):
            metric = metric.replace("val_", "test_")
        rows, times = {}, {}
        for opt in GRID:
            settings = {}
            for r in rs:
                if r["optimizer"] == opt:
                    settings.setdefault(json.dumps(r["hyperparameters"], sort_keys=True), []).append(r)
            best, failed = None, 0
            ttt_best = math.inf
            for key, group in settings.items():  # first seen first, as the report breaks ties
                ok = [r for r in group if r["status"] == "ok"]
                failed += len(group) - len(ok)
                if not ok:
                    continue
                sc = statistics.fmean(score(r, metric) for r in ok)
                lo = statistics.fmean(math.inf if r["final"]["stopped"] == "diverged" or r["final"][LOSS_OF[metric]] is None
                                      else r["final"][LOSS_OF[metric]] for r in ok)
                t = statistics.median([r["final"]["time_to_target"] if r["final"]["time_to_target"] is not None
                                       else math.inf for r in ok])
                ttt_best = min(ttt_best, t)
                if best is None or (sc > best[0] if HB[metric] else sc < best[0]) or (sc == best[0] and lo < best[1]):
                    best = (sc, lo, ok)
            sc, _, ok = best
            acc = [0.0 if r["final"]["stopped"] == "diverged" or r["final"]["test_accuracy"] is None
                   else r["final"]["test_accuracy"] for r in ok]
            reached = [r for r in ok if r["final"]["time_to_target"] is not None]
            rows[opt] = {"label": label(ok[0]["hyperparameters"]), "n": len(ok),
                         "diverged": sum(r["final"]["stopped"] == "diverged" for r in ok), "score": sc,
                         "mean": statistics.fmean(acc), "sd": statistics.stdev(acc) if len(acc) > 1 else None,
                         "k": len(reached), "steps": median([r["final"]["steps_to_target"] for r in reached]),
                         "secs": median([r["final"]["time_to_target"] for r in reached]), "failed": failed,
                         "best_hp": ok[0]["hyperparameters"]}
            times[opt] = ttt_best
        out[name] = (metric, rows, times)
    return out


def rho(exp, opt, tau):
    hits = 0
    for name in exp:
        times = exp[name][2]
        fastest = min(times.values())
        if math.isfinite(times[opt]) and times[opt] <= tau * fastest:
            hits += 1
    return hits / len(exp)


# ---- reading report.md ---------------------------------------------------------
def tables(md):
    """section title -> list of rows (cells) of the first table after it"""
    out, title, rows = {}, None, None
    for line in md.splitlines():
        if line.startswith("## "):
            title, rows = line[3:].strip(), None
        elif line.startswith("|") and title is not None:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if rows is None:
                rows = out.setdefault(title, [])
            rows.append(cells)
    return out


def near(text, want, tol, what):
    try:
        got = float(text)
    except ValueError:
        return fail("%s: '%s' is not a number (want %.6g)" % (what, text, want))
    check(abs(got - want) <= tol, "%s: report says %s, recomputed %.6g" % (what, text, want))


def slug(name):
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)


def check_report(out, metric_asked):
    md_path = os.path.join(out, "report.md")
    if not check(os.path.isfile(md_path), "%s was not written" % md_path):
        return
    md = open(md_path).read()
    exp = expected(metric_asked)
    tabs = tables(md)
    for name, (metric, rows, _) in exp.items():
        rows_md = tabs.get("Problem: " + name)
        if not check(rows_md, "no table for problem %s" % name):
            continue
        header, body = rows_md[0], rows_md[2:]
        check("%s (mean)" % metric in header[4], "%s: the metric column says '%s', want %s" % (name, header[4], metric))
        got = {r[0]: r for r in body}
        check(sorted(got) == sorted(rows), "%s: optimizers %s, want %s" % (name, sorted(got), sorted(rows)))
        for opt, e in rows.items():
            r = got.get(opt)
            if r is None:
                continue
            what = "%s/%s (%s)" % (name, opt, metric_asked)
            check(r[1] == e["label"], "%s: best hyperparameters '%s', recomputed '%s'" % (what, r[1], e["label"]))
            check(r[2] == str(e["n"]), "%s: n %s, want %d" % (what, r[2], e["n"]))
            check(r[3] == str(e["diverged"]), "%s: diverged %s, want %d" % (what, r[3], e["diverged"]))
            near(r[4], e["score"], 6e-5, what + " mean " + metric)
            m = re.fullmatch(r"(\S+) ± (\S+)", r[5])
            if check(m, "%s: test accuracy cell '%s' is not 'mean ± sd'" % (what, r[5])):
                near(m.group(1), e["mean"], 6e-5, what + " test accuracy mean")
                near(m.group(2), e["sd"], 6e-5, what + " test accuracy sd")
            for col, key in ((6, "steps"), (7, "secs")):
                m = re.fullmatch(r"(\S+) \((\d+)/(\d+)\)", r[col])
                if not check(m, "%s: %s cell '%s' is not 'median (k/n)'" % (what, key, r[col])):
                    continue
                check(int(m.group(2)) == e["k"] and int(m.group(3)) == e["n"],
                      "%s: %s reached %s/%s, want %d/%d" % (what, key, m.group(2), m.group(3), e["k"], e["n"]))
                if e["k"]:
                    near(m.group(1), e[key], 1e-5 * max(1, e[key]), what + " median " + key)
                else:
                    check(m.group(1) == "—", "%s: %s median '%s' with none reached" % (what, key, m.group(1)))
            check(r[8] == str(e["failed"]), "%s: failed %s, want %d" % (what, r[8], e["failed"]))
    # performance profile: the times table, then rho
    prof = tabs.get("Performance profile")
    if check(prof, "no performance profile table"):
        head = prof[0]
        opts = head[1:]
        check(sorted(opts) == sorted(GRID), "profile optimizers %s" % opts)
        times_rows = {r[0]: r[1:] for r in prof[2:] if r[0] in exp}
        for name in exp:
            for o, cell in zip(opts, times_rows.get(name, [])):
                t = exp[name][2][o]
                if math.isfinite(t):
                    near(cell, t, 1e-5 * t, "profile time %s/%s" % (name, o))
                else:
                    check(cell == "missed", "profile time %s/%s: '%s', want missed" % (name, o, cell))
        rho_rows = [r for r in prof if r and r[0] in GRID]
        taus_head = [r for r in prof if r and r[0] == "optimizer"]
        if check(taus_head, "no rho table"):
            taus = [float(re.fullmatch(r"rho\((.*)\)", c).group(1)) for c in taus_head[0][1:]]
            check(len(taus) >= 4, "too few tau columns")
            for r in rho_rows:
                for tau, cell in zip(taus, r[1:]):
                    near(cell, rho(exp, r[0], tau), 6e-5, "rho_%s(%g)" % (r[0], tau))
        # a case that tells the profile apart from a constant: someone is not best everywhere
        check(any(rho(exp, o, 1.0) < 1.0 for o in GRID), "the generated data makes every rho(1) equal 1")
    check("half written" in md, "report.md has no note about the half-written line")
    check("of a trial that has a later line" in md, "report.md has no note about the repeated line")
    # pictures
    for name, (metric, rows, _) in exp.items():
        for kind in ("lr", "curves"):
            path = os.path.join(out, "%s-%s.svg" % (slug(name), kind))
            try:
                root = ET.parse(path).getroot()
            except (OSError, ET.ParseError) as e:
                fail("%s: not well-formed XML: %s" % (path, e))
                continue
            ns = "{http://www.w3.org/2000/svg}"
            groups = {g.get("data-optimizer"): g for g in root.iter(ns + "g") if g.get("class") == "series"}
            check(sorted(groups) == sorted(GRID), "%s: series %s, want %s" % (path, sorted(groups), sorted(GRID)))
            check("(%s-%s.svg)" % (slug(name), kind) in md, "report.md does not show %s" % path)
            if kind == "curves":  # the target line: the problem's target is on the metric drawn
                tgt = [g for g in root.iter(ns + "g") if g.get("class") == "target"]
                has = all(r["target"] and r["target"]["metric"] == metric for r in good
                          if r["problem"] == name and r["status"] == "ok")
                check(bool(tgt) == has, "%s: target line %s, want %s" % (path, bool(tgt), has))
            for opt, g in groups.items():
                dots = [c for c in g.iter(ns + "circle") if c.get("fill") not in (None, "none")]
                bands = list(g.iter(ns + "polygon"))
                check(bands, "%s: %s has no min-max band" % (path, opt))
                if kind == "lr":  # one dot per lr at the best values of the other hyperparameters
                    best = rows[opt]["best_hp"]
                    lrs = {r["hyperparameters"]["lr"] for r in good if r["problem"] == name and r["optimizer"] == opt
                           and r["status"] == "ok"
                           and all(r["hyperparameters"].get(k) == v for k, v in best.items() if k != "lr")}
                    check(len(dots) == len(lrs), "%s: %s has %d points, want %d lrs" % (path, opt, len(dots), len(lrs)))
                else:  # one point per evaluation step of the best setting's curves
                    best = rows[opt]["best_hp"]
                    steps = {p["step"] for r in good if r["problem"] == name and r["optimizer"] == opt
                             and r["status"] == "ok" and r["hyperparameters"] == best
                             for p in r["curve"] if p[metric] is not None}
                    check(len(dots) == len(steps), "%s: %s has %d points, want %d" % (path, opt, len(dots), len(steps)))
    try:
        root = ET.parse(os.path.join(out, "profile.svg")).getroot()
        ns = "{http://www.w3.org/2000/svg}"
        series = [g.get("data-optimizer") for g in root.iter(ns + "g") if g.get("class") == "series"]
        check(sorted(series) == sorted(GRID), "profile.svg: series %s" % series)
    except (OSError, ET.ParseError) as e:
        fail("profile.svg: %s" % e)


# ---- 1. the report and its numbers ---------------------------------------------
out = os.path.join(WORK, "report")
rc, so, se = run(files + ["--out", out])
check(rc == 0, "report exited %d: %s" % (rc, se.strip()))
check("half written" in se, "no note on stderr about the half-written line: %r" % se)
check_report(out, "val_accuracy")

# --metric val_loss picks by the lowest mean loss
out_l = os.path.join(WORK, "report-loss")
rc, so, se = run(files + ["--out", out_l + "/", "--metric", "val_loss"])  # "DIR/" names DIR
check(rc == 0, "report --metric val_loss exited %d: %s" % (rc, se.strip()))
if rc == 0:
    exp = expected("val_loss")
    tabs = tables(open(os.path.join(out_l, "report.md")).read())
    for name, (metric, rows, _) in exp.items():
        got = {r[0]: r for r in tabs.get("Problem: " + name, [])[2:]}
        for opt, e in rows.items():
            if check(opt in got, "val_loss report lacks %s/%s" % (name, opt)):
                check(got[opt][1] == e["label"], "val_loss: %s/%s best '%s', want '%s'" % (name, opt, got[opt][1], e["label"]))
                near(got[opt][4], e["score"], 6e-5, "val_loss: %s/%s mean %s" % (name, opt, metric))

# ---- 2. DeepOBS's layout ----------------------------------------------------------
out_d = os.path.join(WORK, "report-deepobs")
rc, so, se = run(files + ["--out", out_d, "--format", "deepobs"])
check(rc == 0, "report --format deepobs exited %d: %s" % (rc, se.strip()))


def float2str(x):  # DeepOBS's abstract_runner_utils.float2str
    mant, exp_ = ("{:.10e}".format(x)).split("e")
    return mant.rstrip("0") + "e" + exp_


TP = {"fashion-mnist/784-256-10": "fmnist_784-256-10", "mnist/784-128-10": "mnist_784-128-10"}
KEYS = {"testproblem", "batch_size", "num_epochs", "random_seed", "weight_decay", "optimizer_name",
        "optimizer_hyperparams", "training_params", "train_losses", "test_losses", "train_accuracies",
        "test_accuracies", "minibatch_train_losses"}
seen = 0
for r in good:
    if r["status"] != "ok" or r["final"]["stopped"] == "diverged":
        continue
    ends = [p for p in r["curve"] if float(p["epoch"]).is_integer()]
    n_ep = len([p for p in ends if p["epoch"] >= 1])
    setting = "num_epochs__%d__batch_size__128__weight_decay__%s" % (n_ep, float2str(0.0))
    for k in sorted(r["hyperparameters"]):
        setting += "__%s__%s" % (k, float2str(r["hyperparameters"][k]))
    folder = os.path.join(out_d, "deepobs", TP[r["problem"]], r["optimizer"], setting)
    runs = [f for f in os.listdir(folder)] if os.path.isdir(folder) else []
    mine = [f for f in runs if f.startswith("random_seed__%d__" % r["seed"]) and f.endswith(".json")]
    if not check(len(mine) == 1, "deepobs: %s holds %s for seed %d" % (folder, runs, r["seed"])):
        continue
    seen += 1
    d = json.load(open(os.path.join(folder, mine[0])))
    has_val = r["final"]["val_accuracy"] is not None
    want_keys = KEYS | ({"valid_losses", "valid_accuracies"} if has_val else set())
    check(set(d) == want_keys, "deepobs %s: keys %s" % (mine[0], sorted(set(d) ^ want_keys)))
    check(d["num_epochs"] == n_ep and d["random_seed"] == r["seed"] and d["batch_size"] == 128
          and d["optimizer_name"] == r["optimizer"] and d["testproblem"] == TP[r["problem"]]
          and d["optimizer_hyperparams"] == r["hyperparameters"] and d["training_params"] == {},
          "deepobs %s/%s: metadata %s" % (folder, mine[0], {k: d.get(k) for k in ("num_epochs", "random_seed", "batch_size")}))
    for key, field in (("train_losses", "train_loss"), ("test_losses", "test_loss"), ("train_accuracies", "train_accuracy"),
                       ("test_accuracies", "test_accuracy")) + ((("valid_losses", "val_loss"), ("valid_accuracies", "val_accuracy")) if has_val else ()):
        want = [p[field] for p in ends]
        got = d.get(key, [])
        check(len(got) == len(want) and all(abs(a - b) < 1e-6 for a, b in zip(got, want)),
              "deepobs %s: %s %s, want %s" % (mine[0], key, got, want))
    # DeepOBS's own checker: every list is num_epochs + 1 long when epoch 0 was evaluated
    if r["curve"][0]["epoch"] == 0:
        check(len(d["test_losses"]) == d["num_epochs"] + 1, "deepobs %s: no epoch-0 entry" % mine[0])
n_runs = sum(1 for r in good if r["status"] == "ok" and r["final"]["stopped"] != "diverged")
check(seen == n_runs, "deepobs: %d runs found, want %d" % (seen, n_runs))
n_files = sum(len([f for f in fs if f.endswith(".json")]) for _, _, fs in os.walk(os.path.join(out_d, "deepobs")))
check(n_files == n_runs, "deepobs: %d JSON files, want %d (failed and diverged trials left out)" % (n_files, n_runs))
# rerunning writes the same names (no second copy of every run for the analyzer to average in)
rc, so, se = run(files + ["--out", out_d, "--format", "deepobs"])
n_files2 = sum(len([f for f in fs if f.endswith(".json")]) for _, _, fs in os.walk(os.path.join(out_d, "deepobs")))
check(rc == 0 and n_files2 == n_files, "deepobs: a second report left %d files, want %d" % (n_files2, n_files))

# ---- 3. bad input: exit 2 with one line naming file:line; nothing lost -------------
def bad_case(name, content, want_rc, want_text, extra=()):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        f.write(content)
    before = open(os.path.join(out, "report.md")).read()
    rc, so, se = run([path] + list(extra) + ["--out", out])
    lines = [l for l in se.splitlines() if l.strip()]
    check(rc == want_rc, "%s: exit %d, want %d (%s)" % (name, rc, want_rc, se.strip()))
    check(len(lines) == 1 and want_text in lines[0], "%s: stderr %r, want one line with %r" % (name, se, want_text))
    check(open(os.path.join(out, "report.md")).read() == before, "%s: report.md changed" % name)


first = json.dumps(good[0]) + "\n"
bad_case("notjson.jsonl", first + "this is not json\n", 2, "notjson.jsonl:2:")
bad_case("format.jsonl", json.dumps(dict(good[0], format="descent-sweep/9")) + "\n", 2, "format.jsonl:1:")
nokey = dict(good[0])
del nokey["final"]
bad_case("nokey.jsonl", first + first.replace(good[0]["trial"], "x") + json.dumps(nokey) + "\n", 2, "nokey.jsonl:3:")
bad_case("array.jsonl", "[1, 2]\n", 2, "array.jsonl:1:")
badseed = dict(good[0], seed="one")
bad_case("seed.jsonl", json.dumps(badseed) + "\n", 2, "seed.jsonl:1:")
bad_case("empty.jsonl", "", 2, "empty.jsonl")
bad_case("missing.jsonl", "", 2, "nothere.jsonl", extra=[os.path.join(WORK, "nothere.jsonl")])
# --out: a file is refused (2); a folder whose parent does not exist (1), before reading the bad input
plain = os.path.join(WORK, "plainfile")
open(plain, "w").write("x")
rc, so, se = run([os.path.join(WORK, "notjson.jsonl"), "--out", plain])
check(rc == 2 and "--out" in se and len(se.strip().splitlines()) == 1, "--out FILE: exit %d %r" % (rc, se))
rc, so, se = run([os.path.join(WORK, "notjson.jsonl"), "--out", os.path.join(WORK, "no", "such", "dir")])
check(rc == 1 and "--out" in se and len(se.strip().splitlines()) == 1,
      "--out in a missing folder: exit %d %r (must be refused before the input is read)" % (rc, se))
# a read-only folder (root obeys permissions without CAP_DAC_OVERRIDE, as tests/test_hostile.sh does)
ro = os.path.join(WORK, "read-only")
os.makedirs(ro, exist_ok=True)
os.chmod(ro, 0o555)
prefix = []
if os.getuid() == 0:
    prefix = ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]
    try:
        if subprocess.run(prefix + ["true"], capture_output=True).returncode != 0:
            prefix = None
    except OSError:
        prefix = None
if prefix is None:
    print("note: root without setpriv: the read-only folder cases are skipped")
else:
    for target in (ro, os.path.join(ro, "sub")):
        rc, so, se = run(files + ["--out", target], prefix)
        check(rc == 1 and "--out" in se and len(se.strip().splitlines()) == 1,
              "--out %s (read-only): exit %d %r" % (target, rc, se))
    check(os.listdir(ro) == [], "a refused report left files in the read-only folder: %s" % os.listdir(ro))
rc, so, se = run(["--out", out])
check(rc == 2, "no input file: exit %d" % rc)
rc, so, se = run(files)
check(rc == 2 and "--out" in se, "no --out: exit %d %r" % (rc, se))
rc, so, se = run(files + ["--out", out, "--metric", "accuracy"])
check(rc == 2 and "--metric" in se, "--metric accuracy: exit %d %r" % (rc, se))

if failures:
    print("test_report: %d failure(s)" % len(failures))
    sys.exit(1)
print("test_report: report.md's tables, the pictures' series and the DeepOBS layout agree with a recomputation "
      "of %d trials; bad inputs refused" % len(good))
