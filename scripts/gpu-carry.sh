#!/usr/bin/env bash
# Run HERE (the development machine) before a GPU session: fills .gpu/
# (git-ignored; name it in the device tool's `carry`) with what the GPU
# machine lacks and cannot fetch: the datasets the tests and `make run` read,
# and zlib's headers and static library in case it has no zlib headers.
#   .gpu/datasets/mnist-t10k/   the 10,000 real digits (DS_SHARED_DIR=.gpu)
#   .gpu/fashion-mnist/         Fashion-MNIST (the default dataset)
#   .gpu/zlib/{include/,libz.a}
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
g=$root/.gpu
shared=${DS_SHARED_DIR:-$root/../shared}
mkdir -p "$g/datasets" "$g/zlib/include"
cp -r "$shared/datasets/mnist-t10k" "$g/datasets/"
cp -r /usr/share/datasets/fashion-mnist "$g/"
cp /usr/include/zlib.h /usr/include/zconf.h "$g/zlib/include/"
cp "$(find /usr/lib /usr/lib64 -name libz.a 2>/dev/null | head -1)" "$g/zlib/libz.a"
du -sh "$g"
# the device tool carries at most 64 MiB with the working tree: keep well under
size=$(du -sm "$g" | cut -f1)
[ "$size" -le 40 ] || { echo "gpu-carry: $g holds $size MiB, more than the 40 MiB it may" >&2; exit 1; }
