#!/usr/bin/env bash
# A/B of two builds of bench_op_cpu on one machine: the two binaries take turns, ROUNDS times
# each with --benchmark_repetitions=3, and the table gives the fastest time per cell and the
# ratio second / first. Taking turns spreads the machine's slow spells over both sides.
#   bench/compare_builds.sh OLD/bench/bench_op_cpu build/bench/bench_op_cpu ['BM_Kernels/N:512/']
set -euo pipefail
first=$1 second=$2 filter=${3:-BM_Kernels} rounds=${ROUNDS:-4}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq "$rounds"); do
  for side in first second; do
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "${!side}" --benchmark_filter="$filter" \
      --benchmark_repetitions=3 --benchmark_out="$out/${side}_$round.json" \
      --benchmark_out_format=json > /dev/null 2> "$out/log" || { cat "$out/log"; exit 1; }
  done
done
python3 - "$out" <<'PY'
import collections, glob, json, sys
best = collections.defaultdict(dict)
for side in ("first", "second"):
    for path in glob.glob("%s/%s_*.json" % (sys.argv[1], side)):
        for b in json.load(open(path))["benchmarks"]:
            if b.get("run_type") == "iteration":
                cell = b["run_name"].split("/min_time")[0]
                best[cell][side] = min(best[cell].get(side, float("inf")), b["real_time"])
print("| cell | first (us) | second (us) | second / first |\n|---|---|---|---|")
for cell, t in best.items():
    print("| %s | %.1f | %.1f | %.3f |" % (cell, t["first"], t["second"], t["second"] / t["first"]))
PY
