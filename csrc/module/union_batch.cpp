#include "module/union_batch.h"

#include <ATen/ATen.h>

#include "module/batch_header.h"
#include "op/checks.h"

namespace centerloss::group {

std::pair<at::Tensor, at::Tensor> gather_batches(const Group& group, const at::Tensor& features,
                                                 const at::Tensor& labels,
                                                 const at::Tensor& centers,
                                                 std::vector<at::Tensor> state, bool share_state) {
  const GroupBatches batches =
      exchange_headers(group, features, labels, centers, share_state, /*sharding=*/nullptr);
  if (batches.any_share_state()) {
    at::NoGradGuard no_grad;  // the state may hold the gradient rule's centers parameter
    broadcast_from_rank0(group, state);
  }
  const std::vector<int64_t> rows = batches.rows();
  return {all_gather_rows(group, features.detach().contiguous(), rows),
          all_gather_rows(group, checks::labels_as_int64(labels), rows)};
}

}  // namespace centerloss::group
