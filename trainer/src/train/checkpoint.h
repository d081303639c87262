// Checkpoints: one file, checkpoint.pt, rewritten after each epoch and during one (every
// --checkpoint-every steps or minutes, and on SIGINT/SIGTERM). It is written to a temporary
// file, flushed to disk and renamed over the old one, so a crash at any moment leaves either
// the previous or the new checkpoint, never a partial file.
//
// Layout (a torch::serialize archive, read with torch::load / InputArchive):
//   model             FeatureNet parameters and buffers
//   center_loss       CenterLoss state: centers [K, D] float32, skipped_updates (and seen)
//   optimizer         SGD state (momentum buffers) of the network's parameters
//   center_optimizer  SGD state of the centers (update=gradient only)
//   epoch             int64 scalar: epochs completed
//   progress          float64 [5] and progress_counts int64 [6]: the epoch in progress (see
//                     EpochProgress); zeros at an epoch's end. Absent before 2026-12-06 (read
//                     as zeros).
//   rng               uint8 tensor: LibTorch's default CPU generator state
//   config            string: the run's TrainConfig as JSON
//   digest            int64 scalar: CRC-32 of the restored state (the config text, every tensor
//                     above with its name, the optimizers' hyperparameters); restore() refuses a
//                     checkpoint whose contents do not match it
//                     (torch's reader does not verify its records). Older checkpoints lack it.
#pragma once

#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>

#include <memory>
#include <string>

#include "centerloss/center_loss.h"
#include "model/net.h"
#include "train/config.h"

namespace centerloss::trainer {

// How far the epoch after TrainState::epoch has got, at a step boundary. The epoch's sample
// order is a function of (seed, epoch) (see epoch_order), so `step` is all a loader needs to
// skip ahead; the sums let the epoch's metrics line equal that of an uninterrupted run.
struct EpochProgress {
  int64_t step = 0;  // steps done: the first step * batch_size samples of the epoch's order
  double softmax = 0.0, center = 0.0;  // sums of the steps' losses
  int64_t correct = 0, seen = 0;       // training predictions so far
  double seconds = 0.0;                // training time so far
  // the metrics.jsonl window not yet written (a "step" line every log_every steps)
  double window_softmax = 0.0, window_center = 0.0;
  int64_t window_correct = 0, window_count = 0, window_steps = 0;
};

class DataParallel;

// What a checkpoint holds, live.
struct TrainState {
  TrainConfig config;
  FeatureNet model{nullptr};
  CenterLoss center_loss{nullptr};
  std::unique_ptr<torch::optim::SGD> optimizer;         // network parameters
  std::unique_ptr<torch::optim::SGD> center_optimizer;  // centers, update=gradient only
  int64_t epoch = 0;                                    // epochs completed
  EpochProgress progress;                               // of epoch + 1
  std::shared_ptr<DataParallel> data_parallel;          // null: one process (not saved)
};

// Builds a fresh state from a config (seeds LibTorch's generator with config.seed first, so
// the initial weights depend only on the seed). config.classes must not be empty. With a
// process group the center loss steps with the union of the ranks' batches.
TrainState make_state(const TrainConfig& config,
                      const c10::intrusive_ptr<c10d::ProcessGroup>& group = {});

// Writes `state` to `path` atomically (temp file, fsync, rename, fsync of the directory).
void save_checkpoint(const std::string& path, TrainState& state);

// A checkpoint file, parsed once on construction. Every failure (no such file, not a
// checkpoint, a missing entry, a state of another shape) throws std::runtime_error naming the
// path.
class CheckpointFile {
 public:
  explicit CheckpointFile(std::string path);

  // The TrainConfig the run was trained with.
  TrainConfig config();

  // Loads weights, centers, optimizer state, the epoch, its progress and the generator state
  // into a state built by make_state from config().
  void restore(TrainState& state);

 private:
  std::string config_text();  // the stored config JSON, as written
  std::string path_;
  torch::serialize::InputArchive archive_;
};

}  // namespace centerloss::trainer
