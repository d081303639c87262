// Training in several processes, each with the whole model (docs/distributed.md, "The trainer
// under torchrun"): started by `torchrun --nproc-per-node N --no-python centerloss train ...` or
// with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT set by hand.
//
// Each global step of B x W rows (B = --batch-size per rank, W ranks) is the one-process step of
// the same rows: rank r takes the r-th contiguous part of them, the center-loss module steps
// with the union of the ranks' batches (its process group), and after backward the gradients
// are averaged over the ranks in flattened buckets (one all-reduce per bucket, as
// DistributedDataParallel does), each rank's weighted by its share of the rows, so a short last
// batch counts like one process's. Every rank applies the same averaged gradient, so the
// weights stay identical; rank 0 alone evaluates and writes metrics, checkpoints and outputs.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <chrono>
#include <memory>
#include <vector>

#include "centerloss/process_group.h"

namespace centerloss::trainer {

// One step's numbers on this rank, summed over the ranks by average_gradients.
struct StepNumbers {
  double softmax = 0.0;  // mean over the rows (after the sum: over the global batch)
  double center = 0.0;
  int64_t hits = 0;
  int64_t rows = 0;
};

class DataParallel {
 public:
  // The job's group (Gloo, `timeout` for every collective: a rank that died or hangs makes the
  // others throw within it), or null when WORLD_SIZE is unset or 1.
  static std::shared_ptr<DataParallel> from_env(std::chrono::seconds timeout);
  explicit DataParallel(ProcessGroupPtr group);

  int rank() const { return group_->getRank(); }
  int world() const { return group_->getSize(); }
  bool is_main() const { return rank() == 0; }
  const ProcessGroupPtr& group() const { return group_; }

  // This rank's rows of an epoch's `order`, in its batches of at most `batch_size`: global step
  // s covers order[s B W, (s + 1) B W) and rank r its r-th part, [s B W + m_s r / W,
  // s B W + m_s (r + 1) / W) for the m_s rows of that step. A last step of fewer than W rows is
  // dropped (every rank needs a row). Remembers the steps' sizes for average_gradients.
  torch::Tensor shard_order(const torch::Tensor& order, int64_t batch_size);

  // After backward of global step `step`: every parameter's gradient averaged over the ranks
  // (an undefined one counts as zero), weighted by rows; `numbers` become the global batch's.
  void average_gradients(const std::vector<torch::Tensor>& parameters, int64_t step,
                         StepNumbers& numbers);

  // Rank 0's parameters and buffers of `module`, on every rank.
  void broadcast_state(torch::nn::Module& module);

  // Waits for every rank (before leaving: no rank tears the group down while another uses it).
  void barrier();

 private:
  ProcessGroupPtr group_;
  std::vector<int64_t> step_rows_;  // rows of each global step of the current epoch
};

}  // namespace centerloss::trainer
