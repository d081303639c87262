// Per-element maths of center loss, shared by the CPU and the CUDA kernels.
//
// Everything that defines the numbers (the per-sample loss with its margin, the gradient
// coefficient, the size of a center step) lives here once, so that both backends compute the
// same thing, in the accumulation types defined below (spec sections 1 to 3).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "centerloss/types.h"

#if defined(__CUDACC__) || defined(__HIPCC__)
#define CENTERLOSS_HD __host__ __device__ __forceinline__
#else
#define CENTERLOSS_HD inline
#endif

namespace centerloss {

namespace math {

// Accumulation types (spec section 1: float32, float64 when an input is float64), the one
// place they are decided. The op's output dtypes follow them (csrc/op/outputs.h).
// Loss and gradient basis: float64 when features or centers are float64.
template <typename feat_t, typename center_t>
using forward_acc_t =
    std::conditional_t<std::is_same_v<feat_t, double> || std::is_same_v<center_t, double>,
                       double, float>;
// Center step (spec section 3: float32, float64 for float64 centers).
template <typename center_t>
using step_acc_t = std::conditional_t<std::is_same_v<center_t, double>, double, float>;
// Backward's scaling of a basis of element type basis_t.
template <typename basis_t>
using backward_acc_t = std::conditional_t<std::is_same_v<basis_t, double>, double, float>;

template <typename acc_t>
CENTERLOSS_HD bool is_finite(acc_t v) {
  return v - v == acc_t(0);  // false for NaN and +-inf, true otherwise; works on host and device
}

// Per-sample loss from the squared distance d^2 = ||x_i - c_{y_i}||^2:
//   1/2 * d^2                         when margin == 0 (no square root, exact)
//   1/2 * max(d - margin, 0)^2        otherwise (IJCV generalised center loss)
// A NaN distance stays NaN (a NaN feature must show in the loss, spec section 3; a plain
// max(d - margin, 0) would turn it into 0).
template <typename acc_t>
CENTERLOSS_HD acc_t sample_loss(acc_t sq_dist, acc_t margin) {
  if (margin == acc_t(0)) return acc_t(0.5) * sq_dist;
  const acc_t d = std::sqrt(sq_dist);
  if (!(d > margin)) return d == d ? acc_t(0) : d;
  const acc_t excess = d - margin;
  return acc_t(0.5) * excess * excess;
}

// Coefficient g such that d(sample_loss)/dx_i = g * (x_i - c_{y_i}):
//   1                                 when margin == 0
//   max(d - margin, 0) / d            otherwise (0 where d <= margin, so never 0/0)
// A NaN d^2 gives a NaN coefficient, so NaN features give NaN gradients. A d^2 that overflowed
// to +inf from finite features gives 1, the limit of (d - margin) / d (inf / inf would be NaN
// and poison a finite gradient; with margin 0 the coefficient is 1 anyway).
template <typename acc_t>
CENTERLOSS_HD acc_t gradient_coefficient(acc_t sq_dist, acc_t margin) {
  if (margin == acc_t(0)) return acc_t(1);
  const acc_t d = std::sqrt(sq_dist);
  if (!(d > margin)) return d == d ? acc_t(0) : d;  // keep NaN, zero inside the margin
  if (!is_finite(d)) return acc_t(1);                // d = +inf (d > margin ruled out NaN)
  return (d - margin) / d;
}

// Loss of a row whose label is outside [0, K) where no error can be raised (spec section 7); its
// gradient row is 0.
template <typename acc_t>
CENTERLOSS_HD acc_t bad_label_loss() {
  return std::numeric_limits<acc_t>::quiet_NaN();
}

// Factor applied to sum_{i: y_i = j} (c_j - x_i) in the center step c_j -= factor * sum:
//   rule Paper: alpha / (1 + n_j)     (Wen et al. 2016, Algorithm 1, Eq. 4)
//   rule Mean:  alpha / n_j           (IJCV 2019 variant)
template <typename acc_t>
CENTERLOSS_HD acc_t center_step_factor(int64_t count, acc_t alpha, int64_t rule) {
  const acc_t denom =
      rule == static_cast<int64_t>(UpdateRule::Paper) ? acc_t(count + 1) : acc_t(count);
  return alpha / denom;
}

// Scale s of the loss: 1/N for mean, 1 for sum and none (spec section 1). N = 0 gives 0,
// so an empty batch contributes nothing.
template <typename acc_t>
CENTERLOSS_HD acc_t reduction_scale(int64_t reduction, int64_t n) {
  if (reduction == static_cast<int64_t>(Reduction::Mean)) return n > 0 ? acc_t(1) / acc_t(n) : acc_t(0);
  return acc_t(1);
}

}  // namespace math
}  // namespace centerloss
