// Autograd for the ops center_loss and _center_loss_step_ (the module's training step), and
// their kernels below autograd (inference mode, no_grad with plain tensors).
//
// The gradient basis is computed in forward from the centers of that moment and saved;
// backward only scales it, so a center step between forward and backward changes nothing.
#include <ATen/ATen.h>
#include <c10/core/impl/TorchDispatchModeTLS.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/graph_task.h>
#include <torch/library.h>

#include <cstdlib>
#include <cstring>

#include "backend.h"
#include "centerloss/types.h"
#include "checks.h"
#include "dispatch_calls.h"
#include "outputs.h"

namespace centerloss::op {
namespace {

using at::Tensor;

// The one switch for handing autograd the saved basis instead of a new tensor (below). It pays:
// a step 1.02-1.09x faster at N = 512, 1.11-1.43x at N = 4096, D >= 128 (docs/benchmarks.md,
// "The backward without a new tensor"); CENTERLOSS_REUSE_SAVED_BASIS=0 turns it off.
bool reuse_saved_basis() {
  static const bool on = [] {
    const char* value = std::getenv("CENTERLOSS_REUSE_SAVED_BASIS");
    return value == nullptr || std::strcmp(value, "0") != 0;
  }();
  return on;
}

bool is_plain_cpu(const Tensor& t) {
  static const c10::DispatchKeySet plain_cpu({c10::DispatchKey::CPU, c10::DispatchKey::AutogradCPU,
                                              c10::DispatchKey::ADInplaceOrView,
                                              c10::DispatchKey::AutocastCPU});
  return t.defined() && plain_cpu.isSupersetOf(t.key_set());
}

// The features' gradient from the saved basis. When autograd frees the basis right after this
// node (no retain_graph), nothing can read it again, so on the CPU, for plain tensors, the basis
// itself becomes the gradient: as it is for a loss gradient of exactly 1 (1 * b == b bit for
// bit), scaled in place otherwise (the backward kernel's bits, no allocation). With
// retain_graph the backward op's new tensor is returned, so the basis stays intact and a
// gradient handed out never changes. CUDA (reading the value would sync), the fake, functional
// and batched tensors of torch.compile and functorch, and dispatch modes take the op.
Tensor features_gradient(const Tensor& grad_loss, Tensor grad_basis) {
  const bool reusable = reuse_saved_basis() && is_plain_cpu(grad_loss) &&
                        is_plain_cpu(grad_basis) &&
                        c10::impl::TorchDispatchModeTLS::stack_len() == 0 &&
                        grad_basis.is_contiguous() &&
                        !torch::autograd::get_current_graph_task_keep_graph();
  if (!reusable) return call_backward(grad_loss, grad_basis);
  if (grad_loss.dim() == 0 && grad_loss.item<double>() == 1.0) return grad_basis;
  checks::check_backward("centerloss.backward", grad_loss, grad_basis);
  cpu_backend().backward(backward_scale(grad_loss, grad_basis), grad_basis, grad_basis);
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

// The features' gradient in a backward: differentiable (a double backward) when grad mode is
// on, else the saved basis scaled; margin and reduction come from the forward's saved data.
Tensor features_gradient_of(torch::autograd::AutogradContext* ctx, const char* op,
                            const Tensor& grad_loss, const Tensor& grad_basis,
                            const Tensor& features, const Tensor& centers, const Tensor& labels) {
  if (!at::GradMode::is_enabled()) return features_gradient(grad_loss, grad_basis);
  return differentiable_features_gradient(op, grad_loss, grad_basis, features, centers, labels,
                                          ctx->saved_data["margin"].toDouble(),
                                          ctx->saved_data["reduction"].toInt());
}

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
    const Tensor grad_features = features_gradient_of(ctx, "centerloss.center_loss", grads[0],
                                                      grad_basis, saved[2], saved[3], saved[1]);
    Tensor grad_centers;
    if (ctx->needs_input_grad(2)) {  // UpdateRule::Gradient: dL/dc_j = -sum_{y_i=j} dL/dx_i
      const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["centers_dtype"].toInt());
      const int64_t num_classes = ctx->saved_data["num_classes"].toInt();
      grad_centers = at::zeros({num_classes, grad_basis.size(1)}, grad_basis.options().dtype(dtype))
                         .index_add_(0, checks::labels_as_int64(saved[1]), grad_features.to(dtype),
                                     /*alpha=*/-1);
      // Spec section 3: a non-finite batch gives optimizer-moved centers a zero gradient, so
      // they stay finite. A 0-d mask, broadcast on the device: no host sync.
      grad_centers.masked_fill_(grad_centers.isfinite().all().logical_not(), 0);
    }
    return {grad_features, Tensor(), grad_centers, Tensor(), Tensor()};
  }
};

// The module's training step: the loss of center_loss, differentiable in the features, then
// the paper/mean center step, in one op. The centers are state, never a differentiable input.
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
    const Tensor grad_features = features_gradient_of(ctx, "centerloss._center_loss_step_",
                                                      grads[0], saved[0], saved[1], Tensor(), Tensor());
    return {grad_features, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

Tensor center_loss_autograd(const Tensor& features, const Tensor& labels, const Tensor& centers,
                            double margin, int64_t reduction) {
  return CenterLossFunction::apply(features, labels, centers, margin, reduction);
}

Tensor center_loss_step_autograd(const Tensor& features, const Tensor& labels, Tensor& centers,
                                 Tensor& skipped, double margin, int64_t reduction, double alpha,
                                 int64_t rule) {
  return CenterLossStepFunction::apply(features, labels, centers, skipped, margin, reduction,
                                       alpha, rule);
}

Tensor center_loss_below_autograd(const Tensor& features, const Tensor& labels,
                                  const Tensor& centers, double margin, int64_t reduction) {
  return std::get<0>(call_forward(features, labels, centers, margin, reduction));
}

Tensor center_loss_step_below_autograd(const Tensor& features, const Tensor& labels,
                                       Tensor& centers, Tensor& skipped, double margin,
                                       int64_t reduction, double alpha, int64_t rule) {
  return std::get<0>(
      call_forward_step(features, labels, centers, skipped, margin, reduction, alpha, rule));
}

}  // namespace

TORCH_LIBRARY_IMPL(centerloss, Autograd, m) {
  m.impl("center_loss", &center_loss_autograd);
  m.impl("_center_loss_step_", &center_loss_step_autograd);
}

TORCH_LIBRARY_IMPL(centerloss, CompositeExplicitAutograd, m) {
  m.impl("center_loss", &center_loss_below_autograd);
  m.impl("_center_loss_step_", &center_loss_step_below_autograd);
}

}  // namespace centerloss::op
