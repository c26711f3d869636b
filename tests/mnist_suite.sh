# Sourced by the shell suites that train on 10,000 real images:
#   . "$(dirname "$0")/mnist_suite.sh" test_name
# Requires $DESCENT. Finds the MNIST test set (t10k-images-idx3-ubyte and
# t10k-labels-idx1-ubyte, raw or .gz) in the first of
#   $DESCENT_MNIST_DIR, ~/.cache/descent/mnist (datasets/fetch-mnist.sh),
#   $DS_SHARED_DIR/datasets/mnist-t10k (or ../shared beside the checkout)
# that has it; else, unless the suite set MNIST_ONLY=1 (its thresholds are
# for digits), the Fashion-MNIST test set that `make deps` installs
# ($DS_FASHION_DIR, default /usr/share/datasets/fashion-mnist). Skips the
# suite (exit 77) when none is there.
# Defines DATA, IMAGES, LABELS; W, a scratch folder removed at exit; and the
# failure count with fail MESSAGE and lines FILE (its line count, 0 when empty).
suite=$1
: "${DESCENT:?DESCENT must point at the descent binary}"
# ds_find_idx DIR STEM: the path of DIR/STEM or DIR/STEM.gz, whichever exists
ds_find_idx() {
  if [ -r "$1/$2.gz" ]; then echo "$1/$2.gz"; elif [ -r "$1/$2" ]; then echo "$1/$2"; fi
}
IMAGES="" LABELS="" DATA=""
for dir in ${DESCENT_MNIST_DIR:+"$DESCENT_MNIST_DIR"} "${HOME:-/nonexistent}/.cache/descent/mnist" \
           "${DS_SHARED_DIR:-$(dirname "$0")/../../shared}/datasets/mnist-t10k"; do
  IMAGES=$(ds_find_idx "$dir" t10k-images-idx3-ubyte)
  LABELS=$(ds_find_idx "$dir" t10k-labels-idx1-ubyte)
  if [ -n "$IMAGES" ] && [ -n "$LABELS" ]; then DATA=$dir; break; fi
done
if [ -z "$DATA" ] && [ "${MNIST_ONLY:-0}" != 1 ]; then
  dir=${DS_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
  IMAGES=$(ds_find_idx "$dir" t10k-images-idx3-ubyte)
  LABELS=$(ds_find_idx "$dir" t10k-labels-idx1-ubyte)
  if [ -n "$IMAGES" ] && [ -n "$LABELS" ]; then
    DATA=$dir
    echo "$suite: no MNIST digits found: on Fashion-MNIST's test set ($dir)"
  fi
fi
if [ -z "$DATA" ]; then
  echo "$suite: no MNIST test set in \$DESCENT_MNIST_DIR, ~/.cache/descent/mnist or ../shared/datasets/mnist-t10k${MNIST_ONLY:+ (this suite needs digits)}: skipped"
  exit 77
fi
W=$(mktemp -d "/tmp/$suite.XXXXXX")
trap 'rm -rf "$W"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
lines() { if [ -s "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }
