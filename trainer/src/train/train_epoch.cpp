// One epoch of training (train_epoch, declared in train/trainer.h): batches from the loader,
// the two-part loss, the optimizers' steps, the running sums a mid-epoch checkpoint holds.
#include <fmt/format.h>
#include <torch/nn/functional/loss.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "data/batch_loader.h"
#include "train/trainer.h"
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

// What the optimizers move: with several processes their gradients are averaged.
std::vector<torch::Tensor> trained_tensors(TrainState& state) {
  std::vector<torch::Tensor> tensors = state.model->parameters();
  for (const torch::Tensor& p : state.center_loss->parameters()) tensors.push_back(p);
  return tensors;
}

// The optimizers' steps. The centers' gradient reaches them scaled by lambda (through the loss);
// their own optimizer (update "gradient") gets it unscaled, so that alpha does not depend on
// lambda, as in the paper.
void step_optimizers(TrainState& state) {
  state.optimizer->step();
  if (!state.center_optimizer) return;
  if (state.config.lambda > 0) {
    torch::NoGradGuard no_grad;
    for (auto& param : state.center_loss->parameters()) {
      if (param.grad().defined()) param.grad().div_(state.config.lambda);
    }
  }
  state.center_optimizer->step();
}

// A step's numbers into the epoch's running sums and the logging window.
void add_step(EpochProgress& p, const StepNumbers& numbers) {
  p.softmax += numbers.softmax;
  p.center += numbers.center;
  p.correct += numbers.hits;
  p.seen += numbers.rows;
  p.window_softmax += numbers.softmax;
  p.window_center += numbers.center;
  p.window_correct += numbers.hits;
  p.window_count += numbers.rows;
  ++p.window_steps;
}

// The logging window's means as a "step" line of metrics.jsonl; the window starts again.
void write_step_line(MetricsWriter& metrics, EpochProgress& p, int64_t epoch, int64_t step,
                     int64_t steps, double lr) {
  metrics.write({{"kind", "step"}, {"epoch", epoch}, {"step", (epoch - 1) * steps + step + 1},
                 {"epoch_progress", epoch - 1 + static_cast<double>(step + 1) / steps},
                 {"softmax", p.window_softmax / p.window_steps},
                 {"center", p.window_center / p.window_steps},
                 {"accuracy", static_cast<double>(p.window_correct) / p.window_count}, {"lr", lr}});
  p.window_softmax = p.window_center = 0;
  p.window_correct = p.window_count = p.window_steps = 0;
}

}  // namespace

EpochStats train_epoch(TrainState& state, const Dataset& data, const torch::Tensor& targets,
                       const torch::Tensor& order, double lr, const std::string& label,
                       bool progress, MetricsWriter* metrics, int64_t epoch,
                       const AfterStep& after_step, OnNonfinite on_nonfinite) {
  const TrainConfig& config = state.config;
  state.model->train();
  state.center_loss->train();
  set_lr(*state.optimizer, lr);
  EpochProgress& p = state.progress;
  LoaderOptions loader_options;
  loader_options.threads = config.loader_threads;
  loader_options.flip = config.flip;
  loader_options.flip_seed = config.seed * 0xD1B54A32D192ED03ULL + static_cast<uint64_t>(epoch);
  const int64_t steps = (order.size(0) + config.batch_size - 1) / config.batch_size;
  if (p.step > steps) {
    throw std::runtime_error(fmt::format("the checkpoint is at step {} of epoch {}, which has "
                                         "only {} steps: the training data changed", p.step, epoch, steps));
  }
  loader_options.first_batch = p.step;
  BatchLoader loader(data, order, config.batch_size, loader_options);
  ProgressBar bar(label, steps, progress);
  const auto start = Clock::now();
  const double seconds_before = p.seconds;
  bool warned = false;
  auto fields = [&] {
    return fmt::format("softmax {:.4f} center {:.4f} acc {:.2f}%", p.softmax / std::max<int64_t>(p.step, 1),
                       p.center / std::max<int64_t>(p.step, 1),
                       100.0 * static_cast<double>(p.correct) / std::max<int64_t>(p.seen, 1));
  };
  for (int64_t step = p.step; step < steps; ++step) {
    Batch batch;
    loader.next(batch);
    if (batch.samples.numel() == 0) {  // every image of the batch was a skipped bad file
      p.step = step + 1;
      bar.update(step + 1, fields);
      if (after_step) after_step(state);
      continue;
    }
    const torch::Tensor y = targets.index_select(0, batch.samples);

    NetOutput out = state.model->forward(batch.images);
    const torch::Tensor softmax = torch::nn::functional::cross_entropy(out.logits, y);
    torch::Tensor center = state.center_loss->forward(out.features, y);  // moves paper/mean centers
    if (config.reduction == Reduction::None) center = center.mean();
    const torch::Tensor loss = softmax + config.lambda * center;
    // A non-finite loss stops the run before its step is applied. With several processes the
    // global batch's numbers decide, so that every rank stops at the same step.
    auto check_finite = [&](double s, double c) {
      if (std::isfinite(s) && std::isfinite(c)) return;
      const int64_t global_step = (epoch - 1) * steps + step + 1;
      const std::string where = fmt::format("epoch {}, step {} of {} (softmax {}, center {})",
                                            epoch, step + 1, steps, s, c);
      if (on_nonfinite == OnNonfinite::Stop) {
        if (metrics != nullptr) {
          metrics->write({{"kind", "diverged"}, {"epoch", epoch}, {"step", global_step},
                          {"softmax", s}, {"center", c}});
        }
        bar.finish(fields());
        throw TrainingDiverged("the loss is not finite at " + where);
      }
      if (!warned) {
        fmt::print(stderr, "\nwarning: the loss is not finite at {}; training on "
                   "(--on-nonfinite continue)\n", where);
        warned = true;
      }
    };
    StepNumbers numbers{softmax.item<double>(), center.item<double>(),
                        out.logits.argmax(1).eq(y).sum().item<int64_t>(), y.size(0)};
    if (!state.data_parallel) check_finite(numbers.softmax, numbers.center);

    state.optimizer->zero_grad();
    if (state.center_optimizer) state.center_optimizer->zero_grad();
    loss.backward();
    if (state.data_parallel) {
      state.data_parallel->average_gradients(trained_tensors(state), step, numbers);
      check_finite(numbers.softmax, numbers.center);
    }
    step_optimizers(state);
    add_step(p, numbers);
    p.step = step + 1;
    p.seconds = seconds_before + seconds_since(start);
    if (metrics != nullptr && (p.window_steps == config.log_every || step + 1 == steps)) {
      write_step_line(*metrics, p, epoch, step, steps, lr);
    }
    bar.update(step + 1, fields);
    if (after_step) after_step(state);
  }
  bar.finish(fields());
  EpochStats stats;
  stats.steps = p.step;
  stats.seconds = p.seconds;
  stats.softmax = p.softmax / std::max<int64_t>(p.step, 1);
  stats.center = p.center / std::max<int64_t>(p.step, 1);
  stats.accuracy = static_cast<double>(p.correct) / std::max<int64_t>(p.seen, 1);
  stats.images = p.seen;
  stats.loader = loader.stats();
  p = EpochProgress{};  // the epoch is done: a next call starts the next one
  return stats;
}

}  // namespace centerloss::trainer
