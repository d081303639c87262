// centerloss::CenterLossImpl: owns the centers, applies the update rule, saves and loads state.
// All maths is in the ops (csrc/op/); this file only decides when to call them. With a process
// group the collectives are in union_batch.h (replicated table) and sharded_centers.h.
#include <torch/nn/init.h>
#include <torch/serialize/input-archive.h>

#include <algorithm>

#include "centerloss/center_loss.h"
#include "memory/huge_pages.h"
#include "module/batch_header.h"
#include "module/sharded_centers.h"
#include "module/union_batch.h"
#include "op/checks.h"

namespace centerloss {
namespace {

// Reads `key` from the archive and checks its shape before anything is replaced.
at::Tensor read_checked(torch::serialize::InputArchive& archive, const std::string& key,
                        at::IntArrayRef expected, bool is_buffer) {
  at::Tensor loaded;
  TORCH_CHECK(archive.try_read(key, loaded, is_buffer), "CenterLoss.load: the archive has no '",
              key, "'");
  TORCH_CHECK(loaded.sizes() == expected, "CenterLoss.load: '", key, "' has shape ",
              loaded.sizes(), " in the archive but this module expects ", expected);
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
  if (options.shard_centers()) {
    const auto& group = options.process_group();
    TORCH_CHECK(group, "CenterLoss: shard_centers needs a process_group");
    TORCH_CHECK(options.update() != UpdateRule::Gradient,
                "CenterLoss: shard_centers takes update rules paper and mean (the gradient "
                "rule's centers are a parameter of the optimizer)");
    TORCH_CHECK(options.num_classes() >= group->getSize(), "CenterLoss: shard_centers needs at "
                "least one class per rank, got num_classes = ", options.num_classes(),
                " for ", group->getSize(), " ranks");
  }
  reset();
}

void CenterLossImpl::reset() {
  shard_begin_ = 0;
  shard_end_ = options.num_classes();
  if (options.shard_centers()) {
    const int64_t world = options.process_group()->getSize();
    const int64_t rank = options.process_group()->getRank();
    shard_begin_ = group::shard_start(options.num_classes(), world, rank);
    shard_end_ = group::shard_start(options.num_classes(), world, rank + 1);
  }
  // Allocated, advised to use huge pages (large tables only), then written once by the
  // initialisation, which faults the pages in as huge pages (see csrc/memory/huge_pages.h).
  at::Tensor centers = torch::empty({shard_end_ - shard_begin_, options.feature_dim()});
  memory::advise_huge_pages(centers);
  {
    torch::NoGradGuard no_grad;
    if (options.init() == Init::Normal) {
      centers.normal_(0.0, options.init_std());
    } else if (options.init() == Init::Xavier && options.shard_centers()) {
      // The whole table's bound (fans K and D), as xavier_uniform_ on [K, D] would draw.
      const double bound =
          std::sqrt(6.0 / static_cast<double>(options.num_classes() + options.feature_dim()));
      centers.uniform_(-bound, bound);
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
    seen_ = register_buffer("seen", torch::zeros({shard_end_ - shard_begin_}, torch::kBool));
  }
  if (options.shard_centers()) {
    shard_ = register_buffer("shard", torch::tensor({shard_begin_, shard_end_, options.num_classes(),
                                                     static_cast<int64_t>(options.process_group()->getSize())},
                                                    torch::kLong));
  }
  state_shared_ = false;
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
         << ", margin=" << options.margin();
  if (options.process_group()) {
    stream << ", process_group=rank " << options.process_group()->getRank() << " of "
           << options.process_group()->getSize();
  }
  if (options.shard_centers()) stream << ", shard=[" << shard_begin_ << ", " << shard_end_ << ")";
  stream << ")";
}

at::Tensor CenterLossImpl::forward(const at::Tensor& features, const at::Tensor& labels) {
  const bool stepping =
      is_training() && options.update_in_forward() && options.update() != UpdateRule::Gradient;
  const bool first_sight = seen_.defined() && is_training();
  if (options.shard_centers()) return sharded_forward(features, labels, stepping);
  const bool gathering = options.process_group() && (stepping || first_sight);
  // With a process group, gather first: a rank with bad input then raises in the loss while the
  // others raise on the same bad rows in the step; no rank waits forever.
  at::Tensor step_x = features.detach(), step_y = labels;
  if (gathering) std::tie(step_x, step_y) = gather_union(features, labels);
  if (first_sight) init_centers_first_sight_(centers_, seen_, step_x, step_y);
  if (stepping && !gathering) {
    // Loss and step in one op: the labels are checked once, the step needs no sync on CUDA and
    // a bad batch is counted on the device.
    return detail::center_loss_step_(features, labels, centers_, skipped_updates_,
                                     options.margin(), options.reduction(), options.alpha(),
                                     options.update());
  }
  at::Tensor loss = center_loss(features, labels, centers_, options.margin(), options.reduction());
  if (stepping) step_centers(step_x, step_y);
  return loss;
}

std::pair<at::Tensor, at::Tensor> CenterLossImpl::gather_union(const at::Tensor& features,
                                                               const at::Tensor& labels) {
  // The state rank 0 gives: every buffer and parameter, by name (the same order on every rank).
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (const auto& b : named_buffers(/*recurse=*/false)) named.emplace_back(b.key(), b.value());
  for (const auto& p : named_parameters(/*recurse=*/false)) named.emplace_back(p.key(), p.value());
  std::sort(named.begin(), named.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<at::Tensor> state;
  for (const auto& [name, tensor] : named) state.push_back(tensor);
  auto batch = group::gather_batches(options.process_group(), features, labels, centers_,
                                     std::move(state), !state_shared_);
  state_shared_ = true;
  return batch;
}

at::Tensor CenterLossImpl::sharded_forward(const at::Tensor& features, const at::Tensor& labels,
                                           bool step) {
  group::Shard shard{centers_, seen_, skipped_updates_, shard_begin_, options.num_classes()};
  group::ShardStep what{step, seen_.defined() && is_training(), options.alpha(),
                        static_cast<int64_t>(options.update())};
  const at::Tensor rows =
      group::exchange_center_rows(options.process_group(), features, labels, shard, what);
  // Row i's center is rows[i]: the unsharded kernel on a table of the batch's own rows.
  const at::Tensor own = at::arange(features.size(0), labels.options().dtype(at::kLong));
  return center_loss(features, own, rows, options.margin(), options.reduction());
}

at::Tensor CenterLossImpl::full_centers() const {
  if (!options.shard_centers()) return centers_;
  const auto& group = options.process_group();
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < group->getSize(); ++r) {
    rows.push_back(group::shard_start(options.num_classes(), group->getSize(), r + 1) -
                   group::shard_start(options.num_classes(), group->getSize(), r));
  }
  return group::all_gather_rows(group, centers_, rows);
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
  if (options.shard_centers()) {
    const int64_t skipped = skipped_updates();
    sharded_forward(features, labels, /*step=*/true);
    return skipped_updates() == skipped;
  }
  if (options.process_group()) {
    const auto [x, y] = gather_union(features, labels);
    return step_centers(x, y).item<bool>();
  }
  return step_centers(features, labels).item<bool>();
}

int64_t CenterLossImpl::skipped_updates() const { return skipped_updates_.item<int64_t>(); }

void CenterLossImpl::load(torch::serialize::InputArchive& archive) {
  // A sharded module takes its own shard, or its rows of a whole table (an unsharded module's
  // state, or full_centers() saved: that is how a table moves to another world size).
  at::Tensor stored_shard;
  const bool whole = shard_.defined() && !archive.try_read("shard", stored_shard, true);
  if (shard_.defined() && !whole) check_shard(stored_shard);
  const int64_t rows = whole ? options.num_classes() : centers_.size(0);
  const auto mine = [&](const at::Tensor& t) {
    return whole ? t.narrow(0, shard_begin_, shard_end_ - shard_begin_) : t;
  };
  const bool is_param = options.update() == UpdateRule::Gradient;
  const at::Tensor centers =
      read_checked(archive, "centers", {rows, options.feature_dim()}, !is_param);
  const at::Tensor skipped = read_checked(archive, "skipped_updates", {}, true);
  at::Tensor seen;
  if (seen_.defined()) seen = read_checked(archive, "seen", {rows}, true);
  torch::NoGradGuard no_grad;  // every shape is known good: now replace, keeping identities
  centers_.copy_(mine(centers));
  skipped_updates_.copy_(skipped);
  if (seen_.defined()) seen_.copy_(mine(seen));
  state_shared_ = false;  // ranks may have loaded different states
}

void CenterLossImpl::check_shard(const at::Tensor& stored) const {
  const at::Tensor found = stored.cpu(), mine = shard_.cpu();
  if (torch::equal(found, mine)) return;
  const auto describe = [](const at::Tensor& s) {
    return c10::str("rows [", s[0].item<int64_t>(), ", ", s[1].item<int64_t>(), ") of ",
                    s[2].item<int64_t>(), " classes sharded over ", s[3].item<int64_t>(),
                    " ranks");
  };
  TORCH_CHECK(false, "CenterLoss.load: the archive holds ", describe(found),
              " but this module (rank ", options.process_group()->getRank(), ") owns ",
              describe(mine), ": load each rank's own shard, saved with the same number of "
              "classes and ranks");
}

}  // namespace centerloss
