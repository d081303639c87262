// The C++ functional API of include/centerloss/ops.h, and the internal calls of
// dispatch_calls.h: every one a dispatcher call of a registered op.
#include <ATen/ATen.h>

#include "centerloss/ops.h"
#include "dispatch_calls.h"
#include "typed_op.h"

namespace centerloss {

using at::Tensor;

namespace op {

std::tuple<Tensor, Tensor> call_forward(const Tensor& features, const Tensor& labels,
                                        const Tensor& centers, double margin, int64_t reduction) {
  static const auto op = typed_op<std::tuple<Tensor, Tensor>(
      const Tensor&, const Tensor&, const Tensor&, double, int64_t)>("forward");
  return op.call(features, labels, centers, margin, reduction);
}

Tensor call_backward(const Tensor& grad_loss, const Tensor& grad_basis) {
  static const auto op = typed_op<Tensor(const Tensor&, const Tensor&)>("backward");
  return op.call(grad_loss, grad_basis);
}

std::tuple<Tensor, Tensor> call_forward_step(const Tensor& features, const Tensor& labels,
                                             Tensor& centers, Tensor& skipped, double margin,
                                             int64_t reduction, double alpha, int64_t rule) {
  static const auto op =
      typed_op<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, Tensor&, Tensor&, double,
                                          int64_t, double, int64_t)>("_forward_step_");
  return op.call(features, labels, centers, skipped, margin, reduction, alpha, rule);
}

}  // namespace op

Tensor center_loss(const Tensor& features, const Tensor& labels, const Tensor& centers,
                   double margin, Reduction reduction) {
  static const auto op = op::typed_op<Tensor(const Tensor&, const Tensor&, const Tensor&, double,
                                             int64_t)>("center_loss");
  return op.call(features, labels, centers, margin, static_cast<int64_t>(reduction));
}

Tensor update_centers_(Tensor& centers, const Tensor& features, const Tensor& labels,
                       double alpha, UpdateRule rule) {
  static const auto op =
      op::typed_op<Tensor(Tensor&, const Tensor&, const Tensor&, double, int64_t)>(
          "update_centers_");
  return op.call(centers, features, labels, alpha, static_cast<int64_t>(rule));
}

int64_t init_centers_first_sight_(Tensor& centers, Tensor& seen, const Tensor& features,
                                  const Tensor& labels) {
  static const auto op =
      op::typed_op<Tensor(Tensor&, Tensor&, const Tensor&, const Tensor&)>(
          "init_centers_first_sight_");
  return op.call(centers, seen, features, labels).item<int64_t>();
}

namespace detail {
Tensor center_loss_step_(const Tensor& features, const Tensor& labels, Tensor& centers,
                         Tensor& skipped, double margin, Reduction reduction, double alpha,
                         UpdateRule rule) {
  static const auto op =
      op::typed_op<Tensor(const Tensor&, const Tensor&, Tensor&, Tensor&, double, int64_t,
                          double, int64_t)>("_center_loss_step_");
  return op.call(features, labels, centers, skipped, margin, static_cast<int64_t>(reduction),
                 alpha, static_cast<int64_t>(rule));
}
}  // namespace detail

bool has_cuda_kernels() {
#if defined(CENTERLOSS_WITH_CUDA)
  return true;
#else
  return false;
#endif
}

}  // namespace centerloss
