// Enumerations shared by the public API, the ops' integer arguments and the kernels, and the
// names of their values: one vocabulary for C++, the CLI, Python and Keras (snake_case).
// Header-only and free of torch includes, so CUDA kernels can include it.
#pragma once

#include <array>
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

// A value of an option and its name; the tables below list every value once.
template <typename E>
struct OptionName {
  E value;
  const char* name;
};

inline constexpr std::array<OptionName<Reduction>, 3> kReductionNames{
    {{Reduction::None, "none"}, {Reduction::Mean, "mean"}, {Reduction::Sum, "sum"}}};
inline constexpr std::array<OptionName<UpdateRule>, 3> kUpdateRuleNames{
    {{UpdateRule::Paper, "paper"}, {UpdateRule::Mean, "mean"}, {UpdateRule::Gradient, "gradient"}}};

// The name of `value` in `table` ("?" for a value it lacks).
template <typename E, std::size_t N>
constexpr const char* option_name(const std::array<OptionName<E>, N>& table, E value) {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.name;
  }
  return "?";
}

}  // namespace centerloss
