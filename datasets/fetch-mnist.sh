#!/usr/bin/env bash
# Download the four MNIST IDX files (gzip) to where `descent train --dataset
# mnist` looks for them: $DESCENT_MNIST_DIR, else ~/.cache/descent/mnist
# (datasets/data.c, ds_dataset_dir). Mirrors are tried in turn; every file is
# checked against its published SHA-256 (of the .gz as distributed, or, for a
# mirror that recompressed it, of the decompressed IDX bytes) before it is
# moved into place, so a partial or wrong download never lands.
#
# usage: datasets/fetch-mnist.sh [DIR]
# env:   DESCENT_MNIST_DIR      destination (DIR wins over it)
#        DESCENT_MNIST_MIRRORS  space-separated base URLs to try instead of the defaults
# exit:  0 all four files present and verified; 1 a download or check failed
#        (offline, every mirror refused, checksum mismatch); 2 bad usage
set -u

case "${1:-}" in
  -h | --help)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  -*)
    echo "fetch-mnist.sh: unknown option '$1' (see --help)" >&2
    exit 2
    ;;
esac
[ $# -le 1 ] || { echo "fetch-mnist.sh: at most one argument, the destination folder" >&2; exit 2; }

DEST=${1:-${DESCENT_MNIST_DIR:-${HOME:-.}/.cache/descent/mnist}}
MIRRORS=${DESCENT_MNIST_MIRRORS:-"https://storage.googleapis.com/cvdf-datasets/mnist/ https://ossci-datasets.s3.amazonaws.com/mnist/ https://yann.lecun.com/exdb/mnist/"}

# name  sha256 of the .gz as published  sha256 of the decompressed IDX file
FILES="
train-images-idx3-ubyte.gz 440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609 ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
train-labels-idx1-ubyte.gz 3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c 65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
t10k-images-idx3-ubyte.gz 8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6 0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
t10k-labels-idx1-ubyte.gz f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6 ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
"

die() {
  echo "fetch-mnist.sh: $*" >&2
  exit 1
}

command -v sha256sum >/dev/null || die "sha256sum (coreutils) is needed to verify the downloads"
command -v gzip >/dev/null || die "gzip is needed to verify the downloads"
if command -v curl >/dev/null; then
  # no --retry: the next mirror is the retry, and offline this fails at once
  fetch() { curl -fsSL --connect-timeout 15 --max-time 600 -o "$2" "$1"; }
elif command -v wget >/dev/null; then
  fetch() { wget -q --timeout=15 --tries=1 -O "$2" "$1"; }
else
  die "neither curl nor wget is installed; install one, or copy the four files into $DEST by hand"
fi

# verify FILE GZ_SHA RAW_SHA: the .gz as published, or its content
verify() {
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$got" = "$2" ] && return 0
  got=$(gzip -dc "$1" 2>/dev/null | sha256sum | cut -d' ' -f1)
  [ "$got" = "$3" ] && gzip -t "$1" 2>/dev/null
}

mkdir -p "$DEST" || die "cannot create $DEST"
[ -w "$DEST" ] || die "$DEST is not writable"

failed=0
while read -r name gz_sha raw_sha; do
  [ -n "$name" ] || continue
  out=$DEST/$name
  if [ -f "$out" ] && verify "$out" "$gz_sha" "$raw_sha"; then
    echo "fetch-mnist.sh: $out already present and verified"
    continue
  fi
  part=$DEST/.$name.part
  done_one=0
  tried=""
  for base in $MIRRORS; do
    url=${base%/}/$name
    rm -f "$part"
    if ! fetch "$url" "$part" 2>"$part.log"; then
      tried="$tried; $url: $(tail -n 1 "$part.log" 2>/dev/null | tr -d '\r' | head -c 160)"
      continue
    fi
    if verify "$part" "$gz_sha" "$raw_sha"; then
      mv -f "$part" "$out" || die "cannot move the download to $out"
      echo "fetch-mnist.sh: $url -> $out (sha256 verified)"
      done_one=1
      break
    fi
    tried="$tried; $url: downloaded but the SHA-256 does not match (corrupt or different file)"
  done
  rm -f "$part" "$part.log"
  if [ "$done_one" = 0 ]; then
    echo "fetch-mnist.sh: could not download $name${tried:+ (tried${tried#;})}" >&2
    failed=$((failed + 1))
  fi
done <<EOF
$FILES
EOF

if [ "$failed" != 0 ]; then
  die "$failed of 4 MNIST files missing in $DEST: no mirror could be reached or none served a verified copy (no internet access?). Copy train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz there by hand, or train on another folder with 'descent train --data DIR'."
fi
echo "fetch-mnist.sh: MNIST is ready in $DEST (descent train --dataset mnist)"
