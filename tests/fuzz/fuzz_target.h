// One fuzz target = one function of (bytes, size), declared with CENTERLOSS_FUZZ_TARGET(name),
// which registers it by name (fuzz_registry.cpp). The target files are compiled once and
// linked into two kinds of program:
//  - fuzz_replay (every build): runs a target on the files of its seed corpus and its
//    regression inputs (CTest: fuzz_corpus_<name>), so that a crash found once stays fixed
//    under any compiler;
//  - fuzz_<name> (clang, CENTERLOSS_FUZZ; `make fuzz`): libFuzzer, whose entry point
//    (libfuzzer_entry.cpp) calls the target of that name.
// A target returns 0; it reports a bug by crashing (FUZZ_CHECK aborts with a message).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

using FuzzFunction = int (*)(const uint8_t* data, size_t size);

bool register_fuzz_target(const char* name, FuzzFunction function);
FuzzFunction find_fuzz_target(const char* name);  // nullptr if there is none
void print_fuzz_targets();                        // their names, on stderr

#define CENTERLOSS_FUZZ_TARGET(name)                                              \
  static int fuzz_##name(const uint8_t* data, size_t size);                       \
  [[maybe_unused]] static const bool fuzz_##name##_registered =                   \
      register_fuzz_target(#name, fuzz_##name);                                   \
  static int fuzz_##name(const uint8_t* data, size_t size)

// A property that must hold for every input: abort (a finding) when it does not.
#define FUZZ_CHECK(condition, ...)                                                  \
  do {                                                                              \
    if (!(condition)) {                                                             \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: ", __FILE__, __LINE__, #condition); \
      std::fprintf(stderr, __VA_ARGS__);                                            \
      std::fprintf(stderr, "\n");                                                   \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)
