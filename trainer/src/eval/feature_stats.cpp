#include "eval/feature_stats.h"

#include <torch/torch.h>

#include <limits>
#include <map>
#include <set>
#include <stdexcept>

namespace centerloss::eval {

FeatureStats feature_stats(const torch::Tensor& features, const std::vector<int64_t>& labels,
                           const std::vector<int64_t>& classes) {
  if (features.dim() != 2 || !features.is_floating_point()) {
    throw std::invalid_argument("features must be a 2-D floating tensor [N, D]");
  }
  if (static_cast<int64_t>(labels.size()) != features.size(0)) {
    throw std::invalid_argument("labels must have one entry per feature row");
  }
  const std::set<int64_t> wanted(classes.begin(), classes.end());
  std::vector<int64_t> rows, row_class;
  std::map<int64_t, int64_t> slot;  // class -> dense index
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!wanted.empty() && !wanted.count(labels[i])) continue;
    rows.push_back(static_cast<int64_t>(i));
    row_class.push_back(slot.emplace(labels[i], int64_t(slot.size())).first->second);
  }
  if (rows.empty()) throw std::invalid_argument("classes: no feature row belongs to them");
  const int64_t k = static_cast<int64_t>(slot.size());
  const auto x =
      features.to(torch::kCPU, torch::kFloat64).index_select(0, torch::tensor(rows, torch::kInt64));
  const auto y = torch::tensor(row_class, torch::kInt64);
  const auto counts = torch::zeros({k}, torch::kFloat64)
                          .index_add_(0, y, torch::ones({x.size(0)}, torch::kFloat64));
  const auto means =
      torch::zeros({k, x.size(1)}, torch::kFloat64).index_add_(0, y, x) / counts.unsqueeze(1);
  FeatureStats s;
  s.classes = k;
  s.samples = static_cast<int64_t>(rows.size());
  s.intra = (x - means.index_select(0, y)).norm(2, 1).mean().item<double>();
  if (k > 1) {
    // Explicit differences: exact, and k is small.
    const auto d = (means.unsqueeze(0) - means.unsqueeze(1)).norm(2, 2);
    const auto upper = torch::triu(torch::ones({k, k}, torch::kBool), /*diagonal=*/1);
    s.inter = d.masked_select(upper).mean().item<double>();
  }
  s.ratio = s.inter > 0 ? s.intra / s.inter : std::numeric_limits<double>::infinity();
  return s;
}

}  // namespace centerloss::eval
