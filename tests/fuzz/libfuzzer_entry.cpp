// libFuzzer's entry point for the program fuzz_<CENTERLOSS_FUZZ_TARGET_NAME>.
#include "fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const FuzzFunction target = [] {
    const FuzzFunction found = find_fuzz_target(CENTERLOSS_FUZZ_TARGET_NAME);
    if (found == nullptr) {
      std::fprintf(stderr, "no fuzz target '%s'; there are:", CENTERLOSS_FUZZ_TARGET_NAME);
      print_fuzz_targets();
      std::abort();
    }
    return found;
  }();
  return target(data, size);
}
