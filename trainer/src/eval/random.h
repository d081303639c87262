// Portable random draws for the evaluation samplers: the same seed gives the same pairs and
// galleries on every platform (std::uniform_int_distribution does not promise that).
#pragma once

#include <cstdint>
#include <random>

namespace centerloss::eval {

// Uniform integer in [0, n), n > 0, by rejection.
inline uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // largest multiple of n, exclusive
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

}  // namespace centerloss::eval
