#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/nn/functional/loss.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>

#include "data/batch_loader.h"
#include "embed/embed.h"
#include "train/report.h"
#include "train/run.h"
#include "train/run_data.h"
#include "util/fs.h"
#include "util/progress.h"

namespace centerloss::trainer {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void set_lr(torch::optim::SGD& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) {
    static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
  }
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

EpochStats train_epoch(TrainState& state, const Dataset& data, const torch::Tensor& targets,
                       const torch::Tensor& order, double lr, const std::string& label,
                       bool progress, MetricsWriter* metrics, int64_t epoch) {
  const TrainConfig& config = state.config;
  state.model->train();
  state.center_loss->train();
  set_lr(*state.optimizer, lr);
  LoaderOptions loader_options;
  loader_options.threads = config.loader_threads;
  loader_options.flip = config.flip;
  loader_options.flip_seed = config.seed * 0xD1B54A32D192ED03ULL + static_cast<uint64_t>(epoch);
  BatchLoader loader(data, order, config.batch_size, loader_options);
  const int64_t steps = loader.batches();
  ProgressBar bar(label, steps, progress);
  EpochStats stats;
  double window_softmax = 0, window_center = 0;
  int64_t window_correct = 0, window_count = 0, window_steps = 0, correct = 0, seen = 0;
  const auto start = Clock::now();
  auto fields = [&] {
    return fmt::format("softmax {:.4f} center {:.4f} acc {:.2f}%", stats.softmax / std::max<int64_t>(stats.steps, 1),
                       stats.center / std::max<int64_t>(stats.steps, 1),
                       100.0 * static_cast<double>(correct) / std::max<int64_t>(seen, 1));
  };
  for (int64_t step = 0; step < steps; ++step) {
    Batch batch;
    loader.next(batch);
    if (batch.samples.numel() == 0) {  // every image of the batch was a skipped bad file
      bar.update(step + 1, fields);
      continue;
    }
    const torch::Tensor y = targets.index_select(0, batch.samples);

    NetOutput out = state.model->forward(batch.images);
    const torch::Tensor softmax = torch::nn::functional::cross_entropy(out.logits, y);
    torch::Tensor center = state.center_loss->forward(out.features, y);  // moves paper/mean centers
    if (config.reduction == Reduction::None) center = center.mean();
    const torch::Tensor loss = softmax + config.lambda * center;

    state.optimizer->zero_grad();
    if (state.center_optimizer) state.center_optimizer->zero_grad();
    loss.backward();
    state.optimizer->step();
    if (state.center_optimizer) {
      if (config.lambda > 0) {
        torch::NoGradGuard no_grad;
        for (auto& p : state.center_loss->parameters()) {
          if (p.grad().defined()) p.grad().div_(config.lambda);
        }
      }
      state.center_optimizer->step();
    }

    const double s = softmax.item<double>();
    const double c = center.item<double>();
    const int64_t hits = out.logits.argmax(1).eq(y).sum().item<int64_t>();
    stats.softmax += s;
    stats.center += c;
    ++stats.steps;
    correct += hits;
    seen += y.size(0);
    window_softmax += s;
    window_center += c;
    window_correct += hits;
    window_count += y.size(0);
    ++window_steps;
    if (metrics != nullptr && (window_steps == config.log_every || step + 1 == steps)) {
      metrics->write({{"kind", "step"}, {"epoch", epoch}, {"step", (epoch - 1) * steps + step + 1},
                      {"epoch_progress", epoch - 1 + static_cast<double>(step + 1) / steps},
                      {"softmax", window_softmax / window_steps},
                      {"center", window_center / window_steps},
                      {"accuracy", static_cast<double>(window_correct) / window_count}, {"lr", lr}});
      window_softmax = window_center = 0;
      window_correct = window_count = window_steps = 0;
    }
    bar.update(step + 1, fields);
  }
  stats.seconds = seconds_since(start);
  bar.finish(fields());
  stats.softmax /= std::max<int64_t>(stats.steps, 1);
  stats.center /= std::max<int64_t>(stats.steps, 1);
  stats.accuracy = static_cast<double>(correct) / std::max<int64_t>(seen, 1);
  stats.images = seen;
  stats.loader = loader.stats();
  return stats;
}

TrainSummary train(TrainConfig config, const RunOptions& options) {
  torch::set_num_threads(config.threads);
  const RunData data = load_run_data(config, options.skip_bad_images, options.progress);
  const Dataset& train_data = data.train;
  const Dataset& test_data = data.test;
  const torch::Tensor train_targets = remap_labels(train_data.labels, config.classes);
  warn_about_empty_classes(train_targets, config.classes);

  const std::string& dir = options.out_dir;
  make_dirs(dir);
  const std::string checkpoint = path_join(dir, kCheckpointFile);
  TrainState state = make_state(config);
  if (options.resume) {
    const auto file = options.checkpoint ? options.checkpoint
                                         : std::make_shared<CheckpointFile>(checkpoint);
    file->restore(state);
    fmt::print(stderr, "resuming {} after epoch {}\n", checkpoint, state.epoch);
    if (const int before = file->config().threads; before != config.threads) {
      fmt::print(stderr, "warning: {} threads, the run had {}: the continued run will not be "
                 "bitwise the same as an uninterrupted one\n", config.threads, before);
    }
    if (config.epochs < state.epoch) {
      throw std::invalid_argument(fmt::format("{} has {} epochs; --epochs must be at least that",
                                              checkpoint, state.epoch));
    }
  }
  {
    std::ofstream out(path_join(dir, "config.json"));
    out << to_json(config).dump(2) << '\n';
  }
  MetricsWriter metrics(path_join(dir, "metrics.jsonl"), options.resume ? state.epoch : -1);

  TrainSummary summary;
  double step_seconds = 0;
  int64_t steps_run = 0;
  Embedding test_embedding;  // of the last epoch: also the run's final test features
  Accuracy test;             // of test_embedding
  for (int64_t epoch = state.epoch + 1; epoch <= config.epochs; ++epoch) {
    const double lr = learning_rate(config, epoch);
    const std::string label = fmt::format("epoch {}/{}", epoch, config.epochs);
    EpochStats stats = train_epoch(state, train_data, train_targets,
                                   epoch_order(config.seed, epoch, train_data.size()), lr, label,
                                   options.progress, &metrics, epoch);
    step_seconds += stats.seconds;
    steps_run += stats.steps;
    test_embedding = embed(state.model, test_data, embed_options(config, options));
    test = closed_set_accuracy(test_embedding, config.classes);
    state.epoch = epoch;
    // The epoch's line first, then the checkpoint: a crash in between resumes from the previous
    // checkpoint, which drops this line again (records of later epochs are not kept), so the
    // file never lacks the line of an epoch the checkpoint has.
    metrics.write({{"kind", "epoch"}, {"epoch", epoch}, {"lr", lr},
                   {"train_softmax", stats.softmax}, {"train_center", stats.center},
                   {"train_accuracy", stats.accuracy}, {"test_accuracy", or_null(test.accuracy, test.count)},
                   {"test_softmax", or_null(test.softmax_loss, test.count)}, {"seconds", stats.seconds},
                   {"ms_per_step", 1000.0 * stats.seconds / std::max<int64_t>(stats.steps, 1)},
                   {"skipped_updates", state.center_loss->skipped_updates()},
                   {"images_per_s", stats.images / std::max(stats.seconds, 1e-9)},
                   {"decode_images_per_s", stats.loader.images_per_second()},
                   {"loader_threads", config.loader_threads},
                   {"data_wait_s", stats.loader.wait_seconds},
                   {"bad_images", train_data.skip_bad ? train_data.skip_bad->count() : 0}});
    save_checkpoint(checkpoint, state);
    fmt::print(stderr, "epoch {}: {}, {:.1f} ms/step, {:.0f} images/s (loader: {:.0f} images/s per "
               "thread, step waited {:.1f} s for data)\n", epoch, test_text(test),
               1000.0 * stats.seconds / std::max<int64_t>(stats.steps, 1),
               stats.images / std::max(stats.seconds, 1e-9), stats.loader.images_per_second(),
               stats.loader.wait_seconds);
    if (train_data.skip_bad && train_data.skip_bad->count() > 0) {
      fmt::print(stderr, "warning: {}\n", train_data.skip_bad->summary());
    }
  }
  summary.epochs = state.epoch;
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
  return summary;
}

}  // namespace centerloss::trainer
