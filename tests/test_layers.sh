#!/usr/bin/env bash
# The architecture, checked: every dependency points down and no files call
# each other in a circle.
#
# Rooms, top to bottom (README "Layout"):
#   host/cli                          the binary: may use everything below
#   host/interop                      models out and in (safetensors, .npz), predictions: host/train and below
#   host/train                        the engine: host/dist, kernels, datasets, common
#   host/dist                         several processes (MPI, NCCL): kernels, common
#   host/report -> host/plot          benchmark reports (sweep result files)
#   host/plot -> host/playground      pictures; the playground's toy runs
#   host/sweep                        the trials of a sweep, its result lines
#   kernels (the backend interface and its ops), datasets, common
#
# 1. #include lines: kernels/, datasets/ and common/ name nothing under host/;
#    host/train, host/playground and host/plot never include host/cli headers;
#    host/train includes nothing of host/plot or host/playground.
# 2. Calls, read from the built libraries with nm: which object file defines
#    each symbol another one uses. Every such edge must go to the same room or
#    to a room the table below allows, and the graph of files must have no
#    cycle (a cycle is printed with its files).
set -u -o pipefail
: "${DESCENT:?DESCENT must point at the descent binary}"
SRC="${DS_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
BUILD=$(dirname "$DESCENT")
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# ---- 1. includes
cd "$SRC" || exit 1
check_includes() { # ROOM... -- PATTERN MESSAGE
  local rooms=() pat msg hits
  while [ "$1" != "--" ]; do rooms+=("$1"); shift; done
  pat=$2 msg=$3
  hits=$(grep -rnE "^#include \"($pat)" "${rooms[@]}" --include='*.c' --include='*.h' --include='*.cu' --include='*.cuh' || true)
  [ -z "$hits" ] || fail "$msg:"$'\n'"$hits"
}
check_includes kernels datasets common -- 'host/|cli/|train/|plot/|playground/' "a lower layer includes a host header"
check_includes host/train host/dist host/interop host/plot host/playground host/sweep host/report -- 'cli/' "the engine includes a command-line header"
check_includes host/sweep -- 'train/|plot/|playground/|interop/' "host/sweep includes host/train, host/plot, host/playground or host/interop"
check_includes host/train host/plot host/playground host/interop -- 'report/' "a room below host/report includes it"
check_includes host/report -- 'train/|playground/|interop/' "host/report includes host/train, host/playground or host/interop"
check_includes host/train -- 'plot/|playground/|interop/' "host/train includes host/plot, host/playground or host/interop"
check_includes host/interop -- 'plot/|playground/' "host/interop includes host/plot or host/playground"
check_includes host/dist -- 'train/|plot/|playground/|interop/|report/|sweep/' "host/dist includes a header of a room above it"
check_includes host/playground -- 'train/|plot/' "host/playground includes host/train or host/plot"
check_includes host/plot -- 'train/' "host/plot includes host/train"

# ---- 2. calls between object files
command -v nm >/dev/null || { echo "test_layers: nm (binutils) is not installed: skipped"; exit 77; }
LIBS=("$BUILD/libdescent.a" "$BUILD/libdescent_commands.a")
for lib in "${LIBS[@]}"; do
  [ -r "$lib" ] || { fail "$lib is missing (build the project first)"; exit 1; }
done
# object file (as ar names it, e.g. trainer.c.o) -> room; names must be unique
ROOMS=$(find common datasets kernels host -type f \( -name '*.c' -o -name '*.cu' \) |
  awk -F/ '{ room = $1; if (room == "host") room = "host/" $2; print $NF ".o", room }' | sort)
dups=$(printf '%s\n' "$ROOMS" | awk '{ print $1 }' | uniq -d)
[ -z "$dups" ] || fail "two source files share a name (the check needs unique names): $dups"
# "user.o symbol" for each undefined symbol, "definer.o symbol" for each defined one
nm -A -u "${LIBS[@]}" 2>/dev/null | awk 'NF >= 2 { split($1, p, ":"); print p[2], $NF }' >"$BUILD/layers.uses"
nm -A --defined-only -g "${LIBS[@]}" 2>/dev/null |
  awk 'NF >= 2 && $(NF-1) ~ /^[TDBRCVW]$/ { split($1, p, ":"); print p[2], $NF }' >"$BUILD/layers.defs"
result=$(awk -v rooms="$ROOMS" '
  BEGIN {
    n = split(rooms, r, "\n")
    for (i = 1; i <= n; i++) { split(r[i], kv, " "); room[kv[1]] = kv[2] }
    # the rooms each room may call, besides its own
    ok["host/cli"] = "host/interop host/train host/dist host/report host/plot host/playground host/sweep kernels datasets common"
    ok["host/sweep"] = "common"
    ok["host/report"] = "host/plot common"
    ok["host/interop"] = "host/train kernels datasets common"
    ok["host/train"] = "host/dist kernels datasets common"
    ok["host/dist"] = "kernels common"
    ok["host/plot"] = "host/playground common"
    ok["host/playground"] = "kernels common"
    ok["kernels"] = "common"
    ok["datasets"] = "common"
    ok["common"] = ""
  }
  FNR == 1 { file++ }
  file == 1 { if (!($2 in def)) def[$2] = $1; next }
  {
    if (!($2 in def) || def[$2] == $1) next
    a = $1; b = def[$2]
    if (!((a, b) in edge)) { edge[a, b] = $2; out[a] = out[a] " " b }
  }
  function allowed(a, b,   ra, rb, list, k, i) {
    ra = room[a]; rb = room[b]
    if (ra == "" || rb == "") return 1   # not a source of ours (a CUDA stub)
    if (ra == rb) return 1
    k = split(ok[ra], list, " ")
    for (i = 1; i <= k; i++) if (list[i] == rb) return 1
    return 0
  }
  function dfs(v,   k, i, list, w, j, path) {
    state[v] = 1; stack[++depth] = v
    k = split(out[v], list, " ")
    for (i = 1; i <= k; i++) {
      w = list[i]
      if (state[w] == 1) {
        path = w
        for (j = depth; j >= 1 && stack[j] != w; j--) path = stack[j] " -> " path
        print "CYCLE " w " -> " path
        cycles++
      } else if (state[w] == 0) dfs(w)
    }
    depth--; state[v] = 2
  }
  END {
    for (e in edge) {
      split(e, ab, SUBSEP)
      if (!allowed(ab[1], ab[2]))
        print "UP " room[ab[1]] "/" ab[1] " calls " room[ab[2]] "/" ab[2] " (" edge[e] ")"
    }
    for (v in out) if (state[v] == 0) dfs(v)
    n = 0
    for (e in edge) n++
    print "EDGES " n
  }' "$BUILD/layers.defs" "$BUILD/layers.uses")
rm -f "$BUILD/layers.uses" "$BUILD/layers.defs"
edges=$(printf '%s\n' "$result" | awk '$1 == "EDGES" { print $2 }')
[ "${edges:-0}" -gt 20 ] || fail "only ${edges:-0} calls between files were found: the nm reading is broken"
while IFS= read -r line; do
  case "$line" in
    UP*) fail "a call points up: ${line#UP }" ;;
    CYCLE*) fail "files call each other in a circle: ${line#CYCLE }" ;;
  esac
done <<<"$result"

if [ $failures -ne 0 ]; then
  echo "test_layers: $failures failure(s)"
  exit 1
fi
echo "test_layers: includes point down; $edges calls between files, none up, no cycle"
