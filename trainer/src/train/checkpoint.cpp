#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/utils.h>

#include <mutex>
#include <stdexcept>

#include "util/fs.h"

namespace centerloss::trainer {

TrainState make_state(const TrainConfig& config) {
  if (config.classes.empty()) throw std::invalid_argument("make_state: config.classes is empty");
  torch::manual_seed(config.seed);
  TrainState state;
  state.config = config;
  state.model = FeatureNet(net_config(config));
  state.center_loss = CenterLoss(center_loss_options(config));
  state.optimizer = std::make_unique<torch::optim::SGD>(
      state.model->parameters(), torch::optim::SGDOptions(config.lr)
                                     .momentum(config.momentum)
                                     .weight_decay(config.weight_decay));
  if (config.update == UpdateRule::Gradient) {
    state.center_optimizer = std::make_unique<torch::optim::SGD>(
        state.center_loss->parameters(), torch::optim::SGDOptions(config.center_lr));
  }
  return state;
}

void save_checkpoint(const std::string& path, TrainState& state) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model, center_loss, optimizer;
  state.model->save(model);
  state.center_loss->save(center_loss);
  state.optimizer->save(optimizer);
  archive.write("model", model);
  archive.write("center_loss", center_loss);
  archive.write("optimizer", optimizer);
  if (state.center_optimizer) {
    torch::serialize::OutputArchive center_optimizer;
    state.center_optimizer->save(center_optimizer);
    archive.write("center_optimizer", center_optimizer);
  }
  archive.write("epoch", torch::tensor(state.epoch, torch::kLong));
  archive.write("rng", at::detail::getDefaultCPUGenerator().get_state());
  archive.write("config", c10::IValue(to_json(state.config).dump()));

  write_file_atomic(path, [&](std::ostream& out) { archive.save_to(out); });
}

TrainConfig read_checkpoint_config(const std::string& path) {
  if (!is_file(path)) {
    throw std::runtime_error("checkpoint '" + path + "' does not exist");
  }
  torch::serialize::InputArchive archive;
  archive.load_from(path);
  c10::IValue config;
  archive.read("config", config);
  return config_from_json(nlohmann::json::parse(config.toStringRef()));
}

void load_checkpoint(const std::string& path, TrainState& state) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    torch::serialize::InputArchive model, center_loss, optimizer;
    archive.read("model", model);
    archive.read("center_loss", center_loss);
    archive.read("optimizer", optimizer);
    state.model->load(model);
    state.center_loss->load(center_loss);
    state.optimizer->load(optimizer);
    if (state.center_optimizer) {
      torch::serialize::InputArchive center_optimizer;
      archive.read("center_optimizer", center_optimizer);
      state.center_optimizer->load(center_optimizer);
    }
    torch::Tensor epoch, rng;
    archive.read("epoch", epoch);
    archive.read("rng", rng);
    state.epoch = epoch.item<int64_t>();
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(rng);
  } catch (const c10::Error& e) {
    throw std::runtime_error(fmt::format("checkpoint '{}' cannot be loaded: {}", path,
                                         e.what_without_backtrace()));
  }
}

}  // namespace centerloss::trainer
