#include "module/collectives.h"

#include "centerloss/process_group.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <string>

namespace centerloss::group {
namespace {

void wait(const c10::intrusive_ptr<c10d::Work>& work, const Group& group, const char* what) {
  wait_collective(work, *group, std::string("CenterLoss: the process group's ") + what);
}

}  // namespace

at::Tensor all_gather(const Group& group, const at::Tensor& tensor) {
  std::vector<at::Tensor> input{tensor.contiguous()};
  std::vector<std::vector<at::Tensor>> output(1);
  for (int r = 0; r < group->getSize(); ++r) output[0].push_back(at::empty_like(input[0]));
  wait(group->allgather(output, input), group, "all-gather");
  return at::stack(output[0]);
}

at::Tensor all_gather_rows(const Group& group, const at::Tensor& rows,
                           const std::vector<int64_t>& counts) {
  // Padded to the longest block, as all-gather needs one shape.
  const int64_t longest = *std::max_element(counts.begin(), counts.end());
  std::vector<int64_t> shape = rows.sizes().vec();
  shape[0] = longest;
  at::Tensor padded = at::zeros(shape, rows.options());
  padded.narrow(0, 0, rows.size(0)).copy_(rows);
  const at::Tensor stacked = all_gather(group, padded);
  std::vector<at::Tensor> blocks;
  for (size_t r = 0; r < counts.size(); ++r) blocks.push_back(stacked[r].narrow(0, 0, counts[r]));
  return at::cat(blocks);
}

void broadcast_from_rank0(const Group& group, std::vector<at::Tensor>& tensors) {
  for (at::Tensor& t : tensors) {
    std::vector<at::Tensor> one{t};
    c10d::BroadcastOptions options;
    options.rootRank = 0;
    wait(group->broadcast(one, options), group, "broadcast");
  }
}

at::Tensor all_to_all_rows(const Group& group, const at::Tensor& rows,
                           const std::vector<int64_t>& send_counts,
                           const std::vector<int64_t>& recv_counts) {
  std::vector<int64_t> shape = rows.sizes().vec();
  int64_t total = 0;
  for (int64_t c : recv_counts) total += c;
  shape[0] = total;
  at::Tensor input = rows.contiguous();
  at::Tensor output = at::empty(shape, rows.options());
  std::vector<int64_t> send = send_counts, recv = recv_counts;
  wait(group->alltoall_base(output, input, recv, send), group, "all-to-all");
  return output;
}

}  // namespace centerloss::group
