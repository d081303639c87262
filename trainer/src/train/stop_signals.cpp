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
  // one-shot (the next signal has its default effect); interrupted reads and writes restart
  action.sa_flags = SA_RESETHAND | SA_RESTART;
  sigaction(SIGINT, &action, &old_int_);
  sigaction(SIGTERM, &action, &old_term_);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

int StopSignals::received() const { return g_received; }

}  // namespace centerloss::trainer
