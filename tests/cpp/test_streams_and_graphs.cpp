// The CUDA kernels against the CPU kernels and the ATen reference (tests/cpp/reference.h), on the
// random cases of test_op_reference.cpp plus the shapes that pick the CUDA code paths (one-block
// sort up to 1024 and 4096 rows, device-wide sort above). Skipped without a GPU.
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <atomic>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "centerloss/center_loss.h"
#include "centerloss/ops.h"
#include "reference.h"

using centerloss::testing::reference_loss;
using centerloss::testing::reference_update;

namespace {

#define SKIP_WITHOUT_CUDA()                                                      \
  if (!torch::cuda::is_available() || !centerloss::has_cuda_kernels()) {         \
    GTEST_SKIP() << "no CUDA device (or centerloss built without CUDA kernels)"; \
  }

const torch::Device kCuda(torch::kCUDA, 0);

struct Case {
  int64_t n, d, k;
};

std::string case_name(const Case& c) {
  return "N" + std::to_string(c.n) + "_D" + std::to_string(c.d) + "_K" + std::to_string(c.k);
}

centerloss::UpdateRule rule_of(bool paper) {
  return paper ? centerloss::UpdateRule::Paper : centerloss::UpdateRule::Mean;
}

// Runs f with the framework's deterministic mode set to `on`, restoring it afterwards.
template <typename F>
void with_deterministic(bool on, F&& f) {
  auto& ctx = at::globalContext();
  const bool before = ctx.deterministicAlgorithms();
  const bool warn_only = ctx.deterministicAlgorithmsWarnOnly();
  ctx.setDeterministicAlgorithms(on, warn_only);
  f();
  ctx.setDeterministicAlgorithms(before, warn_only);
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.numel() == 0) return 0.0;
  return (a.cpu().to(torch::kDouble) - b.cpu().to(torch::kDouble)).abs().max().item<double>();
}

// One shape, one feature dtype, one center dtype: loss, gradient and both update rules in both
// modes, against the CPU op and the reference.
void check_parity(const Case& shape, torch::ScalarType dtype, torch::ScalarType center_dtype) {
  torch::manual_seed(shape.n * 131 + shape.d * 17 + shape.k);
  const auto features = torch::randn({shape.n, shape.d}, torch::kDouble).to(dtype);
  const auto labels = torch::randint(shape.k, {shape.n}, torch::kLong);
  const auto centers = torch::randn({shape.k, shape.d}, center_dtype);
  const double grad_tol = dtype == torch::kBFloat16 ? 1.6e-2 : dtype == torch::kHalf ? 2e-3 : 1e-5;
  for (const double margin : {0.0, 0.5}) {
    for (const int64_t reduction : {0, 1, 2}) {
      SCOPED_TRACE("margin " + std::to_string(margin) + " reduction " + std::to_string(reduction));
      const auto red = static_cast<centerloss::Reduction>(reduction);
      auto x_gpu = features.to(kCuda).requires_grad_(true);
      auto loss_gpu = centerloss::center_loss(x_gpu, labels.to(kCuda), centers.to(kCuda), margin, red);
      auto x_cpu = features.clone().requires_grad_(true);
      auto loss_cpu = centerloss::center_loss(x_cpu, labels, centers, margin, red);
      auto x_ref = features.to(torch::kDouble).clone().requires_grad_(true);
      auto want = reference_loss(x_ref, labels, centers.to(torch::kDouble), margin, reduction);
      ASSERT_EQ(loss_gpu.scalar_type(), loss_cpu.scalar_type());
      ASSERT_EQ(loss_gpu.sizes(), loss_cpu.sizes());
      EXPECT_TRUE(torch::allclose(loss_gpu.cpu().to(torch::kDouble), want, 1e-5, 1e-6));
      EXPECT_TRUE(torch::allclose(loss_gpu.cpu(), loss_cpu, 1e-5, 1e-6));
      // A non-uniform incoming gradient for "none" exercises the per-sample path of backward.
      const auto weight = reduction == 0 ? torch::rand({shape.n}, torch::kDouble) : torch::ones({});
      (loss_gpu * weight.to(kCuda).to(loss_gpu.scalar_type())).sum().backward();
      (loss_cpu * weight.to(loss_cpu.scalar_type())).sum().backward();
      (want * weight).sum().backward();
      ASSERT_EQ(x_gpu.grad().scalar_type(), dtype);
      const double scale = std::max(x_ref.grad().abs().max().item<double>(), 1e-30);
      EXPECT_LE(max_abs_diff(x_gpu.grad(), x_ref.grad()), grad_tol * scale);
      EXPECT_LE(max_abs_diff(x_gpu.grad(), x_cpu.grad()), grad_tol * scale);
    }
  }
  for (const bool paper : {true, false}) {
    for (const bool deterministic : {true, false}) {
      SCOPED_TRACE(std::string(paper ? "paper" : "mean") + (deterministic ? " det" : " default"));
      auto got = centers.to(kCuda);
      auto cpu = centers.clone();
      with_deterministic(deterministic, [&] {
        EXPECT_TRUE(centerloss::update_centers_(got, features.to(kCuda), labels.to(kCuda), 0.4,
                                                rule_of(paper))
                        .item<bool>());
      });
      centerloss::update_centers_(cpu, features, labels, 0.4, rule_of(paper));
      const auto want = reference_update(centers.to(torch::kDouble), features.to(torch::kDouble),
                                         labels, 0.4, paper);
      const double tol = center_dtype == torch::kDouble ? 1e-10 : 1e-5;
      EXPECT_TRUE(torch::allclose(got.cpu().to(torch::kDouble), want, tol, tol));
      EXPECT_TRUE(torch::allclose(got.cpu(), cpu, tol, tol));
    }
  }
}

// The CPU tests' cases, then shapes that take each CUDA sort path (<= 1024, <= 4096, above).
// One test (a ctest process each costs seconds of library loading where it only skips).
TEST(CudaParity, ForwardBackwardUpdateMatchCpuAndReference) {
  SKIP_WITHOUT_CUDA();
  for (const Case shape : {Case{1, 1, 1}, Case{9, 3, 4}, Case{256, 2, 10}, Case{700, 64, 1000},
                           Case{2000, 512, 7}, Case{1500, 8, 100000}, Case{4096, 33, 50},
                           Case{5000, 17, 300}}) {
    for (const auto dtype : {torch::kFloat, torch::kDouble, torch::kHalf, torch::kBFloat16}) {
      for (const auto center_dtype : {torch::kFloat, torch::kDouble}) {
        SCOPED_TRACE(case_name(shape) + " features " + c10::toString(dtype) + " centers " +
                     c10::toString(center_dtype));
        check_parity(shape, dtype, center_dtype);
      }
    }
  }
}

// One label for the whole batch (the longest class segment), K = 1 and D = 1, at sizes that
// take each sort path.
TEST(CudaEdgeCases, OneRepeatedLabel) {
  SKIP_WITHOUT_CUDA();
  for (const int64_t n : {1, 300, 4096, 6000}) {
    for (const int64_t k : {1, 5}) {
      SCOPED_TRACE("N " + std::to_string(n) + " K " + std::to_string(k));
      torch::manual_seed(n + k);
      const auto x = torch::randn({n, 1});
      const auto y = torch::full({n}, k - 1, torch::kLong);
      const auto c = torch::randn({k, 1});
      auto got = c.to(kCuda);
      centerloss::update_centers_(got, x.to(kCuda), y.to(kCuda), 0.5, centerloss::UpdateRule::Paper);
      const auto want = reference_update(c.to(torch::kDouble), x.to(torch::kDouble), y, 0.5, true);
      EXPECT_TRUE(torch::allclose(got.cpu().to(torch::kDouble), want, 1e-5, 1e-5));
      const auto loss = centerloss::center_loss(x.to(kCuda), y.to(kCuda), c.to(kCuda));
      EXPECT_TRUE(torch::allclose(loss.cpu().to(torch::kDouble),
                                  reference_loss(x.to(torch::kDouble), y, c.to(torch::kDouble), 0, 1),
                                  1e-5, 1e-6));
    }
  }
}

TEST(CudaEdgeCases, EmptyBatch) {
  SKIP_WITHOUT_CUDA();
  const auto x = torch::zeros({0, 4}, torch::TensorOptions(kCuda).requires_grad(true));
  const auto y = torch::zeros({0}, torch::TensorOptions(kCuda).dtype(torch::kLong));
  auto c = torch::randn({3, 4}, kCuda);
  const auto before = c.clone();
  auto loss = centerloss::center_loss(x, y, c);
  EXPECT_EQ(loss.item<float>(), 0.0f);
  loss.backward();
  EXPECT_EQ(x.grad().sizes(), x.sizes());
  EXPECT_EQ(centerloss::center_loss(x, y, c, 0.0, centerloss::Reduction::None).numel(), 0);
  EXPECT_TRUE(centerloss::update_centers_(c, x.detach(), y).item<bool>());
  EXPECT_TRUE(torch::equal(c, before));
}

TEST(CudaEdgeCases, NonFiniteFeaturesLeaveCentersUnchanged) {
  SKIP_WITHOUT_CUDA();
  for (const int64_t n : {8, 2000, 5000}) {
    for (const double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
      for (const auto dtype : {torch::kFloat, torch::kHalf, torch::kDouble}) {
        torch::manual_seed(n);
        auto x = torch::randn({n, 16}, torch::TensorOptions(kCuda).dtype(dtype));
        x[n - 1][15] = bad;  // the very last element: the last checker's slice
        const auto y = torch::randint(4, {n}, torch::TensorOptions(kCuda).dtype(torch::kLong));
        auto c = torch::randn({4, 16}, kCuda);
        const auto before = c.clone();
        const auto applied = centerloss::update_centers_(c, x, y);
        EXPECT_EQ(applied.device(), c.device());  // the verdict stays on the device
        EXPECT_FALSE(applied.item<bool>());
        EXPECT_TRUE(torch::equal(c, before));
        EXPECT_FALSE(std::isfinite(centerloss::center_loss(x, y, c).item<float>()));
      }
    }
  }
}

TEST(CudaEdgeCases, BadLabelsThrowAndLeaveCentersUnchanged) {
  SKIP_WITHOUT_CUDA();
  const auto x = torch::randn({6, 3}, kCuda);
  auto c = torch::randn({4, 3}, kCuda);
  const auto before = c.clone();
  for (const int64_t bad : {-1, 4, 100}) {
    auto y = torch::tensor({0, 1, 2, 3, 0, 1}, torch::kLong);
    y[4] = bad;
    EXPECT_THROW(centerloss::update_centers_(c, x, y.to(kCuda)), c10::Error);
    EXPECT_THROW(centerloss::center_loss(x, y.to(kCuda), c), c10::Error);
    EXPECT_TRUE(torch::equal(c, before));
  }
}

// The module's step skips the host label check (the forward has just done it, fused into its
// kernel): a bad label must still raise in forward and leave the state as it was, and the
// device-side guard of the step must count a NaN batch without a sync.
TEST(CudaModule, ForwardChecksLabelsAndStepMatchesUpdateCenters) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(5);
  centerloss::CenterLoss module(
      centerloss::CenterLossOptions(10, 8).alpha(0.4).init(centerloss::Init::Normal));
  module->to(torch::kCUDA);
  const auto x = torch::randn({300, 8}, kCuda);
  auto y = torch::randint(10, {300}, torch::TensorOptions(kCuda).dtype(torch::kLong));
  auto expected = module->centers().clone();
  module->forward(x, y);
  centerloss::update_centers_(expected, x, y, 0.4);
  EXPECT_TRUE(torch::equal(module->centers(), expected));
  EXPECT_EQ(module->skipped_updates(), 0);

  const auto before = module->centers().clone();
  auto bad = y.clone();
  bad[257] = 10;
  try {
    module->forward(x, bad);
    ADD_FAILURE() << "label 10 accepted";
  } catch (const c10::Error& err) {
    EXPECT_NE(std::string(err.what()).find("found label 10 at position 257"), std::string::npos)
        << err.what();
  }
  EXPECT_TRUE(torch::equal(module->centers(), before));
  auto x_nan = x.clone();
  x_nan[299][7] = std::numeric_limits<float>::quiet_NaN();
  module->forward(x_nan, y);
  EXPECT_TRUE(torch::equal(module->centers(), before));
  EXPECT_EQ(module->skipped_updates(), 1);
}

TEST(CudaEdgeCases, NonContiguousInputsMatchContiguous) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(11);
  const auto x = torch::randn({40, 96}, kCuda).t();                       // [96, 40], strided
  const auto y = torch::randint(7, {192}, torch::TensorOptions(kCuda).dtype(torch::kLong))
                     .slice(0, 0, 192, 2);                                // [96], stride 2
  const auto c = torch::randn({40, 7}, kCuda).t();                        // [7, 40], strided
  ASSERT_FALSE(x.is_contiguous());
  ASSERT_FALSE(y.is_contiguous());
  ASSERT_FALSE(c.is_contiguous());
  EXPECT_TRUE(torch::allclose(centerloss::center_loss(x, y, c, 0.3),
                              centerloss::center_loss(x.contiguous(), y.contiguous(),
                                                      c.contiguous(), 0.3)));
  auto strided = torch::randn({40, 7}, kCuda).t();
  auto dense = strided.contiguous();
  centerloss::update_centers_(strided, x, y, 0.5, centerloss::UpdateRule::Mean);
  centerloss::update_centers_(dense, x.contiguous(), y.contiguous(), 0.5,
                              centerloss::UpdateRule::Mean);
  EXPECT_TRUE(torch::equal(strided, dense));
  // int32 labels are accepted and converted.
  EXPECT_TRUE(torch::allclose(centerloss::center_loss(x, y.to(torch::kInt), c),
                              centerloss::center_loss(x, y, c)));
}

// Deterministic mode: bitwise equal results from two runs, including the loss scalar.
TEST(CudaDeterminism, BitwiseEqualAcrossRuns) {
  SKIP_WITHOUT_CUDA();
  for (const Case shape : {Case{512, 512, 10}, Case{3000, 64, 1000}, Case{6000, 32, 20}}) {
    SCOPED_TRACE(case_name(shape));
    torch::manual_seed(5);
    const auto x = torch::randn({shape.n, shape.d}, kCuda);
    const auto y = torch::randint(shape.k, {shape.n}, torch::TensorOptions(kCuda).dtype(torch::kLong));
    const auto c = torch::randn({shape.k, shape.d}, kCuda);
    with_deterministic(true, [&] {
      auto run = [&] {
        auto xg = x.clone().requires_grad_(true);
        auto loss = centerloss::center_loss(xg, y, c, 0.1);
        loss.backward();
        auto moved = c.clone();
        centerloss::update_centers_(moved, x, y);
        return std::make_tuple(loss, xg.grad(), moved);
      };
      const auto [l1, g1, c1] = run();
      const auto [l2, g2, c2] = run();
      EXPECT_TRUE(torch::equal(l1, l2));
      EXPECT_TRUE(torch::equal(g1, g2));
      EXPECT_TRUE(torch::equal(c1, c2));
    });
  }
}

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
// NaN loss, no center step and one skipped update. tests/python/test_cuda_graphs.py covers
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
