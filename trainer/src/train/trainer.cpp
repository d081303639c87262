#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/nn/functional/loss.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <optional>

#include "embed/embed.h"
#include "train/report.h"
#include "train/run.h"
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

Dataset first_n(Dataset data, int64_t n) {
  if (n > 0 && n < data.size()) {
    data.images = data.images.slice(0, 0, n);
    data.labels = data.labels.slice(0, 0, n);
  }
  return data;
}

// A class without training samples still gets an output and a center: usually a stray label
// (the class count is the largest label + 1) or a --train-limit that stops early. Said, not fatal.
// What the optimizers move: with several processes their gradients are averaged.
std::vector<torch::Tensor> trained_tensors(TrainState& state) {
  std::vector<torch::Tensor> tensors = state.model->parameters();
  for (const torch::Tensor& p : state.center_loss->parameters()) tensors.push_back(p);
  return tensors;
}

// Every rank starts from rank 0's weights and centers, as DistributedDataParallel does: the
// seed gives every rank the same ones, but no rank should rely on that.
void start_data_parallel(TrainState& state) {
  state.data_parallel->broadcast_state(*state.model);
  state.data_parallel->broadcast_state(*state.center_loss);
}

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
  const int64_t n = order.size(0);
  const int64_t steps = (n + config.batch_size - 1) / config.batch_size;
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
    const torch::Tensor index = order.slice(0, step * config.batch_size, std::min(n, (step + 1) * config.batch_size));
    const torch::Tensor images = normalize_images(data.images.index_select(0, index));
    const torch::Tensor y = targets.index_select(0, index);

    NetOutput out = state.model->forward(images);
    const torch::Tensor softmax = torch::nn::functional::cross_entropy(out.logits, y);
    torch::Tensor center = state.center_loss->forward(out.features, y);  // moves paper/mean centers
    if (config.reduction == Reduction::None) center = center.mean();
    const torch::Tensor loss = softmax + config.lambda * center;

    state.optimizer->zero_grad();
    if (state.center_optimizer) state.center_optimizer->zero_grad();
    loss.backward();
    StepNumbers numbers{softmax.item<double>(), center.item<double>(),
                        out.logits.argmax(1).eq(y).sum().item<int64_t>(), y.size(0)};
    if (state.data_parallel) {
      state.data_parallel->average_gradients(trained_tensors(state), step, numbers);
    }
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

    const double s = numbers.softmax, c = numbers.center;
    const int64_t hits = numbers.hits;
    stats.softmax += s;
    stats.center += c;
    ++stats.steps;
    correct += hits;
    seen += numbers.rows;
    window_softmax += s;
    window_center += c;
    window_correct += hits;
    window_count += numbers.rows;
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
  return stats;
}

TrainSummary train(TrainConfig config, const RunOptions& options) {
  torch::set_num_threads(config.threads);
  if (config.classes.empty()) config.classes = select_classes({}, {}, count_classes(config.data_dir));
  const Dataset train_data = first_n(load_split(config.data_dir, Split::Train, config.classes), config.train_limit);
  const Dataset test_data = first_n(load_split(config.data_dir, Split::Test, config.classes), config.test_limit);
  if (train_data.size() == 0) throw std::runtime_error("no training samples of the selected classes");
  if (train_data.images.size(2) != train_data.images.size(3)) {
    throw std::runtime_error(fmt::format("{}: the trainer expects square images, got {}x{}",
                                         config.data_dir, train_data.images.size(2),
                                         train_data.images.size(3)));
  }
  if (test_data.size() > 0 && test_data.images.sizes().slice(1) != train_data.images.sizes().slice(1)) {
    // Checked now, not after the first epoch's training, when the test split is embedded.
    throw std::runtime_error(fmt::format("{}: test images are {} but training images are {}",
                                         config.data_dir, c10::str(test_data.images.sizes().slice(1)),
                                         c10::str(train_data.images.sizes().slice(1))));
  }
  config.image_size = train_data.images.size(2);
  const torch::Tensor train_targets = remap_labels(train_data.labels, config.classes);
  const auto& dp = options.data_parallel;
  const bool main = !dp || dp->is_main();  // the one process that evaluates and writes
  if (main) warn_about_empty_classes(train_targets, config.classes);

  const std::string& dir = options.out_dir;
  if (main) make_dirs(dir);
  const std::string checkpoint = path_join(dir, kCheckpointFile);
  TrainState state = make_state(config, dp ? dp->group() : nullptr);
  state.data_parallel = dp;
  if (options.resume) {
    const auto file = options.checkpoint ? options.checkpoint
                                         : std::make_shared<CheckpointFile>(checkpoint);
    file->restore(state);
    if (main) fmt::print(stderr, "resuming {} after epoch {}\n", checkpoint, state.epoch);
    if (const int before = file->config().threads; before != config.threads) {
      fmt::print(stderr, "warning: {} threads, the run had {}: the continued run will not be "
                 "bitwise the same as an uninterrupted one\n", config.threads, before);
    }
    if (config.epochs < state.epoch) {
      throw std::invalid_argument(fmt::format("{} has {} epochs; --epochs must be at least that",
                                              checkpoint, state.epoch));
    }
  }
  if (dp) start_data_parallel(state);
  std::optional<MetricsWriter> metrics;
  if (main) {
    std::ofstream out(path_join(dir, "config.json"));
    out << to_json(config).dump(2) << '\n';
    metrics.emplace(path_join(dir, "metrics.jsonl"), options.resume ? state.epoch : -1);
  }

  TrainSummary summary;
  double step_seconds = 0;
  int64_t steps_run = 0;
  Embedding test_embedding;  // of the last epoch: also the run's final test features
  Accuracy test;             // of test_embedding
  for (int64_t epoch = state.epoch + 1; epoch <= config.epochs; ++epoch) {
    const double lr = learning_rate(config, epoch);
    const std::string label = fmt::format("epoch {}/{}", epoch, config.epochs);
    torch::Tensor order = epoch_order(config.seed, epoch, train_data.size());
    if (dp) order = dp->shard_order(order, config.batch_size);
    EpochStats stats = train_epoch(state, train_data, train_targets, order, lr, label,
                                   options.progress && main, main ? &*metrics : nullptr, epoch);
    step_seconds += stats.seconds;
    steps_run += stats.steps;
    state.epoch = epoch;
    if (!main) continue;
    test_embedding = embed(state.model, test_data);
    test = closed_set_accuracy(test_embedding, config.classes);
    // The epoch's line first, then the checkpoint: a crash in between resumes from the previous
    // checkpoint, which drops this line again (records of later epochs are not kept), so the
    // file never lacks the line of an epoch the checkpoint has.
    metrics->write({{"kind", "epoch"}, {"epoch", epoch}, {"lr", lr},
                   {"train_softmax", stats.softmax}, {"train_center", stats.center},
                   {"train_accuracy", stats.accuracy}, {"test_accuracy", test.accuracy},
                   {"test_softmax", test.softmax_loss}, {"seconds", stats.seconds},
                   {"ms_per_step", 1000.0 * stats.seconds / std::max<int64_t>(stats.steps, 1)},
                   {"skipped_updates", state.center_loss->skipped_updates()}});
    save_checkpoint(checkpoint, state);
    fmt::print(stderr, "epoch {}: test accuracy {:.2f}% ({} samples), {:.1f} ms/step\n", epoch,
               100.0 * test.accuracy, test.count, 1000.0 * stats.seconds / std::max<int64_t>(stats.steps, 1));
  }
  summary.epochs = state.epoch;
  if (!main) {
    dp->barrier();  // rank 0's outputs are done: the group may go
    return summary;
  }
  summary.ms_per_step = steps_run > 0 ? 1000.0 * step_seconds / static_cast<double>(steps_run) : 0.0;
  if (!test_embedding.features.defined()) {  // no epoch ran here (a finished run resumed)
    test_embedding = embed(state.model, test_data);
    test = closed_set_accuracy(test_embedding, config.classes);
  }
  summary.test_accuracy = test.accuracy;
  if (options.outputs) {
    save_embedding(path_join(dir, "test_features.pt"), test_embedding,
                   state.center_loss->centers(), config.classes);
    write_run_outputs(options.out_dir, options.python);
  }
  if (dp) dp->barrier();
  return summary;
}

}  // namespace centerloss::trainer
