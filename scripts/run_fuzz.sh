#!/usr/bin/env bash
# run_fuzz.sh PROGRAMS WORK SECONDS TARGET...: runs each libFuzzer program PROGRAMS/fuzz_TARGET
# for SECONDS, from its committed seeds (tests/fuzz/corpus/TARGET) and the inputs that once found
# a bug (tests/fuzz/regressions/TARGET), keeping what it finds in WORK/corpus-TARGET. A crash
# leaves its input in WORK/ and fails the run: add that input to tests/fuzz/regressions/TARGET/
# once fixed. The sanitizer options come from the caller's environment (the Makefile's).
set -euo pipefail
cd "$(dirname "$0")/.."
programs=$1 work=$2 seconds=$3
shift 3
for t in "$@"; do
  mkdir -p "$work/corpus-$t"
  inputs=("tests/fuzz/corpus/$t")
  if [ -d "tests/fuzz/regressions/$t" ]; then inputs+=("tests/fuzz/regressions/$t"); fi
  echo "== fuzz_$t for $seconds s"
  rc=0
  "$programs/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=60 \
    -print_final_stats=1 -artifact_prefix="$work/$t-" "$work/corpus-$t" "${inputs[@]}" \
    > "$work/$t.log" 2>&1 || rc=$?
  tail -n 25 "$work/$t.log"
  if [ "$rc" -ne 0 ]; then
    echo "fuzz_$t failed (exit $rc); its output: $work/$t.log" >&2
    exit 1
  fi
done
