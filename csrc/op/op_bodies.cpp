#include "op_bodies.h"

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>

#include "checks.h"
#include "outputs.h"

namespace centerloss::op {
namespace {

void raise_for_bad_label(const char* op, const LabelVerdict& verdict, const at::Tensor& labels64,
                         int64_t num_classes) {
  const int64_t position = verdict.first_bad();
  if (position >= 0) checks::fail_bad_label(op, labels64, position, num_classes);
}

// Runs `step(work)` on the centers, or on a contiguous copy written back (strided centers).
// A step that changes nothing leaves the copy equal, so copying back is always right.
template <typename Step>
auto on_contiguous_centers(at::Tensor& centers, Step&& step) {
  if (centers.is_contiguous()) return step(centers);
  at::Tensor work = centers.contiguous();
  auto result = step(work);
  centers.copy_(work);
  return result;
}

}  // namespace

const Backend& backend_for(c10::Device device) {
#if defined(CENTERLOSS_WITH_CUDA)
  if (device.is_cuda()) return cuda_backend();
#endif
  TORCH_CHECK(!device.is_cuda(),
              "centerloss was built without its CUDA kernels (CENTERLOSS_WITH_CUDA=OFF): "
              "move the tensors to the CPU or rebuild with CUDA");
  TORCH_CHECK(device.is_cpu(), "centerloss: no kernels for tensors on ", device);
  return cpu_backend();
}

std::tuple<at::Tensor, at::Tensor> forward(const Backend& backend, const at::Tensor& features,
                                           const at::Tensor& labels, const at::Tensor& centers,
                                           double margin, int64_t reduction) {
  static constexpr const char* op = "centerloss.forward";
  const at::Tensor labels64 = checks::check_batch(op, features, labels, centers);
  checks::check_margin(op, margin);
  checks::check_reduction(op, reduction);
  if (features.size(0) == 0) {
    auto out = forward_outputs_of_empty_batch(features, centers, reduction);
    return {out.loss, out.grad_basis};
  }
  const c10::DeviceGuard guard(features.device());
  ForwardOutputs out = empty_forward_outputs(features, centers, reduction);
  raise_for_bad_label(op,
                      backend.forward(features.contiguous(), labels64, centers.contiguous(),
                                      margin, reduction, out),
                      labels64, centers.size(0));
  return {out.loss, out.grad_basis};
}

at::Tensor backward(const Backend& backend, const at::Tensor& grad_loss,
                    const at::Tensor& grad_basis) {
  checks::check_backward("centerloss.backward", grad_loss, grad_basis);
  at::Tensor grad_features = at::empty_like(grad_basis, at::MemoryFormat::Contiguous);
  if (grad_basis.numel() == 0) return grad_features;
  const c10::DeviceGuard guard(grad_basis.device());
  backend.backward(backward_scale(grad_loss, grad_basis), grad_basis.contiguous(), grad_features);
  return grad_features;
}

at::Tensor update_centers(const Backend& backend, at::Tensor& centers,
                          const at::Tensor& features, const at::Tensor& labels, double alpha,
                          int64_t rule) {
  static constexpr const char* op = "centerloss.update_centers_";
  const at::Tensor labels64 = checks::check_batch(op, features, labels, centers);
  checks::check_alpha(op, alpha);
  checks::check_update_rule(op, rule);
  if (features.size(0) == 0) return at::scalar_tensor(true, centers.options().dtype(at::kBool));
  const c10::DeviceGuard guard(features.device());
  // Under graph capture the label values are left to the kernel's guard (spec section 7).
  if (!backend.capturing(features)) {
    const int64_t bad = backend.first_bad_label(labels64, centers.size(0));
    raise_for_bad_label(op, LabelVerdict::on_host(bad), labels64, centers.size(0));
  }
  const at::Tensor x = features.contiguous();
  return on_contiguous_centers(centers, [&](at::Tensor& work) {
    return backend.update_centers(work, x, labels64, alpha, rule);
  });
}

std::tuple<at::Tensor, at::Tensor> forward_step(const Backend& backend,
                                                const at::Tensor& features,
                                                const at::Tensor& labels, at::Tensor& centers,
                                                at::Tensor& skipped, double margin,
                                                int64_t reduction, double alpha, int64_t rule) {
  static constexpr const char* op = "centerloss._forward_step_";
  const at::Tensor labels64 = checks::check_batch(op, features, labels, centers);
  checks::check_skip_counter(op, skipped, centers);
  checks::check_margin(op, margin);
  checks::check_reduction(op, reduction);
  checks::check_alpha(op, alpha);
  checks::check_update_rule(op, rule);
  if (features.size(0) == 0) {
    auto out = forward_outputs_of_empty_batch(features, centers, reduction);
    return {out.loss, out.grad_basis};
  }
  const c10::DeviceGuard guard(features.device());
  ForwardOutputs out = empty_forward_outputs(features, centers, reduction);
  const at::Tensor x = features.contiguous();
  const LabelVerdict verdict = on_contiguous_centers(centers, [&](at::Tensor& work) {
    return backend.forward_step(x, labels64, work, skipped, margin, reduction, alpha, rule, out);
  });
  raise_for_bad_label(op, verdict, labels64, centers.size(0));
  return {out.loss, out.grad_basis};
}

}  // namespace centerloss::op
