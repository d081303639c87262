// Backend-independent bodies of the registered ops: check every argument, bring the inputs
// into the layout the kernels expect, then call one backend's kernel. Instantiated once per
// backend (csrc/ops.cpp for CPU, csrc/cuda/register_cuda.cpp for CUDA), so the checks and the
// preparation exist once.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>

#include <tuple>
#include <type_traits>
#include <utility>

#include "checks.h"

namespace centerloss::op_impl {

// A kernel returning (loss, basis) gets host-checked labels. A kernel returning (loss, basis,
// first_bad) checks them itself (CUDA: fused into the forward kernel): its verdict is read
// after the kernel (the op's one sync); the outputs are fresh tensors and nothing else changed,
// so raising then still leaves every state as it was.
//
//
// Graph capture (CUDA graphs): a captured op cannot read anything back, so it cannot raise for
// a label value; the label values are left to the kernels' guards (spec section 7, under
// capture): a row with a bad label gets a NaN loss and a zero gradient row, the center step is
// skipped and counted as for a non-finite batch, and update_centers_ returns false. The forward
// kernel decides this itself (it returns no verdict while capturing); update_centers asks the
// backend's `Capturing(features)` (the current stream of the features' device). Backends
// without capture (CPU) use never_capturing.
inline bool never_capturing(const at::Tensor&) { return false; }

// check_batch, except that under graph capture the label values are left to the kernels.
template <auto Capturing>
at::Tensor checked_batch(const char* op, const at::Tensor& features, const at::Tensor& labels,
                         const at::Tensor& centers) {
  checks::check_batch_layout(op, features, labels, centers);
  if (Capturing(features)) return checks::labels_as_int64(labels);
  return checks::check_batch_values(op, features, labels, centers);
}
template <auto ForwardKernel>
inline constexpr bool kKernelChecksLabels =
    std::tuple_size_v<decltype(ForwardKernel(std::declval<const at::Tensor&>(),
                                             std::declval<const at::Tensor&>(),
                                             std::declval<const at::Tensor&>(), 0.0,
                                             int64_t{0}))> == 3;

// The forward's argument checks (`op` names the op in the messages). Returns the labels as the
// kernel takes them, contiguous int64, their values checked unless the kernel checks them.
template <auto ForwardKernel>
at::Tensor checked_forward_args(const char* op, const at::Tensor& features,
                                const at::Tensor& labels, const at::Tensor& centers,
                                double margin, int64_t reduction) {
  at::Tensor labels64;
  if constexpr (kKernelChecksLabels<ForwardKernel>) {
    checks::check_batch_layout(op, features, labels, centers);
    labels64 = checks::labels_as_int64(labels);
  } else {
    labels64 = checks::check_batch(op, features, labels, centers);
  }
  checks::check_margin(op, margin);
  checks::check_reduction(op, reduction);
  return labels64;
}

// The kernel on checked arguments (labels64 from checked_forward_args); raises for a bad label
// that the kernel reported (it reports none under graph capture, see never_capturing).
template <auto ForwardKernel>
std::tuple<at::Tensor, at::Tensor> run_forward(const char* op, const at::Tensor& features,
                                               const at::Tensor& labels64,
                                               const at::Tensor& centers, double margin,
                                               int64_t reduction) {
  const c10::DeviceGuard guard(features.device());
  auto result = ForwardKernel(features.contiguous(), labels64, centers.contiguous(), margin,
                              reduction);
  if constexpr (kKernelChecksLabels<ForwardKernel>) {
    const at::Tensor& first_bad = std::get<2>(result);
    if (first_bad.defined()) {
      const int64_t position = first_bad.template item<int64_t>();
      if (position >= 0) checks::fail_bad_label(op, labels64, position, centers.size(0));
    }
    return {std::get<0>(result), std::get<1>(result)};
  } else {
    return result;
  }
}

template <auto ForwardKernel>
std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& features, const at::Tensor& labels,
                                           const at::Tensor& centers, double margin,
                                           int64_t reduction) {
  static constexpr const char* op = "centerloss.forward";
  const at::Tensor labels64 =
      checked_forward_args<ForwardKernel>(op, features, labels, centers, margin, reduction);
  return run_forward<ForwardKernel>(op, features, labels64, centers, margin, reduction);
}

// The backward's argument checks, and its loss gradient as the kernels read it (in their
// accumulation dtype, contiguous). Also for the CPU autograd path that scales the saved basis
// without the op (ops.cpp, features_gradient).
inline at::Tensor checked_backward_scale(const char* op, const at::Tensor& grad_loss,
                                         const at::Tensor& grad_basis) {
  TORCH_CHECK(grad_basis.dim() == 2, op, ": grad_basis must be 2-D [N, D], got shape ",
              grad_basis.sizes());
  TORCH_CHECK(grad_loss.dim() == 0 || (grad_loss.dim() == 1 && grad_loss.size(0) == grad_basis.size(0)),
              op, ": grad_loss must be a scalar or have shape [N] = [", grad_basis.size(0),
              "], got shape ", grad_loss.sizes());
  TORCH_CHECK(grad_loss.device() == grad_basis.device(), op, ": grad_loss is on ",
              grad_loss.device(), " but grad_basis is on ", grad_basis.device());
  return grad_loss.to(grad_basis.scalar_type() == at::kDouble ? at::kDouble : at::kFloat)
      .contiguous();
}

template <auto BackwardKernel>
at::Tensor backward(const at::Tensor& grad_loss, const at::Tensor& grad_basis) {
  static constexpr const char* op = "centerloss.backward";
  const at::Tensor scale = checked_backward_scale(op, grad_loss, grad_basis);
  const c10::DeviceGuard guard(grad_basis.device());
  return BackwardKernel(scale, grad_basis.contiguous());
}

// Runs `step(work)` on the centers, or on a contiguous copy that is written back (strided
// centers). A kernel that skips its step writes nothing, so copying back is always right.
template <typename Step>
auto on_contiguous_centers(at::Tensor& centers, Step&& step) {
  if (centers.is_contiguous()) return step(centers);
  at::Tensor work = centers.contiguous();
  auto result = step(work);
  centers.copy_(work);
  return result;
}

template <auto UpdateKernel, auto Capturing = never_capturing>
at::Tensor update_centers(at::Tensor& centers, const at::Tensor& features,
                          const at::Tensor& labels, double alpha, int64_t rule) {
  static constexpr const char* op = "centerloss.update_centers_";
  const at::Tensor labels64 = checked_batch<Capturing>(op, features, labels, centers);
  checks::check_alpha(op, alpha);
  checks::check_update_rule(op, rule);
  const c10::DeviceGuard guard(features.device());
  if (features.size(0) == 0) return at::scalar_tensor(true, centers.options().dtype(at::kBool));
  const at::Tensor x = features.contiguous();
  // A kernel returns bool (host verdict, CPU) or a 0-d bool tensor (device verdict, CUDA: no
  // sync).
  return on_contiguous_centers(centers, [&](at::Tensor& work) -> at::Tensor {
    auto applied = UpdateKernel(work, x, labels64, alpha, rule);
    if constexpr (std::is_same_v<decltype(applied), bool>) {
      return at::scalar_tensor(applied, centers.options().dtype(at::kBool));
    } else {
      return applied;
    }
  });
}

// The module's training step (op _forward_step_): the loss and basis of forward on the centers
// as they are, then the center step of update_centers, whose verdict goes to the skip counter
// (+1 for a non-finite batch). Labels are host-checked first, so a bad label raises before
// anything changes. FusedKernel does both (CPU: in one pass where that pays).
template <auto FusedKernel>
std::tuple<at::Tensor, at::Tensor> forward_step(const at::Tensor& features, const at::Tensor& labels,
                                                at::Tensor& centers, at::Tensor& skipped,
                                                double margin, int64_t reduction, double alpha,
                                                int64_t rule) {
  static constexpr const char* op = "centerloss._forward_step_";
  const at::Tensor labels64 = checks::check_batch(op, features, labels, centers);
  checks::check_skip_counter(op, skipped, centers);
  checks::check_margin(op, margin);
  checks::check_reduction(op, reduction);
  checks::check_alpha(op, alpha);
  checks::check_update_rule(op, rule);
  const c10::DeviceGuard guard(features.device());
  const at::Tensor x = features.contiguous();
  return on_contiguous_centers(centers, [&](at::Tensor& work) {
    return FusedKernel(x, labels64, work, skipped, margin, reduction, alpha, rule);
  });
}

// The same op from a backend's separate forward and step kernels (CUDA): the forward's own
// label check raises before the step runs; the step counts its verdict on the device (no sync).
template <auto ForwardKernel, auto StepKernel>
std::tuple<at::Tensor, at::Tensor> forward_then_step(const at::Tensor& features,
                                                     const at::Tensor& labels, at::Tensor& centers,
                                                     at::Tensor& skipped, double margin,
                                                     int64_t reduction, double alpha, int64_t rule) {
  static constexpr const char* op = "centerloss._forward_step_";
  // Every check before any work; the label values are checked by the forward kernel, which
  // raises before the step runs (under capture: the step's guard skips it).
  const at::Tensor labels64 =
      checked_forward_args<ForwardKernel>(op, features, labels, centers, margin, reduction);
  checks::check_skip_counter(op, skipped, centers);
  checks::check_alpha(op, alpha);
  checks::check_update_rule(op, rule);
  const at::Tensor x = features.contiguous();  // once for both kernels
  auto result = run_forward<ForwardKernel>(op, x, labels64, centers, margin, reduction);
  if (features.size(0) == 0) return result;
  const c10::DeviceGuard guard(features.device());
  on_contiguous_centers(centers, [&](at::Tensor& work) {
    StepKernel(work, skipped, x, labels64, alpha, rule);
    return 0;
  });
  return result;
}

}  // namespace centerloss::op_impl
