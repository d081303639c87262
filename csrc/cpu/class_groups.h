// Batch rows grouped by class, for the center step: built in O(N) whatever K is, with a counting
// sort when K <= 2N and a radix sort otherwise (a comparison sort was the largest cost at small
// D). Integer code, compiled once (not per instruction set).
#pragma once

#include <cstdint>
#include <vector>

namespace centerloss::kernels::cpu {

// order[group_start[g] .. group_start[g+1]) are the batch positions of group g's class, in
// increasing position; groups in class order. Which task sums a group, and in which order the
// groups come, never changes the bits: each group is summed by one task in batch order.
struct ClassGroups {
  std::vector<int64_t> order;
  std::vector<int64_t> group_start;

  int64_t size() const { return static_cast<int64_t>(group_start.size()) - 1; }
};

// y: N >= 1 labels, each in [0, K).
ClassGroups group_by_class(const int64_t* y, int64_t n, int64_t num_classes);

}  // namespace centerloss::kernels::cpu
