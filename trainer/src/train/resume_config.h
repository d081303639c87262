// Continuing a run with the options it was trained with: the options a command line repeats
// with their stored values are accepted, and only real changes are refused, naming the option,
// the stored value and the new one.
#pragma once

#include <string>
#include <vector>

#include "train/config.h"

namespace centerloss::trainer {

// The config.json key a command-line option sets ("--train-limit" -> "train_limit",
// "--holdout" -> "classes"), or "" for options that are not part of the config (--out, --resume,
// --python, ...).
std::string config_key_of_option(const std::string& option);

// The config a resumed run continues with: `stored` (the checkpoint's), with `wanted`'s values
// for the config keys in `keys` (the options the command line gave). Of those, epochs and
// threads may change; any other key whose value differs is refused: std::invalid_argument
// naming `dir` and, for each, the option, the stored value and the new one.
TrainConfig resume_config(const TrainConfig& stored, const TrainConfig& wanted,
                          const std::vector<std::string>& keys, const std::string& dir);

// Every config key (for callers whose command line sets the whole config, such as `sweep`).
std::vector<std::string> all_config_keys();

}  // namespace centerloss::trainer
