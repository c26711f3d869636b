"""Checks for tests/test_export.sh, independent of descent's own readers:
the `safetensors` and `numpy` packages read what descent wrote, and the
forward pass is rebuilt here in NumPy from the file's metadata alone.

  export_check.py forward  MODEL.safetensors IMAGES.idx LOGITS.npy PRED.csv
  export_check.py npz      MODEL.safetensors MODEL.npz
  export_check.py same     A.safetensors B.safetensors   (tensors byte-identical)
  export_check.py resave   IN.safetensors OUT.safetensors (rewritten by the safetensors package)
  export_check.py confusion EVAL.json PRED.csv LABELS.idx
  export_check.py subset   IMAGES LABELS FIRST COUNT OUT_IMAGES OUT_LABELS
  export_check.py malformed MODEL.safetensors OUTDIR   (writes broken variants)
  export_check.py svg      FILE.svg CLASSES
"""
import gzip
import json
import re
import struct
import sys

import numpy as np


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def read_idx(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic, = struct.unpack(">I", raw[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def write_idx(path, arr):
    magic = 0x800 | arr.ndim
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + struct.pack(">" + "I" * arr.ndim, *arr.shape))
        f.write(np.ascontiguousarray(arr, dtype=np.uint8).tobytes())


def load_st(path):
    from safetensors import safe_open
    with safe_open(path, framework="np") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return tensors, meta


def forward(tensors, meta, images):
    """The network the metadata describes, in float64, from the module list."""
    modules = re.findall(r"(\w+)\(([^)]*)\)", meta["descent.modules"])
    scale_at_test = meta["descent.dropout_form"] == "scale-at-test"
    x = images.reshape(len(images), -1).astype(np.float32)
    # the input scaling as descent applies it: one float32 multiply-add
    x = (x * np.float32(float(meta["descent.input_scale"])) + np.float32(float(meta["descent.input_shift"])))
    h = x.astype(np.float64)
    eps = float(meta["descent.bn_eps"])
    for i, (kind, args) in enumerate(modules):
        if kind == "Linear":
            W, b = tensors[f"{i}.weight"].astype(np.float64), tensors[f"{i}.bias"].astype(np.float64)
            fan_in, fan_out = (int(v) for v in args.split(","))
            if W.shape != (fan_out, fan_in):
                fail(f"{i}.weight has shape {W.shape}, the module list says Linear({args})")
            h = h @ W.T + b
        elif kind == "BatchNorm1d":
            g, be = tensors[f"{i}.weight"], tensors[f"{i}.bias"]
            rm, rv = tensors[f"{i}.running_mean"], tensors[f"{i}.running_var"]
            nbt = tensors[f"{i}.num_batches_tracked"]
            if nbt.dtype != np.int64 or nbt.shape != ():
                fail(f"{i}.num_batches_tracked is {nbt.dtype} {nbt.shape}, not an int64 scalar")
            h = (h - rm) / np.sqrt(rv.astype(np.float64) + eps) * g + be
        elif kind == "ReLU":
            h = np.maximum(h, 0.0)
        elif kind == "LeakyReLU":
            slope = float(args.split("=")[1])
            h = np.where(h > 0, h, slope * h)
        elif kind == "Tanh":
            h = np.tanh(h)
        elif kind == "Sigmoid":
            h = 1.0 / (1.0 + np.exp(-h))
        elif kind == "Dropout":
            if scale_at_test:
                h = h * (1.0 - float(args.split("=")[1]))
        else:
            fail(f"unknown module {kind}")
    return h


def read_csv(path):
    rows = [line.rstrip("\n").split(",") for line in open(path)]
    return rows[0], rows[1:]


def cmd_forward(st, images_path, logits_path, csv_path):
    tensors, meta = load_st(st)
    images = read_idx(images_path)
    ref = forward(tensors, meta, images)
    got = np.load(logits_path)
    if got.dtype != np.float32 or got.shape != ref.shape:
        fail(f"predict --out .npy: {got.dtype} {got.shape}, expected float32 {ref.shape}")
    # relative to each row's largest logit (a logit near 0 has no relative precision)
    err = np.abs(got - ref).max(axis=1) / np.maximum(np.abs(ref).max(axis=1), 1e-30)
    if err.max() > 1e-5:
        fail(f"logits differ from NumPy's forward pass: worst relative error {err.max():.3g} at image {err.argmax()}")
    header, rows = read_csv(csv_path)
    C = ref.shape[1]
    if header != ["index", "class"] + [f"p{c}" for c in range(C)]:
        fail(f"predict CSV header {header}")
    cls = np.array([int(r[1]) for r in rows])
    if len(rows) != len(images) or any(int(r[0]) != i for i, r in enumerate(rows)):
        fail(f"predict CSV: {len(rows)} rows for {len(images)} images, or indices out of order")
    ref_cls = ref.argmax(axis=1)
    # a difference is only allowed where the reference itself is a near tie
    srt = np.sort(ref, axis=1)
    tie = (srt[:, -1] - srt[:, -2]) <= 1e-5 * np.abs(srt[:, -1])
    bad = np.nonzero((cls != ref_cls) & ~tie)[0]
    if len(bad):
        fail(f"{len(bad)} predictions differ from NumPy's (first: image {bad[0]}: {cls[bad[0]]} vs {ref_cls[bad[0]]})")
    if not np.array_equal(cls, got.argmax(axis=1)):
        fail("the CSV's classes are not the argmax of the .npy logits")
    probs = np.array([[float(v) for v in r[2:]] for r in rows])
    e = np.exp(ref - ref.max(axis=1, keepdims=True))
    sm = e / e.sum(axis=1, keepdims=True)
    if np.abs(probs - sm).max() > 1e-5:
        fail(f"CSV probabilities differ from softmax(logits) by {np.abs(probs - sm).max():.3g}")
    print(f"export_check: {len(images)} images: predictions equal NumPy's, worst relative logit error {err.max():.2g}, "
          f"{int(tie.sum())} near ties; modules {meta['descent.modules']}")


def cmd_npz(st, npz):
    tensors, _ = load_st(st)
    z = np.load(npz)
    if sorted(z.files) != sorted(tensors):
        fail(f".npz names {sorted(z.files)} differ from the safetensors' {sorted(tensors)}")
    for k in tensors:
        a, b = tensors[k], z[k]
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            fail(f".npz {k}: {b.dtype} {b.shape} differs from the safetensors' {a.dtype} {a.shape}")
    print(f"export_check: .npz holds the same {len(tensors)} arrays")


def cmd_same(a, b):
    ta, _ = load_st(a)
    tb, _ = load_st(b)
    if sorted(ta) != sorted(tb):
        fail(f"names differ: {sorted(ta)} vs {sorted(tb)}")
    for k in ta:
        if ta[k].dtype != tb[k].dtype or ta[k].shape != tb[k].shape or ta[k].tobytes() != tb[k].tobytes():
            fail(f"tensor {k} differs between {a} and {b}")
    print(f"export_check: {len(ta)} tensors byte-identical")


def cmd_resave(src, dst):
    from safetensors.numpy import save_file
    tensors, _ = load_st(src)
    save_file(tensors, dst)  # the reference writer's own layout and order, no metadata


def cmd_confusion(eval_json, csv_path, labels_path):
    ev = json.load(open(eval_json))
    cm = np.array(ev["confusion"])
    n = ev["test_samples"]
    if cm.sum() != n:
        fail(f"confusion counts sum to {cm.sum()}, the test set has {n}")
    if abs(np.trace(cm) / n - ev["test_accuracy"]) > 1e-9:
        fail(f"diagonal/total {np.trace(cm) / n} != test_accuracy {ev['test_accuracy']}")
    labels = read_idx(labels_path)
    _, rows = read_csv(csv_path)
    pred = np.array([int(r[1]) for r in rows])
    mine = np.zeros_like(cm)
    np.add.at(mine, (labels.astype(int), pred), 1)
    if not np.array_equal(mine, cm):
        fail("eval's confusion matrix differs from the one counted from predict's classes")
    for c, acc in enumerate(ev["per_class_accuracy"]):
        row = cm[c].sum()
        if (acc is None) != (row == 0) or (row and abs(acc - cm[c, c] / row) > 1e-9):
            fail(f"per_class_accuracy[{c}] = {acc}, the matrix says {cm[c, c]}/{row}")
    print(f"export_check: confusion matrix of {n} samples agrees with predict; accuracy {ev['test_accuracy']}")


def cmd_subset(images, labels, first, count, out_images, out_labels):
    first, count = int(first), int(count)
    write_idx(out_images, read_idx(images)[first:first + count])
    write_idx(out_labels, read_idx(labels)[first:first + count])


def cmd_malformed(st, outdir):
    raw = open(st, "rb").read()
    n, = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    names = [k for k in header if k != "__metadata__"]

    def emit(name, hdr, body, hlen=None):
        text = json.dumps(hdr, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        with open(f"{outdir}/{name}.safetensors", "wb") as f:
            f.write(struct.pack("<Q", len(text) if hlen is None else hlen) + text + body)

    def edit(fn):
        h = json.loads(json.dumps(header))
        fn(h)
        return h
    emit("header-beyond-file", header, data, hlen=n + len(data) + 1)
    first, second = sorted(names, key=lambda k: header[k]["data_offsets"][0])[:2]
    emit("overlap", edit(lambda h: h[second].__setitem__(
        "data_offsets", [h[second]["data_offsets"][0] - 4, h[second]["data_offsets"][1] - 4])), data)
    emit("gap", edit(lambda h: [h[k].__setitem__("data_offsets", [h[k]["data_offsets"][0] + 4, h[k]["data_offsets"][1] + 4])
                                for k in names if h[k]["data_offsets"][0] >= h[second]["data_offsets"][0]]), data + b"\0" * 4)
    emit("dtype-f16", edit(lambda h: h[first].__setitem__("dtype", "F16")), data)
    emit("trailing", header, data + b"\0" * 8)
    emit("missing-name", edit(lambda h: h.pop(names[-1])), data[:header[names[-1]]["data_offsets"][0]]
         if header[names[-1]]["data_offsets"][1] == len(data) else data)
    extra = edit(lambda h: h.__setitem__("99.weight", {"dtype": "F32", "shape": [1], "data_offsets": [len(data), len(data) + 4]}))
    emit("extra-name", extra, data + b"\0" * 4)
    emit("size-mismatch", edit(lambda h: h[first].__setitem__("shape", [h[first]["shape"][0] + 1] + h[first]["shape"][1:])), data)
    emit("wrong-shape", edit(lambda h: h[first].__setitem__("shape", h[first]["shape"][::-1])), data)  # [in, out]: same bytes
    emit("not-json", {"x": 1}, data)
    with open(f"{outdir}/short.safetensors", "wb") as f:
        f.write(b"\x10\0\0")


def cmd_svg(path, classes):
    import xml.etree.ElementTree as ET
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    cells = root.findall(f".//{ns}g[@class='cells']/{ns}rect")
    if len(cells) != int(classes) ** 2:
        fail(f"{path}: {len(cells)} cells for {classes} classes")
    print(f"export_check: {path} parses, {len(cells)} cells")


if __name__ == "__main__":
    cmds = {"forward": cmd_forward, "npz": cmd_npz, "same": cmd_same, "resave": cmd_resave,
            "confusion": cmd_confusion, "subset": cmd_subset, "malformed": cmd_malformed, "svg": cmd_svg}
    cmds[sys.argv[1]](*sys.argv[2:])
