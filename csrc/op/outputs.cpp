#include "outputs.h"

#include <ATen/ATen.h>

#include "center_loss_math.h"
#include "centerloss/types.h"
#include "dispatch.h"

namespace centerloss::op {

at::ScalarType loss_dtype(const at::Tensor& features, const at::Tensor& centers) {
  at::ScalarType dtype = at::kFloat;
  CENTERLOSS_DISPATCH_TYPES(features, centers, "centerloss_loss_dtype", [&] {
    dtype = c10::CppTypeToScalarType<math::forward_acc_t<feat_t, center_t>>::value;
  });
  return dtype;
}

ForwardOutputs empty_forward_outputs(const at::Tensor& features, const at::Tensor& centers,
                                     int64_t reduction) {
  const auto options = features.options().dtype(loss_dtype(features, centers));
  const bool per_sample = reduction == static_cast<int64_t>(Reduction::None);
  return {per_sample ? at::empty({features.size(0)}, options) : at::empty({}, options),
          at::empty_like(features, at::MemoryFormat::Contiguous)};
}

ForwardOutputs forward_outputs_of_empty_batch(const at::Tensor& features,
                                              const at::Tensor& centers, int64_t reduction) {
  ForwardOutputs out = empty_forward_outputs(features, centers, reduction);
  if (out.loss.dim() == 0) out.loss.zero_();
  return out;
}

at::Tensor backward_scale(const at::Tensor& grad_loss, const at::Tensor& grad_basis) {
  at::ScalarType dtype = at::kFloat;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_basis.scalar_type(),
                                  "centerloss_backward_dtype", [&] {
    dtype = c10::CppTypeToScalarType<math::backward_acc_t<scalar_t>>::value;
  });
  return grad_loss.to(dtype).contiguous();
}

}  // namespace centerloss::op
