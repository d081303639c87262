// The table of fuzz targets, filled by CENTERLOSS_FUZZ_TARGET at static initialisation.
#include <map>
#include <string>

#include "fuzz_target.h"

namespace {
std::map<std::string, FuzzFunction>& targets() {
  static std::map<std::string, FuzzFunction> table;
  return table;
}
}  // namespace

bool register_fuzz_target(const char* name, FuzzFunction function) {
  targets()[name] = function;
  return true;
}

FuzzFunction find_fuzz_target(const char* name) {
  const auto it = targets().find(name);
  return it == targets().end() ? nullptr : it->second;
}

void print_fuzz_targets() {
  for (const auto& entry : targets()) std::fprintf(stderr, " %s", entry.first.c_str());
  std::fprintf(stderr, "\n");
}
