#!/usr/bin/env bash
# Install what descent needs and is missing, with apt-get (sudo only when not
# root). A no-op when everything is there; a note (not a failure) on a machine
# without apt-get, where the build falls back to the built-in GEMM.
set -euo pipefail
pkgs=(cmake make gcc zlib1g-dev libopenblas-dev dataset-fashion-mnist)
missing=()
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: no apt-get/dpkg here; skipping package installation (needs cmake, a C compiler, zlib headers)" >&2
  exit 0
fi
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
