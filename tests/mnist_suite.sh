# Sourced by the shell suites that train on real digits:
#   . "$(dirname "$0")/mnist_suite.sh" test_name
# Requires $DESCENT; finds the MNIST test set in $DS_SHARED_DIR/datasets/mnist-t10k
# (or ../shared beside the checkout) and skips the suite (exit 77) without it.
# Defines DATA, IMAGES, LABELS; W, a scratch folder removed at exit; and the
# failure count with fail MESSAGE and lines FILE (its line count, 0 when empty).
suite=$1
: "${DESCENT:?DESCENT must point at the descent binary}"
DATA="${DS_SHARED_DIR:-$(dirname "$0")/../../shared}/datasets/mnist-t10k"
IMAGES="$DATA/t10k-images-idx3-ubyte.gz"
LABELS="$DATA/t10k-labels-idx1-ubyte.gz"
if [ ! -r "$IMAGES" ] || [ ! -r "$LABELS" ]; then
  echo "$suite: no MNIST test set in $DATA: skipped"
  exit 77
fi
W=$(mktemp -d "/tmp/$suite.XXXXXX")
trap 'rm -rf "$W"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
lines() { if [ -s "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }
