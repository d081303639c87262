// SIGINT (Ctrl-C) and SIGTERM (a scheduler's stop) while training: the handler only records
// the signal; the training loop sees it at the end of the current step, writes a checkpoint
// and stops. A second signal of the same kind acts at once (the handler is one-shot), so a
// user can still kill a program that hangs.
#pragma once

#include <csignal>

namespace centerloss::trainer {

class StopSignals {
 public:
  StopSignals();   // installs the handlers
  ~StopSignals();  // restores the previous ones
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The signal received since construction, or 0.
  int received() const;

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

}  // namespace centerloss::trainer
