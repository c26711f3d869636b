#!/usr/bin/env bash
# descent report: tables, pictures and the DeepOBS layout against a
# recomputation in Python (tests/test_report.py, which generates the sweep
# result files). Skipped (77) without python3, or when this descent was built
# without the JSON library (then `descent report` must say so, exit 1).
set -u -o pipefail
: "${DESCENT:?DESCENT must point at the descent binary}"
SRC="${DS_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
command -v python3 >/dev/null || { echo "test_report: python3 is not installed: skipped"; exit 77; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/descent-report.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
printf '{}\n' >"$WORK/probe.jsonl"
"$DESCENT" report "$WORK/probe.jsonl" --out "$WORK/probe" >"$WORK/probe.out" 2>"$WORK/probe.err"
rc=$?
if [ $rc -eq 1 ] && grep -q "built without the JSON library" "$WORK/probe.err"; then
  lines=$(wc -l <"$WORK/probe.err")
  [ "$lines" -eq 1 ] || { echo "FAIL: the no-JSON message is $lines lines"; exit 1; }
  echo "test_report: this descent was built without the JSON library (libjansson-dev): skipped"
  exit 77
fi
[ $rc -eq 2 ] || { echo "FAIL: a line without \"format\" gave exit $rc: $(cat "$WORK/probe.err")"; exit 1; }
python3 "$SRC/tests/test_report.py" "$DESCENT" "$WORK"
