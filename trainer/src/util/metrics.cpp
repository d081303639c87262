#include "util/metrics.h"

#include <fmt/format.h>

#include <stdexcept>
#include <vector>

namespace centerloss::trainer {

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::vector<nlohmann::json> records;
  std::ifstream in(path);
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    try {
      records.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::parse_error& err) {
      // The last line may be cut short (a crash or a full disk mid-write: this file is flushed,
      // not synced like the checkpoint); it is dropped. Anything else is an error.
      if (in.peek() == std::char_traits<char>::eof()) {
        fmt::print(stderr, "warning: {}: dropping the incomplete last line {}\n", path, number);
        break;
      }
      throw std::runtime_error(fmt::format("{}: line {} is not JSON: {}", path, number, err.what()));
    }
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
