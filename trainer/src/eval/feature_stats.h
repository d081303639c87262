// Feature statistics: how tightly each class clusters against how far apart the classes are.
//
// Centers here are the class means of the given features (for held-out classes the model has
// no trained center). intra = mean over samples of |x_i - mu_{y_i}|; inter = mean over class
// pairs j < k of |mu_j - mu_k|; ratio = intra / inter (lower is more discriminative, and is
// unchanged by a global scale of the features).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace centerloss::eval {

struct FeatureStats {
  double intra = 0.0;
  double inter = 0.0;  // 0 with a single class
  double ratio = 0.0;  // +inf when inter is 0
  int64_t classes = 0;
  int64_t samples = 0;
};

// features: [N, D] floating (any device); labels[i] >= 0 the class of row i. Only rows whose
// class is in `classes` count (empty: all). Throws std::invalid_argument on shape mismatch or
// when no row is selected.
FeatureStats feature_stats(const torch::Tensor& features, const std::vector<int64_t>& labels,
                           const std::vector<int64_t>& classes = {});

}  // namespace centerloss::eval
