// The op init_centers_first_sight_ (spec section 3, "first sight"): each class's center starts
// as the mean of its features in the first batch that has it. ATen primitives, so one body
// serves every device; it runs once per class, off the hot path.
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include "checks.h"
#include "op_bodies.h"

namespace centerloss::op {
namespace {

using at::Tensor;

Tensor init_first_sight(Tensor& centers, Tensor& seen, const Tensor& features,
                        const Tensor& labels) {
  static constexpr const char* op = "centerloss.init_centers_first_sight_";
  const Tensor labels64 = checks::check_batch(op, features, labels, centers);
  checks::check_seen(op, seen, centers);
  const auto none = at::scalar_tensor(0, centers.options().dtype(at::kLong));
  if (features.size(0) == 0) return none;
  const c10::DeviceGuard guard(features.device());
  const int64_t bad = backend_for(features.device()).first_bad_label(labels64, centers.size(0));
  if (bad >= 0) checks::fail_bad_label(op, labels64, bad, centers.size(0));
  at::NoGradGuard no_grad;
  const Tensor unseen_rows = seen.index_select(0, labels64).logical_not();
  if (!unseen_rows.any().item<bool>()) return none;
  const Tensor x = features.to(centers.scalar_type());
  if (!x.isfinite().all().item<bool>()) return none;  // NaN guard: change nothing
  const Tensor new_labels = labels64.masked_select(unseen_rows);
  const Tensor new_x = x.index_select(0, unseen_rows.nonzero().squeeze(1));
  auto [classes, inverse, counts] =
      at::_unique2(new_labels, /*sorted=*/true, /*return_inverse=*/true, /*return_counts=*/true);
  const Tensor sums = at::zeros({classes.size(0), x.size(1)}, x.options())
                          .index_add_(0, inverse, new_x);
  centers.index_copy_(0, classes, sums.div_(counts.unsqueeze(1).to(sums.scalar_type())));
  seen.index_fill_(0, classes, true);
  return at::scalar_tensor(classes.size(0), centers.options().dtype(at::kLong));
}

}  // namespace

TORCH_LIBRARY_IMPL(centerloss, CompositeExplicitAutograd, m) {
  m.impl("init_centers_first_sight_", &init_first_sight);
}

}  // namespace centerloss::op
