#include "eval/similarity.h"

#include <torch/torch.h>

#include <stdexcept>

namespace centerloss::eval {

torch::Tensor l2_normalize(const torch::Tensor& features) {
  if (features.dim() != 2 || !features.is_floating_point()) {
    throw std::invalid_argument("features must be a 2-D floating tensor [N, D]");
  }
  const auto norm = features.norm(2, 1, /*keepdim=*/true);
  // Zero rows stay zero instead of becoming NaN.
  return features / torch::where(norm > 0, norm, torch::ones_like(norm));
}

std::vector<double> pair_scores(const torch::Tensor& features, const std::vector<Pair>& pairs,
                                Similarity similarity) {
  if (features.dim() != 2 || !features.is_floating_point()) {
    throw std::invalid_argument("features must be a 2-D floating tensor [N, D]");
  }
  const int64_t n = features.size(0);
  std::vector<int64_t> ia, ib;
  ia.reserve(pairs.size());
  ib.reserve(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (pairs[i].a < 0 || pairs[i].a >= n || pairs[i].b < 0 || pairs[i].b >= n) {
      throw std::invalid_argument("pairs[" + std::to_string(i) + "] indexes a sample outside [0, " +
                                  std::to_string(n) + ")");
    }
    ia.push_back(pairs[i].a);
    ib.push_back(pairs[i].b);
  }
  auto x = features.to(torch::kCPU, torch::kFloat64);
  if (similarity == Similarity::Cosine) x = l2_normalize(x);
  const auto a = x.index_select(0, torch::tensor(ia, torch::kInt64));
  const auto b = x.index_select(0, torch::tensor(ib, torch::kInt64));
  const auto s = similarity == Similarity::Cosine ? (a * b).sum(1) : -(a - b).norm(2, 1);
  const auto c = s.contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace centerloss::eval
