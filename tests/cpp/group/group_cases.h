// The process-group tests' cases, shared by the worker processes (group_worker.cpp) and the
// one-process references (tests/cpp/test_process_group.cpp): every rank's batch of every step,
// and the module options of each case.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <limits>
#include <string>
#include <vector>

#include "centerloss/center_loss.h"

namespace centerloss::testing {

inline constexpr int64_t kClasses = 7;
inline constexpr int64_t kDim = 3;
inline constexpr int kSteps = 4;
inline constexpr int kNanStep = 2;  // rank 1's batch of this step holds a NaN

struct GroupCase {
  std::string name;
  bool sharded;
  bool disjoint;  // rank r's labels are only the classes j with j % W == r
  CenterLossOptions options;
};

inline std::vector<GroupCase> group_cases() {
  using O = CenterLossOptions;
  return {
      {"replicated_normal", false, false, O(kClasses, kDim).init(Init::Normal)},
      {"replicated_first_sight", false, false, O(kClasses, kDim).init(Init::FirstSight)},
      {"sharded_first_sight", true, false, O(kClasses, kDim).init(Init::FirstSight)},
      // Another reduction, rule and a margin: the sharded loss and gradient are still bitwise.
      {"replicated_disjoint", false, true,
       O(kClasses, kDim).reduction(Reduction::Sum).update(UpdateRule::Mean).margin(0.3)},
      {"sharded_disjoint", true, true,
       O(kClasses, kDim).reduction(Reduction::Sum).update(UpdateRule::Mean).margin(0.3)},
  };
}

// Rank `rank`'s batch at `step`: 5 + 3 * rank rows (ranks differ in N).
inline std::pair<torch::Tensor, torch::Tensor> group_batch(int rank, int world, int step,
                                                           bool disjoint) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 * step + rank + 1);
  const int64_t n = 5 + 3 * rank;
  torch::Tensor x = torch::randn({n, kDim}, gen);
  torch::Tensor y = torch::randint(kClasses, {n}, gen, torch::kLong);
  if (disjoint) {  // classes rank, rank + W, ...: every class seen by one rank only
    const int64_t mine = (kClasses - rank + world - 1) / world;
    y = torch::randint(mine, {n}, gen, torch::kLong) * world + rank;
  }
  if (step == kNanStep && rank == 1) x[1][2] = std::numeric_limits<float>::quiet_NaN();
  return {x, y};
}

}  // namespace centerloss::testing
