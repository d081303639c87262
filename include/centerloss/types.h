// Enumerations shared by the public API, the ops' integer arguments and the kernels.
// Header-only and free of torch includes, so CUDA kernels can include it.
#pragma once

#include <cstdint>

namespace centerloss {

// How per-sample losses 1/2 ||x_i - c_{y_i}||^2 are combined (spec section 1).
// The integer values are the `reduction` argument of the registered ops (same as at::Reduction).
enum class Reduction : int64_t {
  None = 0,  // per-sample vector [N]
  Mean = 1,  // sum / N (default; what the authors' code computes)
  Sum = 2,   // sum (the formula printed in the paper)
};

// How centers move (spec section 3). Paper and Mean are applied by update_centers_; Gradient
// means the centers are a trainable parameter moved by the user's optimizer.
enum class UpdateRule : int64_t {
  Paper = 0,     // c_j -= alpha * sum_{y_i=j} (c_j - x_i) / (1 + n_j)
  Mean = 1,      // c_j -= alpha * sum_{y_i=j} (c_j - x_i) / n_j
  Gradient = 2,  // no update step; autograd gives dL/dc_j = -s * sum_{y_i=j} (x_i - c_j)
};

}  // namespace centerloss
