// The registered op, called from C++, against the ATen reference on seeded random cases, on every
// device (tests/cpp/devices.h); on CUDA also against the CPU op, with the shapes that pick the
// CUDA code paths (one-block sort up to 1024 and 4096 rows, device-wide sort above).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "centerloss/ops.h"
#include "devices.h"
#include "reference.h"

using centerloss::testing::device_name;
using centerloss::testing::device_of;
using centerloss::testing::device_test_name;
using centerloss::testing::kEveryDevice;
using centerloss::testing::OnDevice;
using centerloss::testing::reference_loss;
using centerloss::testing::reference_update;

namespace {

struct Case {
  int64_t n, d, k;
};

// How GoogleTest (and so CTest's listing) shows a case.
void PrintTo(const Case& c, std::ostream* os) { *os << "N" << c.n << " D" << c.d << " K" << c.k; }

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

using ParityCase = std::tuple<torch::DeviceType, Case, torch::ScalarType>;

// Every device gets the CPU cases; CUDA also the shapes of its other sort paths.
std::vector<ParityCase> parity_cases() {
  const std::vector<Case> shapes = {Case{1, 1, 1},       Case{9, 3, 4},      Case{256, 2, 10},
                                    Case{700, 64, 1000}, Case{2000, 512, 7}, Case{1500, 8, 100000}};
  const std::vector<Case> cuda_shapes = {Case{4096, 33, 50}, Case{5000, 17, 300}};
  std::vector<ParityCase> cases;
  for (const auto device : {torch::kCPU, torch::kCUDA}) {
    auto device_shapes = shapes;
    if (device == torch::kCUDA) device_shapes.insert(device_shapes.end(), cuda_shapes.begin(), cuda_shapes.end());
    for (const Case& shape : device_shapes) {
      for (const auto dtype : {torch::kFloat, torch::kDouble, torch::kHalf, torch::kBFloat16}) {
        cases.emplace_back(device, shape, dtype);
      }
    }
  }
  return cases;
}

class OpReference : public ::testing::TestWithParam<ParityCase> {
 protected:
  void SetUp() override { CENTERLOSS_SKIP_UNLESS_AVAILABLE(std::get<0>(GetParam())); }
};

// One shape and feature dtype: loss and gradient for every margin and reduction, both update
// rules, against the reference. CUDA also: float64 centers, both deterministic modes (its center
// sums differ between them), and parity with the CPU op.
TEST_P(OpReference, LossGradientAndUpdateMatchReference) {
  const auto [type, shape, dtype] = GetParam();
  const auto device = device_of(type);
  const bool on_cpu = type == torch::kCPU;
  // Half types carry ~3 significant digits; CUDA sums in another order.
  const double grad_tol = dtype == torch::kBFloat16 ? 1.6e-2
                          : dtype == torch::kHalf   ? 2e-3
                          : on_cpu                  ? 1e-6
                                                    : 1e-5;
  const std::vector<torch::ScalarType> center_dtypes =
      on_cpu ? std::vector{torch::kFloat} : std::vector{torch::kFloat, torch::kDouble};
  const std::vector<bool> deterministic_modes = on_cpu ? std::vector{false} : std::vector{true, false};
  for (const auto center_dtype : center_dtypes) {
    SCOPED_TRACE(std::string("centers ") + c10::toString(center_dtype));
    torch::manual_seed(shape.n * 131 + shape.d * 17 + shape.k);
    const auto features = torch::randn({shape.n, shape.d}, torch::kDouble).to(dtype);
    const auto labels = torch::randint(shape.k, {shape.n}, torch::kLong);
    const auto centers = torch::randn({shape.k, shape.d}, center_dtype);
    for (const double margin : {0.0, 0.5}) {
      for (const int64_t reduction : {0, 1, 2}) {
        SCOPED_TRACE("margin " + std::to_string(margin) + " reduction " + std::to_string(reduction));
        const auto red = static_cast<centerloss::Reduction>(reduction);
        auto x = features.clone().to(device).requires_grad_(true);
        auto loss = centerloss::center_loss(x, labels.to(device), centers.to(device), margin, red);
        auto x_ref = features.to(torch::kDouble).clone().requires_grad_(true);
        auto want = reference_loss(x_ref, labels, centers.to(torch::kDouble), margin, reduction);
        EXPECT_TRUE(torch::allclose(loss.cpu().to(torch::kDouble), want, 1e-5, 1e-6));
        // A non-uniform incoming gradient for "none" exercises the per-sample path of backward.
        const auto weight =
            reduction == 0 ? torch::rand({shape.n}, torch::kDouble) : torch::ones({}, torch::kDouble);
        (loss * weight.to(device).to(loss.scalar_type())).sum().backward();
        (want * weight).sum().backward();
        ASSERT_EQ(x.grad().scalar_type(), dtype);
        const double scale = std::max(x_ref.grad().abs().max().item<double>(), 1e-30);
        EXPECT_LE(max_abs_diff(x.grad(), x_ref.grad()), grad_tol * scale);
        if (!on_cpu) {  // parity with the CPU op
          auto x_cpu = features.clone().requires_grad_(true);
          auto loss_cpu = centerloss::center_loss(x_cpu, labels, centers, margin, red);
          ASSERT_EQ(loss.scalar_type(), loss_cpu.scalar_type());
          ASSERT_EQ(loss.sizes(), loss_cpu.sizes());
          EXPECT_TRUE(torch::allclose(loss.detach().cpu(), loss_cpu.detach(), 1e-5, 1e-6));
          (loss_cpu * weight.to(loss_cpu.scalar_type())).sum().backward();
          EXPECT_LE(max_abs_diff(x.grad(), x_cpu.grad()), grad_tol * scale);
        }
      }
    }
    for (const bool paper : {true, false}) {
      for (const bool deterministic : deterministic_modes) {
        SCOPED_TRACE(std::string(paper ? "paper" : "mean") + (deterministic ? " det" : " default"));
        auto got = centers.clone().to(device);
        with_deterministic(deterministic, [&] {
          const auto applied = centerloss::update_centers_(got, features.to(device),
                                                           labels.to(device), 0.4, rule_of(paper));
          EXPECT_EQ(applied.device(), got.device());  // the verdict stays on the device
          EXPECT_TRUE(applied.item<bool>());
        });
        const auto want = reference_update(centers.to(torch::kDouble),
                                           features.to(torch::kDouble), labels, 0.4, paper);
        const double tol = center_dtype == torch::kDouble ? 1e-10 : 1e-5;
        EXPECT_TRUE(torch::allclose(got.cpu().to(torch::kDouble), want, tol, tol));
        if (!on_cpu) {
          auto cpu = centers.clone();
          centerloss::update_centers_(cpu, features, labels, 0.4, rule_of(paper));
          EXPECT_TRUE(torch::allclose(got.cpu(), cpu, tol, tol));
        }
      }
    }
  }
}

std::string parity_case_name(const ::testing::TestParamInfo<ParityCase>& info) {
  const auto& [type, c, dtype] = info.param;
  return device_name(type) + "_N" + std::to_string(c.n) + "_D" + std::to_string(c.d) + "_K" +
         std::to_string(c.k) + "_" + std::string(c10::toString(dtype));
}

INSTANTIATE_TEST_SUITE_P(ShapesAndDtypes, OpReference, ::testing::ValuesIn(parity_cases()),
                         parity_case_name);

class OpOnDevice : public OnDevice {};

INSTANTIATE_TEST_SUITE_P(Devices, OpOnDevice, kEveryDevice, device_test_name);

TEST_P(OpOnDevice, HandWorkedPaperStep) {
  auto centers = torch::tensor({{0.0}, {10.0}, {5.0}}).to(device());
  const auto x = torch::tensor({{1.0}, {8.0}, {3.0}}).to(device());
  const auto y = torch::tensor({0, 1, 0}).to(device());
  centerloss::update_centers_(centers, x, y, 0.5, centerloss::UpdateRule::Paper);
  // c0 -= 0.5 * ((0-1)+(0-3))/3, c1 -= 0.5 * (10-8)/2, c2 absent
  EXPECT_TRUE(torch::allclose(centers.cpu(), torch::tensor({{2.0 / 3.0}, {9.5}, {5.0}})));
}

TEST_P(OpOnDevice, GradcheckFloat64) {
  torch::manual_seed(3);
  auto x = torch::randn({10, 4}, torch::kDouble).to(device()).requires_grad_(true);
  auto c = torch::randn({3, 4}, torch::kDouble).to(device()).requires_grad_(true);
  const auto y = torch::randint(3, {10}, torch::kLong).to(device());
  // Central differences against the analytic gradient, for features and centers.
  auto loss = centerloss::center_loss(x, y, c, 0.3, centerloss::Reduction::Mean);
  loss.backward();
  const double eps = 1e-6;
  for (auto* t : {&x, &c}) {
    auto flat = t->detach().view(-1);
    const auto grad = t->grad().view(-1).cpu();
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double orig = flat[i].item<double>();
      flat[i] = orig + eps;
      const double up = centerloss::center_loss(x.detach(), y, c.detach(), 0.3,
                                                centerloss::Reduction::Mean).item<double>();
      flat[i] = orig - eps;
      const double down = centerloss::center_loss(x.detach(), y, c.detach(), 0.3,
                                                  centerloss::Reduction::Mean).item<double>();
      flat[i] = orig;
      EXPECT_NEAR(grad[i].item<double>(), (up - down) / (2 * eps), 1e-7) << "element " << i;
    }
  }
}

TEST_P(OpOnDevice, EmptyBatch) {
  auto centers = torch::randn({4, 3}).to(device());
  const auto before = centers.clone();
  auto x = torch::zeros({0, 3}, on_device().requires_grad(true));
  const auto y = torch::zeros({0}, on_device(torch::kLong));
  auto loss = centerloss::center_loss(x, y, centers);
  EXPECT_EQ(loss.item<float>(), 0.0f);
  loss.backward();
  EXPECT_EQ(x.grad().sizes(), x.sizes());
  EXPECT_EQ(centerloss::center_loss(x, y, centers, 0.0, centerloss::Reduction::None).numel(), 0);
  EXPECT_TRUE(centerloss::update_centers_(centers, x.detach(), y).item<bool>());
  EXPECT_TRUE(torch::equal(centers, before));
}

// Column-major features and centers and strided labels give the contiguous inputs' bits; int32
// labels the int64 labels' bits.
TEST_P(OpOnDevice, NonContiguousInputs) {
  torch::manual_seed(5);
  const auto x = torch::randn({40, 6}).to(device());
  const auto y = torch::randint(5, {40}, torch::kLong).to(device());
  const auto c = torch::randn({5, 6}).to(device());
  const auto xs = x.t().contiguous().t();
  const auto ys = torch::stack({y, y}, 1).select(1, 0);
  const auto cs = c.t().contiguous().t();
  ASSERT_FALSE(xs.is_contiguous());
  ASSERT_FALSE(ys.is_contiguous());
  ASSERT_FALSE(cs.is_contiguous());
  for (const double margin : {0.0, 0.3}) {
    EXPECT_TRUE(torch::equal(centerloss::center_loss(xs, ys, cs, margin),
                             centerloss::center_loss(x, y, c, margin)));
  }
  EXPECT_TRUE(torch::equal(centerloss::center_loss(x, y.to(torch::kInt), c),
                           centerloss::center_loss(x, y, c)));
  for (const bool paper : {true, false}) {
    auto a = c.clone();
    auto b = c.t().contiguous().t();
    centerloss::update_centers_(a, x, y, 0.5, rule_of(paper));
    centerloss::update_centers_(b, xs, ys, 0.5, rule_of(paper));
    EXPECT_FALSE(b.is_contiguous());
    EXPECT_TRUE(torch::equal(a, b));
  }
}

// One label for the whole batch (the longest class segment), K = 1 and D = 1, at sizes that
// take each CUDA sort path.
TEST_P(OpOnDevice, OneRepeatedLabel) {
  for (const int64_t n : {1, 300, 4096, 6000}) {
    for (const int64_t k : {1, 5}) {
      SCOPED_TRACE("N " + std::to_string(n) + " K " + std::to_string(k));
      torch::manual_seed(n + k);
      const auto x = torch::randn({n, 1});
      const auto y = torch::full({n}, k - 1, torch::kLong);
      const auto c = torch::randn({k, 1});
      auto got = c.clone().to(device());
      centerloss::update_centers_(got, x.to(device()), y.to(device()), 0.5,
                                  centerloss::UpdateRule::Paper);
      const auto want = reference_update(c.to(torch::kDouble), x.to(torch::kDouble), y, 0.5, true);
      EXPECT_TRUE(torch::allclose(got.cpu().to(torch::kDouble), want, 1e-5, 1e-5));
      const auto loss = centerloss::center_loss(x.to(device()), y.to(device()), c.to(device()));
      EXPECT_TRUE(torch::allclose(loss.cpu().to(torch::kDouble),
                                  reference_loss(x.to(torch::kDouble), y, c.to(torch::kDouble), 0, 1),
                                  1e-5, 1e-6));
    }
  }
}

TEST_P(OpOnDevice, NonFiniteFeaturesLeaveCentersUnchanged) {
  for (const int64_t n : {8, 2000, 5000}) {
    for (const double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
      for (const auto dtype : {torch::kFloat, torch::kHalf, torch::kDouble}) {
        SCOPED_TRACE("N " + std::to_string(n) + " " + std::to_string(bad) + " " +
                     c10::toString(dtype));
        torch::manual_seed(n);
        auto x = torch::randn({n, 16}, on_device(dtype));
        x[n - 1][15] = bad;  // the very last element: on CUDA the last checker's slice
        const auto y = torch::randint(4, {n}, on_device(torch::kLong));
        auto c = torch::randn({4, 16}, on_device());
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

TEST_P(OpOnDevice, BadLabelsThrowAndLeaveCentersUnchanged) {
  const auto x = torch::randn({6, 3}, on_device());
  auto c = torch::randn({4, 3}, on_device());
  const auto before = c.clone();
  for (const int64_t bad : {-1, 4, 100}) {
    auto y = torch::tensor({0, 1, 2, 3, 0, 1}, torch::kLong);
    y[4] = bad;
    const std::string message = "found label " + std::to_string(bad) + " at position 4";
    for (const bool update : {true, false}) {
      try {
        if (update) {
          centerloss::update_centers_(c, x, y.to(device()));
        } else {
          centerloss::center_loss(x, y.to(device()), c);
        }
        ADD_FAILURE() << "label " << bad << " accepted";
      } catch (const c10::Error& err) {
        EXPECT_NE(std::string(err.what()).find(message), std::string::npos) << err.what();
      }
    }
    EXPECT_TRUE(torch::equal(c, before));
  }
}

// Deterministic mode: bitwise equal results from two runs, including the loss scalar.
TEST_P(OpOnDevice, DeterministicModeIsBitwiseRepeatable) {
  for (const Case shape : {Case{512, 512, 10}, Case{3000, 64, 1000}, Case{6000, 32, 20}}) {
    SCOPED_TRACE("N " + std::to_string(shape.n) + " D " + std::to_string(shape.d) + " K " +
                 std::to_string(shape.k));
    torch::manual_seed(5);
    const auto x = torch::randn({shape.n, shape.d}, on_device());
    const auto y = torch::randint(shape.k, {shape.n}, on_device(torch::kLong));
    const auto c = torch::randn({shape.k, shape.d}, on_device());
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

TEST(OpReference, BitwiseIdenticalAcrossThreadCounts) {
  torch::manual_seed(11);
  const auto x = torch::randn({4096, 96});
  const auto y = torch::randint(40, {4096}, torch::kLong);
  const auto c = torch::randn({40, 96});
  std::vector<std::vector<torch::Tensor>> runs;
  for (const int threads : {1, 2, 4}) {
    at::set_num_threads(threads);
    auto xr = x.clone().requires_grad_(true);
    auto loss = centerloss::center_loss(xr, y, c, 0.2);
    loss.backward();
    auto cr = c.clone();
    centerloss::update_centers_(cr, x, y);
    runs.push_back({loss.detach(), xr.grad(), cr});
  }
  at::set_num_threads(2);
  for (size_t r = 1; r < runs.size(); ++r) {
    for (size_t i = 0; i < runs[0].size(); ++i) EXPECT_TRUE(torch::equal(runs[0][i], runs[r][i]));
  }
}

}  // namespace
