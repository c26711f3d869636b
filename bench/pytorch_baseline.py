#!/usr/bin/env python3
"""PyTorch baseline for descent's benchmarks, same models, optimizers and batches.

train: 784-H-H-10 MLP (Linear -> BatchNorm1d -> ReLU -> Dropout per hidden
layer), Adam, batches gathered from a dataset resident on the device (no
DataLoader in the timed loop). Implementations: eager with Adam fused /
foreach / for-loop, and on CUDA the whole step captured in a CUDA graph.
optim: one Adam step over the same parameter count (fused / foreach /
for-loop), as bench_optim measures descent's.

Prints one JSON record per case with the fields of bench_train / bench_optim
plus "impl". Exits 77 when PyTorch is not installed."""
import argparse, gzip, json, os, statistics, sys, time

try:
    import torch
except ImportError:
    print("pytorch_baseline: PyTorch is not installed here; skipping", file=sys.stderr)
    sys.exit(77)


def load_idx(path, offset):
    with (gzip.open(path) if path.endswith(".gz") else open(path, "rb")) as f:
        return torch.frombuffer(bytearray(f.read()[offset:]), dtype=torch.uint8)


def find(d, stem):
    for p in (f"{d}/{stem}.gz", f"{d}/{stem}"):
        if os.path.exists(p):
            return p
    raise SystemExit(f"pytorch_baseline: {d} has no {stem}[.gz]")


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def make_model(hidden, bn, dropout, dev):
    layers, width = [], 784
    for h in hidden:
        layers.append(torch.nn.Linear(width, h))
        if bn:
            layers.append(torch.nn.BatchNorm1d(h))
        layers.append(torch.nn.ReLU())
        if dropout > 0:
            layers.append(torch.nn.Dropout(dropout))
        width = h
    layers.append(torch.nn.Linear(width, 10))
    return torch.nn.Sequential(*layers).to(dev)


def adam(params, impl, lr=1e-3):
    kw = {"fused": True} if impl == "fused" else {"foreach": impl == "foreach"}
    return torch.optim.Adam(params, lr=lr, **kw)


def bench_train(a, dev, images, labels):
    n = labels.shape[0]
    out = []
    impls = ["fused", "foreach", "forloop"] + (["graph"] if dev.type == "cuda" else [])
    if a.impl:
        impls = [i for i in impls if i in a.impl]
    for batch in a.batch_size:
        for impl in impls:
            torch.manual_seed(0)
            model = make_model(a.hidden, not a.no_batchnorm, a.dropout, dev)
            opt = adam(model.parameters(), "fused" if impl == "graph" else impl)
            idx = torch.randint(0, n, (a.steps + a.warmup, batch), device=dev)
            x_static = torch.zeros(batch, 784, device=dev)
            y_static = torch.zeros(batch, dtype=torch.long, device=dev)

            def step(x, y):
                opt.zero_grad(set_to_none=False)
                loss = torch.nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                return loss

            def gather(i):
                return images[idx[i]].float().div_(255.0), labels[idx[i]]

            if impl == "graph":
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    for i in range(3):
                        x, y = gather(i)
                        x_static.copy_(x); y_static.copy_(y)
                        step(x_static, y_static)
                torch.cuda.current_stream().wait_stream(s)
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g):
                    step(x_static, y_static)

                def run(i):
                    x, y = gather(i)
                    x_static.copy_(x); y_static.copy_(y)
                    g.replay()
            else:
                def run(i):
                    step(*gather(i))
            for i in range(a.warmup):
                run(i)
            sync(dev)
            t0 = time.perf_counter()
            for i in range(a.warmup, a.warmup + a.steps):
                run(i)
            sync(dev)
            dt = time.perf_counter() - t0
            sps = a.steps * batch / dt
            out.append({"impl": f"pytorch-{impl}", "backend": dev.type, "device": device_name(dev),
                        "model": "784-" + "-".join(map(str, a.hidden)) + "-10", "optimizer": "adam",
                        "tf32": int(a.tf32),
                        "batch_size": batch, "steps": a.steps, "samples_per_second": round(sps, 1),
                        "ms_per_step": round(1e3 * dt / a.steps, 4), "ms_per_epoch": round(60000 / sps * 1e3, 1)})
            print(json.dumps(out[-1]), flush=True)
    return out


def bench_optim(a, dev):
    # bench_optim flushes the last-level cache between timed steps (a training
    # step runs forward and backward between two optimizer steps); so does
    # this, unless --no-flush (then both time back-to-back steps)
    flush = None if a.no_flush else torch.zeros(256 << 20, dtype=torch.uint8, device=dev)
    for n in a.params:
        for impl in ["fused", "foreach", "forloop"]:
            if impl == "fused" and dev.type == "cpu" and not hasattr(torch, "_fused_adam_"):
                continue
            p = torch.nn.Parameter(torch.rand(n, device=dev) * 2 - 1)
            p.grad = (torch.rand(n, device=dev) - 0.5) * 0.02
            opt = adam([p], impl)
            for _ in range(3):
                opt.step()
            times = []
            for _ in range(a.repeats):
                if flush is not None:
                    flush.add_(1)  # as bench_optim: every line of 256 MiB read and written
                sync(dev)
                t0 = time.perf_counter()
                opt.step()
                sync(dev)
                times.append(time.perf_counter() - t0)
            t = statistics.median(times)
            rec = {"impl": f"pytorch-{impl}", "backend": dev.type, "device": device_name(dev), "optimizer": "adam",
                   "params": n, "tensors": 1, "flush": flush is not None, "us_per_step": round(t * 1e6, 2),
                   "gbytes_per_s": round(28 * n / t * 1e-9, 3)}
            print(json.dumps(rec), flush=True)


def device_name(dev):
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["train", "optim"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--hidden", type=lambda s: [int(v) for v in s.split(",")], default=[1024, 1024])
    ap.add_argument("--batch-size", type=lambda s: [int(v) for v in s.split(",")], default=[128, 512, 4096])
    ap.add_argument("--no-batchnorm", action="store_true")
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--no-flush", action="store_true",
                    help="optim: time back-to-back steps (default: flush the cache before each, as bench_optim)")
    ap.add_argument("--params", type=lambda s: [int(float(v)) for v in s.split(",")], default=[4_000_000])
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0 = PyTorch's default)")
    ap.add_argument("--tf32", action="store_true", help="CUDA: TF32 matmuls (default: FP32, as descent's default)")
    ap.add_argument("--impl", type=lambda s: s.split(","), default=None,
                    help="train: the implementations to run (fused,foreach,forloop,graph; default all)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    # FP32 unless asked: PyTorch's own default for matmuls is FP32 too, but say it
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    if a.mode == "optim":
        bench_optim(a, dev)
        return
    images = load_idx(find(a.data, "train-images-idx3-ubyte"), 16).view(-1, 784).to(dev)
    labels = load_idx(find(a.data, "train-labels-idx1-ubyte"), 8).long().to(dev)
    bench_train(a, dev, images, labels)


if __name__ == "__main__":
    main()
