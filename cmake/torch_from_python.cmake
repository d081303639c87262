# Injected by pyproject.toml (CMAKE_PROJECT_INCLUDE) for `pip install`: builds against the torch
# installed in the Python environment that runs pip, so the extension and the torch it loads
# into always match. scikit-build-core sets Python_EXECUTABLE to that interpreter.
if(NOT Python_EXECUTABLE)
  message(FATAL_ERROR "centerloss: Python_EXECUTABLE is not set (this file is for pip builds)")
endif()
# With build isolation pip hides the environment's packages from the build; the environment's
# own site-packages (sysconfig purelib) still holds torch, so look there too.
execute_process(
  COMMAND "${Python_EXECUTABLE}" -c [=[
import os, sys, sysconfig
try:
    import torch.utils
    print(torch.utils.cmake_prefix_path, end="")
except ImportError:
    for key in ("purelib", "platlib"):
        path = os.path.join(sysconfig.get_paths()[key], "torch", "share", "cmake")
        if os.path.isdir(path):
            print(path, end="")
            break
]=]
  OUTPUT_VARIABLE _centerloss_torch_prefix
  RESULT_VARIABLE _centerloss_torch_rc)
if(NOT _centerloss_torch_rc EQUAL 0 OR NOT _centerloss_torch_prefix)
  message(FATAL_ERROR
    "centerloss: no torch found in the Python environment of ${Python_EXECUTABLE}. Install "
    "torch first (pip install torch), then: pip install --no-build-isolation .")
endif()
message(STATUS "centerloss: building against the torch in ${_centerloss_torch_prefix}")
list(PREPEND CMAKE_PREFIX_PATH "${_centerloss_torch_prefix}")
