// The training loop: L = softmax cross-entropy + lambda * center loss, SGD with momentum,
// weight decay and a step schedule; checkpoints after each epoch and within one (see
// RunOptions::checkpoint_every); metrics as JSON lines; at the end the test-set features, the
// figures and report.md in the run folder (see train/run.h).
//
// Centers: with update=paper or mean the CenterLoss module moves them in its forward (the
// paper's Algorithm 1), independent of lambda. With update=gradient they are a parameter with an
// SGD of their own (lr = center_lr, no momentum or weight decay) whose gradient is divided by
// lambda before the step, as in the common PyTorch recipe, so that center_lr plays alpha's role
// whatever lambda is. With reduction=none the per-sample center losses are averaged.
//
// Determinism: for a given config (seed included) and thread count, a run gives the same
// weights bitwise, and a run resumed from any checkpoint (an epoch's end or a step within one)
// equals an uninterrupted one: the initial weights come from the seed, each epoch's sample
// order from (seed, epoch), and the checkpoint holds the position in that order.
//
// Stops: a non-finite loss stops the run before the step that produced it is applied
// (TrainingDiverged), unless RunOptions::on_nonfinite says to go on; SIGINT or SIGTERM writes a
// checkpoint at the end of the current step and stops (TrainingInterrupted).
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "data/batch_loader.h"
#include "data/dataset.h"
#include "train/checkpoint.h"
#include "train/checkpoint_schedule.h"
#include "train/data_parallel.h"
#include "train/config.h"
#include "train/run_folder.h"
#include "util/metrics.h"
#include "util/plots.h"

namespace centerloss::trainer {

// What to do when a step's loss is not finite.
enum class OnNonfinite { Stop, Continue };
inline constexpr EnumNames<OnNonfinite, 2> kOnNonfiniteNames{
    {{OnNonfinite::Stop, "stop"}, {OnNonfinite::Continue, "continue"}}};

struct RunOptions {
  std::string out_dir;           // the run folder (created)
  StartMode start = StartMode::New;  // what to do with a run already in out_dir
  // On resume: that checkpoint if the caller has already opened it (to read its config), so
  // that the file is parsed once; else train() opens it.
  std::shared_ptr<CheckpointFile> checkpoint;
  CheckpointEvery checkpoint_every;  // within an epoch (every epoch's end writes one too)
  OnNonfinite on_nonfinite = OnNonfinite::Stop;
  bool progress = true;          // progress bar on stderr
  bool skip_bad_images = false;  // image folders: leave bad files out (and say which) instead of stopping
  bool outputs = true;           // test features, figures and report.md at the end
  std::string python = default_python();
  // Several processes (train/data_parallel.h): rank 0 evaluates and writes; null: one process.
  std::shared_ptr<DataParallel> data_parallel;
};

// Training stopped before its last epoch; exit_code is what the command line returns.
class TrainingStopped : public std::runtime_error {
 public:
  TrainingStopped(const std::string& message, int exit_code)
      : std::runtime_error(message), exit_code(exit_code) {}
  int exit_code;
};
// A step's loss was NaN or infinite (exit code kDivergedExitCode). The run folder keeps its
// last good checkpoint, a "diverged" line in metrics.jsonl and diverged.json.
inline constexpr int kDivergedExitCode = 3;
class TrainingDiverged : public TrainingStopped {
 public:
  explicit TrainingDiverged(const std::string& message)
      : TrainingStopped(message, kDivergedExitCode) {}
};
// SIGINT or SIGTERM (exit code 128 + the signal, as a shell reports it); a checkpoint was
// written first.
class TrainingInterrupted : public TrainingStopped {
 public:
  TrainingInterrupted(const std::string& message, int signal)
      : TrainingStopped(message, 128 + signal) {}
};

struct EpochStats {
  double softmax = 0.0;   // mean over the epoch's steps
  double center = 0.0;    // mean center loss (before lambda)
  double accuracy = 0.0;  // training accuracy over the epoch's samples
  int64_t steps = 0;
  int64_t images = 0;     // samples trained on (bad images skipped are not counted)
  double seconds = 0.0;
  LoaderStats loader;     // images/s prepared per loader thread, time the steps waited for data
};

struct TrainSummary {
  int64_t epochs = 0;  // epochs completed in total
  double test_accuracy = 0.0;  // closed-set, over the test samples of the trained classes (NaN: none)
  double ms_per_step = 0.0;    // mean over the steps this process ran
};

// Called after each step of train_epoch, with the state at that step boundary (it may save a
// checkpoint, or throw to stop).
using AfterStep = std::function<void(TrainState&)>;

// One pass over `data` (labels remapped to the model's classes in `targets`), in the order of
// `order` ([N] int64 indices), in batches of config.batch_size prepared by a BatchLoader
// (config.loader_threads; horizontal flips drawn from (seed, epoch) if config.flip), from step
// state.progress.step on (0 for a fresh epoch; a resumed one continues where its checkpoint
// stopped). Updates `state` in place (state.progress after each step; reset when the epoch is
// done). A non-finite loss throws TrainingDiverged before the optimizer applies that step,
// unless on_nonfinite is Continue. With state.data_parallel, `order` is this rank's shard and
// the stats are the global batches'.
EpochStats train_epoch(TrainState& state, const Dataset& data, const torch::Tensor& targets,
                       const torch::Tensor& order, double lr, const std::string& label,
                       bool progress, MetricsWriter* metrics, int64_t epoch,
                       const AfterStep& after_step = {},
                       OnNonfinite on_nonfinite = OnNonfinite::Stop);

// Steps of an epoch of `samples` in batches of `batch_size` per process over `world` processes.
int64_t epoch_steps(int64_t samples, int64_t batch_size, int world);

// The learning rate of 1-based `epoch` under the step schedule.
double learning_rate(const TrainConfig& config, int64_t epoch);

// The sample order of 1-based `epoch`: a permutation of [0, n) drawn from (seed, epoch).
torch::Tensor epoch_order(uint64_t seed, int64_t epoch, int64_t n);

// Trains (or resumes) a run, holding the folder's lock (FolderLock) throughout. config.classes
// empty means every class of the data set; the image size is taken from the data. Returns the
// final numbers; throws on bad data or options, TrainingStopped when it stops early.
TrainSummary train(TrainConfig config, const RunOptions& options);

}  // namespace centerloss::trainer
