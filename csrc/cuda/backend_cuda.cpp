// The CUDA backend (csrc/backend.h) over the kernels of forward_cuda.cu and center_step_cuda.cu.
#include <ATen/ATen.h>

#include "cuda_kernels.h"
#include "step_after_forward.h"

namespace centerloss {
namespace {

LabelVerdict forward(const at::Tensor& features, const at::Tensor& labels,
                     const at::Tensor& centers, double margin, int64_t reduction,
                     ForwardOutputs& out) {
  LabelVerdict verdict;
  verdict.on_device = kernels::cuda::forward(features, labels, centers, margin, reduction, out);
  return verdict;
}

at::Tensor update_centers(at::Tensor& centers, const at::Tensor& features,
                          const at::Tensor& labels, double alpha, int64_t rule) {
  at::Tensor applied = at::empty({}, features.options().dtype(at::kBool));
  kernels::cuda::center_step(centers, features, labels, alpha, rule, applied.data_ptr<bool>(),
                             nullptr);
  return applied;
}

LabelVerdict forward_step(const at::Tensor& features, const at::Tensor& labels,
                          at::Tensor& centers, at::Tensor& skipped, double margin,
                          int64_t reduction, double alpha, int64_t rule, ForwardOutputs& out) {
  return kernels::cuda::step_after_forward(
      forward(features, labels, centers, margin, reduction, out), [&] {
        kernels::cuda::center_step(centers, features, labels, alpha, rule, nullptr,
                                   skipped.data_ptr<int64_t>());
      });
}

}  // namespace

const Backend& cuda_backend() {
  static const Backend backend{&forward,       &kernels::cuda::backward,
                               &update_centers, &forward_step,
                               &kernels::cuda::capturing, &kernels::cuda::first_bad_label};
  return backend;
}

}  // namespace centerloss
