#include "train/stop_signals.h"

#include <cstring>

namespace centerloss::trainer {
namespace {

volatile std::sig_atomic_t g_received = 0;

extern "C" void record_signal(int signal) { g_received = signal; }

}  // namespace

StopSignals::StopSignals() {
  g_received = 0;
  struct sigaction action {};
  action.sa_handler = record_signal;
  sigemptyset(&action.sa_mask);
  // interrupted reads and writes restart; SIGINT is one-shot (a second has its default effect)
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, &old_term_);
  action.sa_flags = SA_RESETHAND | SA_RESTART;
  sigaction(SIGINT, &action, &old_int_);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &old_int_, nullptr);
  // After a SIGTERM the process is on its way out: a repeat must not kill it before it exits
  // with 143, so the recording handler stays.
  if (g_received != SIGTERM) sigaction(SIGTERM, &old_term_, nullptr);
}

int StopSignals::received() const { return g_received; }

}  // namespace centerloss::trainer
