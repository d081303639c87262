#!/usr/bin/env bash
# shellcheck disable=SC2317  # the phase functions run through `bash -c` (export -f)
# One GPU check for a bare machine with a CUDA GPU (made for the H200 sessions): builds the
# library with its CUDA kernels for sm_90, runs the C++ and Python GPU tests, times one training
# step (our op vs the eager gather + index_add recipe) and runs bench/bench_step.py on the GPU.
# Needs: system python3 with torch (CUDA build), nvcc, cmake. No network, no installs. Every
# phase is timed and a failed phase does not stop the next; the exit status counts failures.
# Results (JSON, logs) go to $OUT when it is set, else to build-gpu/results.
#
#   bash scripts/gpu_check.sh                 # everything, about 5-7 minutes
#   ARCH=80 BENCH_ARGS="--device cuda --quick" bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

PY=${PYTHON:-python3}
ARCH=${ARCH:-90}
BUILD=${BUILD:-build-gpu}
JOBS=${JOBS:-$(nproc)}
RESULTS=${OUT:-$BUILD/results}
BENCH_ARGS=${BENCH_ARGS:---device cuda}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-200}
mkdir -p "$RESULTS" "$BUILD"
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$PATH:/usr/local/cuda/bin"
# Build with the system g++ (the toolchain of the system libstdc++ that torch's Python module
# loads); on the H200 host a g++ under /opt/gcc comes first on PATH. The run of 2026-11-28 passed
# every test with /usr/bin/g++ and the shared CUDA runtime (see CMakeLists.txt).
# The host may preset CXX to that g++: the run of 2026-11-28 21:30 built with it (CXX was set)
# and the first C++ exception that reached Python crashed it. So /usr/bin/g++ wins unless
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

build() {
  local targets=(--target centerloss)
  grep -q "CENTERLOSS_BUILD_TESTS:BOOL=ON" "$BUILD/CMakeCache.txt" && targets+=(test_cuda_kernels)
  cmake --build "$BUILD" -j "$JOBS" "${targets[@]}"
}

cpp_tests() {
  local exe="$BUILD/tests/cpp/test_cuda_kernels"
  if [ ! -x "$exe" ]; then
    echo "C++ GPU tests not built (no GoogleTest): skipped"
    return 0
  fi
  "$exe" --gtest_output="json:$RESULTS/gtest_cuda.json"
}

python_tests() {
  if "$PY" -c 'import pytest' 2>/dev/null; then
    "$PY" -m pytest -q -rs tests/python/test_cuda_ops.py --junitxml="$RESULTS/pytest_cuda.xml"
  else
    echo "pytest not importable: plain runner"
    "$PY" tests/python/test_cuda_ops.py
  fi
}

bench() {
  if [ ! -f bench/bench_step.py ]; then
    echo "bench/bench_step.py not present: skipped"
    return 0
  fi
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of options
  "$PY" bench/bench_step.py $BENCH_ARGS --out-dir "$RESULTS/bench"
}

# Minimal timing of one training step (loss, feature gradient, center update) at N = D = 512:
# CUDA-event time per step, and the kernels' own device time from the profiler (which leaves
# out the gaps while the host waits, e.g. on the label check's device-to-host read).
step_timing() {
  "$PY" - "$RESULTS/gpu_step_timing.json" <<'PYEOF'
import json
import sys
import time

import torch

import centerloss

out_path = sys.argv[1]
dev = torch.device("cuda")
N, D, ALPHA = 512, 512, 0.5
torch.manual_seed(0)


def eager_step(x, y, c):
    """The better eager recipe: gather + index_add, sparse update of the classes present."""
    x.grad = None
    cy = c.index_select(0, y)
    loss = 0.5 * (x - cy).pow(2).sum() / N
    loss.backward()
    with torch.no_grad():
        classes, inverse, counts = torch.unique(y, return_inverse=True, return_counts=True)
        sums = torch.zeros(classes.numel(), D, device=dev).index_add_(0, inverse, cy - x.detach())
        c.index_add_(0, classes, sums * (-ALPHA / (counts + 1).unsqueeze(1)))
    return loss


def ours_step(x, y, c):
    """The functional API: center_loss, then update_centers_ (which checks the labels again)."""
    x.grad = None
    loss = centerloss.center_loss(x, y, c)
    loss.backward()
    centerloss.update_centers_(c, x.detach(), y, ALPHA, "paper")
    return loss


def module_step(x, y, module):
    """nn.CenterLoss: one fused label check in the forward kernel, the step without a sync."""
    x.grad = None
    loss = module(x, y)
    loss.backward()
    return loss


def event_us(fn, iters=300, warmup=30):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    t0 = time.perf_counter()
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    host_us = (time.perf_counter() - t0) * 1e6 / iters
    return start.elapsed_time(end) * 1000.0 / iters, host_us


def kernel_us(fn, iters=50):
    """Device time per step of every kernel/memset/memcpy, from the profiler, by name."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            fn()
        torch.cuda.synchronize()
    by_name = {}
    for e in prof.events():
        if e.device_type == DeviceType.CUDA:
            by_name[e.name] = by_name.get(e.name, 0.0) + e.time_range.elapsed_us() / iters
    launches = sum(1 for e in prof.events() if e.device_type == DeviceType.CUDA) / iters
    total = sum(by_name.values())
    ours = sum(v for k, v in by_name.items() if "centerloss" in k)
    top = sorted(by_name.items(), key=lambda kv: -kv[1])[:12]
    return {"total_us": total, "centerloss_kernels_us": ours, "device_ops_per_step": launches,
            "top": [[k[:120], v] for k, v in top]}


report = {
    "device": torch.cuda.get_device_name(),
    "torch": torch.__version__,
    "cuda": torch.version.cuda,
    "N": N, "D": D, "dtype": "float32", "alpha": ALPHA, "rule": "paper",
    "method": "CUDA events around 300 back-to-back steps after 30 warm-up steps; "
              "kernel time from torch.profiler over 50 steps",
    "cases": [],
}
for K in (1000, 100000, 1000000):
    case = {"K": K}
    x0 = torch.randn(N, D, device=dev)
    y = torch.randint(0, K, (N,), device=dev)
    c0 = torch.randn(K, D, device=dev)

    # Correctness first: one step of ours against the eager recipe from the same state.
    xa, xb = x0.clone().requires_grad_(True), x0.clone().requires_grad_(True)
    ca, cb = c0.clone(), c0.clone()
    la, lb = ours_step(xa, y, ca), eager_step(xb, y, cb)
    case["max_abs_diff"] = {
        "loss": (la - lb).abs().item(),
        "grad": (xa.grad - xb.grad).abs().max().item(),
        "centers": (ca - cb).abs().max().item(),
    }
    ok = (torch.allclose(la, lb, rtol=1e-4, atol=1e-5) and torch.allclose(xa.grad, xb.grad, atol=1e-6)
          and torch.allclose(ca, cb, rtol=1e-5, atol=1e-5))
    case["matches_eager"] = bool(ok)

    x = x0.clone().requires_grad_(True)
    c = c0.clone()
    module = centerloss.CenterLoss(K, D, alpha=ALPHA).to(dev)
    module.centers.copy_(c0)
    recipes = {
        "centerloss_op": lambda: ours_step(x, y, c),
        "centerloss_module": lambda: module_step(x, y, module),
        "eager_gather_index_add": lambda: eager_step(x, y, c),
    }
    for name, fn in recipes.items():
        gpu_us, host_us = event_us(fn)
        entry = {"event_us_per_step": gpu_us, "host_us_per_step": host_us}
        try:
            entry["profile"] = kernel_us(fn)
        except Exception as err:  # the profiler is a nice-to-have
            entry["profile_error"] = repr(err)
        case[name] = entry
    case["speedup_event_time"] = (case["eager_gather_index_add"]["event_us_per_step"]
                                  / case["centerloss_op"]["event_us_per_step"])
    report["cases"].append(case)
    print(f"K={K:>8}: matches eager {ok} (max diffs {case['max_abs_diff']})")
    for name in recipes:
        e = case[name]
        prof = e.get("profile", {})
        print(f"  {name:<24} {e['event_us_per_step']:9.1f} us/step (events)  "
              f"{e['host_us_per_step']:9.1f} us/step (host)  "
              f"device ops {prof.get('device_ops_per_step', float('nan')):4.1f}, "
              f"kernels {prof.get('total_us', float('nan')):7.1f} us "
              f"(centerloss kernels {prof.get('centerloss_kernels_us', float('nan')):5.1f} us)")
    for name in ("centerloss_op", "centerloss_module"):
        print(f"    {name}: device ops per step")
        for k, v in case[name].get("profile", {}).get("top", []):
            print(f"      {v:7.2f} us  {k}")
    case["speedup_event_time_module"] = (case["eager_gather_index_add"]["event_us_per_step"]
                                         / case["centerloss_module"]["event_us_per_step"])
    print(f"  speed-up over eager (event time): functional op {case['speedup_event_time']:.1f}x, "
          f"module {case['speedup_event_time_module']:.1f}x")

with open(out_path, "w") as f:
    json.dump(report, f, indent=1)
print("wrote", out_path)
PYEOF
}

export PY ARCH BUILD JOBS RESULTS BENCH_ARGS
export -f env_info configure build cpp_tests python_tests bench step_timing

T_START=$SECONDS
phase env 60 env_info
if phase configure 180 configure && phase build 420 build; then
  phase step_timing 150 step_timing
  phase cpp_tests 240 cpp_tests
  phase python_tests 300 python_tests
else
  echo "build failed: skipping the phases that need the library"
fi
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
