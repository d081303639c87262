// Metrics as JSON lines (nlohmann-json): one object per line, appended and flushed at once so
// the file is readable while a run is going.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <functional>
#include <string>

namespace centerloss::trainer {

class MetricsWriter {
 public:
  // Opens `path` for appending. With keep_upto_epoch >= 0 (a resume), lines whose "epoch" is
  // larger are dropped first: they came from an epoch whose checkpoint was never written.
  // keep_upto_epoch < 0 starts a new, empty file.
  MetricsWriter(const std::string& path, int64_t keep_upto_epoch);
  // Opens `path` keeping only the lines for which `keep` is true (a resume within an epoch);
  // an empty `keep` starts a new, empty file.
  MetricsWriter(const std::string& path, const std::function<bool(const nlohmann::json&)>& keep);
  void write(const nlohmann::json& record);

 private:
  std::ofstream out_;
};

// Whether a resume from a checkpoint at (done_epochs completed, done_steps steps in all) keeps
// a line: those of the completed epochs, and the step lines of the next one up to done_steps.
bool metrics_line_kept(const nlohmann::json& record, int64_t done_epochs, int64_t done_steps);

// Reads every line of a metrics file. Each line must be a JSON object whose "epoch" and
// "step", where present, are integers (std::runtime_error naming the line otherwise); a cut-off
// last line is dropped with a warning.
std::vector<nlohmann::json> read_metrics(const std::string& path);

}  // namespace centerloss::trainer
