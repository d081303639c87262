#include "train/resume_config.h"

#include <fmt/format.h>

#include <set>
#include <stdexcept>

namespace centerloss::trainer {
namespace {

// Keys a continued run may change: how far it goes and how many threads run it.
const std::set<std::string> kFreeKeys = {"epochs", "threads", "loader_threads"};

std::string option_of_key(const std::string& key) {
  if (key == "data_dir") return "--data";
  if (key == "classes") return "--classes/--holdout";
  if (key == "test_data_dir") return "--test-data";
  if (key == "flip") return "--no-flip";
  std::string option = "--" + key;
  for (char& ch : option) ch = ch == '_' ? '-' : ch;
  return option;
}

}  // namespace

std::string config_key_of_option(const std::string& option) {
  if (option == "--data") return "data_dir";
  if (option == "--classes" || option == "--holdout") return "classes";
  if (option == "--test-data") return "test_data_dir";
  if (option == "--no-flip") return "flip";
  if (option.rfind("--", 0) != 0) return "";
  std::string key = option.substr(2);
  for (char& ch : key) ch = ch == '-' ? '_' : ch;
  return to_json(TrainConfig{}).contains(key) ? key : "";
}

std::vector<std::string> all_config_keys() {
  const nlohmann::json defaults = to_json(TrainConfig{});
  std::vector<std::string> keys;
  for (auto it = defaults.begin(); it != defaults.end(); ++it) keys.push_back(it.key());
  return keys;
}

TrainConfig resume_config(const TrainConfig& stored, const TrainConfig& wanted,
                          const std::vector<std::string>& keys, const std::string& dir) {
  const nlohmann::json old_values = to_json(stored), new_values = to_json(wanted);
  nlohmann::json result = old_values;
  std::string changes;
  std::set<std::string> seen;
  for (const auto& key : keys) {
    // image_size comes from the data, which the other keys pin
    if (!seen.insert(key).second || !new_values.contains(key) || key == "image_size") continue;
    if (kFreeKeys.count(key)) {
      result[key] = new_values[key];
    } else if (old_values.value(key, nlohmann::json()) != new_values[key]) {
      changes += fmt::format("{}{} {} (now {})", changes.empty() ? "" : ", ", option_of_key(key),
                             old_values.value(key, nlohmann::json()).dump(), new_values[key].dump());
    }
  }
  if (!changes.empty()) {
    throw std::invalid_argument(fmt::format(
        "'{}' was trained with other options: {}. A resumed run keeps its options (only --epochs, "
        "--threads and --loader-threads may change): repeat the run's values or leave them out, "
        "use another --out, "
        "or --overwrite to start again with the new ones", dir, changes));
  }
  return config_from_json(result);
}

}  // namespace centerloss::trainer
