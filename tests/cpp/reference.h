// Plain reference center loss written with ATen primitives (spec section 8), for the C++ tests.
#pragma once

#include <torch/torch.h>

namespace centerloss::testing {

inline torch::Tensor reference_loss(const torch::Tensor& x, const torch::Tensor& y,
                                    const torch::Tensor& c, double margin, int64_t reduction) {
  const auto dtype = (x.scalar_type() == torch::kDouble || c.scalar_type() == torch::kDouble)
                         ? torch::kDouble
                         : torch::kFloat;
  const auto diff = x.to(dtype) - c.to(dtype).index_select(0, y.to(torch::kLong));
  const auto sq = (diff * diff).sum(1);
  const auto per = margin == 0.0 ? 0.5 * sq : 0.5 * (sq.sqrt() - margin).clamp_min(0).pow(2);
  if (reduction == 0) return per;
  if (reduction == 2) return per.sum();
  return per.sum() / std::max<int64_t>(x.size(0), 1);
}

inline torch::Tensor reference_update(const torch::Tensor& c, const torch::Tensor& x,
                                      const torch::Tensor& y, double alpha, bool paper) {
  const auto labels = y.to(torch::kLong);
  const auto sums = torch::zeros_like(c).index_add_(0, labels, c.index_select(0, labels) - x.to(c.scalar_type()));
  const auto counts = torch::bincount(labels, {}, c.size(0)).to(c.scalar_type());
  const auto present = counts > 0;
  const auto denom = (paper ? counts + 1 : counts).clamp_min(1).unsqueeze(1);
  return torch::where(present.unsqueeze(1), c - alpha * sums / denom, c);
}

}  // namespace centerloss::testing
