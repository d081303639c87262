// centerloss::CenterLoss: a LibTorch module that owns the class centers and moves them.
//
//   centerloss::CenterLoss center_loss(centerloss::CenterLossOptions(10, 2).alpha(0.5));
//   auto [logits, features] = net->forward(images);          // two outputs
//   auto loss = torch::nn::functional::cross_entropy(logits, labels)
//             + lambda * center_loss->forward(features, labels);
//   loss.backward();                                          // centers already moved
//
// State (saved and loaded with the model by torch::save / torch::load):
//   centers          [K, D] float32 buffer (a parameter with UpdateRule::Gradient)
//   skipped_updates  [] int64 buffer: center steps skipped because a batch was non-finite
//   seen             [K] bool buffer, only with Init::FirstSight: classes already initialised
// Loading a state of another shape fails with a message naming both shapes.
//
// forward(features [N, D], labels [N]) returns the loss of spec section 1 (see ops.h) and, in
// training mode with rule Paper or Mean, then applies one center step from the same batch,
// computed from the centers the loss used. In eval mode (or with update_in_forward(false)) the
// centers never change. Not thread-safe: one forward at a time per module.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/serialize/archive.h>

#include "centerloss/ops.h"
#include "centerloss/types.h"

namespace centerloss {

// How centers start (spec section 3).
enum class Init {
  Zeros,      // default
  Normal,     // N(0, init_std^2)
  Xavier,     // xavier-uniform over [K, D]
  FirstSight  // a class's center is the mean of its features in the first batch that has it
};
inline constexpr std::array<OptionName<Init>, 4> kInitNames{{{Init::Zeros, "zeros"},
                                                             {Init::Normal, "normal"},
                                                             {Init::Xavier, "xavier"},
                                                             {Init::FirstSight, "first_sight"}}};

struct CenterLossOptions {
  CenterLossOptions(int64_t num_classes, int64_t feature_dim)
      : num_classes_(num_classes), feature_dim_(feature_dim) {}
  TORCH_ARG(int64_t, num_classes);        // K >= 1
  TORCH_ARG(int64_t, feature_dim);        // D >= 1
  TORCH_ARG(double, alpha) = 0.5;         // center learning rate, in (0, 1]
  TORCH_ARG(Reduction, reduction) = Reduction::Mean;
  TORCH_ARG(UpdateRule, update) = UpdateRule::Paper;
  TORCH_ARG(double, margin) = 0.0;        // rho >= 0 (generalised center loss)
  TORCH_ARG(Init, init) = Init::Zeros;
  TORCH_ARG(double, init_std) = 1.0;      // for Init::Normal
  TORCH_ARG(bool, update_in_forward) = true;  // false: call update_centers() yourself
};

class CenterLossImpl : public torch::nn::Cloneable<CenterLossImpl> {
 public:
  // Throws (naming the option) if K or D < 1, alpha outside (0, 1], margin < 0 or not finite,
  // or init_std not a finite number > 0.
  explicit CenterLossImpl(const CenterLossOptions& options);
  CenterLossImpl(int64_t num_classes, int64_t feature_dim)
      : CenterLossImpl(CenterLossOptions(num_classes, feature_dim)) {}

  // Creates the state from the options (called by the constructor). Like LibTorch's own
  // modules, call it once: a second call throws (the names are registered).
  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  // Device moves take every buffer along. A dtype change applies to the centers only, and
  // only for float32 and float64 (spec section 4: centers stay float32 under float16/bfloat16
  // and mixed precision); skipped_updates stays int64 and seen bool. So net->to(dtype) on a
  // network holding a CenterLoss keeps it usable.
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Device device, bool non_blocking = false) override;

  // Loss of the batch; see the header comment for when the centers move.
  at::Tensor forward(const at::Tensor& features, const at::Tensor& labels);

  // One explicit center step from a batch (rules Paper and Mean; for gradient accumulation or
  // skipped AMP steps). Returns false when the batch was non-finite and was skipped (the
  // skipped_updates counter is then incremented). Throws for UpdateRule::Gradient. On CUDA it
  // syncs twice (the label check, and reading the verdict); forward() syncs once (its label
  // check) and counts a skipped step on the device.
  bool update_centers(const at::Tensor& features, const at::Tensor& labels);

  // Loading checks the shapes of centers (and seen) before anything is replaced.
  void load(torch::serialize::InputArchive& archive) override;

  const at::Tensor& centers() const { return centers_; }
  int64_t skipped_updates() const;

  CenterLossOptions options;

 private:
  at::Tensor step_centers(const at::Tensor& features, const at::Tensor& labels);

  at::Tensor centers_;
  at::Tensor skipped_updates_;
  at::Tensor seen_;  // defined only with Init::FirstSight
};

TORCH_MODULE(CenterLoss);

}  // namespace centerloss
