#!/usr/bin/env bash
# Install what descent needs and is missing, with apt-get (sudo only when not
# root). A no-op when everything is there; a note (not a failure) on a machine
# without apt-get, where the build falls back to the built-in GEMM.
# (pkgconf: tests/test_install.sh; python3-venv: tests/test_export.sh installs
# numpy and safetensors from PyPI into a venv in the build folder.)
#   scripts/deps.sh        what `make build/run/test` need (Open MPI: mpirun, data-parallel training)
#   scripts/deps.sh fuzz   also clang and its libFuzzer runtime (`make fuzz` only)
set -euo pipefail
pkgs=(cmake make gcc zlib1g-dev libopenblas-dev libjansson-dev dataset-fashion-mnist pkgconf python3-venv openmpi-bin libopenmpi-dev)
fuzz=0
if [ "${1:-}" = fuzz ]; then
  fuzz=1
  pkgs+=(clang)
fi
# Does clang link a libFuzzer target? (Debian 12 ships the runtime in
# libclang-rt-<version>-dev, older releases inside clang itself.)
libfuzzer_ok() {
  local cc
  cc=$(command -v clang) || return 1
  printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' |
    "$cc" -x c -fsanitize=fuzzer,address,undefined -o /dev/null - >/dev/null 2>&1
}
missing=()
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: no apt-get/dpkg here; skipping package installation (needs cmake, a C compiler, zlib headers)" >&2
  exit 0
fi
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ $fuzz = 1 ] && ! libfuzzer_ok; then
  ver=$(clang -dumpversion | cut -d. -f1)
  echo "deps: installing the libFuzzer runtime (libclang-rt-$ver-dev)" >&2
  [ ${#missing[@]} -gt 0 ] || $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "libclang-rt-$ver-dev" ||
    $sudo apt-get install -y -qq --no-install-recommends libclang-rt-dev || true
  libfuzzer_ok || { echo "deps: clang cannot link a libFuzzer target (-fsanitize=fuzzer)" >&2; exit 1; }
fi
exit 0
