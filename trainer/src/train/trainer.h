// The training loop: L = softmax cross-entropy + lambda * center loss, SGD with momentum,
// weight decay and a step schedule; a checkpoint after each epoch; metrics as JSON lines; at the
// end the test-set features, the figures and report.md in the run folder (see train/run.h).
//
// Centers: with update=paper or mean the CenterLoss module moves them in its forward (the
// paper's Algorithm 1), independent of lambda. With update=gradient they are a parameter with an
// SGD of their own (lr = center_lr, no momentum or weight decay) whose gradient is divided by
// lambda before the step, as in the common PyTorch recipe, so that center_lr plays alpha's role
// whatever lambda is. With reduction=none the per-sample center losses are averaged.
//
// Determinism: for a given config (seed included) and thread count, a run gives the same
// weights bitwise, and a run resumed from any epoch's checkpoint equals an uninterrupted one:
// the initial weights come from the seed, and each epoch's sample order from (seed, epoch).
#pragma once

#include <memory>
#include <string>

#include "data/dataset.h"
#include "train/checkpoint.h"
#include "train/data_parallel.h"
#include "train/config.h"
#include "util/metrics.h"
#include "util/plots.h"

namespace centerloss::trainer {

struct RunOptions {
  std::string out_dir;           // the run folder (created)
  bool resume = false;           // continue from out_dir/checkpoint.pt
  // On resume: that checkpoint if the caller has already opened it (to read its config), so
  // that the file is parsed once; else train() opens it.
  std::shared_ptr<CheckpointFile> checkpoint;
  bool progress = true;          // progress bar on stderr
  bool outputs = true;           // test features, figures and report.md at the end
  std::string python = default_python();
  // Several processes (train/data_parallel.h): rank 0 evaluates and writes; null: one process.
  std::shared_ptr<DataParallel> data_parallel;
};

struct EpochStats {
  double softmax = 0.0;   // mean over the epoch's steps
  double center = 0.0;    // mean center loss (before lambda)
  double accuracy = 0.0;  // training accuracy over the epoch's samples
  int64_t steps = 0;
  double seconds = 0.0;
};

struct TrainSummary {
  int64_t epochs = 0;  // epochs completed in total
  double test_accuracy = 0.0;  // closed-set, over the test samples of the trained classes
  double ms_per_step = 0.0;    // mean over the steps this process ran
};

// One pass over `data` (labels remapped to the model's classes in `targets`), in the order of
// `order` ([N] int64 indices), in batches of config.batch_size. Updates `state` in place. With
// state.data_parallel, `order` is this rank's shard and the stats are the global batches'.
EpochStats train_epoch(TrainState& state, const Dataset& data, const torch::Tensor& targets,
                       const torch::Tensor& order, double lr, const std::string& label,
                       bool progress, MetricsWriter* metrics, int64_t epoch);

// The learning rate of 1-based `epoch` under the step schedule.
double learning_rate(const TrainConfig& config, int64_t epoch);

// The sample order of 1-based `epoch`: a permutation of [0, n) drawn from (seed, epoch).
torch::Tensor epoch_order(uint64_t seed, int64_t epoch, int64_t n);

// Trains (or resumes) a run. config.classes empty means every class of the data set; the
// image size is taken from the data. Returns the final numbers; throws on bad data or options.
TrainSummary train(TrainConfig config, const RunOptions& options);

}  // namespace centerloss::trainer
