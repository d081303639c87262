// The centerloss ops' schemas (torch.ops.centerloss.*) and their CPU kernels. The other
// dispatch keys register where they are implemented: autograd.cpp (Autograd and below it),
// meta.cpp (Meta), first_sight.cpp, registration_cuda.cpp (CUDA).
//
//   forward(features, labels, centers, margin, reduction) -> (loss, grad_basis)
//   backward(grad_loss, grad_basis) -> grad_features
//   center_loss(features, labels, centers, margin=0, reduction=1) -> loss      [autograd]
//   update_centers_(centers!, features, labels, alpha=0.5, rule=0) -> applied (bool, 0-d)
//   init_centers_first_sight_(centers!, seen!, features, labels) -> initialised (int64, 0-d)
//   _forward_step_(features, labels, centers!, skipped!, margin, reduction, alpha, rule)
//       -> (loss, grad_basis)   [internal: forward, then a center step counted in `skipped`]
//   _center_loss_step_(same arguments) -> loss   [autograd; CenterLoss.forward in training]
//   _advise_huge_pages(t) -> bool   [module internal: csrc/memory/huge_pages.h]
//   _cpu_isa() -> str               [the CPU kernels' instruction set: "avx2" or "baseline"]
//   _cpu_one_pass() -> str          [the CPU training step's path setting: auto, never, always]
#include <torch/library.h>

#include "cpu/cpu_variants.h"
#include "memory/huge_pages.h"
#include "op_bodies.h"

namespace centerloss::op {

TORCH_LIBRARY(centerloss, m) {
  m.def(
      "forward(Tensor features, Tensor labels, Tensor centers, float margin, int reduction) -> "
      "(Tensor, Tensor)");
  m.def("backward(Tensor grad_loss, Tensor grad_basis) -> Tensor");
  m.def(
      "center_loss(Tensor features, Tensor labels, Tensor centers, float margin=0.0, "
      "int reduction=1) -> Tensor");
  m.def(
      "update_centers_(Tensor(a!) centers, Tensor features, Tensor labels, float alpha=0.5, "
      "int rule=0) -> Tensor");
  m.def(
      "init_centers_first_sight_(Tensor(a!) centers, Tensor(b!) seen, Tensor features, "
      "Tensor labels) -> Tensor");
  m.def(
      "_forward_step_(Tensor features, Tensor labels, Tensor(a!) centers, Tensor(b!) skipped, "
      "float margin, int reduction, float alpha, int rule) -> (Tensor, Tensor)");
  m.def(
      "_center_loss_step_(Tensor features, Tensor labels, Tensor(a!) centers, Tensor(b!) skipped, "
      "float margin, int reduction, float alpha, int rule) -> Tensor");
  m.def("_advise_huge_pages(Tensor tensor) -> bool");
  m.def("_cpu_isa() -> str", [] { return std::string(kernels::cpu_isa()); });
  m.def("_cpu_one_pass() -> str", [] { return std::string(kernels::cpu_one_pass_name()); });
}

// Registers the op bodies bound to one backend for a dispatch key's kernels.
template <const Backend& (*Get)()>
void register_backend(torch::Library& m) {
  m.impl("forward", &BoundTo<Get>::forward);
  m.impl("backward", &BoundTo<Get>::backward);
  m.impl("update_centers_", &BoundTo<Get>::update_centers);
  m.impl("_forward_step_", &BoundTo<Get>::forward_step);
}

TORCH_LIBRARY_IMPL(centerloss, CPU, m) { register_backend<cpu_backend>(m); }

TORCH_LIBRARY_IMPL(centerloss, CompositeExplicitAutograd, m) {
  m.impl("_advise_huge_pages", &memory::advise_huge_pages);
}

#if defined(CENTERLOSS_WITH_CUDA)
TORCH_LIBRARY_IMPL(centerloss, CUDA, m) { register_backend<cuda_backend>(m); }
#else
namespace {
// CUDA tensors in a build without the CUDA kernels: every op raises, naming the reason.
const Backend& no_cuda_backend() { return backend_for(c10::Device(c10::kCUDA)); }
}  // namespace
TORCH_LIBRARY_IMPL(centerloss, CUDA, m) { register_backend<no_cuda_backend>(m); }
#endif

}  // namespace centerloss::op
