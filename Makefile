# The two set-up commands: `make demo` (main job) and `make test` (the suite). Each installs
# what it needs: Debian packages (scripts/install_system_deps.sh) and a virtual environment in
# .venv with the pinned Python packages: requirements-demo.txt for the build and the demo (torch,
# matplotlib), requirements.txt for the tests (the demo's, plus pytest, keras, jax, tensorflow).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUILD ?= build
THREADS ?= 2
CMAKE_ARGS ?=
# ccache caches the users of a precompiled header only with this sloppiness (its manual,
# "Precompiled headers"); without it every test and trainer file is compiled again.
export CCACHE_SLOPPINESS ?= pch_defines,time_macros
# Relative paths in ccache's hashes, as the install tests' builds have them (install_helpers.py):
# their library builds, at the same folder depth, then reuse this build's objects.
export CCACHE_BASEDIR ?= $(CURDIR)

.PHONY: all deps deps-test build test test-cpp test-python demo sweep clean asan-build asan fuzz asan-core asan-parsers

all: build

$(BUILD)/.system-deps: scripts/install_system_deps.sh
	bash scripts/install_system_deps.sh
	@mkdir -p $(BUILD) && touch $@

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	echo "$(CURDIR)/python" > "$$($(PY) -c 'import site; print(site.getsitepackages()[0])')/centerloss-dev.pth"

$(VENV)/.installed-demo: requirements-demo.txt | $(PY)
	$(VENV)/bin/pip install --quiet -r requirements-demo.txt
	touch $@

$(VENV)/.installed-test: requirements.txt $(VENV)/.installed-demo
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

# What the build and the demo need; deps-test adds what the tests need.
deps: $(BUILD)/.system-deps $(VENV)/.installed-demo
deps-test: deps $(VENV)/.installed-test

# Unity batches of 8 source files: a cold build parses the torch headers once per batch instead
# of once per file (times: docs/reliability.md). UNITY=OFF compiles file by file, which rebuilds
# less after an edit. Files with their own compile options (the CPU kernels) are always alone.
UNITY ?= ON
$(BUILD)/build.ninja: deps CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_UNITY_BUILD=$(UNITY) -DCMAKE_UNITY_BUILD_BATCH_SIZE=8 \
	  -DCMAKE_PREFIX_PATH="$$($(PY) -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
	  -DPython3_EXECUTABLE="$(CURDIR)/$(PY)" \
	  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache $(CMAKE_ARGS)

build: $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $$(nproc)

# Only the library and the trainer executable (what demo, sweep and experiment need).
cli: $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $$(nproc) --target centerloss_cli

test-cpp: build deps-test
	cd $(BUILD) && OMP_NUM_THREADS=$(THREADS) ctest --output-on-failure -j 2

# tests/python: the package and the op on every device (cuda variants skip without a GPU);
# tests/trainer: the command line end to end. Test files run on PYTEST_WORKERS processes
# (pytest-xdist; one file stays in one process, so its fixtures are made once): most tests wait
# on process starts, imports and JIT compilers on one core (PYTEST_WORKERS=0: one process).
PYTEST_WORKERS ?= $(shell nproc)
test-python: build deps-test
	CENTERLOSS_CLI=$(BUILD)/trainer/centerloss OMP_NUM_THREADS=$(THREADS) $(PY) -m pytest -q \
	  -n $(PYTEST_WORKERS) --dist loadfile tests/python tests/trainer

test: test-cpp test-python

# pytest and its dependencies as wheels in .gpu-wheels/, carried with the tree to the GPU machine
# (which has no network and may lack pytest): scripts/gpu_check.sh installs them from there.
# Pure-Python wheels for any Python >= 3.10 there (pip evaluates dependency markers for this
# interpreter, so exceptiongroup and tomli, pytest's dependencies before 3.11, are named).
.PHONY: gpu-wheels
gpu-wheels: $(VENV)/.installed
	$(PY) -m pip download --quiet --only-binary=:all: --platform any --python-version 3.10 \
	  -d .gpu-wheels pytest exceptiongroup tomli

# The demo's configuration: small enough that `make demo` from a fresh clone finishes in minutes
# on 2 cores (measured: docs/trainer.md).
DEMO_ARGS ?= --arch small --feature-dim 2 --train-limit 20000 --epochs 3 --lr 0.05 --lambda 0.1
demo: cli
	$(BUILD)/trainer/centerloss train --out runs/demo --resume auto $(DEMO_ARGS)

# The lambda sweep (paper Fig. 3): lambda = 0, 1e-4, 1e-3, 1e-2, 1e-1 with 2-D features.
SWEEP_ARGS ?= --arch small --feature-dim 2 --train-limit 10000 --epochs 3 --lr 0.05
sweep: cli
	$(BUILD)/trainer/centerloss sweep --out runs/sweep --resume auto $(SWEEP_ARGS)

clean:
	rm -rf $(BUILD) $(BUILD)-pip-wheel $(BUILD)-pip-editable

# Open-set experiment (docs/openset.md, issue 4): trains softmax-only and softmax + center loss
# runs with classes 7-9 held out, evaluates them on the held-out classes and writes the results
# table and figures. The default grid takes about an hour on 2 cores; EXPERIMENT_ARGS overrides
# it (e.g. EXPERIMENT_ARGS="--epochs 2 --lambdas 0,0.1"). Interrupted runs resume (--resume auto).
EXPERIMENT_ARGS ?=
.PHONY: experiment
experiment: cli
	$(PY) scripts/experiments/openset_experiment.py --cli $(BUILD)/trainer/centerloss \
	  --out runs/openset --resume auto --figures docs/figures/openset_ $(EXPERIMENT_ARGS)

# Many identities (docs/identities.md, issue 20): fonts as identities, held-out fonts verified
# with an LFW pairs file; softmax alone against softmax + center loss over lambdas, D = 2 and 128,
# 3 seeds. IDENTITIES_ARGS=--quick runs the small grid in minutes. Interrupted runs resume.
IDENTITIES_ARGS ?=
.PHONY: identities
identities: cli
	OMP_NUM_THREADS=$(THREADS) $(PY) scripts/experiments/identities_experiment.py \
	  --cli $(BUILD)/trainer/centerloss --figures docs/figures/identities_ $(IDENTITIES_ARGS)

# Benchmarks (issue 6; docs/benchmarks.md): the CPU table, JSON and figure of bench_step.py,
# the Google Benchmark program and the LeNets++ overhead. A few minutes on a 2-core machine.
.PHONY: bench
bench: build
	OMP_NUM_THREADS=$(THREADS) $(PY) bench/bench_step.py --device cpu --threads $(THREADS) \
	  --out-dir bench/results --figure docs/figures/bench_step_cpu.png
	OMP_NUM_THREADS=$(THREADS) $(BUILD)/bench/bench_op_cpu \
	  --benchmark_out=bench/results/bench_op_cpu.json --benchmark_out_format=json
	if [ -x $(BUILD)/bench/bench_overhead ]; then \
	  $(BUILD)/bench/bench_overhead --threads $(THREADS) --json bench/results/bench_overhead.json; \
	else echo "bench_overhead not built (needs the trainer): skipped"; fi

# Sanitizers and fuzzing (issue 21; docs/reliability.md). One clang build in $(ASAN_BUILD)/ of
# the library, the trainer, the C++ tests and the fuzz targets with AddressSanitizer +
# UndefinedBehaviorSanitizer (and libFuzzer coverage), CUDA and benchmarks off, OpenMP off
# (clang's OpenMP runtime is not the libgomp torch loads: the CPU kernels run on one thread
# there). `make asan` runs the C++ tests there; `make fuzz` runs each fuzz target for
# FUZZ_SECONDS (.ci/run: 15 s a target; .ci/sanitizers: 60 s).
ASAN_BUILD ?= build-asan
# clang 16 or later: the library captures structured bindings in lambdas (C++20, which
# clang 14, Debian's default clang, refuses); Debian 12 has clang-19. Clang 18+ mangles some
# templates differently from the gcc that built LibTorch: -fclang-abi-compat=17 keeps the old
# names (else at::TensorBase::const_data_ptr<float> is an undefined reference).
SANITIZER_CC ?= clang-19
SANITIZER_CXX ?= clang++-19
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?= idx checkpoint zip config metrics pairs image op
# LibTorch is not instrumented: see tests/sanitizers/README.md for each suppression and why.
SANITIZER_ENV = ASAN_OPTIONS=detect_leaks=1:detect_odr_violation=0:strict_init_order=1:abort_on_error=1:allocator_may_return_null=1 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizers/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$(CURDIR)/tests/sanitizers/ubsan.supp \
  OMP_NUM_THREADS=$(THREADS)

# Unity batches: each file of the sanitizer builds (built whole, mostly in CI) parses the torch
# headers once per batch instead of once per source file.
ASAN_CMAKE_ARGS = -G Ninja \
  -DCMAKE_C_COMPILER=$(SANITIZER_CC) -DCMAKE_CXX_COMPILER=$(SANITIZER_CXX) \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -gline-tables-only" \
  -DCMAKE_CXX_FLAGS="-fclang-abi-compat=17 -Xclang -fno-pch-timestamp" \
  -DCENTERLOSS_SANITIZE=ON -DCENTERLOSS_FUZZ=ON -DCENTERLOSS_WERROR=OFF \
  -DCENTERLOSS_WITH_CUDA=OFF -DCENTERLOSS_BUILD_BENCH=OFF -DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON \
  -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=8 -DCENTERLOSS_TEST_PER_PROGRAM=ON \
  -DCMAKE_PREFIX_PATH="$$($(PY) -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
  -DPython3_EXECUTABLE="$(CURDIR)/$(PY)" -DCMAKE_CXX_COMPILER_LAUNCHER=ccache

$(ASAN_BUILD)/build.ninja: deps CMakeLists.txt
	cmake -S . -B $(ASAN_BUILD) $(ASAN_CMAKE_ARGS)

asan-build: $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $$(nproc)

# The C++ tests under the sanitizers (the install tests, which pip-install a package, are not).
asan: asan-build
	cd $(ASAN_BUILD) && $(SANITIZER_ENV) ctest -LE install --output-on-failure -j 2 --timeout 900

# Each target runs FUZZ_SECONDS from its committed seeds and regressions (scripts/run_fuzz.sh);
# a crash leaves its input in $(ASAN_BUILD)/fuzz/ and fails.
fuzz: asan-build
	$(SANITIZER_ENV) scripts/run_fuzz.sh $(ASAN_BUILD)/tests/fuzz $(ASAN_BUILD)/fuzz \
	  $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# A quicker sanitizer check of the library alone: the same build without the trainer (the
# library, its C++ tests, the op's fuzz target) in $(ASAN_CORE_BUILD)/, its tests, then the op
# target fuzzed CORE_FUZZ_SECONDS. CI runs the whole of it: `make asan` and `make fuzz`.
ASAN_CORE_BUILD ?= build-asan-core
CORE_FUZZ_SECONDS ?= 30
$(ASAN_CORE_BUILD)/build.ninja: deps CMakeLists.txt
	cmake -S . -B $(ASAN_CORE_BUILD) $(ASAN_CMAKE_ARGS) -DCENTERLOSS_BUILD_TRAINER=OFF

asan-core: $(ASAN_CORE_BUILD)/build.ninja
	cmake --build $(ASAN_CORE_BUILD) -j $$(nproc)
	cd $(ASAN_CORE_BUILD) && $(SANITIZER_ENV) ctest -LE install --output-on-failure -j 2 --timeout 900
	$(SANITIZER_ENV) scripts/run_fuzz.sh $(ASAN_CORE_BUILD)/tests/fuzz $(ASAN_CORE_BUILD)/fuzz \
	  $(CORE_FUZZ_SECONDS) op

# The parsers that need no LibTorch (tests/sanitizers/CMakeLists.txt), built alone under ASan +
# UBSan in about a minute and fuzzed PARSER_FUZZ_SECONDS each, without LibTorch or the trainer.
ASAN_PARSERS_BUILD ?= build-asan-parsers
PARSER_FUZZ_SECONDS ?= 20
PARSER_FUZZ_TARGETS = image zip pairs metrics
$(ASAN_PARSERS_BUILD)/build.ninja: $(BUILD)/.system-deps tests/sanitizers/CMakeLists.txt
	cmake -S tests/sanitizers -B $(ASAN_PARSERS_BUILD) -G Ninja \
	  -DCMAKE_CXX_COMPILER=$(SANITIZER_CXX) -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_CXX_FLAGS_RELEASE="-O1 -gline-tables-only" -DCMAKE_CXX_COMPILER_LAUNCHER=ccache

asan-parsers: $(ASAN_PARSERS_BUILD)/build.ninja
	cmake --build $(ASAN_PARSERS_BUILD) -j $$(nproc)
	$(SANITIZER_ENV) scripts/run_fuzz.sh $(ASAN_PARSERS_BUILD) $(ASAN_PARSERS_BUILD)/fuzz \
	  $(PARSER_FUZZ_SECONDS) $(PARSER_FUZZ_TARGETS)
