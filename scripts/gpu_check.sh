#!/usr/bin/env bash
# shellcheck disable=SC2317  # the phase functions run through `bash -c` (export -f)
# One GPU check for a bare machine with a CUDA GPU (made for the H200 sessions): builds the
# library with its CUDA kernels for sm_90, runs the cuda variants of the C++ and Python op tests
# (parametrised over devices) and the CUDA-only tests (streams, graphs), and runs
# bench/bench_step.py on the GPU (at N = D = 512 it also prints the op's device ops per step).
# Needs: system python3 with torch (CUDA build), nvcc, cmake. No network: where python3 lacks
# pytest it is installed from .gpu-wheels/ (`make gpu-wheels` here, then carry .gpu-wheels with
# the tree) into $BUILD/pytest-site. Every phase is timed and a failed phase does not stop the
# next; the exit status counts failures. Results (JSON, logs) go to $OUT when it is set, else to
# build-gpu/results.
#
#   bash scripts/gpu_check.sh                 # everything, about 5-7 minutes
#   ARCH=80 BENCH_ARGS="--device cuda --quick" bash scripts/gpu_check.sh
#   TOTAL_S=540 (default) caps the whole run, so it ends with its summary inside a 600 s call
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

PY=${PYTHON:-python3}
ARCH=${ARCH:-90}
BUILD=${BUILD:-build-gpu}
JOBS=${JOBS:-$(nproc)}
RESULTS=${OUT:-$BUILD/results}
BENCH_ARGS=${BENCH_ARGS:---device cuda}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-200}
TOTAL_S=${TOTAL_S:-540}  # the whole run, summary included, inside the device's 600 s per call
mkdir -p "$RESULTS" "$BUILD"
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$PATH:/usr/local/cuda/bin"
# Build with the system g++, the toolchain of the system libstdc++ that torch's Python module
# loads. A GPU host may put another g++ first on PATH or preset CXX to it; built with that one,
# the first C++ exception that reaches Python crashes the process. So /usr/bin/g++ wins unless
# GPU_CHECK_CXX names a compiler.
if [ -n "${GPU_CHECK_CXX:-}" ]; then
  export CXX=$GPU_CHECK_CXX CUDAHOSTCXX=$GPU_CHECK_CXX
elif [ -x /usr/bin/g++ ]; then
  export CXX=/usr/bin/g++ CUDAHOSTCXX=/usr/bin/g++
fi
echo "host C++ compiler: ${CXX:-cmake default} (CUDA host: ${CUDAHOSTCXX:-cmake default})"

declare -a SUMMARY=()
FAILURES=0
phase() {  # phase NAME TIMEOUT_S FUNCTION: runs one function below, timed, logged, recorded
  local name=$1 limit=$2 fn=$3
  local left=$((T_START + TOTAL_S - 10 - SECONDS))
  if [ "$left" -lt 20 ]; then
    echo "---- $name: not run (${TOTAL_S}s budget spent)"
    SUMMARY+=("$name: not run, budget spent"); FAILURES=$((FAILURES + 1)); return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo
  echo "================ phase: $name (limit ${limit}s) ================"
  echo "+ $fn"
  local t0=$SECONDS rc
  timeout --kill-after=10 "$limit" bash -o pipefail -c "$fn" 2>&1 | tee "$RESULTS/$name.log"
  rc=${PIPESTATUS[0]}
  local took=$((SECONDS - t0))
  echo "---- $name: exit $rc after ${took}s"
  SUMMARY+=("$name: exit $rc, ${took}s")
  [ "$rc" -eq 0 ] || FAILURES=$((FAILURES + 1))
  return "$rc"
}

env_info() {
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
  "$PY" -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name() if torch.cuda.is_available() else None)'
  nvcc --version | tail -2 || true
  cmake --version | head -1 || true
  command -v ninja && ninja --version || echo "no ninja: Unix Makefiles"
  git rev-parse HEAD 2>/dev/null || true
  git status --short 2>/dev/null | head -40 || true
}

configure() {
  local generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  local prefix
  prefix=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)') || return 1
  # Torch's own arch flags are dropped by our CMakeLists; this only keeps its config quiet.
  local torch_archs=()
  [[ $ARCH =~ ^[0-9]{2}$ ]] && torch_archs=(-DTORCH_CUDA_ARCH_LIST="${ARCH:0:1}.${ARCH:1}")
  local args=(-S . -B "$BUILD" "${generator[@]}" "${torch_archs[@]}" -DCMAKE_BUILD_TYPE=Release
              -DCMAKE_PREFIX_PATH="$prefix" -DPython3_EXECUTABLE="$(command -v "$PY")"
              -DCENTERLOSS_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH"
              -DCENTERLOSS_BUILD_TRAINER=OFF -DCENTERLOSS_BUILD_BENCH=OFF
              -DCENTERLOSS_WERROR=OFF)  # the GPU host has another g++ (13) with false positives in torch headers
  # Tests need GoogleTest, which a bare machine may lack: try with them, then without.
  if cmake "${args[@]}" -DCENTERLOSS_BUILD_TESTS=ON; then
    echo "configured with the C++ tests"
  else
    echo "configure with tests failed (GoogleTest missing?): configuring without them"
    rm -rf "$BUILD/CMakeCache.txt" "$BUILD/CMakeFiles"
    cmake "${args[@]}" -DCENTERLOSS_BUILD_TESTS=OFF
  fi
}

# The C++ test programs with cuda variants (tests/cpp/devices.h), and the CUDA-only one.
CPP_DEVICE_TESTS="test_op_reference test_module"
CPP_CUDA_TESTS="test_streams_and_graphs"
# The Python test files with cuda variants (`device` in tests/python/conftest.py), and the
# CUDA-only one; `-m cuda` picks the cuda variants.
PY_DEVICE_TESTS="test_op_reference test_update_rules test_nan_guard_and_errors test_forward_step
  test_step_centers test_state_and_determinism test_streams_and_graphs"

build() {
  local targets=(--target centerloss)
  # shellcheck disable=SC2206  # word lists
  grep -q "CENTERLOSS_BUILD_TESTS:BOOL=ON" "$BUILD/CMakeCache.txt" &&
    targets+=($CPP_DEVICE_TESTS $CPP_CUDA_TESTS)
  cmake --build "$BUILD" -j "$JOBS" "${targets[@]}"
}

cpp_tests() {
  local rc=0 name exe
  for name in $CPP_DEVICE_TESTS $CPP_CUDA_TESTS; do
    exe="$BUILD/tests/cpp/$name"
    if [ ! -x "$exe" ]; then
      echo "C++ GPU tests not built (no GoogleTest): skipped"
      return 0
    fi
    local filter='*'
    [[ " $CPP_DEVICE_TESTS " == *" $name "* ]] && filter='*/cuda*'  # the cuda variants
    "$exe" --gtest_filter="$filter" --gtest_output="json:$RESULTS/gtest_$name.json" || rc=1
  done
  return "$rc"
}

python_tests() {
  if ! "$PY" -c 'import pytest' 2>/dev/null; then
    echo "pytest not importable: installing it from .gpu-wheels (make gpu-wheels)"
    "$PY" -m pip install --quiet --no-index --find-links .gpu-wheels --target "$BUILD/pytest-site" \
      pytest || return 1
    PYTHONPATH="$(realpath "$BUILD/pytest-site"):$PYTHONPATH"
    export PYTHONPATH
  fi
  local files=() name
  for name in $PY_DEVICE_TESTS; do files+=("tests/python/$name.py"); done
  "$PY" -m pytest -q -rs -p no:cacheprovider -m cuda "${files[@]}" \
    --junitxml="$RESULTS/pytest_cuda.xml"
}

bench() {
  if [ ! -f bench/bench_step.py ]; then
    echo "bench/bench_step.py not present: skipped"
    return 0
  fi
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of options
  "$PY" bench/bench_step.py --time-budget-s "$BENCH_BUDGET" $BENCH_ARGS --out-dir "$RESULTS/bench"
}

export PY ARCH BUILD JOBS RESULTS BENCH_ARGS CPP_DEVICE_TESTS CPP_CUDA_TESTS PY_DEVICE_TESTS
export -f env_info configure build cpp_tests python_tests bench

T_START=$SECONDS
phase env 60 env_info
if phase configure 180 configure && phase build 420 build; then
  phase cpp_tests 240 cpp_tests
  phase python_tests 300 python_tests
else
  echo "build failed: skipping the phases that need the library"
fi
# the sweep stops itself 30 s before the phase's limit, so its JSON/table/figure get written
left=$((T_START + TOTAL_S - 10 - SECONDS)); limit=$((left < BENCH_TIMEOUT ? left : BENCH_TIMEOUT))
export BENCH_BUDGET=$((limit > 60 ? limit - 30 : 30))
phase bench "$BENCH_TIMEOUT" bench

echo
echo "================ summary (total $((SECONDS - T_START))s) ================"
printf '%s\n' "${SUMMARY[@]}" | tee "$RESULTS/summary.txt"
"$PY" - "$RESULTS/summary.json" "${SUMMARY[@]}" <<'PYEOF'
import json, sys
json.dump({"phases": sys.argv[2:]}, open(sys.argv[1], "w"), indent=1)
PYEOF
echo "results in $RESULTS"
exit "$FAILURES"
