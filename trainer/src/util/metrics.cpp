#include "util/metrics.h"

#include <stdexcept>
#include <vector>

namespace centerloss::trainer {

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::vector<nlohmann::json> records;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) records.push_back(nlohmann::json::parse(line));
  }
  return records;
}

MetricsWriter::MetricsWriter(const std::string& path, int64_t keep_upto_epoch) {
  std::vector<nlohmann::json> kept;
  if (keep_upto_epoch >= 0) {
    for (auto& record : read_metrics(path)) {
      if (record.value("epoch", int64_t{0}) <= keep_upto_epoch) kept.push_back(std::move(record));
    }
  }
  out_.open(path, std::ios::trunc);
  if (!out_) throw std::runtime_error("cannot write metrics file '" + path + "'");
  for (const auto& record : kept) out_ << record.dump() << '\n';
  out_.flush();
}

void MetricsWriter::write(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
}

}  // namespace centerloss::trainer
