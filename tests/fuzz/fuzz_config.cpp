// A run's stored configuration (config.json, and the config record of every checkpoint) on any
// bytes: config_from_json either throws (a JSON or a range error, naming the field) or returns
// a config that survives a round trip through to_json unchanged.
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

#include "fuzz_target.h"
#include "train/config.h"

using namespace centerloss::trainer;

CENTERLOSS_FUZZ_TARGET(config) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(data, data + size);
  } catch (const nlohmann::json::exception&) {
    return 0;
  }
  TrainConfig config;
  try {
    config = config_from_json(json);
  } catch (const nlohmann::json::exception&) {  // a missing field or one of the wrong type
    return 0;
  } catch (const std::invalid_argument&) {  // a value out of range, an unknown enum name
    return 0;
  }
  const nlohmann::json again = to_json(config);
  const TrainConfig back = config_from_json(again);  // must not throw
  FUZZ_CHECK(to_json(back) == again, "round trip changed the config: %s", again.dump().c_str());
  return 0;
}
