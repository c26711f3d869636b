#!/usr/bin/env bash
# `make fuzz`: build the libFuzzer harnesses with clang (ASan + UBSan) and run
# each one for FUZZ_SECONDS (default 60). Any crash, leak, timeout or OOM input
# is copied into tests/fuzz/regressions/<harness>/, where `make test` replays
# it from then on (fix the bug, then commit the file).
#   tests/fuzz/run.sh [seconds] [harness ...]      (env: FUZZ_BUILD, FUZZ_JOBS)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
secs=${1:-${FUZZ_SECONDS:-60}}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=(idx checkpoint flags safetensors)
build=${FUZZ_BUILD:-build-fuzz}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}

bash scripts/deps.sh fuzz || exit 1
cc=$(command -v clang || ls /usr/bin/clang-[0-9]* 2>/dev/null | sort -V | tail -n 1)
[ -n "$cc" ] || { echo "fuzz: clang not found (scripts/deps.sh fuzz installs it)" >&2; exit 1; }

# Coverage instrumentation (fuzzer-no-link) and the sanitizers on the library
# too: the bugs are there, not in the harness. CUDA off: host code only.
cmake -S . -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDESCENT_CUDA=OFF \
  -DDESCENT_SANITIZE=ON -DDESCENT_FUZZ=ON -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link -g" >/dev/null || exit 1
targets=()
for h in "${harnesses[@]}"; do targets+=(--target "fuzz_$h"); done
cmake --build "$build" -j"$jobs" "${targets[@]}" || exit 1

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
found=0
for h in "${harnesses[@]}"; do
  work=$build/fuzz-work/$h
  art=$build/fuzz-artifacts/$h
  rm -rf "$art"   # only this campaign's findings count
  mkdir -p "$work" "$art"
  echo "fuzz: $h for ${secs}s (working corpus $work)"
  # the working corpus comes first: libFuzzer adds new inputs there, not to
  # the committed seeds
  "$build/tests/fuzz/fuzz_$h" "$work" "tests/fuzz/corpus/$h" "tests/fuzz/regressions/$h" \
    -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$art/" -print_final_stats=1 >"$build/fuzz-$h.log" 2>&1
  rc=$?
  grep -E '^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+ +DONE)' "$build/fuzz-$h.log" | sed 's/^/  /'
  shopt -s nullglob
  arts=("$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-*)
  shopt -u nullglob
  if [ $rc -ne 0 ] || [ ${#arts[@]} -gt 0 ]; then
    found=1
    echo "fuzz: $h FAILED (exit $rc); the report is in $build/fuzz-$h.log:" >&2
    grep -m 5 -E 'ERROR|runtime error|invariant failed|SUMMARY' "$build/fuzz-$h.log" | sed 's/^/  /' >&2
    for a in "${arts[@]}"; do
      cp "$a" "tests/fuzz/regressions/$h/"
      echo "  regression: tests/fuzz/regressions/$h/$(basename "$a") (replayed by make test; commit it)" >&2
    done
  fi
done
exit $found
