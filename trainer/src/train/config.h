// Everything that defines a training run. Saved as config.json in the run folder and inside
// each checkpoint, so a run can be rebuilt (load_run) and resumed exactly.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "centerloss/center_loss.h"
#include "data/dataset.h"
#include "model/net.h"
#include "util/enum_names.h"

namespace centerloss::trainer {

struct TrainConfig {
  // data
  std::string data_dir = kDefaultDataDir;  // IDX files or an image folder (data/dataset.h)
  std::string test_data_dir;     // image folders: the closed-set test split (empty: none).
                                 // IDX data has its own (the t10k files of data_dir)
  std::vector<int64_t> classes;  // data-set class ids trained on, sorted (model label j = classes[j])
  std::vector<std::string> class_names;  // image folders: class id i is folder class_names[i]
  int64_t train_limit = 0;       // use only the first N training samples (0: all)
  int64_t test_limit = 0;        // evaluate on the first N test samples (0: all)
  // Network input [channels, image_height, image_width]. IDX: the files' own size (set when
  // training starts), 1 channel. Image folders: each image is resized and centre-cropped to it
  // (0 x 0: the images' common size, found when training starts).
  int64_t image_height = 28;
  int64_t image_width = 28;
  int64_t channels = 1;
  bool flip = false;             // random horizontal flips (the CLI's default for image folders)
  // model
  Arch arch = Arch::LeNetsPP;
  int64_t feature_dim = 2;
  // optimisation: SGD with momentum, weight decay, lr *= lr_gamma every lr_step epochs
  int64_t epochs = 3;
  int64_t batch_size = 128;
  double lr = 0.01;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  int64_t lr_step = 0;  // 0: constant learning rate
  double lr_gamma = 0.1;
  // center loss: L = L_softmax + lambda * L_center
  double lambda = 0.01;
  double alpha = 0.5;
  Reduction reduction = Reduction::Mean;
  UpdateRule update = UpdateRule::Paper;
  double margin = 0.0;
  Init init = Init::Zeros;
  double init_std = 1.0;
  double center_lr = 0.5;  // update=gradient only: lr of the centers' own SGD (see trainer.h)
  // run
  uint64_t seed = 1;
  int threads = 2;
  int loader_threads = 2;  // background threads preparing batches (results do not depend on it)
  int64_t log_every = 20;  // steps between "step" lines in metrics.jsonl
  int world_size = 1;      // processes (train/data_parallel.h); batch_size is per process
};

// The largest image side a stored config may name: the networks' feature layer grows with its
// square, and an edited config must not ask for more memory than exists.
inline constexpr int64_t kMaxImageSize = 4096;

nlohmann::json to_json(const TrainConfig& config);
TrainConfig config_from_json(const nlohmann::json& json);  // throws on missing/invalid fields

// The option names of the library's enums (CLI, config.json, checkpoints): the library's own
// tables (include/centerloss/types.h, center_loss.h), so every front end spells them alike.
using centerloss::kInitNames;
using centerloss::kReductionNames;
inline constexpr const auto& kUpdateNames = centerloss::kUpdateRuleNames;

// Parsing (throws std::invalid_argument naming the option) and naming, from the tables above.
inline Reduction parse_reduction(const std::string& name) {
  return parse_enum(kReductionNames, name, "--reduction");
}
inline UpdateRule parse_update(const std::string& name) {
  return parse_enum(kUpdateNames, name, "--update");
}
// "first-sight" is how configs written before the one vocabulary spell first_sight.
inline Init parse_init(const std::string& name) {
  return parse_enum(kInitNames, name == "first-sight" ? "first_sight" : name, "--init");
}
inline std::string reduction_name(Reduction reduction) {
  return enum_name(kReductionNames, reduction);
}
inline std::string update_name(UpdateRule update) { return enum_name(kUpdateNames, update); }
inline std::string init_name(Init init) { return enum_name(kInitNames, init); }

NetConfig net_config(const TrainConfig& config);
CenterLossOptions center_loss_options(const TrainConfig& config);

}  // namespace centerloss::trainer
