// SIGINT (Ctrl-C) and SIGTERM (a scheduler's stop) while training: the handler only records
// the signal; the training loop sees it at the end of the current step, writes a checkpoint
// and stops. A second Ctrl-C acts at once (the SIGINT handler is one-shot), so a user can still
// kill a program that hangs. Repeated SIGTERMs are absorbed: a parent-death signal
// (PR_SET_PDEATHSIG) comes once per exiting thread of a multi-threaded parent, and must not
// kill the run before its checkpoint is written.
#pragma once

#include <csignal>

namespace centerloss::trainer {

class StopSignals {
 public:
  StopSignals();   // installs the handlers
  ~StopSignals();  // restores the previous ones (SIGTERM's only if none came)
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The signal received since construction, or 0.
  int received() const;

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

}  // namespace centerloss::trainer
