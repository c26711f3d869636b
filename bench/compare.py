#!/usr/bin/env python3
"""Print descent and PyTorch benchmark records (JSON lines) side by side.

usage: compare.py train DESCENT.jsonl PYTORCH.jsonl
       compare.py optim DESCENT.jsonl PYTORCH.jsonl
       compare.py optim-table DESCENT.jsonl    (descent's records alone)
       compare.py train-table DESCENT.jsonl
Ratios are descent / PyTorch throughput for the same case in the same run."""
import json, sys


def read(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.startswith("{")]


def tables(mode, ours):
    if mode == "optim-table":
        print("| backend | optimizer | params | launches/step | us/step | GB/s | copy GB/s | ratio to copy |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for r in ours:
            print(f"| {r['backend']} | {r['optimizer']} | {r['params']} | {r['launches_per_step']} | {r['us_per_step']:.1f} "
                  f"| {r['gbytes_per_s']:.2f} | {r['copy_gbytes_per_s']:.2f} | {r['ratio_to_copy']:.2f} |")
    else:
        print("| backend | model | batch | precision | samples/s | ms/step | ms/epoch (60k) |")
        print("|---|---|---:|---|---:|---:|---:|")
        for r in ours:
            prec = "TF32" if r.get("tf32") else "FP32"
            print(f"| {r['backend']} | {r['model']} | {r['batch_size']} | {prec} | {r['samples_per_second']:.0f} "
                  f"| {r['ms_per_step']:.3f} | {r['ms_per_epoch']:.0f} |")


def main():
    mode = sys.argv[1]
    if mode.endswith("-table"):
        tables(mode, read(sys.argv[2]))
        return
    ours_path, theirs_path = sys.argv[2:4]
    ours, theirs = read(ours_path), read(theirs_path)
    if mode == "train":
        impls = sorted({r["impl"] for r in theirs})
        print("| backend | batch | precision | descent samples/s | " + " | ".join(f"{i} samples/s | ratio" for i in impls) + " |")
        print("|---|---:|---|---:|" + "---:|---:|" * len(impls))
        for r in ours:
            row = [r["backend"], str(r["batch_size"]), "TF32" if r.get("tf32") else "FP32", f'{r["samples_per_second"]:.0f}']
            for i in impls:
                m = [t for t in theirs if t["impl"] == i and t["batch_size"] == r["batch_size"]
                     and t.get("tf32", 0) == r.get("tf32", 0)]
                row += [f'{m[0]["samples_per_second"]:.0f}', f'{r["samples_per_second"] / m[0]["samples_per_second"]:.2f}x'] if m else ["-", "-"]
            print("| " + " | ".join(row) + " |")
    else:
        impls = sorted({r["impl"] for r in theirs})
        print("| backend | params | descent adam us/step | " + " | ".join(f"{i} us/step | ratio" for i in impls) + " |")
        print("|---|---:|---:|" + "---:|---:|" * len(impls))
        for r in ours:
            if r["optimizer"] != "adam":
                continue
            row = [r["backend"], str(r["params"]), f'{r["us_per_step"]:.1f}']
            for i in impls:
                m = [t for t in theirs if t["impl"] == i and t["params"] == r["params"]]
                row += [f'{m[0]["us_per_step"]:.1f}', f'{m[0]["us_per_step"] / r["us_per_step"]:.2f}x'] if m else ["-", "-"]
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
