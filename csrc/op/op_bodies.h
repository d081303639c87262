// The bodies of the registered ops, written once over the backend interface (csrc/backend.h):
// check every argument (csrc/op/checks.h), handle N = 0, set the device guard, bring the inputs
// into the kernels' layout, call the backend, raise for a bad label it reports. The CPU and
// CUDA registrations (csrc/op/registration*.cpp) bind them to cpu_backend() / cuda_backend().
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

#include "backend.h"

namespace centerloss::op {

// The backend of a device: CPU, or CUDA in a build with its kernels; otherwise throws, naming
// the device.
const Backend& backend_for(c10::Device device);

std::tuple<at::Tensor, at::Tensor> forward(const Backend& backend, const at::Tensor& features,
                                           const at::Tensor& labels, const at::Tensor& centers,
                                           double margin, int64_t reduction);

at::Tensor backward(const Backend& backend, const at::Tensor& grad_loss,
                    const at::Tensor& grad_basis);

at::Tensor update_centers(const Backend& backend, at::Tensor& centers,
                          const at::Tensor& features, const at::Tensor& labels, double alpha,
                          int64_t rule);

std::tuple<at::Tensor, at::Tensor> forward_step(const Backend& backend,
                                                const at::Tensor& features,
                                                const at::Tensor& labels, at::Tensor& centers,
                                                at::Tensor& skipped, double margin,
                                                int64_t reduction, double alpha, int64_t rule);

// The op bodies bound to one backend, with the registered ops' signatures (for m.impl).
template <const Backend& (*Get)()>
struct BoundTo {
  static std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& features,
                                                    const at::Tensor& labels,
                                                    const at::Tensor& centers, double margin,
                                                    int64_t reduction) {
    return op::forward(Get(), features, labels, centers, margin, reduction);
  }
  static at::Tensor backward(const at::Tensor& grad_loss, const at::Tensor& grad_basis) {
    return op::backward(Get(), grad_loss, grad_basis);
  }
  static at::Tensor update_centers(at::Tensor& centers, const at::Tensor& features,
                                   const at::Tensor& labels, double alpha, int64_t rule) {
    return op::update_centers(Get(), centers, features, labels, alpha, rule);
  }
  static std::tuple<at::Tensor, at::Tensor> forward_step(const at::Tensor& features,
                                                         const at::Tensor& labels,
                                                         at::Tensor& centers, at::Tensor& skipped,
                                                         double margin, int64_t reduction,
                                                         double alpha, int64_t rule) {
    return op::forward_step(Get(), features, labels, centers, skipped, margin, reduction, alpha,
                            rule);
  }
};

}  // namespace centerloss::op
