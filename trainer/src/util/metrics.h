// Metrics as JSON lines (nlohmann-json): one object per line, appended and flushed at once so
// the file is readable while a run is going.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace centerloss::trainer {

class MetricsWriter {
 public:
  // Opens `path` for appending. With keep_upto_epoch >= 0 (a resume), lines whose "epoch" is
  // larger are dropped first: they came from an epoch whose checkpoint was never written.
  // keep_upto_epoch < 0 starts a new, empty file.
  MetricsWriter(const std::string& path, int64_t keep_upto_epoch);
  void write(const nlohmann::json& record);

 private:
  std::ofstream out_;
};

// Reads every line of a metrics file.
std::vector<nlohmann::json> read_metrics(const std::string& path);

}  // namespace centerloss::trainer
