#include "module/batch_header.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <sstream>
#include <string>

#include "op/checks.h"

namespace centerloss::group {
namespace {

constexpr int64_t kFixedFields = 6;  // valid, rows, dim, dtype, share_state, finite

// The dtype as Python spells it (the one vocabulary of the error messages).
std::string dtype_name(int64_t code) {
  switch (static_cast<at::ScalarType>(code)) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    default: return c10::toString(static_cast<at::ScalarType>(code));
  }
}

// Why this rank's batch cannot be used, or "" when it can.
std::string local_problem(const at::Tensor& features, const at::Tensor& labels,
                          const at::Tensor& centers, const Sharding* sharding) {
  try {
    checks::check_batch_layout("CenterLoss", features, labels, centers);
    if (sharding != nullptr && labels.numel() > 0) {
      const at::Tensor labels64 = checks::labels_as_int64(labels);
      const at::Tensor bad = at::logical_or(labels64 < 0, labels64 >= sharding->num_classes);
      const at::Tensor where = bad.nonzero();
      if (where.size(0) > 0) {
        checks::fail_bad_label("CenterLoss", labels64, where[0][0].item<int64_t>(),
                               sharding->num_classes);
      }
    }
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "";
}

}  // namespace

bool GroupBatches::any_share_state() const {
  for (const RankBatch& r : ranks) {
    if (r.share_state) return true;
  }
  return false;
}

bool GroupBatches::all_finite() const {
  for (const RankBatch& r : ranks) {
    if (!r.finite) return false;
  }
  return true;
}

std::vector<int64_t> GroupBatches::rows() const {
  std::vector<int64_t> rows;
  for (const RankBatch& r : ranks) rows.push_back(r.rows);
  return rows;
}

std::vector<int64_t> GroupBatches::rows_from(int owner) const {
  std::vector<int64_t> rows;
  for (const RankBatch& r : ranks) rows.push_back(r.per_owner.at(owner));
  return rows;
}

at::Tensor owner_of(const at::Tensor& labels64, int64_t num_classes, int64_t world) {
  // r owns j  <=>  r K / W <= j < (r + 1) K / W  <=>  r = ((j + 1) W - 1) / K
  return at::floor_divide((labels64 + 1) * world - 1, num_classes);
}

int64_t shard_start(int64_t num_classes, int64_t world, int64_t rank) {
  return rank * num_classes / world;
}

GroupBatches exchange_headers(const Group& group, const at::Tensor& features,
                              const at::Tensor& labels, const at::Tensor& centers,
                              bool share_state, const Sharding* sharding) {
  const int world = group->getSize();
  const std::string problem = local_problem(features, labels, centers, sharding);
  const bool valid = problem.empty();
  const int64_t fields = kFixedFields + (sharding != nullptr ? world : 0);
  std::vector<int64_t> header(fields, 0);
  header[0] = valid;
  header[4] = share_state;
  header[5] = 1;
  if (valid) {
    header[1] = features.size(0);
    header[2] = features.size(1);
    header[3] = static_cast<int64_t>(features.scalar_type());
    if (sharding != nullptr) {
      header[5] = at::isfinite(features).all().item<bool>();
      const at::Tensor owners = owner_of(checks::labels_as_int64(labels),
                                         sharding->num_classes, world);
      const at::Tensor counts = at::bincount(owners, {}, world).cpu();
      for (int t = 0; t < world; ++t) header[kFixedFields + t] = counts[t].item<int64_t>();
    }
  }
  // On the features' device: a NCCL group moves CUDA tensors only.
  const at::Tensor mine = at::tensor(header, at::kLong).to(features.device());
  const at::Tensor all = all_gather(group, mine).cpu();

  GroupBatches batches;
  const int64_t* h = all.const_data_ptr<int64_t>();
  for (int r = 0; r < world; ++r, h += fields) {
    RankBatch b;
    b.valid = h[0] != 0;
    b.rows = h[1];
    b.dim = h[2];
    b.dtype = h[3];
    b.share_state = h[4] != 0;
    b.finite = h[5] != 0;
    b.per_owner.assign(h + kFixedFields, h + fields);
    batches.ranks.push_back(std::move(b));
  }
  const char* consequence = "; every rank of the process group raises and no center moves";
  TORCH_CHECK(valid, problem, " (the batch of rank ", group->getRank(), ")", consequence);
  std::ostringstream bad, shapes;
  bool any_bad = false, differ = false;
  for (int r = 0; r < world; ++r) {
    const RankBatch& b = batches.ranks[r];
    if (!b.valid) {
      bad << (any_bad ? ", " : "") << r;
      any_bad = true;
    }
    shapes << (r ? ", " : "") << "rank " << r << ": D = " << b.dim << ", " << dtype_name(b.dtype);
    differ = differ || b.dim != batches.ranks[0].dim || b.dtype != batches.ranks[0].dtype;
  }
  TORCH_CHECK(!any_bad, "CenterLoss: the batch of rank(s) [", bad.str(),
              "] is invalid (see the error on those ranks)", consequence);
  TORCH_CHECK(!differ, "CenterLoss: the ranks' features differ in D or dtype (", shapes.str(),
              ")", consequence);
  return batches;
}

}  // namespace centerloss::group
