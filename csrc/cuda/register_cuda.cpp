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

}  // namespace

TORCH_LIBRARY_IMPL(centerloss, CUDA, m) {
  m.impl("forward", &op_impl::forward<kernels::forward_cuda>);
  m.impl("_step_centers_", &op_impl::step_centers<kernels::step_centers_cuda>);
  m.impl("backward", &op_impl::backward<kernels::backward_cuda>);
  m.impl("update_centers_", &op_impl::update_centers<update_centers_cuda_auto>);
}

}  // namespace centerloss
