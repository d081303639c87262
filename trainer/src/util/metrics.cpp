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
      nlohmann::json record = nlohmann::json::parse(line);
      if (!record.is_object()) throw std::runtime_error("is not a JSON object");
      for (const char* key : {"epoch", "step"}) {
        if (record.contains(key) && !record[key].is_number_integer()) {
          throw std::runtime_error(fmt::format("has a non-integer \"{}\"", key));
        }
      }
      if (record.contains("kind") && !record["kind"].is_string()) {
        throw std::runtime_error("has a \"kind\" that is not a string");
      }
      records.push_back(std::move(record));
    } catch (const std::runtime_error& err) {
      throw std::runtime_error(fmt::format("{}: line {} {}", path, number, err.what()));
    } catch (const nlohmann::json::parse_error& err) {
      // The last line may be cut short (a crash or a full disk mid-write: this file is flushed,
      // not synced like the checkpoint); it is dropped. Anything else is an error.
      if (in.peek() == std::char_traits<char>::eof()) {
        fmt::print(stderr, "warning: {}: dropping the incomplete last line {}\n", path, number);
        break;
      }
      throw std::runtime_error(fmt::format("{}: line {} is not JSON: {}", path, number, err.what()));
    } catch (const nlohmann::json::exception& err) {  // a number beyond a double (found by fuzz_metrics)
      throw std::runtime_error(fmt::format("{}: line {} is not usable JSON: {}", path, number, err.what()));
    }
  }
  return records;
}

bool metrics_line_kept(const nlohmann::json& record, int64_t done_epochs, int64_t done_steps) {
  const int64_t epoch = record.value("epoch", int64_t{0});
  if (epoch <= done_epochs) return true;
  return epoch == done_epochs + 1 && record.value("kind", "") == "step" &&
         record.value("step", int64_t{0}) <= done_steps;
}

MetricsWriter::MetricsWriter(const std::string& path, int64_t keep_upto_epoch)
    : MetricsWriter(path, keep_upto_epoch < 0 ? std::function<bool(const nlohmann::json&)>()
                                              : [keep_upto_epoch](const nlohmann::json& record) {
                                                  return record.value("epoch", int64_t{0}) <=
                                                         keep_upto_epoch;
                                                }) {}

MetricsWriter::MetricsWriter(const std::string& path,
                             const std::function<bool(const nlohmann::json&)>& keep) {
  std::vector<nlohmann::json> kept;
  if (keep) {
    for (auto& record : read_metrics(path)) {
      if (keep(record)) kept.push_back(std::move(record));
    }
  }
  out_.open(path, std::ios::trunc);
  if (!out_) throw std::runtime_error("cannot write metrics file '" + path + "'");
  for (const auto& record : kept) out_ << record.dump() << '\n';
  out_.flush();
  if (!out_) throw std::runtime_error("writing metrics file '" + path + "' failed");
}

void MetricsWriter::write(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
  if (!out_) throw std::runtime_error("writing the metrics file failed (disk full?)");
}

}  // namespace centerloss::trainer
