#!/usr/bin/env bash
# The engine as a library: `cmake --install` into a temporary prefix, then
# build examples/train_mnist.c against the INSTALLED files two ways, as a
# user would: `cc ... $(pkg-config --cflags --libs descent)` and a CMake
# project with find_package(descent); run each for a few hundred updates on
# real digits (skipped, 77, when no MNIST or Fashion-MNIST test set is there)
# and check that they learned (test accuracy well above chance).
set -u -o pipefail
. "$(dirname "$0")/mnist_suite.sh" test_install
SRC=${DS_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=$(dirname "$DESCENT")
command -v pkg-config >/dev/null || { echo "test_install: pkg-config is not installed (scripts/deps.sh installs it): skipped"; exit 77; }
CC=${CC:-cc}
P=$W/prefix
cmake --install "$BUILD" --prefix "$P" >"$W/install.log" 2>&1 || { cat "$W/install.log"; fail "cmake --install failed"; exit 1; }
libdir=$(dirname "$(find "$P" -name descent.pc | head -n 1)")/..
for f in include/descent/train.h include/descent/interop.h include/descent/backend.h; do
  [ -r "$P/$f" ] || fail "$f is not installed"
done
ls "$libdir"/libdescent.a "$libdir"/libdescent.so >/dev/null 2>&1 || fail "libdescent.a and libdescent.so are not both installed in $libdir"
[ -r "$libdir/cmake/descent/descentConfig.cmake" ] || fail "no CMake package config"

# A sanitizer build (make test-asan) installs a library that needs the
# sanitizer runtimes: the example is then built with them too.
SAN=""
if command -v nm >/dev/null && [ "$(nm -D "$libdir/libdescent.so" 2>/dev/null | grep -c '__asan_init')" != 0 ]; then
  SAN="-fsanitize=address,undefined"
fi

# 1. pkg-config (the shared library), built outside the source tree
flags=$(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs descent) || fail "pkg-config --cflags --libs descent failed"
case "$flags" in *"$SRC"*) fail "pkg-config points into the source tree: $flags" ;; esac
cp "$SRC/examples/train_mnist.c" "$W/"
(cd "$W" && $CC -std=c11 -Wall -Wextra -Werror $SAN train_mnist.c $flags -o train_mnist) 2>"$W/cc.log" ||
  { cat "$W/cc.log"; fail "the example does not compile against the installed library"; }
check_run() { # NAME BINARY: run the example for 300 updates, accuracy > 0.6
  local out
  out=$(LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$2" "$IMAGES" "$LABELS" 300 2>"$W/err") ||
    { fail "$1: the example failed: $(cat "$W/err")"; return; }
  echo "test_install: $1: $out"
  local acc=${out#test accuracy }
  acc=${acc%% *}
  awk -v a="$acc" 'BEGIN { exit !(a > 0.6 && a <= 1) }' || fail "$1: implausible accuracy in '$out'"
  case "$out" in *"after 300 updates"*) ;; *) fail "$1: not 300 updates: $out" ;; esac
}
[ -x "$W/train_mnist" ] && check_run pkg-config "$W/train_mnist"
[ "$(ldd "$W/train_mnist" 2>/dev/null | grep -c "libdescent.so")" != 0 ] || fail "the pkg-config build did not link libdescent.so"

# 2. CMake: find_package(descent) with the prefix on CMAKE_PREFIX_PATH
if cmake -S "$SRC/examples" -B "$W/cm" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_C_COMPILER="$CC" \
     ${SAN:+-DCMAKE_C_FLAGS="$SAN"} >"$W/cm.log" 2>&1 &&
   cmake --build "$W/cm" >>"$W/cm.log" 2>&1; then
  check_run find_package "$W/cm/train_mnist"
else
  cat "$W/cm.log"
  fail "the example does not build with find_package(descent)"
fi
if [ "$failures" -ne 0 ]; then
  echo "test_install: $failures failure(s)"
  exit 1
fi
echo "test_install: installed, built with pkg-config and with find_package, trained"
