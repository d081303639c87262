// When to write a checkpoint inside an epoch (--checkpoint-every): after a number of steps, or
// after some time. An epoch's end always writes one; so does SIGINT/SIGTERM.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace centerloss::trainer {

struct CheckpointEvery {
  int64_t steps = 0;       // > 0: every that many steps
  double seconds = 600.0;  // > 0: when that much time has passed since the last checkpoint
  // (both 0: at epoch ends only)
};

inline constexpr const char* kDefaultCheckpointEvery = "10min";

// Parses "500" or "500steps" (steps), "90s", "10min", "2h" (time), "0" (epoch ends only).
// Throws std::invalid_argument naming --checkpoint-every.
CheckpointEvery parse_checkpoint_every(const std::string& text);

// Tracks the steps and time since the last checkpoint.
class CheckpointClock {
 public:
  explicit CheckpointClock(CheckpointEvery every);
  void step() { ++steps_; }          // one step done
  bool due() const;                  // time for a checkpoint
  void reset();                      // a checkpoint was written

 private:
  CheckpointEvery every_;
  int64_t steps_ = 0;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace centerloss::trainer
