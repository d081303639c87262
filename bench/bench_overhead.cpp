// What center loss adds to a real training step: the trainer's LeNets++ (trainer/src/model)
// trained with softmax alone and with softmax + lambda * center loss, steps interleaved
// (A B A B ...) so that machine load hits both alike; medians reported.
//
// One step = forward, loss, backward, SGD step (with center loss: the CenterLoss module's
// forward, which also moves the centers, as in the trainer). Inputs are random 28x28 images and
// labels: the time of a step does not depend on the pixel values. Writes JSON with --json.
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <vector>

#include "centerloss/center_loss.h"
#include "model/net.h"
#include "util/progress.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

}  // namespace

int main(int argc, char** argv) {
  namespace tr = centerloss::trainer;
  CLI::App app{"Time a LeNets++ training step with and without center loss"};
  std::string arch = "lenets++";
  int64_t batch = 128, steps = 20, warmup = 3, threads = 2, dim = 2, classes = 10;
  double lambda = 0.01;
  std::string json_path;
  app.add_option("--arch", arch, "lenets++ or small")->capture_default_str();
  app.add_option("--batch", batch, "batch size N")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "timed steps of each kind")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps of each kind first")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--feature-dim", dim, "D")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--classes", classes, "K")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lambda", lambda, "center loss weight")->capture_default_str();
  app.add_option("--json", json_path, "write the results here");
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(0);

  tr::NetConfig config;
  config.arch = tr::parse_arch(arch);
  config.feature_dim = dim;
  config.num_classes = classes;
  tr::FeatureNet net(config);
  centerloss::CenterLoss center_loss(centerloss::CenterLossOptions(classes, dim));
  torch::optim::SGD optimizer(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const torch::Tensor images = torch::randn({batch, config.channels, config.height, config.width});
  const torch::Tensor labels = torch::randint(classes, {batch}, torch::kLong);

  double center_loss_seconds = 0;  // time inside center_loss->forward (loss + center step)
  auto step = [&](bool with_center_loss) {
    const auto t0 = std::chrono::steady_clock::now();
    optimizer.zero_grad();
    auto out = net->forward(images);
    torch::Tensor loss = torch::nn::functional::cross_entropy(out.logits, labels);
    if (with_center_loss) {
      const auto c0 = std::chrono::steady_clock::now();
      loss = loss + lambda * center_loss->forward(out.features, labels);
      center_loss_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
    }
    loss.backward();
    optimizer.step();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };

  for (int64_t i = 0; i < warmup; ++i) {
    step(false);
    step(true);
  }
  center_loss_seconds = 0;
  std::vector<double> plain, with_cl;
  tr::ProgressBar bar(fmt::format("{} N={} steps", arch, batch), steps);
  for (int64_t i = 0; i < steps; ++i) {
    plain.push_back(step(false));
    with_cl.push_back(step(true));
    bar.update(i + 1, [&] {
      return fmt::format("{:.1f} ms / {:.1f} ms", plain.back() * 1e3, with_cl.back() * 1e3);
    });
  }
  bar.finish("");
  const double a = median(plain), b = median(with_cl);
  const double inside = center_loss_seconds / static_cast<double>(steps);
  fmt::print("{} N={} D={} K={} threads={}: step without center loss {:.2f} ms, with {:.2f} ms "
             "(median of {}); added {:+.2f}% ; inside CenterLoss::forward {:.3f} ms = {:.2f}% of a step\n",
             arch, batch, dim, classes, threads, a * 1e3, b * 1e3, steps, (b - a) / a * 100,
             inside * 1e3, inside / a * 100);
  if (!json_path.empty()) {
    nlohmann::json j = {{"arch", arch}, {"batch", batch}, {"feature_dim", dim}, {"classes", classes},
                        {"threads", threads}, {"steps", steps}, {"plain_seconds", plain},
                        {"center_loss_seconds", with_cl}, {"median_plain_s", a},
                        {"median_with_center_loss_s", b}, {"added_fraction", (b - a) / a},
                        {"inside_center_loss_forward_s", inside}};
    std::ofstream(json_path) << j.dump(1) << "\n";
  }
  return 0;
}
