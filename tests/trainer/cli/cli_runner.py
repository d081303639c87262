"""The trainer's command line for the end-to-end tests: $CENTERLOSS_CLI (the Makefile sets it
to the build's binary), else the default build folder. A test module calls require_cli() at
import, which skips the module when neither exists."""
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CLI = os.environ.get("CENTERLOSS_CLI") or os.path.join(ROOT, "build", "trainer", "centerloss")


def require_cli():
    if "CENTERLOSS_CLI" not in os.environ and not os.path.exists(CLI):
        pytest.skip("no trainer build (set CENTERLOSS_CLI)", allow_module_level=True)


def run(*args, check=True):
    """Runs `centerloss ARGS`; with check, a non-zero exit fails the test with its output."""
    result = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result
