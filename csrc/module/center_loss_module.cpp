// centerloss::CenterLossImpl: owns the centers, applies the update rule, saves and loads state.
// All maths is in the ops (csrc/op/); this file only decides when to call them.
#include <torch/nn/init.h>
#include <torch/serialize/input-archive.h>

#include "centerloss/center_loss.h"
#include "memory/huge_pages.h"
#include "op/checks.h"

namespace centerloss {
namespace {

// Reads `key` from the archive and checks its shape before anything is replaced.
at::Tensor read_checked(torch::serialize::InputArchive& archive, const std::string& key,
                        const at::Tensor& current, bool is_buffer) {
  at::Tensor loaded;
  TORCH_CHECK(archive.try_read(key, loaded, is_buffer), "CenterLoss.load: the archive has no '",
              key, "'");
  TORCH_CHECK(loaded.sizes() == current.sizes(), "CenterLoss.load: '", key, "' has shape ",
              loaded.sizes(), " in the archive but this module expects ", current.sizes());
  return loaded;
}

}  // namespace

CenterLossImpl::CenterLossImpl(const CenterLossOptions& options_) : options(options_) {
  TORCH_CHECK(options.num_classes() >= 1, "CenterLoss: num_classes must be >= 1, got ",
              options.num_classes());
  TORCH_CHECK(options.feature_dim() >= 1, "CenterLoss: feature_dim must be >= 1, got ",
              options.feature_dim());
  checks::check_alpha("CenterLoss", options.alpha());
  checks::check_margin("CenterLoss", options.margin());
  TORCH_CHECK(options.init_std() > 0.0 && std::isfinite(options.init_std()),
              "CenterLoss: init_std must be a finite number > 0, got ", options.init_std());
  reset();
}

void CenterLossImpl::reset() {
  // Allocated, advised to use huge pages (large tables only), then written once by the
  // initialisation, which faults the pages in as huge pages (see csrc/memory/huge_pages.h).
  at::Tensor centers = torch::empty({options.num_classes(), options.feature_dim()});
  memory::advise_huge_pages(centers);
  {
    torch::NoGradGuard no_grad;
    if (options.init() == Init::Normal) {
      centers.normal_(0.0, options.init_std());
    } else if (options.init() == Init::Xavier) {
      torch::nn::init::xavier_uniform_(centers);
    } else {
      centers.zero_();  // Zeros, and FirstSight's not-yet-seen classes
    }
  }
  if (options.update() == UpdateRule::Gradient) {
    centers_ = register_parameter("centers", centers);
  } else {
    centers_ = register_buffer("centers", centers);
  }
  skipped_updates_ = register_buffer("skipped_updates", torch::zeros({}, torch::kLong));
  if (options.init() == Init::FirstSight) {
    seen_ = register_buffer("seen", torch::zeros({options.num_classes()}, torch::kBool));
  }
}

void CenterLossImpl::to(torch::Device device, torch::Dtype dtype, bool non_blocking) {
  to(device, non_blocking);
  to(dtype, non_blocking);
}

void CenterLossImpl::to(torch::Dtype dtype, bool non_blocking) {
  if (dtype != torch::kFloat && dtype != torch::kDouble) return;  // see the header
  // set_data keeps the registered tensor (and a parameter's identity for an optimizer).
  centers_.set_data(centers_.to(dtype, non_blocking));
}

void CenterLossImpl::to(torch::Device device, bool non_blocking) {
  torch::nn::Module::to(device, non_blocking);  // every registered tensor, dtypes kept
}

void CenterLossImpl::pretty_print(std::ostream& stream) const {
  stream << "centerloss::CenterLoss(num_classes=" << options.num_classes()
         << ", feature_dim=" << options.feature_dim() << ", alpha=" << options.alpha()
         << ", reduction=" << option_name(kReductionNames, options.reduction())
         << ", update=" << option_name(kUpdateRuleNames, options.update())
         << ", margin=" << options.margin() << ")";
}

at::Tensor CenterLossImpl::forward(const at::Tensor& features, const at::Tensor& labels) {
  if (seen_.defined() && is_training()) {
    init_centers_first_sight_(centers_, seen_, features.detach(), labels);
  }
  if (is_training() && options.update_in_forward() && options.update() != UpdateRule::Gradient) {
    // Loss and step in one op: the labels are checked once, the step needs no sync on CUDA and
    // a bad batch is counted on the device.
    return detail::center_loss_step_(features, labels, centers_, skipped_updates_,
                                     options.margin(), options.reduction(), options.alpha(),
                                     options.update());
  }
  return center_loss(features, labels, centers_, options.margin(), options.reduction());
}

at::Tensor CenterLossImpl::step_centers(const at::Tensor& features, const at::Tensor& labels) {
  torch::NoGradGuard no_grad;
  const at::Tensor applied =
      update_centers_(centers_, features.detach(), labels, options.alpha(), options.update());
  skipped_updates_.add_(applied.logical_not());  // counted on the device: no host sync
  return applied;
}

bool CenterLossImpl::update_centers(const at::Tensor& features, const at::Tensor& labels) {
  TORCH_CHECK(options.update() != UpdateRule::Gradient,
              "CenterLoss.update_centers: the module uses update=gradient; its optimizer moves "
              "the centers");
  return step_centers(features, labels).item<bool>();
}

int64_t CenterLossImpl::skipped_updates() const { return skipped_updates_.item<int64_t>(); }

void CenterLossImpl::load(torch::serialize::InputArchive& archive) {
  const bool is_param = options.update() == UpdateRule::Gradient;
  const at::Tensor centers = read_checked(archive, "centers", centers_, !is_param);
  const at::Tensor skipped = read_checked(archive, "skipped_updates", skipped_updates_, true);
  at::Tensor seen;
  if (seen_.defined()) seen = read_checked(archive, "seen", seen_, true);
  torch::NoGradGuard no_grad;  // every shape is known good: now replace, keeping identities
  centers_.copy_(centers);
  skipped_updates_.copy_(skipped);
  if (seen_.defined()) seen_.copy_(seen);
}

}  // namespace centerloss
