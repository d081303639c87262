// metrics.jsonl as a resume reads it: the MetricsWriter of a resumed run keeps the lines its
// checkpoint has seen (util/metrics.h metrics_line_kept) and rewrites the file. Any bytes give
// either that, or std::runtime_error naming the line; a cut-off last line is dropped.
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

#include "fuzz_memfile.h"
#include "fuzz_target.h"
#include "util/metrics.h"

using namespace centerloss::trainer;

CENTERLOSS_FUZZ_TARGET(metrics) {
  MemFile file(data, size);
  try {
    MetricsWriter writer(file.path(), [](const nlohmann::json& record) {
      return metrics_line_kept(record, 1, 40);  // a checkpoint after epoch 1, at step 40
    });
    writer.write({{"kind", "step"}, {"epoch", 2}, {"step", 41}});
  } catch (const std::runtime_error& e) {
    FUZZ_CHECK(std::string(e.what()).find("line") != std::string::npos, "message without a line: %s",
               e.what());
    return 0;
  }
  // What was written reads back, and keeps every line (all of them are kept lines now).
  const auto records = read_metrics(file.path());
  FUZZ_CHECK(!records.empty() && records.back().value("step", int64_t{0}) == 41, "lost the new line");
  for (const auto& record : records) {
    FUZZ_CHECK(metrics_line_kept(record, 1, 41), "kept a line after the checkpoint: %s",
               record.dump().c_str());
  }
  return 0;
}
