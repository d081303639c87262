// Registers the CUDA kernels (csrc/cuda/center_loss_cuda.cu) for the centerloss ops. The checks
// and input preparation are the shared ones of csrc/op_impl.h.
#include <torch/library.h>

#include "../kernels.h"
#include "../op_impl.h"

namespace centerloss {

TORCH_LIBRARY_IMPL(centerloss, CUDA, m) {
  m.impl("forward", &op_impl::forward<kernels::forward_cuda>);
  m.impl("backward", &op_impl::backward<kernels::backward_cuda>);
  m.impl("update_centers_",
         &op_impl::update_centers<kernels::update_centers_cuda, kernels::capturing_cuda>);
  m.impl("_forward_step_",
         &op_impl::forward_then_step<kernels::forward_cuda, kernels::step_centers_cuda>);
}

}  // namespace centerloss
