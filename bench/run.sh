#!/usr/bin/env bash
# make bench: runs every benchmark program that exists in the build.
set -euo pipefail
build=${1:-build}
ran=0
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $b"
  "$b"
  ran=1
done
[ $ran -eq 1 ] || echo "bench: no benchmark programs built yet"
