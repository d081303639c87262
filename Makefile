# The two set-up commands: `make demo` (main job) and `make test` (the suite). Each installs
# what it needs: Debian packages (scripts/install_system_deps.sh) and a virtual environment in
# .venv with the pinned Python packages (requirements.txt).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUILD ?= build
THREADS ?= 2
CMAKE_ARGS ?=

.PHONY: all deps build test test-cpp test-python demo clean

all: build

$(BUILD)/.system-deps: scripts/install_system_deps.sh
	bash scripts/install_system_deps.sh
	@mkdir -p $(BUILD) && touch $@

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	echo "$(CURDIR)/python" > "$$($(PY) -c 'import site; print(site.getsitepackages()[0])')/centerloss-dev.pth"
	touch $@

deps: $(BUILD)/.system-deps $(VENV)/.installed

$(BUILD)/build.ninja: deps CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja \
	  -DCMAKE_PREFIX_PATH="$$($(PY) -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
	  -DPython3_EXECUTABLE="$(CURDIR)/$(PY)" \
	  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache $(CMAKE_ARGS)

build: $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $$(nproc)

test-cpp: build
	cd $(BUILD) && OMP_NUM_THREADS=$(THREADS) ctest --output-on-failure -j 2

test-python: build
	OMP_NUM_THREADS=$(THREADS) $(PY) -m pytest -q tests/python

test: test-cpp test-python

demo: build
	@echo "make demo: the trainer does not exist yet; running the C++ smoke test"
	$(BUILD)/tests/cpp/test_smoke

clean:
	rm -rf $(BUILD)
