// Looks up a registered centerloss op once, typed: `static const auto op =
// typed_op<Signature>("forward");` then `op.call(...)`, which goes through the dispatcher
// (autograd, CPU/CUDA/Meta kernels, torch.compile's fake tensors).
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>

#include <string>

namespace centerloss::op {

template <typename Signature>
c10::TypedOperatorHandle<Signature> typed_op(const char* name) {
  return c10::Dispatcher::singleton()
      .findSchemaOrThrow((std::string("centerloss::") + name).c_str(), "")
      .template typed<Signature>();
}

}  // namespace centerloss::op
