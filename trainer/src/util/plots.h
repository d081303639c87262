// Figures are drawn by the matplotlib scripts in scripts/plots/, run with the virtual
// environment's python (the one CMake was configured with).
#pragma once

#include <string>
#include <vector>

namespace centerloss::trainer {

// The python that runs the scripts: $CENTERLOSS_PYTHON if set, else the configured one.
std::string default_python();

// Runs scripts/plots/<script> with `args`; returns false (after printing the command) if it
// failed, so a missing matplotlib never loses a finished run.
bool run_plot_script(const std::string& python, const std::string& script,
                     const std::vector<std::string>& args);

}  // namespace centerloss::trainer
