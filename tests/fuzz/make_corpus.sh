#!/usr/bin/env bash
# Regenerate the committed seed corpora in tests/fuzz/corpus/ (small on
# purpose: the fuzzers grow their own working corpus under the build folder).
#   tests/fuzz/make_corpus.sh path/to/descent
# idx/: valid and broken IDX files, raw and gzip (written here byte by byte).
# checkpoint/: real checkpoints of tiny models from `descent train --save`, one
#   per optimizer-state layout. flags/: argv vectors, NUL-separated.
# safetensors/: `descent export` of those checkpoints and broken variants.
set -euo pipefail
D=${1:?usage: make_corpus.sh path/to/descent}
here=$(cd "$(dirname "$0")" && pwd)
C=$here/corpus
# (checkpoint/v1-*: files of the version-1 format, kept as they were written)
rm -f "$C"/idx/* "$C"/flags/*
find "$C/checkpoint" -type f ! -name 'v1-*' -delete 2>/dev/null || true
mkdir -p "$C"/idx "$C"/checkpoint "$C"/flags
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 - "$C/idx" "$tmp" <<'PY'
import gzip, struct, sys
out, tmp = sys.argv[1], sys.argv[2]
def w(name, b):
    open(out + '/' + name, 'wb').write(b)
def gz(b):
    return gzip.compress(b, mtime=0)
n, r, c = 6, 4, 3
images = struct.pack('>IIII', 0x803, n, r, c) + bytes((i * 7 + 3) & 255 for i in range(n * r * c))
labels = struct.pack('>II', 0x801, n) + bytes([0, 1, 2, 1, 0, 2])
w('images', images); w('images.gz', gz(images))
w('labels', labels); w('labels.gz', gz(labels))
w('images-2members.gz', gz(images[:20]) + gz(images[20:]))
w('images-trailing.gz', gz(images) + b'\0\0\0\0')
w('images-short.gz', gz(images[:-5]))
w('images-long', images + b'\x01')
w('images-bad-type', images[:2] + b'\x0d' + images[3:])
w('labels-zero-count', struct.pack('>II', 0x801, 0))
w('images-huge-header', struct.pack('>IIII', 0x803, 100000000, 4096, 4096))
# the tiny training set for the checkpoints below (2x2 images, 3 classes)
m = 24
open(tmp + '/ti', 'wb').write(struct.pack('>IIII', 0x803, m, 2, 2) + bytes((i * 37 + 11) & 255 for i in range(m * 4)))
open(tmp + '/tl', 'wb').write(struct.pack('>II', 0x801, m) + bytes(i % 3 for i in range(m)))
PY

tiny=(train --backend cpu --train-images "$tmp/ti" --train-labels "$tmp/tl" --test-fraction 0.25
      --hidden 3 --batch-size 6 --epochs 1 --quiet)
"$D" "${tiny[@]}" --optimizer sgd --save "$C/checkpoint/sgd.ckpt" >/dev/null
"$D" "${tiny[@]}" --optimizer momentum --batchnorm --save "$C/checkpoint/momentum-bn.ckpt" >/dev/null
"$D" "${tiny[@]}" --optimizer adam --amsgrad --save "$C/checkpoint/adam-amsgrad.ckpt" >/dev/null
"$D" "${tiny[@]}" --optimizer rmsprop --centered --momentum 0.5 --hidden 2,2 --batchnorm \
  --save "$C/checkpoint/rmsprop-centered.ckpt" >/dev/null
"$D" "${tiny[@]}" --optimizer adagrad --hidden none --save "$C/checkpoint/adagrad-linear.ckpt" >/dev/null
# inside an epoch, with a validation split, standardised inputs and skip mode (version 2's fields)
"$D" "${tiny[@]}" --optimizer adam --steps 1 --standardize --val-fraction 0.25 --on-nonfinite skip \
  --save "$C/checkpoint/adam-mid-epoch.ckpt" >/dev/null

# safetensors/: exports of the checkpoints above, one rewritten by the
# safetensors package, one with escapes, and broken variants (tests/export_check.py)
S=$C/safetensors
rm -f "$S"/*.safetensors
mkdir -p "$S"
for c in momentum-bn sgd adagrad-linear rmsprop-centered; do
  "$D" export "$C/checkpoint/$c.ckpt" "$S/$c.safetensors" --quiet
done
if python3 -c 'import numpy, safetensors' 2>/dev/null; then
  python3 "$here/../export_check.py" malformed "$S/momentum-bn.safetensors" "$tmp"
  for f in header-beyond-file overlap gap dtype-f16 trailing extra-name size-mismatch not-json; do
    cp "$tmp/$f.safetensors" "$S/bad-$f.safetensors"
  done
  python3 "$here/../export_check.py" resave "$S/sgd.safetensors" "$S/sgd-by-safetensors-package.safetensors"
  python3 - "$S/escapes.safetensors" <<'PY'
import sys
import numpy as np
from safetensors.numpy import save_file
save_file({"a\u00e9\"b": np.zeros((2, 0), np.float32), "n": np.array(3, np.int64)}, sys.argv[1],
          metadata={"k\n\u2603": "v\\\U0001F600"})
PY
else
  echo "make_corpus: numpy/safetensors not importable: only the exported safetensors seeds" >&2
fi

argv() { local name=$1; shift; printf '%s\0' "$@" | head -c -1 > "$C/flags/$name"; }
argv lr --lr 0.1
argv adam --optimizer adam --lr 1e-3 --beta1 0.9 --beta2 0.999 --eps 1e-8 --amsgrad
argv nesterov --optimizer nesterov --nesterov-form lookahead --momentum 0.95 --dampening 0
argv schedule --schedule cosine --t-max 100 --lr-min 0 --warmup 10 --schedule-per-epoch
argv step --schedule step --step-size 3 --gamma 0.5 --decay 0.1
argv clip --clip-norm 1 --clip-value 0.5 --weight-decay 1e-4 --l1 0 --decay-all
argv rms --optimizer rmsprop --alpha 0.9 --centered --eps-in-sqrt --lr-decay 0 --initial-accumulator 0.1
argv own --hidden 256,128 --int 5 --any-int -3 --long 12 --u64 18446744073709551615 --frac 0.25 --any -1e30 \
  --str x --bool --choice sequential pos1
argv equals --lr=0.5 --hidden=none --momentum-form=keras
argv bad --lr 0.1x --bogus
argv help --any 1 --help
echo "corpus: $(ls "$C/idx" | wc -l) idx, $(ls "$C/checkpoint" | wc -l) checkpoint, $(ls "$C/flags" | wc -l) flags, $(ls "$C/safetensors" | wc -l) safetensors seeds"
