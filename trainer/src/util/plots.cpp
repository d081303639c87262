#include "util/plots.h"

#include <fmt/format.h>

#include <cstdlib>

namespace centerloss::trainer {
namespace {

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string default_python() {
  const char* env = std::getenv("CENTERLOSS_PYTHON");
  return env != nullptr && *env != '\0' ? env : CENTERLOSS_PLOT_PYTHON;
}

bool run_plot_script(const std::string& python, const std::string& script,
                     const std::vector<std::string>& args) {
  std::string command = shell_quote(python) + " " +
                        shell_quote(std::string(CENTERLOSS_PLOT_SCRIPTS) + "/" + script);
  for (const auto& arg : args) command += " " + shell_quote(arg);
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    fmt::print(stderr, "warning: plotting failed (exit status {}): {}\n", rc, command);
    return false;
  }
  return true;
}

}  // namespace centerloss::trainer
