// centerloss functional API: the registered ops, callable from C++.
//
// The same ops are registered with the PyTorch dispatcher under the namespace `centerloss`
// (torch.ops.centerloss.*), so C++ and Python run one implementation. Notation: N batch size,
// D feature dimension, K number of classes. See docs/center-loss-spec.md for the contract.
//
// Common arguments
//   features  [N, D] float32, float64, float16 or bfloat16; any strides (non-contiguous input
//             is copied). CPU or CUDA.
//   labels    [N] any integer dtype (int64 preferred: others are converted), values in [0, K),
//             same device as features.
//   centers   [K, D] float32 or float64, same device as features.
// Every argument is checked before anything is computed or written; errors (c10::Error, a
// RuntimeError in Python) name the argument and what was expected, and a failed call leaves
// every tensor unchanged. N = 0 is valid.
//
// Determinism: on CPU every result is bitwise identical from run to run and for any number of
// threads. On CUDA the forward, backward and center update are deterministic too (bitwise equal
// from run to run; the update sums each class in batch order, it never uses atomics).
//
// CUDA graphs: center_loss (with its backward), update_centers_ and the module's training step
// can be captured (at::cuda::CUDAGraph, torch.cuda.graph); a replay launches no host work. What a
// bad label gives inside a graph, where nothing can raise: spec section 7.
// init_centers_first_sight_ reads its count back and cannot be captured.
#pragma once

#include <ATen/core/Tensor.h>

#include "centerloss/types.h"

namespace centerloss {

// Center loss with autograd (spec sections 1 and 2):
//   per-sample l_i = 1/2 * max(||x_i - c_{y_i}|| - margin, 0)^2   (= 1/2 ||x_i - c_{y_i}||^2
//   for margin 0), combined by `reduction` (Mean: sum/N, Sum: sum, None: the [N] vector).
// Returns a scalar (Mean, Sum) or an [N] vector (None) of dtype float32 (float64 when features
// or centers are float64), whatever the features' dtype: accumulation is in that type.
// Gradient to features: s * g_i * (x_i - c_{y_i}) times the incoming gradient, computed from
// the centers as they are now (a later update_centers_ does not change it). If centers requires
// grad (UpdateRule::Gradient), it receives dL/dc_j = -sum_{y_i=j} dL/dx_i (a dense [K, D]
// tensor). Does not modify any argument. margin >= 0.
// On the CPU, when autograd frees the graph after this backward (no retain_graph), the features'
// gradient is the tensor the forward saved, not a new one: handed over as it is for an incoming
// gradient of exactly 1 (loss.backward() on a scalar loss), else scaled in place. With
// retain_graph it is a new tensor, so gradients already handed out never change. Double
// backward (create_graph) is exact for margin 0 and refused with a margin. Saves the features
// (and centers that require grad) for it: modifying them in place before backward is an error,
// as for any autograd op that saves its inputs. The module's forward likewise.
at::Tensor center_loss(const at::Tensor& features, const at::Tensor& labels,
                       const at::Tensor& centers, double margin = 0.0,
                       Reduction reduction = Reduction::Mean);

// Center step (spec section 3), in place on `centers`, no autograd:
//   c_j <- c_j - alpha * sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)   (UpdateRule::Paper)
//   c_j <- c_j - alpha * sum_{i: y_i = j} (c_j - x_i) / n_j         (UpdateRule::Mean)
// Only classes present in the batch are touched; cost O(N*D), independent of K. alpha in (0, 1].
// The step is computed in float32 (float64 for float64 centers) and does not depend on any loss
// scale. Returns a 0-d bool tensor on the centers' device: false when a feature row held a NaN
// or an infinity and no center changed, true otherwise (reading it with .item<bool>() syncs on
// CUDA; the module counts skips without a sync). UpdateRule::Gradient is rejected (the
// optimizer moves those centers).
at::Tensor update_centers_(at::Tensor& centers, const at::Tensor& features, const at::Tensor& labels,
                     double alpha = 0.5, UpdateRule rule = UpdateRule::Paper);

// "First sight" initialisation, in place: for each class j present in the batch whose
// seen[j] is false, sets c_j to the mean of its features in the batch and seen[j] to true.
// seen: [K] bool, same device. A non-finite feature row makes the call change nothing.
// Returns the number of classes initialised by this call.
int64_t init_centers_first_sight_(at::Tensor& centers, at::Tensor& seen,
                                  const at::Tensor& features, const at::Tensor& labels);

// True when this build has the CUDA kernels.
bool has_cuda_kernels();

namespace detail {
// CenterLoss::forward's training step in one op (centerloss::_center_loss_step_): returns
// center_loss(features, labels, centers, margin, reduction) - differentiable in the features -
// and then applies the paper/mean step to `centers` in place, as update_centers_ does, except
// that a non-finite batch (no center changes) adds 1 to `skipped` ([] or [1] int64, on the
// centers' device) instead of being returned, so the step never syncs on CUDA. Labels are
// checked first: a bad label raises and changes nothing. centers must not require grad. On the
// CPU one pass over the batch where that is faster (see csrc/cpu/center_step_cpu.cpp), with the
// same bits as the two ops; on CUDA the forward kernel, then the step kernels. Deterministic.
at::Tensor center_loss_step_(const at::Tensor& features, const at::Tensor& labels,
                             at::Tensor& centers, at::Tensor& skipped, double margin,
                             Reduction reduction, double alpha, UpdateRule rule);
}  // namespace detail

}  // namespace centerloss
