// A one-line progress bar on stderr: bar, count, rate, ETA and caller-supplied fields.
// On a terminal it redraws in place (at most 10 times a second); otherwise (logs, CI) it
// prints a line at every 10% so logs stay short.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace centerloss::trainer {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, bool enabled = true);
  // Marks `done` of `total` units finished; `fields()` is appended (e.g. "softmax 0.41 acc
  // 86%"). It is called only when the bar draws, so a per-step caller formats nothing per step.
  void update(int64_t done, const std::function<std::string()>& fields);
  // Draws the final state and ends the line.
  void finish(const std::string& fields);

 private:
  bool due(int64_t done);  // time to draw (and remembers that it drew)
  void draw(int64_t done, const std::string& fields, bool final);

  std::string label_;
  int64_t total_;
  bool enabled_;
  bool tty_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);  // "1:05", "1:02:03"

}  // namespace centerloss::trainer
