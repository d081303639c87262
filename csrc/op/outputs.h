// The ops' output shapes and dtypes, decided once for the CPU, CUDA and Meta kernels, from the
// accumulation types of csrc/center_loss_math.h.
#pragma once

#include <ATen/core/Tensor.h>

#include "backend.h"

namespace centerloss::op {

// dtype of the loss: float32, or float64 when features or centers are float64.
at::ScalarType loss_dtype(const at::Tensor& features, const at::Tensor& centers);

// Uninitialised forward outputs on the features' device: loss [] (mean, sum) or [N] (none) of
// loss_dtype, gradient basis [N, D] contiguous in the features' dtype.
ForwardOutputs empty_forward_outputs(const at::Tensor& features, const at::Tensor& centers,
                                     int64_t reduction);

// The forward of an empty batch: loss 0 (mean, sum) or the empty vector (none).
ForwardOutputs forward_outputs_of_empty_batch(const at::Tensor& features,
                                              const at::Tensor& centers, int64_t reduction);

// grad_loss as the backward kernels read it: contiguous, in the basis's accumulation dtype.
at::Tensor backward_scale(const at::Tensor& grad_loss, const at::Tensor& grad_basis);

}  // namespace centerloss::op
