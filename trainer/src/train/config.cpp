#include "train/config.h"

#include <stdexcept>

namespace centerloss::trainer {

nlohmann::json to_json(const TrainConfig& c) {
  return {{"data_dir", c.data_dir},     {"classes", c.classes},
          {"train_limit", c.train_limit}, {"test_limit", c.test_limit}, {"image_size", c.image_size},
          {"arch", arch_name(c.arch)},  {"feature_dim", c.feature_dim},
          {"epochs", c.epochs},         {"batch_size", c.batch_size},
          {"lr", c.lr},                 {"momentum", c.momentum},
          {"weight_decay", c.weight_decay}, {"lr_step", c.lr_step},
          {"lr_gamma", c.lr_gamma},     {"lambda", c.lambda},
          {"alpha", c.alpha},           {"reduction", reduction_name(c.reduction)},
          {"update", update_name(c.update)}, {"margin", c.margin},
          {"init", init_name(c.init)},  {"init_std", c.init_std},
          {"center_lr", c.center_lr},   {"seed", c.seed},
          {"threads", c.threads},       {"log_every", c.log_every}};
}

TrainConfig config_from_json(const nlohmann::json& j) {
  TrainConfig c;
  c.data_dir = j.at("data_dir").get<std::string>();
  c.classes = j.at("classes").get<std::vector<int64_t>>();
  c.train_limit = j.at("train_limit").get<int64_t>();
  c.test_limit = j.at("test_limit").get<int64_t>();
  c.image_size = j.at("image_size").get<int64_t>();
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
  return c;
}

NetConfig net_config(const TrainConfig& config) {
  NetConfig net;
  net.arch = config.arch;
  net.feature_dim = config.feature_dim;
  net.num_classes = static_cast<int64_t>(config.classes.size());
  net.image_size = config.image_size;
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
