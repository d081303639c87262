// What only CUDA has: the op on side streams (each stream its own scratch) and inside CUDA
// graphs. Skipped without a GPU (tests/cpp/devices.h); the op's results on every device are in
// test_op_reference.cpp.
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "centerloss/center_loss.h"
#include "centerloss/ops.h"
#include "devices.h"

namespace {

#define SKIP_WITHOUT_CUDA() CENTERLOSS_SKIP_UNLESS_AVAILABLE(torch::kCUDA)

const torch::Device kCuda(torch::kCUDA, 0);

// Work on a second stream is ordered on that stream (the kernels use the current stream).
TEST(CudaStreams, RunsOnTheCurrentStream) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(2);
  const auto x = torch::randn({1024, 256}, kCuda);
  const auto y = torch::randint(50, {1024}, torch::TensorOptions(kCuda).dtype(torch::kLong));
  auto c = torch::randn({50, 256}, kCuda);
  auto want = c.clone();
  centerloss::update_centers_(want, x, y);
  const auto want_loss = centerloss::center_loss(x, y, want);
  torch::cuda::synchronize();
  auto stream = c10::cuda::getStreamFromPool();
  {
    c10::cuda::CUDAStreamGuard guard(stream);
    centerloss::update_centers_(c, x, y);
    const auto loss = centerloss::center_loss(x, y, c);
    stream.synchronize();
    EXPECT_TRUE(torch::equal(loss, want_loss));
  }
  EXPECT_TRUE(torch::equal(c, want));
}

// Forwards on two streams at once, from two threads: each (device, stream) has its own scratch
// (block ticket, first bad label), so a batch with a bad label on one stream never reports
// into, or resets the ticket of, a good batch running on the other. With one scratch per device
// the good stream would see the other's bad label or a wrong total.
TEST(CudaStreams, ConcurrentForwardsOnTwoStreamsKeepTheirOwnVerdicts) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(3);
  constexpr int64_t kN = 5000;  // 1250 forward blocks: long enough for the streams to overlap
  constexpr int64_t kBad = 4321;
  const auto x = torch::randn({kN, 8}, kCuda);
  const auto options = torch::TensorOptions(kCuda).dtype(torch::kLong);
  const auto good = torch::randint(20, {kN}, options);
  auto bad = good.clone();
  bad[kBad] = 20;
  const auto c = torch::randn({20, 8}, kCuda);
  const auto want = centerloss::center_loss(x, good, c, 0.0, centerloss::Reduction::Sum);
  torch::cuda::synchronize();

  constexpr int kCalls = 200;
  std::atomic<int> wrong_loss{0}, good_raised{0}, bad_accepted{0}, bad_wrong_position{0};
  auto run = [&](bool with_bad_label) {
    c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromPool());
    for (int i = 0; i < kCalls; ++i) {
      try {
        const auto loss = centerloss::center_loss(x, with_bad_label ? bad : good, c, 0.0,
                                                  centerloss::Reduction::Sum);
        if (with_bad_label) {
          ++bad_accepted;
        } else if (!torch::equal(loss, want)) {
          ++wrong_loss;
        }
      } catch (const c10::Error& err) {
        if (!with_bad_label) {
          ++good_raised;
        } else if (std::string(err.what()).find("at position " + std::to_string(kBad)) ==
                   std::string::npos) {
          ++bad_wrong_position;
        }
      }
    }
  };
  std::vector<std::thread> threads;
  threads.emplace_back(run, false);
  threads.emplace_back(run, true);
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong_loss.load(), 0);
  EXPECT_EQ(good_raised.load(), 0);
  EXPECT_EQ(bad_accepted.load(), 0);
  EXPECT_EQ(bad_wrong_position.load(), 0);
}

// The C++ module's training step captured in a CUDA graph and replayed on new batches gives the
// eager module's losses and centers; a bad label in a replay (where nothing can raise) gives a
// NaN loss, no center step and one skipped update. tests/python/test_streams_and_graphs.py covers
// autograd inside the graph.
TEST(CudaGraphs, CapturedModuleStepReplaysTheEagerStep) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(11);
  const auto options =
      centerloss::CenterLossOptions(12, 16).alpha(0.3).init(centerloss::Init::Normal);
  centerloss::CenterLoss module(options), twin(options);
  module->to(torch::kCUDA);
  twin->to(torch::kCUDA);
  {
    torch::NoGradGuard no_grad;
    twin->centers().copy_(module->centers());
  }
  const auto long_cuda = torch::TensorOptions(kCuda).dtype(torch::kLong);
  auto static_x = torch::randn({200, 16}, kCuda);
  auto static_y = torch::randint(12, {200}, long_cuda);
  at::cuda::CUDAGraph graph;
  torch::Tensor static_loss;
  torch::cuda::synchronize();  // the side stream below does not wait for the default stream
  {
    c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromPool());
    for (auto* m : {&module, &twin}) (*m)->forward(static_x, static_y);  // warm-up, same step
    c10::cuda::getCurrentCUDAStream().synchronize();
    graph.capture_begin();
    static_loss = module->forward(static_x, static_y);
    graph.capture_end();
  }
  torch::cuda::synchronize();
  ASSERT_TRUE(torch::equal(module->centers(), twin->centers())) << "the capture ran a step";
  for (int step = 0; step < 4; ++step) {
    const auto x = torch::randn({200, 16}, kCuda);
    const auto y = torch::randint(12, {200}, long_cuda);
    static_x.copy_(x);
    static_y.copy_(y);
    graph.replay();
    const auto want = twin->forward(x, y);
    torch::cuda::synchronize();
    EXPECT_TRUE(torch::equal(static_loss, want)) << "step " << step;
    EXPECT_TRUE(torch::equal(module->centers(), twin->centers())) << "step " << step;
  }
  const auto before = module->centers().clone();
  static_y[17] = 12;
  graph.replay();
  torch::cuda::synchronize();
  EXPECT_TRUE(std::isnan(static_loss.item<float>()));
  EXPECT_TRUE(torch::equal(module->centers(), before));
  EXPECT_EQ(module->skipped_updates(), 1);
  EXPECT_EQ(twin->skipped_updates(), 0);
}

}  // namespace
