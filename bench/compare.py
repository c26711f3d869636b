#!/usr/bin/env python3
"""Print descent and PyTorch benchmark records (JSON lines) side by side.

usage: compare.py train DESCENT.jsonl [DESCENT2.jsonl ..] PYTORCH.jsonl (best run of each side)
       compare.py optim DESCENT.jsonl PYTORCH.jsonl
       compare.py optim-table DESCENT.jsonl    (descent's records alone)
       compare.py train-table DESCENT.jsonl
Ratios are descent / PyTorch throughput for the same case in the same run.
The train table's "step / GEMM floor" is bench_train's median over updates of
each update over the round of the same step's GEMMs alone timed right after
it, in the same run."""
import json, sys


def usage(msg):
    print(f"compare.py: {msg} (see the usage at the top of bench/compare.py)", file=sys.stderr)
    sys.exit(2)


def read(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.startswith("{")]
    except (OSError, ValueError) as e:
        usage(f"{path}: {e}")


def tables(mode, ours):
    if mode == "optim-table":
        print("| backend | optimizer | params | us/step | GB/s | copy GB/s (all threads) | ratio to copy "
              "| 1-thread copy GB/s | ratio to 1-thread copy |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in ours:
            c1 = r.get("copy1_gbytes_per_s", 0)
            one = f"{c1:.2f} | {r['gbytes_per_s'] / c1:.2f}" if c1 else "- | -"
            print(f"| {r['backend']} | {r['optimizer']} | {r['params']} | {r['us_per_step']:.1f} "
                  f"| {r['gbytes_per_s']:.2f} | {r['copy_gbytes_per_s']:.2f} | {r['ratio_to_copy']:.2f} | {one} |")
    else:
        print("| backend | model | optimizer | batch | precision | samples/s | ms/step | ms/epoch (60k) "
              "| GEMM floor ms | step / GEMM floor | same GEMMs on OpenBLAS threads ms | page faults / update |")
        print("|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in ours:
            prec = "TF32" if r.get("tf32") else "FP32"
            floor = (f"{r['gemm_floor_ms']:.3f} | {r['floor_ratio']:.2f}x" if "gemm_floor_ms" in r else "- | -")
            floor += f" | {r['gemm_blas_threads_ms']:.3f}" if "gemm_blas_threads_ms" in r else " | -"
            floor += f" | {r['page_faults_per_update']:.2f}" if "page_faults_per_update" in r else " | -"
            print(f"| {r['backend']} | {r['model']} | {r.get('optimizer', '-')} | {r['batch_size']} | {prec} "
                  f"| {r['samples_per_second']:.0f} | {r['ms_per_step']:.3f} | {r['ms_per_epoch']:.0f} | {floor} |")


def main():
    modes = {"train": 4, "optim": 4, "optim-table": 3, "train-table": 3}  # least argv length
    if len(sys.argv) < 2 or sys.argv[1] not in modes:
        usage("the first argument is one of " + ", ".join(modes))
    mode = sys.argv[1]
    if len(sys.argv) < modes[mode] or (mode != "train" and len(sys.argv) != modes[mode]):
        usage(f"{mode}: wrong number of files")
    if mode.endswith("-table"):
        recs = read(sys.argv[2])
        need = "model" if mode == "train-table" else "optimizer"
        if any(need not in r or ("params" in r) != (mode == "optim-table") for r in recs):
            usage(f"{sys.argv[2]}: not {mode[:-6]} records")
        tables(mode, recs)
        return
    # train: DESCENT may be several files (runs alternated with PyTorch's);
    # each side's best run of a case is compared (both sides alike)
    ours = [r for p in sys.argv[2:-1] for r in read(p)] if mode == "train" else read(sys.argv[2])
    theirs = read(sys.argv[-1])
    if mode == "train":
        impls = sorted({r["impl"] for r in theirs})
        print("| backend | batch | precision | descent samples/s | " + " | ".join(f"{i} samples/s | ratio" for i in impls) + " |")
        print("|---|---:|---|---:|" + "---:|---:|" * len(impls))
        # PyTorch's baseline is the BatchNorm + dropout 0.2 model with Adam
        best = {}
        models = {t.get("model") for t in theirs}
        for r in ours:
            # the same model as PyTorch's: its layer widths, then BatchNorm and dropout 0.2
            same = any(r.get("model", "").startswith(m + " ") for m in models if m)
            if same and "batchnorm dropout=0.2" in r["model"] and r.get("optimizer", "adam") == "adam":
                key = (r["backend"], r["batch_size"], r.get("tf32", 0))
                if key not in best or r["samples_per_second"] > best[key]["samples_per_second"]:
                    best[key] = r
        for (backend, batch, tf32), r in best.items():
            row = [backend, str(batch), "TF32" if tf32 else "FP32", f'{r["samples_per_second"]:.0f}']
            for i in impls:
                m = [t["samples_per_second"] for t in theirs if t["impl"] == i and t["batch_size"] == batch
                     and t.get("tf32", 0) == tf32]
                row += [f'{max(m):.0f}', f'{r["samples_per_second"] / max(m):.2f}x'] if m else ["-", "-"]
            print("| " + " | ".join(row) + " |")
    else:
        impls = sorted({r["impl"] for r in theirs})
        print("| backend | params | descent adam us/step | " + " | ".join(f"{i} us/step | ratio" for i in impls) + " |")
        print("|---|---:|---:|" + "---:|---:|" * len(impls))
        for r in ours:
            if r["optimizer"] != "adam" or not any(t["params"] == r["params"] for t in theirs):
                continue
            row = [r["backend"], str(r["params"]), f'{r["us_per_step"]:.1f}']
            for i in impls:
                m = [t for t in theirs if t["impl"] == i and t["params"] == r["params"]
                     and t.get("flush", True) == r.get("flush", True)]
                row += [f'{m[0]["us_per_step"]:.1f}', f'{m[0]["us_per_step"] / r["us_per_step"]:.2f}x'] if m else ["-", "-"]
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
