// Rows grouped by class for the CPU center step (csrc/cpu/class_groups.h): counting sort for
// K <= 2N, radix sort with digits sized to the batch otherwise (one pass up to many). Whatever
// the path, the groups must partition the batch, one class each, in class order, each group's
// rows in batch order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "cpu/class_groups.h"

namespace {

void expect_grouped(const std::vector<int64_t>& y, int64_t num_classes) {
  const auto n = static_cast<int64_t>(y.size());
  const auto g = centerloss::kernels::cpu::group_by_class(y.data(), n, num_classes);
  SCOPED_TRACE(testing::Message() << "N = " << n << ", K = " << num_classes);
  ASSERT_EQ(static_cast<int64_t>(g.order.size()), n);
  std::vector<int64_t> sorted = g.order;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(sorted[i], i) << "order is not a permutation";
  ASSERT_EQ(g.size(), static_cast<int64_t>(std::set<int64_t>(y.begin(), y.end()).size()));
  ASSERT_EQ(g.group_start.front(), 0);
  ASSERT_EQ(g.group_start.back(), n);
  for (int64_t k = 0; k < g.size(); ++k) {
    const int64_t first = g.group_start[k], last = g.group_start[k + 1];
    ASSERT_LT(first, last);
    for (int64_t r = first; r < last; ++r) {
      ASSERT_EQ(y[g.order[r]], y[g.order[first]]) << "two classes in group " << k;
      if (r > first) {
        ASSERT_LT(g.order[r - 1], g.order[r]) << "rows out of batch order";
      }
    }
    if (k > 0) {
      ASSERT_LT(y[g.order[g.group_start[k - 1]]], y[g.order[first]]) << "groups out of class order";
    }
  }
}

}  // namespace

TEST(ClassGroups, EveryPathPartitionsTheBatchByClassInOrder) {
  std::mt19937_64 rng(11);
  const int64_t table_sizes[] = {3, 10, 1000, 1'000'000, int64_t(1) << 40};
  for (int64_t n : {1, 2, 5, 17, 128, 600, 4096}) {
    for (int64_t k : table_sizes) {
      std::uniform_int_distribution<int64_t> label(0, k - 1);
      std::vector<int64_t> y(static_cast<size_t>(n));
      for (auto& v : y) v = label(rng);
      expect_grouped(y, k);
      // Repeated labels, and the largest label (all bits of K - 1 in use).
      for (int64_t i = 0; i < n; i += 3) y[i] = k - 1;
      expect_grouped(y, k);
    }
  }
}
