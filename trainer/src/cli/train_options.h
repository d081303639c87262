// The training options shared by `train` and `sweep`, bound to a TrainConfig.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "train/config.h"
#include "train/trainer.h"

namespace centerloss::trainer {

struct TrainCli {
  TrainConfig config;
  RunOptions run;
  std::string classes, holdout, arch = "lenets++", reduction = "mean", update = "paper",
                                init = "zeros";
  std::string image_size;  // "HxW"; empty: from the data
  int64_t channels = 0;    // 0: 1 for IDX, 3 for image folders
  bool no_progress = false, no_outputs = false, no_flip = false;
  // run handling: --resume [auto] (resume_option tells whether it was given), --overwrite
  std::string resume, checkpoint_every = kDefaultCheckpointEvery, on_nonfinite = "stop";
  bool overwrite = false;
  const CLI::Option* resume_option = nullptr;
};

// Registers the options on `command`; values land in `cli` (which must outlive parsing).
void add_train_options(CLI::App& command, TrainCli& cli);

// --resume / --resume auto / --overwrite / none of them.
StartMode start_mode(const TrainCli& cli);

// The run options of the command line (out_dir and checkpoint left to the caller).
RunOptions run_options(const TrainCli& cli);

// Turns the parsed strings into the config (enums, class selection); throws
// std::invalid_argument naming the option.
TrainConfig resolve_train_config(const TrainCli& cli);

// The data-set class selection of --classes / --holdout for a data directory.
std::vector<int64_t> resolve_classes(const std::string& data_dir, const std::string& classes,
                                     const std::string& holdout);

}  // namespace centerloss::trainer
