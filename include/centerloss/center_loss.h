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
//
// Several processes (spec section 5, docs/distributed.md): with a c10d process group
// (centerloss/process_group.h makes one; Gloo for CPU tensors, NCCL for CUDA) every rank
// applies the step of the union of the ranks' batches, concatenated in rank order: bitwise
// the step of one process fed that concatenation. The loss and the features' gradient stay
// the rank's own. A training forward (and update_centers) is then a collective: every rank of
// the group must call it, in the same order. A non-finite row on any rank skips the step on
// every rank; a bad batch on one rank (shape, dtype, label) raises on every rank and changes
// nothing; the first step, and the first after load(), gives every rank the centers (and
// skip counter, seen) of the group's rank 0.
//
// Sharded centers (shard_centers(true), rules Paper and Mean): rank r of W owns the classes
// [k0, k1) = [r K / W, (r + 1) K / W) (integer division) and holds only those rows: centers()
// is [k1 - k0, D], seen [k1 - k0]. Each forward sends every feature row to the rank that owns
// its class; the owner initialises (first_sight), returns the row's center as it was before
// this step and applies its classes' step; each rank then computes its loss and gradient from
// the rows it got back. Loss, features' gradient, skip counter and every center are bitwise
// those of the unsharded module fed the same batches. Every forward is then a collective, in
// eval mode too. The state adds `shard` = [k0, k1, K, W] (int64); loading a shard saved for
// another rank or world size throws, naming both, while a whole table's state (an unsharded
// module's, or full_centers()) loads into any rank, which takes its rows: the way to re-shard.
#pragma once

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
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
  // Data parallel (see the header comment): the ranks' group, or null for one process. Its
  // collectives must accept the centers' device (Gloo: CPU, NCCL: CUDA).
  TORCH_ARG(c10::intrusive_ptr<c10d::ProcessGroup>, process_group);
  // Each rank holds only its block of classes; needs process_group and rule Paper or Mean.
  TORCH_ARG(bool, shard_centers) = false;
};

class CenterLossImpl : public torch::nn::Cloneable<CenterLossImpl> {
 public:
  // Throws (naming the option) if K or D < 1, alpha outside (0, 1], margin < 0 or not finite,
  // init_std not a finite number > 0, or shard_centers without a process group or with
  // UpdateRule::Gradient.
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

  // Loading checks the shapes of centers (and seen, and a shard's range) before anything is
  // replaced. With a process group the next training step shares rank 0's state again.
  void load(torch::serialize::InputArchive& archive) override;

  // This rank's rows of the table: all K classes, or the shard [shard_begin(), shard_end()).
  const at::Tensor& centers() const { return centers_; }
  int64_t shard_begin() const { return shard_begin_; }
  int64_t shard_end() const { return shard_end_; }
  // The whole [K, D] table on every rank: centers() itself, or (sharded) the ranks' shards
  // all-gathered, a collective that needs K x D memory on each rank.
  at::Tensor full_centers() const;
  int64_t skipped_updates() const;

  CenterLossOptions options;

 private:
  at::Tensor step_centers(const at::Tensor& features, const at::Tensor& labels);
  at::Tensor sharded_forward(const at::Tensor& features, const at::Tensor& labels, bool step);
  // The union of the ranks' batches (and rank 0's state at the first step after reset/load).
  std::pair<at::Tensor, at::Tensor> gather_union(const at::Tensor& features,
                                                 const at::Tensor& labels);
  void check_shard(const at::Tensor& stored) const;  // throws unless it is this rank's shard

  at::Tensor centers_;
  at::Tensor skipped_updates_;
  at::Tensor seen_;   // defined only with Init::FirstSight
  at::Tensor shard_;  // defined only with shard_centers: [k0, k1, K, W]
  int64_t shard_begin_ = 0;
  int64_t shard_end_ = 0;
  bool state_shared_ = false;  // with a process group: rank 0's state taken since reset/load
};

TORCH_MODULE(CenterLoss);

}  // namespace centerloss
