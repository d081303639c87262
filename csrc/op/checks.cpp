// Input checks of spec section 7 (see checks.h).
#include "checks.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "centerloss/types.h"

namespace centerloss::checks {
namespace {

bool is_supported_feature_dtype(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}

bool is_supported_center_dtype(at::ScalarType t) { return t == at::kFloat || t == at::kDouble; }

}  // namespace

at::Tensor labels_as_int64(const at::Tensor& labels) {
  if (labels.scalar_type() == at::kLong && labels.is_contiguous()) return labels;
  return labels.to(at::kLong).contiguous();
}

void check_batch_layout(const char* op, const at::Tensor& features, const at::Tensor& labels,
                        const at::Tensor& centers) {
  TORCH_CHECK(features.defined(), op, ": features is undefined");
  TORCH_CHECK(labels.defined(), op, ": labels is undefined");
  TORCH_CHECK(centers.defined(), op, ": centers is undefined");
  TORCH_CHECK(features.dim() == 2, op, ": features must be 2-D [N, D], got ", features.dim(),
              "-D of shape ", features.sizes());
  TORCH_CHECK(labels.dim() == 1, op, ": labels must be 1-D [N], got ", labels.dim(),
              "-D of shape ", labels.sizes());
  TORCH_CHECK(centers.dim() == 2, op, ": centers must be 2-D [K, D], got ", centers.dim(),
              "-D of shape ", centers.sizes());
  TORCH_CHECK(features.size(0) == labels.size(0), op, ": features has N = ", features.size(0),
              " rows but labels has ", labels.size(0), " entries");
  TORCH_CHECK(features.size(1) == centers.size(1), op, ": features has D = ", features.size(1),
              " but centers has D = ", centers.size(1), " (centers shape ", centers.sizes(),
              ")");
  TORCH_CHECK(centers.size(0) >= 1 && centers.size(1) >= 1, op,
              ": centers must have K >= 1 and D >= 1, got shape ", centers.sizes());
  TORCH_CHECK(is_supported_feature_dtype(features.scalar_type()), op,
              ": features must be float32, float64, float16 or bfloat16, got ",
              features.scalar_type());
  TORCH_CHECK(at::isIntegralType(labels.scalar_type(), /*includeBool=*/false), op,
              ": labels must have an integer dtype (int64 preferred), got ", labels.scalar_type());
  TORCH_CHECK(is_supported_center_dtype(centers.scalar_type()), op,
              ": centers must be float32 or float64, got ", centers.scalar_type());
  TORCH_CHECK(features.device() == labels.device(), op, ": labels is on ", labels.device(),
              " but features is on ", features.device());
  TORCH_CHECK(features.device() == centers.device(), op, ": centers is on ", centers.device(),
              " but features is on ", features.device());
}

at::Tensor check_batch(const char* op, const at::Tensor& features, const at::Tensor& labels,
                       const at::Tensor& centers) {
  check_batch_layout(op, features, labels, centers);
  TORCH_CHECK(features.is_cpu() || features.is_cuda(), op,
              ": only CPU and CUDA tensors are supported, got ", features.device());
  return labels_as_int64(labels);
}

void fail_bad_label(const char* op, const at::Tensor& labels64, int64_t position,
                    int64_t num_classes) {
  const int64_t value = labels64[position].item<int64_t>();
  TORCH_CHECK(false, op, ": labels must be in [0, K) with K = ", num_classes, "; found label ",
              value, " at position ", position);
  TORCH_INTERNAL_ASSERT(false, "unreachable");
}

void check_skip_counter(const char* op, const at::Tensor& skipped, const at::Tensor& centers) {
  TORCH_CHECK(skipped.defined() && skipped.numel() == 1 && skipped.scalar_type() == at::kLong &&
                  skipped.is_contiguous(),
              op, ": skipped must be an int64 tensor of one element, got ",
              skipped.defined() ? c10::toString(skipped.scalar_type()) : "undefined",
              " of shape ", skipped.defined() ? skipped.sizes() : at::IntArrayRef{});
  TORCH_CHECK(skipped.device() == centers.device(), op, ": skipped is on ", skipped.device(),
              " but centers is on ", centers.device());
}

void check_seen(const char* op, const at::Tensor& seen, const at::Tensor& centers) {
  TORCH_CHECK(seen.dim() == 1 && seen.size(0) == centers.size(0) &&
                  seen.scalar_type() == at::kBool,
              op, ": seen must be a bool tensor of shape [K] = [", centers.size(0), "], got ",
              seen.scalar_type(), " of shape ", seen.sizes());
  TORCH_CHECK(seen.device() == centers.device(), op, ": seen is on ", seen.device(),
              " but centers is on ", centers.device());
}

void check_backward(const char* op, const at::Tensor& grad_loss, const at::Tensor& grad_basis) {
  TORCH_CHECK(grad_basis.dim() == 2, op, ": grad_basis must be 2-D [N, D], got shape ",
              grad_basis.sizes());
  TORCH_CHECK(grad_loss.dim() == 0 ||
                  (grad_loss.dim() == 1 && grad_loss.size(0) == grad_basis.size(0)),
              op, ": grad_loss must be a scalar or have shape [N] = [", grad_basis.size(0),
              "], got shape ", grad_loss.sizes());
  TORCH_CHECK(grad_loss.device() == grad_basis.device(), op, ": grad_loss is on ",
              grad_loss.device(), " but grad_basis is on ", grad_basis.device());
}

void check_margin(const char* op, double margin) {
  TORCH_CHECK(margin >= 0.0 && std::isfinite(margin), op,
              ": margin must be a finite number >= 0, got ", margin);
}

void check_alpha(const char* op, double alpha) {
  TORCH_CHECK(alpha > 0.0 && alpha <= 1.0, op, ": alpha must be in (0, 1], got ", alpha);
}

void check_reduction(const char* op, int64_t reduction) {
  TORCH_CHECK(reduction >= 0 && reduction <= 2, op,
              ": reduction must be 0 (none), 1 (mean) or 2 (sum), got ", reduction);
}

void check_update_rule(const char* op, int64_t rule) {
  TORCH_CHECK(rule == static_cast<int64_t>(UpdateRule::Paper) ||
                  rule == static_cast<int64_t>(UpdateRule::Mean),
              op, ": rule must be 0 (paper) or 1 (mean), got ", rule,
              " (with the gradient rule the optimizer moves the centers)");
}

}  // namespace centerloss::checks
