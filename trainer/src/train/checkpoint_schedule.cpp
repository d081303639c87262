#include "train/checkpoint_schedule.h"

#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace centerloss::trainer {

CheckpointEvery parse_checkpoint_every(const std::string& text) {
  auto fail = [&] {
    return std::invalid_argument("--checkpoint-every: expected a number of steps (500, "
                                 "500steps), a time (90s, 10min, 2h) or 0, got '" + text + "'");
  };
  const char* begin = text.c_str();
  char* end = nullptr;
  const double value = std::strtod(begin, &end);
  if (end == begin || !std::isfinite(value) || value < 0) throw fail();
  const std::string unit(end);
  CheckpointEvery every;
  every.seconds = 0;
  if (unit.empty() || unit == "steps" || unit == "step") {
    if (value != std::floor(value) || value > 1e15) throw fail();
    every.steps = static_cast<int64_t>(value);
  } else if (unit == "s" || unit == "sec") {
    every.seconds = value;
  } else if (unit == "min" || unit == "m") {
    every.seconds = 60 * value;
  } else if (unit == "h") {
    every.seconds = 3600 * value;
  } else {
    throw fail();
  }
  return every;
}

CheckpointClock::CheckpointClock(CheckpointEvery every)
    : every_(every), last_(std::chrono::steady_clock::now()) {}

bool CheckpointClock::due() const {
  if (every_.steps > 0 && steps_ >= every_.steps) return true;
  return every_.seconds > 0 &&
         std::chrono::duration<double>(std::chrono::steady_clock::now() - last_).count() >=
             every_.seconds;
}

void CheckpointClock::reset() {
  steps_ = 0;
  last_ = std::chrono::steady_clock::now();
}

}  // namespace centerloss::trainer
