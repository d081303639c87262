// The few c10d collectives the CenterLoss module makes, each waited for at once, with an error
// that says what failed when a rank died or timed out (never a hang past the group's timeout).
// Every rank of the group must make the same calls in the same order.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include <vector>

namespace centerloss::group {

using Group = c10::intrusive_ptr<c10d::ProcessGroup>;

// Every rank's `tensor` (the same shape on every rank), stacked along a new first dimension.
at::Tensor all_gather(const Group& group, const at::Tensor& tensor);

// The ranks' row blocks concatenated in rank order: rank r contributes `rows` whose first
// dimension is counts[r] (counts known to every rank; the other dimensions are the same).
at::Tensor all_gather_rows(const Group& group, const at::Tensor& rows,
                           const std::vector<int64_t>& counts);

// Rank 0's values of `tensors`, in place, on every rank (the same tensors in the same order).
void broadcast_from_rank0(const Group& group, std::vector<at::Tensor>& tensors);

// All-to-all of rows: `rows` holds send_counts[t] rows for rank t, in rank order; the result
// holds recv_counts[s] rows from rank s, in rank order.
at::Tensor all_to_all_rows(const Group& group, const at::Tensor& rows,
                           const std::vector<int64_t>& send_counts,
                           const std::vector<int64_t>& recv_counts);

}  // namespace centerloss::group
