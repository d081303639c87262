// Calls of the registered ops through the dispatcher, for the layers above the kernels (the
// autograd functions, the C++ API). Each looks its op up once (typed_op.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace centerloss::op {

std::tuple<at::Tensor, at::Tensor> call_forward(const at::Tensor& features,
                                                const at::Tensor& labels,
                                                const at::Tensor& centers, double margin,
                                                int64_t reduction);
at::Tensor call_backward(const at::Tensor& grad_loss, const at::Tensor& grad_basis);
std::tuple<at::Tensor, at::Tensor> call_forward_step(const at::Tensor& features,
                                                     const at::Tensor& labels,
                                                     at::Tensor& centers, at::Tensor& skipped,
                                                     double margin, int64_t reduction,
                                                     double alpha, int64_t rule);

}  // namespace centerloss::op
