// Meta (shape-only) kernels of the ops, for torch.compile and fake tensors: the same checks of
// metadata and the same output shapes and dtypes (outputs.h) as the CPU and CUDA kernels.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "checks.h"
#include "outputs.h"

namespace centerloss::op {
namespace {

using at::Tensor;

std::tuple<Tensor, Tensor> forward_meta(const Tensor& features, const Tensor& labels,
                                        const Tensor& centers, double margin,
                                        int64_t reduction) {
  static constexpr const char* op = "centerloss.forward";
  checks::check_batch_layout(op, features, labels, centers);
  checks::check_margin(op, margin);
  checks::check_reduction(op, reduction);
  auto out = empty_forward_outputs(features, centers, reduction);
  return {out.loss, out.grad_basis};
}

Tensor backward_meta(const Tensor& grad_loss, const Tensor& grad_basis) {
  checks::check_backward("centerloss.backward", grad_loss, grad_basis);
  return at::empty_like(grad_basis, at::MemoryFormat::Contiguous);
}

Tensor update_centers_meta(Tensor& centers, const Tensor& features, const Tensor& labels,
                           double alpha, int64_t rule) {
  static constexpr const char* op = "centerloss.update_centers_";
  checks::check_batch_layout(op, features, labels, centers);
  checks::check_alpha(op, alpha);
  checks::check_update_rule(op, rule);
  return at::empty({}, centers.options().dtype(at::kBool));
}

std::tuple<Tensor, Tensor> forward_step_meta(const Tensor& features, const Tensor& labels,
                                             Tensor& centers, Tensor& skipped, double margin,
                                             int64_t reduction, double alpha, int64_t rule) {
  static constexpr const char* op = "centerloss._forward_step_";
  checks::check_batch_layout(op, features, labels, centers);
  checks::check_skip_counter(op, skipped, centers);
  checks::check_margin(op, margin);
  checks::check_reduction(op, reduction);
  checks::check_alpha(op, alpha);
  checks::check_update_rule(op, rule);
  auto out = empty_forward_outputs(features, centers, reduction);
  return {out.loss, out.grad_basis};
}

Tensor init_first_sight_meta(Tensor& centers, Tensor& seen, const Tensor& features,
                             const Tensor& labels) {
  static constexpr const char* op = "centerloss.init_centers_first_sight_";
  checks::check_batch_layout(op, features, labels, centers);
  checks::check_seen(op, seen, centers);
  return at::empty({}, centers.options().dtype(at::kLong));
}

}  // namespace

TORCH_LIBRARY_IMPL(centerloss, Meta, m) {
  m.impl("forward", &forward_meta);
  m.impl("backward", &backward_meta);
  m.impl("update_centers_", &update_centers_meta);
  m.impl("_forward_step_", &forward_step_meta);
  m.impl("init_centers_first_sight_", &init_first_sight_meta);
}

}  // namespace centerloss::op
