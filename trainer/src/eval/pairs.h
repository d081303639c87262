// A verification pair: two sample indices into one data set, whether they share a class, and
// the cross-validation fold the pair belongs to (the LFW protocol's "set").
#pragma once

#include <cstdint>
#include <vector>

namespace centerloss::eval {

struct Pair {
  int64_t a = 0;
  int64_t b = 0;
  bool same = false;
  int fold = 0;
};

// Column views used by the metrics.
std::vector<bool> pair_same(const std::vector<Pair>& pairs);
std::vector<int> pair_fold(const std::vector<Pair>& pairs);

}  // namespace centerloss::eval
