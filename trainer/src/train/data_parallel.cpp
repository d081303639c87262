#include "train/data_parallel.h"

#include <torch/torch.h>

namespace centerloss::trainer {
namespace {

// DistributedDataParallel's default bucket size: large enough to amortise each all-reduce,
// small enough to keep the flattened copy cheap.
constexpr int64_t kBucketBytes = int64_t(25) << 20;

}  // namespace

std::shared_ptr<DataParallel> DataParallel::from_env(std::chrono::seconds timeout) {
  const Launch launch = launch_from_env();
  if (launch.world_size == 1) return nullptr;
  ProcessGroupOptions options;
  options.timeout = timeout;
  return std::make_shared<DataParallel>(process_group_from_env(launch, options));
}

DataParallel::DataParallel(ProcessGroupPtr group) : group_(std::move(group)) {}

torch::Tensor DataParallel::shard_order(const torch::Tensor& order, int64_t batch_size) {
  const int64_t w = world(), global = batch_size * w, n = order.size(0);
  std::vector<torch::Tensor> mine;
  step_rows_.clear();
  for (int64_t start = 0; start < n; start += global) {
    const int64_t m = std::min(global, n - start);
    if (m < w) break;
    step_rows_.push_back(m);
    mine.push_back(order.slice(0, start + m * rank() / w, start + m * (rank() + 1) / w));
  }
  return mine.empty() ? order.slice(0, 0, 0) : torch::cat(mine);
}

void DataParallel::average_gradients(const std::vector<torch::Tensor>& parameters, int64_t step,
                                     StepNumbers& numbers) {
  torch::NoGradGuard no_grad;
  const int64_t global_rows = step_rows_.at(step);
  // Each rank's mean gradient weighted by its rows: sum_r (n_r / m) g_r = the global mean's.
  const double weight = static_cast<double>(numbers.rows * world()) / global_rows;
  std::vector<torch::Tensor> grads;
  for (const torch::Tensor& p : parameters) {
    if (!p.grad().defined()) const_cast<torch::Tensor&>(p).mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  // The numbers ride in the last bucket: one all-reduce fewer.
  const torch::Tensor totals = torch::tensor(
      {numbers.softmax * numbers.rows, numbers.center * numbers.rows,
       static_cast<double>(numbers.hits), static_cast<double>(numbers.rows)}, torch::kFloat);
  if (grads.empty()) grads.push_back(torch::zeros({0}));  // the numbers still travel
  size_t first = 0;
  while (first < grads.size()) {
    size_t last = first;
    int64_t bytes = 0;
    while (last < grads.size() && (last == first || bytes + grads[last].nbytes() <= kBucketBytes)) {
      bytes += grads[last++].nbytes();
    }
    std::vector<torch::Tensor> flat;
    for (size_t i = first; i < last; ++i) flat.push_back(grads[i].flatten());
    torch::Tensor bucket = torch::cat(flat);
    if (weight != 1.0) bucket.mul_(weight);
    const bool with_totals = last == grads.size();
    if (with_totals) bucket = torch::cat({bucket, totals});
    std::vector<torch::Tensor> one{bucket};
    wait_collective(group_->allreduce(one), *group_, "the gradient all-reduce");
    int64_t offset = 0;
    for (size_t i = first; i < last; ++i) {
      const int64_t count = grads[i].numel();
      grads[i].copy_(bucket.narrow(0, offset, count).view_as(grads[i])).div_(world());
      offset += count;
    }
    if (with_totals) {
      const torch::Tensor sum = bucket.narrow(0, offset, 4).to(torch::kDouble);
      numbers.rows = static_cast<int64_t>(sum[3].item<double>());
      numbers.hits = static_cast<int64_t>(sum[2].item<double>());
      numbers.softmax = sum[0].item<double>() / numbers.rows;
      numbers.center = sum[1].item<double>() / numbers.rows;
    }
    first = last;
  }
}

void DataParallel::broadcast_state(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> tensors = module.parameters();
  for (const torch::Tensor& b : module.buffers()) tensors.push_back(b);
  for (torch::Tensor& t : tensors) {
    std::vector<torch::Tensor> one{t};
    c10d::BroadcastOptions options;
    options.rootRank = 0;
    wait_collective(group_->broadcast(one, options), *group_, "the broadcast of rank 0's weights");
  }
}

void DataParallel::barrier() { wait_collective(group_->barrier(), *group_, "the barrier"); }

}  // namespace centerloss::trainer
