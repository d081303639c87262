// Registration of the centerloss ops with the PyTorch dispatcher (schema, CPU, Meta,
// autograd), and the C++ functional API of include/centerloss/ops.h that calls them.
//
// Ops (torch.ops.centerloss.*):
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
#include <ATen/ATen.h>
#include <c10/core/impl/TorchDispatchModeTLS.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/graph_task.h>
#include <torch/library.h>

#include "centerloss/ops.h"
#include "checks.h"
#include "cpu/cpu_variants.h"
#include "kernels.h"
#include "memory/huge_pages.h"
#include "op_impl.h"

namespace centerloss {
namespace {

using at::Tensor;

std::tuple<Tensor, Tensor> call_forward(const Tensor& features, const Tensor& labels,
                                        const Tensor& centers, double margin, int64_t reduction) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("centerloss::forward", "")
                       .typed<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&,
                                                         const Tensor&, double, int64_t)>();
  return op.call(features, labels, centers, margin, reduction);
}

Tensor call_backward(const Tensor& grad_loss, const Tensor& grad_basis) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("centerloss::backward", "")
                       .typed<Tensor(const Tensor&, const Tensor&)>();
  return op.call(grad_loss, grad_basis);
}

// The features' gradient from the saved basis. The backward op writes a scaled copy; on the CPU,
// for plain tensors, two cases need none when autograd frees the saved basis after this node (no
// retain_graph), so that nothing can read or write the basis again through the graph:
// - a loss gradient of exactly 1 (loss.backward() on a scalar loss): 1 * basis == basis bit for
//   bit, so the basis itself is the gradient;
// - any other loss gradient (lambda * loss): the basis is scaled in place, same bits as the op,
//   no allocation.
// With retain_graph the op's copy is returned: the basis must stay intact for the next backward,
// and a gradient handed out (to the user, a hook, or x.grad) must not change when it runs.
// CUDA takes the op (reading the value would sync), and so do the fake, functional and batched
// tensors of torch.compile and functorch, and dispatch modes.
bool is_plain_cpu(const Tensor& t) {
  static const c10::DispatchKeySet plain_cpu({c10::DispatchKey::CPU, c10::DispatchKey::AutogradCPU,
                                              c10::DispatchKey::ADInplaceOrView,
                                              c10::DispatchKey::AutocastCPU});
  return t.defined() && plain_cpu.isSupersetOf(t.key_set());
}

Tensor features_gradient(const Tensor& grad_loss, Tensor grad_basis) {
  const bool plain = is_plain_cpu(grad_loss) && is_plain_cpu(grad_basis) &&
                     c10::impl::TorchDispatchModeTLS::stack_len() == 0 &&
                     grad_basis.is_contiguous();
  if (!plain || torch::autograd::get_current_graph_task_keep_graph()) {
    return call_backward(grad_loss, grad_basis);
  }
  if (grad_loss.dim() == 0 && grad_loss.item<double>() == 1.0) return grad_basis;
  kernels::backward_in_place_cpu(
      op_impl::checked_backward_scale("centerloss.backward", grad_loss, grad_basis), grad_basis);
  return grad_basis;
}

// With create_graph=True (autograd runs the backward with grad mode on) the gradient must itself
// be differentiable: grad_loss * (basis + s * (x - sg(x)) - s * (c_y - sg(c_y))), where sg stops
// the gradient. Its value is the backward op's (the added terms are exactly 0), and autograd
// differentiates it to the true second derivatives for margin 0: d/dx = s * grad_loss * I,
// d/dc_y = -s * grad_loss * I (centers only with update="gradient"), d/d grad_loss = basis.
// With a margin the second derivative needs the distances, which are not saved: refused, rather
// than a gradient that silently lacks the center-loss term.
Tensor differentiable_features_gradient(const char* op, const Tensor& grad_loss,
                                        const Tensor& grad_basis, const Tensor& features,
                                        const Tensor& centers, const Tensor& labels,
                                        double margin, int64_t reduction) {
  TORCH_CHECK(margin == 0.0, op, ": double backward (create_graph=True) is supported for "
              "margin = 0 only, got margin ", margin);
  const int64_t n = grad_basis.size(0);
  const double s = reduction == static_cast<int64_t>(Reduction::Mean) ? (n > 0 ? 1.0 / n : 0.0)
                                                                       : 1.0;
  Tensor term = grad_basis;
  if (features.defined() && features.requires_grad()) {
    term = term + (features - features.detach()) * s;
  }
  if (centers.defined() && centers.requires_grad()) {
    const Tensor rows = centers.index_select(0, checks::labels_as_int64(labels));
    term = term - (rows - rows.detach()).to(term.scalar_type()) * s;
  }
  const Tensor scale = grad_loss.dim() == 0 ? grad_loss : grad_loss.unsqueeze(1);
  return (scale * term).to(grad_basis.scalar_type());
}

// Autograd: the gradient basis is computed in forward from the centers of that moment and
// saved; backward only scales it, so a center step between forward and backward changes
// nothing. Backward writes to the saved basis only when autograd frees it right after
// (features_gradient), so retain_graph works; with create_graph it is differentiable again.
class CenterLossFunction : public torch::autograd::Function<CenterLossFunction> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& features,
                        const Tensor& labels, const Tensor& centers, double margin,
                        int64_t reduction) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [loss, grad_basis] = call_forward(features, labels, centers, margin, reduction);
    // Labels are converted in backward, if ever needed; features and (update="gradient")
    // centers are read only for a double backward.
    ctx->save_for_backward(
        {grad_basis, labels, features, centers.requires_grad() ? centers : Tensor()});
    ctx->saved_data["num_classes"] = centers.size(0);
    ctx->saved_data["centers_dtype"] = static_cast<int64_t>(centers.scalar_type());
    ctx->saved_data["margin"] = margin;
    ctx->saved_data["reduction"] = reduction;
    return loss;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor& grad_basis = saved[0];
    Tensor grad_features =
        at::GradMode::is_enabled()
            ? differentiable_features_gradient(
                  "centerloss.center_loss", grads[0], grad_basis, saved[2], saved[3], saved[1],
                  ctx->saved_data["margin"].toDouble(), ctx->saved_data["reduction"].toInt())
            : features_gradient(grads[0], grad_basis);
    Tensor grad_centers;
    if (ctx->needs_input_grad(2)) {  // UpdateRule::Gradient: dL/dc_j = -sum_{y_i=j} dL/dx_i
      const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["centers_dtype"].toInt());
      const int64_t num_classes = ctx->saved_data["num_classes"].toInt();
      grad_centers = at::zeros({num_classes, grad_basis.size(1)}, grad_basis.options().dtype(dtype))
                         .index_add_(0, checks::labels_as_int64(saved[1]), grad_features.to(dtype),
                                     /*alpha=*/-1);
      // Spec section 3, for centers an optimizer moves: a non-finite batch gives them a zero
      // gradient, so they stay finite (as the paper/mean rules skip the step). A 0-d mask,
      // broadcast on the device: no host sync.
      grad_centers.masked_fill_(grad_centers.isfinite().all().logical_not(), 0);
    }
    return {grad_features, Tensor(), grad_centers, Tensor(), Tensor()};
  }
};

Tensor center_loss_autograd(const Tensor& features, const Tensor& labels, const Tensor& centers,
                            double margin, int64_t reduction) {
  return CenterLossFunction::apply(features, labels, centers, margin, reduction);
}

std::tuple<Tensor, Tensor> call_forward_step(const Tensor& features, const Tensor& labels,
                                             Tensor& centers, Tensor& skipped, double margin,
                                             int64_t reduction, double alpha, int64_t rule) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("centerloss::_forward_step_", "")
                       .typed<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, Tensor&,
                                                         Tensor&, double, int64_t, double,
                                                         int64_t)>();
  return op.call(features, labels, centers, skipped, margin, reduction, alpha, rule);
}

// The module's training step with autograd (op _center_loss_step_): the loss of center_loss,
// differentiable in the features, then the paper/mean center step, in one op (one pass over the
// batch on the CPU). The centers are state moved by the rule, never a differentiable input.
class CenterLossStepFunction : public torch::autograd::Function<CenterLossStepFunction> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& features,
                        const Tensor& labels, Tensor centers, Tensor skipped, double margin,
                        int64_t reduction, double alpha, int64_t rule) {
    TORCH_CHECK(!centers.requires_grad(), "centerloss._center_loss_step_: centers require grad; "
                "the paper and mean rules move them in this op (an optimizer moves them only with "
                "update='gradient', which uses center_loss)");
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [loss, grad_basis] =
        call_forward_step(features, labels, centers, skipped, margin, reduction, alpha, rule);
    // Below autograd nothing records the in-place writes: bump the version counters so that
    // autograd still notices if a graph had saved these tensors.
    centers.unsafeGetTensorImpl()->bump_version();
    skipped.unsafeGetTensorImpl()->bump_version();
    ctx->save_for_backward({grad_basis, features});  // features: for a double backward only
    ctx->saved_data["margin"] = margin;
    ctx->saved_data["reduction"] = reduction;
    return loss;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor grad_features =
        at::GradMode::is_enabled()
            ? differentiable_features_gradient(
                  "centerloss._center_loss_step_", grads[0], saved[0], saved[1], Tensor(),
                  Tensor(), ctx->saved_data["margin"].toDouble(),
                  ctx->saved_data["reduction"].toInt())
            : features_gradient(grads[0], saved[0]);
    return {grad_features, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

Tensor center_loss_step_autograd(const Tensor& features, const Tensor& labels, Tensor& centers,
                                 Tensor& skipped, double margin, int64_t reduction, double alpha,
                                 int64_t rule) {
  return CenterLossStepFunction::apply(features, labels, centers, skipped, margin, reduction,
                                       alpha, rule);
}

Tensor center_loss_step_no_autograd(const Tensor& features, const Tensor& labels, Tensor& centers,
                                    Tensor& skipped, double margin, int64_t reduction,
                                    double alpha, int64_t rule) {
  return std::get<0>(
      call_forward_step(features, labels, centers, skipped, margin, reduction, alpha, rule));
}

// Below autograd (inference mode, no_grad with plain tensors): just the forward.
Tensor center_loss_no_autograd(const Tensor& features, const Tensor& labels,
                               const Tensor& centers, double margin, int64_t reduction) {
  return std::get<0>(call_forward(features, labels, centers, margin, reduction));
}

// First-sight initialisation, written with ATen primitives so one body serves every device;
// it runs once per class, so it is not on the hot path.
Tensor init_first_sight(Tensor& centers, Tensor& seen, const Tensor& features,
                        const Tensor& labels) {
  static constexpr const char* op = "centerloss.init_centers_first_sight_";
  const Tensor labels64 = checks::check_batch(op, features, labels, centers);
  TORCH_CHECK(seen.dim() == 1 && seen.size(0) == centers.size(0) &&
                  seen.scalar_type() == at::kBool,
              op, ": seen must be a bool tensor of shape [K] = [", centers.size(0), "], got ",
              seen.scalar_type(), " of shape ", seen.sizes());
  TORCH_CHECK(seen.device() == centers.device(), op, ": seen is on ", seen.device(),
              " but centers is on ", centers.device());
  const auto none = at::scalar_tensor(0, centers.options().dtype(at::kLong));
  if (features.size(0) == 0) return none;
  at::NoGradGuard no_grad;
  const Tensor unseen_rows = seen.index_select(0, labels64).logical_not();
  if (!unseen_rows.any().item<bool>()) return none;
  const Tensor x = features.to(centers.scalar_type());
  if (!x.isfinite().all().item<bool>()) return none;  // NaN guard: change nothing
  const Tensor new_labels = labels64.masked_select(unseen_rows);
  const Tensor new_x = x.index_select(0, unseen_rows.nonzero().squeeze(1));
  auto [classes, inverse, counts] =
      at::_unique2(new_labels, /*sorted=*/true, /*return_inverse=*/true, /*return_counts=*/true);
  const Tensor sums = at::zeros({classes.size(0), x.size(1)}, x.options())
                          .index_add_(0, inverse, new_x);
  centers.index_copy_(0, classes, sums.div_(counts.unsqueeze(1).to(sums.scalar_type())));
  seen.index_fill_(0, classes, true);
  return at::scalar_tensor(classes.size(0), centers.options().dtype(at::kLong));
}

// Meta (shape-only) kernels, for torch.compile / fake tensors.
std::tuple<Tensor, Tensor> forward_meta(const Tensor& features, const Tensor& labels,
                                        const Tensor& centers, double margin,
                                        int64_t reduction) {
  checks::check_batch_layout("centerloss.forward", features, labels, centers);
  checks::check_margin("centerloss.forward", margin);
  checks::check_reduction("centerloss.forward", reduction);
  const auto acc = (features.scalar_type() == at::kDouble || centers.scalar_type() == at::kDouble)
                       ? at::kDouble
                       : at::kFloat;
  auto loss = reduction == static_cast<int64_t>(Reduction::None)
                  ? at::empty({features.size(0)}, features.options().dtype(acc))
                  : at::empty({}, features.options().dtype(acc));
  return {loss, at::empty_like(features, at::MemoryFormat::Contiguous)};
}
Tensor backward_meta(const Tensor& /*grad_loss*/, const Tensor& grad_basis) {
  return at::empty_like(grad_basis, at::MemoryFormat::Contiguous);
}
Tensor update_centers_meta(Tensor& centers, const Tensor& features, const Tensor& labels,
                           double alpha, int64_t rule) {
  checks::check_batch_layout("centerloss.update_centers_", features, labels, centers);
  checks::check_alpha("centerloss.update_centers_", alpha);
  checks::check_update_rule("centerloss.update_centers_", rule);
  return at::empty({}, centers.options().dtype(at::kBool));
}
std::tuple<Tensor, Tensor> forward_step_meta(const Tensor& features, const Tensor& labels,
                                             Tensor& centers, Tensor& skipped, double margin,
                                             int64_t reduction, double alpha, int64_t rule) {
  checks::check_skip_counter("centerloss._forward_step_", skipped, centers);
  checks::check_alpha("centerloss._forward_step_", alpha);
  checks::check_update_rule("centerloss._forward_step_", rule);
  return forward_meta(features, labels, centers, margin, reduction);
}
Tensor init_first_sight_meta(Tensor& centers, Tensor&, const Tensor& features,
                             const Tensor& labels) {
  checks::check_batch_layout("centerloss.init_centers_first_sight_", features, labels, centers);
  return at::empty({}, centers.options().dtype(at::kLong));
}

}  // namespace

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

TORCH_LIBRARY_IMPL(centerloss, CPU, m) {
  m.impl("forward", &op_impl::forward<kernels::forward_cpu>);
  m.impl("backward", &op_impl::backward<kernels::backward_cpu>);
  m.impl("update_centers_", &op_impl::update_centers<kernels::update_centers_cpu>);
  m.impl("_forward_step_", &op_impl::forward_step<kernels::forward_step_cpu>);
}

TORCH_LIBRARY_IMPL(centerloss, Meta, m) {
  m.impl("forward", &forward_meta);
  m.impl("backward", &backward_meta);
  m.impl("update_centers_", &update_centers_meta);
  m.impl("_forward_step_", &forward_step_meta);
  m.impl("init_centers_first_sight_", &init_first_sight_meta);
}

TORCH_LIBRARY_IMPL(centerloss, CompositeExplicitAutograd, m) {
  m.impl("center_loss", &center_loss_no_autograd);
  m.impl("_center_loss_step_", &center_loss_step_no_autograd);
  m.impl("init_centers_first_sight_", &init_first_sight);
  m.impl("_advise_huge_pages", &memory::advise_huge_pages);
}

TORCH_LIBRARY_IMPL(centerloss, Autograd, m) {
  m.impl("center_loss", &center_loss_autograd);
  m.impl("_center_loss_step_", &center_loss_step_autograd);
}

#if !defined(CENTERLOSS_WITH_CUDA)
namespace {
[[noreturn]] void no_cuda_kernels() {
  TORCH_CHECK(false,
              "centerloss was built without its CUDA kernels (CENTERLOSS_WITH_CUDA=OFF): "
              "move the tensors to the CPU or rebuild with CUDA");
}
std::tuple<Tensor, Tensor> forward_no_cuda(const Tensor&, const Tensor&, const Tensor&, double,
                                           int64_t) {
  no_cuda_kernels();
}
Tensor backward_no_cuda(const Tensor&, const Tensor&) { no_cuda_kernels(); }
Tensor update_no_cuda(Tensor&, const Tensor&, const Tensor&, double, int64_t) {
  no_cuda_kernels();
}
std::tuple<Tensor, Tensor> forward_step_no_cuda(const Tensor&, const Tensor&, Tensor&, Tensor&,
                                                double, int64_t, double, int64_t) {
  no_cuda_kernels();
}
}  // namespace

TORCH_LIBRARY_IMPL(centerloss, CUDA, m) {
  m.impl("forward", &forward_no_cuda);
  m.impl("backward", &backward_no_cuda);
  m.impl("update_centers_", &update_no_cuda);
  m.impl("_forward_step_", &forward_step_no_cuda);
}
#endif

// ---- C++ functional API (include/centerloss/ops.h) ----

Tensor center_loss(const Tensor& features, const Tensor& labels, const Tensor& centers,
                   double margin, Reduction reduction) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("centerloss::center_loss", "")
                       .typed<Tensor(const Tensor&, const Tensor&, const Tensor&, double,
                                     int64_t)>();
  return op.call(features, labels, centers, margin, static_cast<int64_t>(reduction));
}

Tensor update_centers_(Tensor& centers, const Tensor& features, const Tensor& labels,
                       double alpha, UpdateRule rule) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("centerloss::update_centers_", "")
                       .typed<Tensor(Tensor&, const Tensor&, const Tensor&, double, int64_t)>();
  return op.call(centers, features, labels, alpha, static_cast<int64_t>(rule));
}

namespace detail {
Tensor center_loss_step_(const Tensor& features, const Tensor& labels, Tensor& centers,
                         Tensor& skipped, double margin, Reduction reduction, double alpha,
                         UpdateRule rule) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("centerloss::_center_loss_step_", "")
                       .typed<Tensor(const Tensor&, const Tensor&, Tensor&, Tensor&, double,
                                     int64_t, double, int64_t)>();
  return op.call(features, labels, centers, skipped, margin, static_cast<int64_t>(reduction),
                 alpha, static_cast<int64_t>(rule));
}
}  // namespace detail

int64_t init_centers_first_sight_(Tensor& centers, Tensor& seen, const Tensor& features,
                                  const Tensor& labels) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("centerloss::init_centers_first_sight_", "")
          .typed<Tensor(Tensor&, Tensor&, const Tensor&, const Tensor&)>();
  return op.call(centers, seen, features, labels).item<int64_t>();
}

bool has_cuda_kernels() {
#if defined(CENTERLOSS_WITH_CUDA)
  return true;
#else
  return false;
#endif
}

}  // namespace centerloss
