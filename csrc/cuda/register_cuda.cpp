// Registers the CUDA kernels (csrc/cuda/center_loss_cuda.cu) for the centerloss ops. The checks
// and input preparation are the shared ones of csrc/op_impl.h.
#include <ATen/Context.h>
#include <torch/library.h>

#include "../kernels.h"
#include "../op_impl.h"

namespace centerloss {
namespace {

// The deterministic center update is used whenever the framework's deterministic mode is on.
at::Tensor update_centers_cuda_auto(at::Tensor& centers, const at::Tensor& features,
                                    const at::Tensor& labels, double alpha, int64_t rule) {
  return kernels::update_centers_cuda(centers, features, labels, alpha, rule,
                                      at::globalContext().deterministicAlgorithms());
}

// The forward checks labels inside its kernel (csrc/cuda/center_loss_cuda.cu), so the op's one
// sync is the 8-byte read of that verdict, after the kernel: the outputs are fresh tensors and
// nothing else changed, so raising then still leaves every state as it was.
std::tuple<at::Tensor, at::Tensor> forward_cuda_checked(const at::Tensor& features,
                                                        const at::Tensor& labels,
                                                        const at::Tensor& centers, double margin,
                                                        int64_t reduction) {
  static constexpr const char* op = "centerloss.forward";
  checks::check_batch_layout(op, features, labels, centers);
  checks::check_margin(op, margin);
  checks::check_reduction(op, reduction);
  const c10::DeviceGuard guard(features.device());
  const at::Tensor labels64 = checks::labels_as_int64(labels);
  auto [loss, grad_basis, first_bad] = kernels::forward_cuda(
      features.contiguous(), labels64, centers.contiguous(), margin, reduction);
  if (first_bad.defined()) {
    const int64_t position = first_bad.item<int64_t>();
    if (position >= 0) checks::fail_bad_label(op, labels64, position, centers.size(0));
  }
  return {loss, grad_basis};
}

}  // namespace

TORCH_LIBRARY_IMPL(centerloss, CUDA, m) {
  m.impl("forward", &forward_cuda_checked);
  m.impl("_step_centers_", &op_impl::step_centers<kernels::step_centers_cuda>);
  m.impl("backward", &op_impl::backward<kernels::backward_cuda>);
  m.impl("update_centers_", &op_impl::update_centers<update_centers_cuda_auto>);
}

}  // namespace centerloss
