// The order of the CUDA training step, apart from the kernels so that the CPU tests run it with
// stand-ins (tests/cpp/test_op_glue.cpp): read the forward's label verdict (the step's one
// sync); a bad label returns before the center step, so the failed call changes nothing. Under
// graph capture there is no verdict to read, and the step's own guard skips and counts it.
#pragma once

#include <utility>

#include "../backend.h"

namespace centerloss::kernels::cuda {

template <typename Step>
LabelVerdict step_after_forward(LabelVerdict forward_verdict, Step&& step) {
  if (forward_verdict.on_device.defined()) {
    forward_verdict = LabelVerdict::on_host(forward_verdict.first_bad());
    if (forward_verdict.position >= 0) return forward_verdict;
  }
  std::forward<Step>(step)();
  return forward_verdict;
}

}  // namespace centerloss::kernels::cuda
