// The CUDA kernels' host entry points, as the CUDA backend (backend_cuda.cpp) calls them.
// Arguments as in csrc/backend.h: checked, N >= 1, contiguous, the device guard set; every
// launch goes to the current stream.
#pragma once

#include <ATen/core/Tensor.h>

#include "../backend.h"

namespace centerloss::kernels::cuda {

// Whether the current stream of `on`'s device is capturing a graph.
bool capturing(const at::Tensor& on);

// The fused forward into `out`; a row with a label outside [0, K) reads no center, gets a NaN
// loss and a zero basis row. Returns the first bad position as a [1] int64 device tensor, or
// an undefined tensor while a graph is being captured (nothing can be read back).
at::Tensor forward(const at::Tensor& features, const at::Tensor& labels, const at::Tensor& centers,
                   double margin, int64_t reduction, ForwardOutputs& out);

void backward(const at::Tensor& grad_loss, const at::Tensor& grad_basis,
              at::Tensor& grad_features);

// The center step, guarded: a non-finite feature or a label outside [0, K) anywhere writes
// nothing. The verdict goes to *applied (true: stepped) and/or adds 1 to *skipped (not
// stepped); either may be null. No host sync.
void center_step(at::Tensor& centers, const at::Tensor& features, const at::Tensor& labels,
                 double alpha, int64_t rule, bool* applied, int64_t* skipped);

// Position of the first label outside [0, K), or -1: one kernel and one 8-byte read (a sync).
int64_t first_bad_label(const at::Tensor& labels, int64_t num_classes);

}  // namespace centerloss::kernels::cuda
