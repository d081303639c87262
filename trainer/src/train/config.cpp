#include "train/config.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

namespace centerloss::trainer {

nlohmann::json to_json(const TrainConfig& c) {
  return {{"data_dir", c.data_dir},     {"test_data_dir", c.test_data_dir},
          {"classes", c.classes},       {"class_names", c.class_names},
          {"train_limit", c.train_limit}, {"test_limit", c.test_limit},
          {"image_size", {c.image_height, c.image_width}}, {"channels", c.channels},
          {"flip", c.flip},             {"loader_threads", c.loader_threads},
          {"arch", arch_name(c.arch)},  {"feature_dim", c.feature_dim},
          {"epochs", c.epochs},         {"batch_size", c.batch_size},
          {"lr", c.lr},                 {"momentum", c.momentum},
          {"weight_decay", c.weight_decay}, {"lr_step", c.lr_step},
          {"lr_gamma", c.lr_gamma},     {"lambda", c.lambda},
          {"alpha", c.alpha},           {"reduction", reduction_name(c.reduction)},
          {"update", update_name(c.update)}, {"margin", c.margin},
          {"init", init_name(c.init)},  {"init_std", c.init_std},
          {"center_lr", c.center_lr},   {"seed", c.seed},
          {"threads", c.threads},       {"log_every", c.log_every},
          {"world_size", c.world_size}};
}

namespace {

// nlohmann converts a float to an integer field with a plain cast, undefined beyond the
// integer's range (found by fuzz_config under UBSan): such numbers are refused first.
void refuse_huge_numbers(const nlohmann::json& j, const std::string& field) {
  if (j.is_number_float() && !(std::fabs(j.get<double>()) < 9.0e18)) {
    throw std::invalid_argument(fmt::format("config: {} out of range: {}", field, j.dump()));
  }
  if (!j.is_structured()) return;
  for (auto it = j.begin(); it != j.end(); ++it) refuse_huge_numbers(*it, j.is_object() ? it.key() : field);
}

}  // namespace

TrainConfig config_from_json(const nlohmann::json& j) {
  refuse_huge_numbers(j, "config");
  if (j.contains("seed") && !j["seed"].is_number_unsigned()) {
    throw std::invalid_argument(fmt::format("config: seed out of range: {}", j["seed"].dump()));
  }
  TrainConfig c;
  c.data_dir = j.at("data_dir").get<std::string>();
  c.classes = j.at("classes").get<std::vector<int64_t>>();
  c.train_limit = j.at("train_limit").get<int64_t>();
  c.test_limit = j.at("test_limit").get<int64_t>();
  // Written before image folders: no test folder, no names, square grey images, no flips.
  c.test_data_dir = j.value("test_data_dir", std::string());
  c.class_names = j.value("class_names", std::vector<std::string>());
  const nlohmann::json& size = j.at("image_size");
  c.image_height = size.is_array() ? size.at(0).get<int64_t>() : size.get<int64_t>();
  c.image_width = size.is_array() ? size.at(1).get<int64_t>() : size.get<int64_t>();
  c.channels = j.value("channels", int64_t{1});
  c.flip = j.value("flip", false);
  c.loader_threads = j.value("loader_threads", 2);
  c.arch = parse_arch(j.at("arch").get<std::string>());
  c.feature_dim = j.at("feature_dim").get<int64_t>();
  c.epochs = j.at("epochs").get<int64_t>();
  c.batch_size = j.at("batch_size").get<int64_t>();
  c.lr = j.at("lr").get<double>();
  c.momentum = j.at("momentum").get<double>();
  c.weight_decay = j.at("weight_decay").get<double>();
  c.lr_step = j.at("lr_step").get<int64_t>();
  c.lr_gamma = j.at("lr_gamma").get<double>();
  c.lambda = j.at("lambda").get<double>();
  c.alpha = j.at("alpha").get<double>();
  c.reduction = parse_reduction(j.at("reduction").get<std::string>());
  c.update = parse_update(j.at("update").get<std::string>());
  c.margin = j.at("margin").get<double>();
  c.init = parse_init(j.at("init").get<std::string>());
  c.init_std = j.at("init_std").get<double>();
  c.center_lr = j.at("center_lr").get<double>();
  c.seed = j.at("seed").get<uint64_t>();
  c.threads = j.at("threads").get<int>();
  c.log_every = j.at("log_every").get<int64_t>();
  c.world_size = j.value("world_size", 1);  // configs of one-process runs may lack it
  // A stored config (checkpoint, config.json) may have been edited: the CLI's ranges again.
  auto need = [](bool ok, const char* field, const auto& value) {
    if (!ok) throw std::invalid_argument(fmt::format("config: {} out of range: {}", field, value));
  };
  need(!c.classes.empty(), "classes", "empty");
  need(c.train_limit >= 0, "train_limit", c.train_limit);
  need(c.test_limit >= 0, "test_limit", c.test_limit);
  need(c.image_height >= 0 && c.image_width >= 0 && (c.image_height > 0) == (c.image_width > 0) &&
           c.image_height <= kMaxImageSize && c.image_width <= kMaxImageSize,
       "image_size", size.dump());
  need(c.channels == 1 || c.channels == 3, "channels", c.channels);
  need(c.class_names.empty() || c.classes.back() < static_cast<int64_t>(c.class_names.size()),
       "classes", "an id beyond class_names");
  need(c.loader_threads >= 0, "loader_threads", c.loader_threads);
  need(c.feature_dim >= 1, "feature_dim", c.feature_dim);
  need(c.epochs >= 1, "epochs", c.epochs);
  need(c.batch_size >= 1, "batch_size", c.batch_size);
  need(c.lr > 0, "lr", c.lr);
  need(c.momentum >= 0 && c.momentum <= 1, "momentum", c.momentum);
  need(c.weight_decay >= 0, "weight_decay", c.weight_decay);
  need(c.lr_step >= 0, "lr_step", c.lr_step);
  need(c.lr_gamma > 0, "lr_gamma", c.lr_gamma);
  need(c.lambda >= 0, "lambda", c.lambda);
  need(c.alpha > 0 && c.alpha <= 1, "alpha", c.alpha);
  need(c.margin >= 0 && std::isfinite(c.margin), "margin", c.margin);
  need(c.init_std > 0 && std::isfinite(c.init_std), "init_std", c.init_std);
  need(c.center_lr > 0, "center_lr", c.center_lr);
  need(c.threads >= 1, "threads", c.threads);
  need(c.log_every >= 1, "log_every", c.log_every);
  need(c.world_size >= 1, "world_size", c.world_size);
  return c;
}

NetConfig net_config(const TrainConfig& config) {
  NetConfig net;
  net.arch = config.arch;
  net.feature_dim = config.feature_dim;
  net.num_classes = static_cast<int64_t>(config.classes.size());
  net.channels = config.channels;
  net.height = config.image_height;
  net.width = config.image_width;
  return net;
}

CenterLossOptions center_loss_options(const TrainConfig& config) {
  return CenterLossOptions(static_cast<int64_t>(config.classes.size()), config.feature_dim)
      .alpha(config.alpha)
      .reduction(config.reduction)
      .update(config.update)
      .margin(config.margin)
      .init(config.init)
      .init_std(config.init_std);
}

}  // namespace centerloss::trainer
