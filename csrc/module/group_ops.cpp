// The process-group paths of the CenterLoss module as ops, so that the Python module
// (centerloss.CenterLoss(process_group=...)) runs this same C++ code: a torch.distributed
// group passes as group.boxed() (torch's own c10d ops take it the same way).
//
//   _gather_batches(features, labels, centers, group, state!, share_state) -> (union_x, union_y)
//       union_batch.h: the ranks' batches concatenated in rank order; rank 0's state shared
//   _exchange_center_rows_(features, labels, centers!, skipped!, seen!?, group, num_classes,
//       step, first_sight, alpha, rule) -> rows
//       sharded_centers.h: the [N, D] centers of this rank's rows; the owners step their shard
#include <torch/library.h>

#include "module/batch_header.h"
#include "module/sharded_centers.h"
#include "module/union_batch.h"
#include "op/checks.h"

namespace centerloss::group {
namespace {

std::tuple<at::Tensor, at::Tensor> gather_batches_op(const at::Tensor& features,
                                                     const at::Tensor& labels,
                                                     const at::Tensor& centers,
                                                     const Group& group, at::TensorList state,
                                                     bool share_state) {
  auto [x, y] = gather_batches(group, features, labels, centers, state.vec(), share_state);
  return {x, y};
}

at::Tensor exchange_center_rows_op(const at::Tensor& features, const at::Tensor& labels,
                                   at::Tensor& centers, at::Tensor& skipped,
                                   const std::optional<at::Tensor>& seen, const Group& group,
                                   int64_t num_classes, bool step, bool first_sight, double alpha,
                                   int64_t rule) {
  const int64_t world = group->getSize(), rank = group->getRank();
  const int64_t begin = shard_start(num_classes, world, rank);
  const int64_t end = shard_start(num_classes, world, rank + 1);
  TORCH_CHECK(num_classes >= world && centers.dim() == 2 && centers.size(0) == end - begin,
              "_exchange_center_rows_: rank ", rank, " of ", world, " owns the rows [", begin,
              ", ", end, ") of ", num_classes, " classes, but centers has shape ",
              centers.sizes());
  checks::check_skip_counter("_exchange_center_rows_", skipped, centers);
  if (step) {
    checks::check_alpha("_exchange_center_rows_", alpha);
    checks::check_update_rule("_exchange_center_rows_", rule);
  }
  TORCH_CHECK(!first_sight || seen.has_value(),
              "_exchange_center_rows_: first_sight needs the seen mask");
  if (seen.has_value()) checks::check_seen("_exchange_center_rows_", *seen, centers);
  Shard shard{centers, seen.value_or(at::Tensor()), skipped, begin, num_classes};
  return exchange_center_rows(group, features, labels, shard, {step, first_sight, alpha, rule});
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(centerloss, m) {
  m.def("_gather_batches(Tensor features, Tensor labels, Tensor centers, "
        "__torch__.torch.classes.c10d.ProcessGroup group, Tensor(a!)[] state, bool share_state) "
        "-> (Tensor, Tensor)",
        &gather_batches_op);
  m.def("_exchange_center_rows_(Tensor features, Tensor labels, Tensor(a!) centers, "
        "Tensor(b!) skipped, Tensor(c!)? seen, __torch__.torch.classes.c10d.ProcessGroup group, "
        "int num_classes, bool step, bool first_sight, float alpha, int rule) -> Tensor",
        &exchange_center_rows_op);
}

}  // namespace centerloss::group
