#!/usr/bin/env python3
"""Print descent and PyTorch benchmark records (JSON lines) side by side.

usage: compare.py train DESCENT.jsonl PYTORCH.jsonl
       compare.py optim DESCENT.jsonl PYTORCH.jsonl
Ratios are descent / PyTorch throughput for the same case in the same run."""
import json, sys


def read(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.startswith("{")]


def main():
    mode, ours_path, theirs_path = sys.argv[1:4]
    ours, theirs = read(ours_path), read(theirs_path)
    if mode == "train":
        impls = sorted({r["impl"] for r in theirs})
        print("| backend | batch | descent samples/s | " + " | ".join(f"{i} samples/s | ratio" for i in impls) + " |")
        print("|---|---:|---:|" + "---:|---:|" * len(impls))
        for r in ours:
            row = [r["backend"], str(r["batch_size"]), f'{r["samples_per_second"]:.0f}']
            for i in impls:
                m = [t for t in theirs if t["impl"] == i and t["batch_size"] == r["batch_size"]]
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
