#include "util/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace centerloss::trainer {

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      tty_(isatty(fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

bool ProgressBar::due(int64_t done) {
  if (!enabled_) return false;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100)) return false;
  } else {
    const int decile = total_ > 0 ? static_cast<int>(10 * done / total_) : 10;
    if (decile == last_decile_ || decile >= 10) return false;
    last_decile_ = decile;
  }
  last_draw_ = now;
  return true;
}

void ProgressBar::update(int64_t done, const std::function<std::string()>& fields) {
  if (due(done)) draw(done, fields(), false);
}

void ProgressBar::finish(const std::string& fields) {
  if (enabled_) draw(total_, fields, true);
}

void ProgressBar::draw(int64_t done, const std::string& fields, bool final) {
  constexpr int kWidth = 24;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
  const int filled = total_ > 0 ? static_cast<int>(kWidth * done / total_) : kWidth;
  const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
  const std::string time = final ? "in " + format_duration(elapsed) : "ETA " + format_duration(eta);
  std::string line = fmt::format("{} [{}] {}/{} {:.1f} it/s {} | {}", label_, bar, done, total_,
                                 rate, time, fields);
  if (tty_) {
    fmt::print(stderr, "\r{}\x1b[K{}", line, final ? "\n" : "");
  } else {
    fmt::print(stderr, "{}\n", line);
  }
  std::fflush(stderr);
}

}  // namespace centerloss::trainer
