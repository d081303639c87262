#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/nn/functional/loss.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <csignal>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "data/batch_loader.h"
#include "embed/embed.h"
#include "train/report.h"
#include "train/run.h"
#include "train/run_data.h"
#include "train/stop_signals.h"
#include "util/fs.h"
#include "util/progress.h"

namespace centerloss::trainer {
namespace {

// Every rank starts from rank 0's weights and centers, as DistributedDataParallel does: the
// seed gives every rank the same ones, but no rank should rely on that.
void start_data_parallel(TrainState& state) {
  state.data_parallel->broadcast_state(*state.model);
  state.data_parallel->broadcast_state(*state.center_loss);
}

// A class without training samples still gets an output and a center: usually a stray label
// (the class count is the largest label + 1) or a --train-limit that stops early. Said, not fatal.
void warn_about_empty_classes(const torch::Tensor& targets, const std::vector<int64_t>& classes) {
  const torch::Tensor counts = torch::bincount(targets, {}, static_cast<int64_t>(classes.size()));
  const torch::Tensor empty = (counts == 0).nonzero().flatten();
  if (empty.numel() == 0) return;
  std::string ids;
  for (int64_t k = 0; k < std::min<int64_t>(empty.numel(), 10); ++k) {
    ids += (k ? "," : "") + std::to_string(classes[empty[k].item<int64_t>()]);
  }
  if (empty.numel() > 10) ids += ",...";
  fmt::print(stderr, "warning: {} of {} classes have no training sample ({}); the model still "
             "has an output and a center for each\n", empty.numel(), classes.size(), ids);
}

// No test samples (an image folder without --test-data): no accuracy, written as null.
nlohmann::json or_null(double value, int64_t count) {
  return count > 0 ? nlohmann::json(value) : nlohmann::json(nullptr);
}

std::string test_text(const Accuracy& test) {
  if (test.count == 0) return "no test split";
  return fmt::format("test accuracy {:.2f}% ({} samples)", 100.0 * test.accuracy, test.count);
}

EmbedOptions embed_options(const TrainConfig& config, const RunOptions& options) {
  EmbedOptions o;
  o.loader_threads = config.loader_threads;
  o.progress = options.progress;
  return o;
}

}  // namespace

int64_t epoch_steps(int64_t samples, int64_t batch_size, int world) {
  // DataParallel::shard_order drops a last global step of fewer rows than ranks.
  const int64_t global = batch_size * world;
  return samples / global + (samples % global >= world ? 1 : 0);
}

double learning_rate(const TrainConfig& config, int64_t epoch) {
  if (config.lr_step <= 0) return config.lr;
  return config.lr * std::pow(config.lr_gamma, static_cast<double>((epoch - 1) / config.lr_step));
}

torch::Tensor epoch_order(uint64_t seed, int64_t epoch, int64_t n) {
  // splitmix-style mixing so that neighbouring seeds and epochs give unrelated orders
  const uint64_t mixed = seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch) * 0xBF58476D1CE4E5B9ULL;
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(mixed);
  return torch::randperm(n, generator, torch::kLong);
}


namespace {

// Rank 0 locks the folder and decides whether to resume (refusing another run's folder); the
// other ranks read what it had when they started.
bool open_run_folder(const RunOptions& options, bool main, std::optional<FolderLock>& lock) {
  const std::string& dir = options.out_dir;
  if (main) {
    lock.emplace(dir);  // before anything is read from or written to the folder
    return prepare_run_folder(dir, options.start);
  }
  return options.start == StartMode::Resume ||
         (options.start == StartMode::ResumeAuto && is_file(path_join(dir, kCheckpointFile)));
}

// Restores the checkpoint into `state` and checks that this run can go on from it.
void restore_checkpoint(TrainState& state, const TrainConfig& config, const RunOptions& options,
                        bool main, int64_t steps_per_epoch) {
  const std::string checkpoint = path_join(options.out_dir, kCheckpointFile);
  const auto file = options.checkpoint ? options.checkpoint : std::make_shared<CheckpointFile>(checkpoint);
  file->restore(state);
  if (main) {
    fmt::print(stderr, "resuming {} after epoch {}{}\n", checkpoint, state.epoch,
               state.progress.step > 0 ? fmt::format(", step {} of {}", state.progress.step, steps_per_epoch)
                                       : std::string());
  }
  if (const int before = file->config().threads; before != config.threads) {
    fmt::print(stderr, "warning: {} threads, the run had {}: the continued run will not be "
               "bitwise the same as an uninterrupted one\n", config.threads, before);
  }
  const int64_t reached = state.epoch + (state.progress.step > 0 ? 1 : 0);
  if (config.epochs < reached) {
    throw std::invalid_argument(fmt::format("{} has {} epochs; --epochs must be at least that",
                                            checkpoint, reached));
  }
  if (state.progress.step > steps_per_epoch) {
    throw std::runtime_error(fmt::format("{} is at step {} of an epoch of {} steps: the training "
                                         "data changed", checkpoint, state.progress.step, steps_per_epoch));
  }
  remove_files(options.out_dir, {"diverged.json"});  // this run goes on; a new divergence writes it again
}

// config.json, and metrics.jsonl opened for appending. On a resume it keeps the lines the
// checkpoint has seen: the epochs it completed and the step lines of the epoch in progress up
// to its position.
MetricsWriter open_run_files(const TrainConfig& config, const std::string& dir, bool resume,
                             const TrainState& state, int64_t steps_per_epoch) {
  write_file_atomic(path_join(dir, "config.json"),
                    [&](std::ostream& out) { out << to_json(config).dump(2) << '\n'; });
  const int64_t done_epochs = state.epoch, done_steps = state.epoch * steps_per_epoch + state.progress.step;
  return MetricsWriter(path_join(dir, "metrics.jsonl"),
                       resume ? std::function<bool(const nlohmann::json&)>(
                                    [done_epochs, done_steps](const nlohmann::json& r) {
                                      return metrics_line_kept(r, done_epochs, done_steps);
                                    })
                              : std::function<bool(const nlohmann::json&)>());
}

// The message of a diverged run, also written to DIR/diverged.json by rank 0.
TrainingDiverged diverged(const TrainingDiverged& e, const std::string& saved, const std::string& dir,
                          bool main) {
  const std::string kept = saved.empty() ? "No checkpoint had been written yet"
                                         : "The last good checkpoint, " + saved + ", is kept";
  const std::string message = fmt::format(
      "{}: training stopped. {}. Lower --lr (or check the data) and start again with "
      "--overwrite; --on-nonfinite continue trains on regardless", e.what(), kept);
  if (main) {
    write_file_atomic(path_join(dir, "diverged.json"), [&](std::ostream& out) {
      out << nlohmann::json{{"message", message}, {"checkpoint", saved.empty() ? nlohmann::json() : nlohmann::json(saved)}}.dump(2) << '\n';
    });
  }
  return TrainingDiverged(message);
}

// An epoch's line in metrics.jsonl and on stderr.
void report_epoch(MetricsWriter& metrics, const TrainConfig& config, const TrainState& state,
                  const Dataset& train_data, int64_t epoch, double lr, const EpochStats& stats,
                  const Accuracy& test) {
  const double ms_per_step = 1000.0 * stats.seconds / std::max<int64_t>(stats.steps, 1);
  const double images_per_s = stats.images / std::max(stats.seconds, 1e-9);
  metrics.write({{"kind", "epoch"}, {"epoch", epoch}, {"lr", lr},
                 {"train_softmax", stats.softmax}, {"train_center", stats.center},
                 {"train_accuracy", stats.accuracy}, {"test_accuracy", or_null(test.accuracy, test.count)},
                 {"test_softmax", or_null(test.softmax_loss, test.count)}, {"seconds", stats.seconds},
                 {"ms_per_step", ms_per_step},
                 {"skipped_updates", state.center_loss->skipped_updates()},
                 {"images_per_s", images_per_s},
                 {"decode_images_per_s", stats.loader.images_per_second()},
                 {"loader_threads", config.loader_threads},
                 {"data_wait_s", stats.loader.wait_seconds},
                 {"bad_images", train_data.skip_bad ? train_data.skip_bad->count() : 0}});
  fmt::print(stderr, "epoch {}: {}, {:.1f} ms/step, {:.0f} images/s (loader: {:.0f} images/s per "
             "thread, step waited {:.1f} s for data)\n", epoch, test_text(test), ms_per_step,
             images_per_s, stats.loader.images_per_second(), stats.loader.wait_seconds);
  if (train_data.skip_bad && train_data.skip_bad->count() > 0) {
    fmt::print(stderr, "warning: {}\n", train_data.skip_bad->summary());
  }
}

}  // namespace

TrainSummary train(TrainConfig config, const RunOptions& options) {
  // Signals first: a Ctrl-C while the data loads stops the run at its first step boundary.
  StopSignals signals;
  torch::set_num_threads(config.threads);
  // The data first: a run refused for its data changes nothing in its folder.
  const RunData data = load_run_data(config, options.skip_bad_images, options.progress);
  const Dataset& train_data = data.train;
  const Dataset& test_data = data.test;
  if (config.image_height > kMaxImageSize || config.image_width > kMaxImageSize) {
    throw std::runtime_error(fmt::format("{}: the trainer takes images of at most {} pixels a side, "
                                         "got {}x{} (--image-size sets the size)", config.data_dir,
                                         kMaxImageSize, config.image_height, config.image_width));
  }
  const auto& dp = options.data_parallel;
  const bool main = !dp || dp->is_main();  // the one process that evaluates and writes
  const std::string& dir = options.out_dir;
  const std::string checkpoint = path_join(dir, kCheckpointFile);
  std::optional<FolderLock> lock;
  const bool resume = open_run_folder(options, main, lock);
  if (dp && options.skip_bad_images) {
    // A rank whose batch lost every image would leave the others waiting in a collective.
    throw std::invalid_argument("--skip-bad-images is not supported with several processes: "
                                "remove the bad files (a one-process run lists them)");
  }

  const torch::Tensor train_targets = remap_labels(train_data.labels, config.classes);
  if (main) warn_about_empty_classes(train_targets, config.classes);
  const int64_t steps_per_epoch = epoch_steps(train_data.size(), config.batch_size, dp ? dp->world() : 1);

  TrainState state = make_state(config, dp ? dp->group() : nullptr);
  state.data_parallel = dp;
  if (resume) restore_checkpoint(state, config, options, main, steps_per_epoch);
  if (dp) start_data_parallel(state);
  std::optional<MetricsWriter> metrics;  // rank 0 alone writes
  if (main) metrics.emplace(open_run_files(config, dir, resume, state, steps_per_epoch));

  // Where the last checkpoint on disk stands, for the messages of a stop.
  std::string saved = resume ? fmt::format("{} (after epoch {}, step {})", checkpoint, state.epoch,
                                           state.progress.step)
                             : std::string();
  auto save = [&] {
    if (!main) return;
    save_checkpoint(checkpoint, state);
    saved = fmt::format("{} (after epoch {}, step {})", checkpoint, state.epoch, state.progress.step);
  };
  CheckpointClock clock(options.checkpoint_every);
  auto stop_if_signalled = [&](bool write_checkpoint) {
    const int signal = signals.received();
    if (signal == 0) return;
    if (write_checkpoint) save();
    throw TrainingInterrupted(
        fmt::format("{}: stopped; the checkpoint {} is kept. Continue with --resume",
                    signal == SIGINT ? "SIGINT" : "SIGTERM", saved.empty() ? "(none yet)" : saved),
        signal);
  };
  // After each step: a checkpoint when one is due (the epoch's end writes its own), or when a
  // stop signal came.
  const AfterStep after_step = [&](TrainState&) {
    clock.step();
    stop_if_signalled(true);
    if (state.progress.step < steps_per_epoch && clock.due()) {
      save();
      clock.reset();
    }
  };

  TrainSummary summary;
  double step_seconds = 0;
  int64_t steps_run = 0;
  Embedding test_embedding;  // of the last epoch: also the run's final test features
  Accuracy test;             // of test_embedding
  for (int64_t epoch = state.epoch + 1; epoch <= config.epochs; ++epoch) {
    stop_if_signalled(state.progress.step > 0);
    const double lr = learning_rate(config, epoch);
    const std::string label = fmt::format("epoch {}/{}", epoch, config.epochs);
    const int64_t first_step = state.progress.step;
    const double first_seconds = state.progress.seconds;
    torch::Tensor order = epoch_order(config.seed, epoch, train_data.size());
    if (dp) order = dp->shard_order(order, config.batch_size);
    EpochStats stats;
    try {
      stats = train_epoch(state, train_data, train_targets, order, lr, label,
                          options.progress && main, main ? &*metrics : nullptr, epoch, after_step,
                          options.on_nonfinite);
    } catch (const TrainingDiverged& e) {
      throw diverged(e, saved, dir, main);
    }
    step_seconds += stats.seconds - first_seconds;  // this process's steps only
    steps_run += stats.steps - first_step;
    state.epoch = epoch;  // (train_epoch has reset state.progress)
    if (!main) continue;
    test_embedding = embed(state.model, test_data, embed_options(config, options));
    test = closed_set_accuracy(test_embedding, config.classes);
    // The epoch's line first, then the checkpoint: a crash in between resumes from the previous
    // checkpoint, which drops this line again (records of later epochs are not kept), so the
    // file never lacks the line of an epoch the checkpoint has.
    report_epoch(*metrics, config, state, train_data, epoch, lr, stats, test);
    save();
    clock.reset();
  }
  stop_if_signalled(false);  // the last epoch's checkpoint is on disk
  summary.epochs = state.epoch;
  if (!main) {
    dp->barrier();  // rank 0's outputs are done: the group may go
    return summary;
  }
  summary.ms_per_step = steps_run > 0 ? 1000.0 * step_seconds / static_cast<double>(steps_run) : 0.0;
  if (!test_embedding.features.defined()) {  // no epoch ran here (a finished run resumed)
    test_embedding = embed(state.model, test_data, embed_options(config, options));
    test = closed_set_accuracy(test_embedding, config.classes);
  }
  summary.test_accuracy = test.count > 0 ? test.accuracy : std::numeric_limits<double>::quiet_NaN();
  if (options.outputs) {
    if (test_data.size() > 0) {
      save_embedding(path_join(dir, "test_features.pt"), test_embedding,
                     state.center_loss->centers(), config.classes);
    }
    write_run_outputs(options.out_dir, options.python);
  }
  if (dp) dp->barrier();
  return summary;
}

}  // namespace centerloss::trainer
