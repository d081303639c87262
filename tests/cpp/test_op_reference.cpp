// The registered op, called from C++, against the ATen reference on seeded random cases.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tuple>

#include "centerloss/ops.h"
#include "reference.h"

using centerloss::testing::reference_loss;
using centerloss::testing::reference_update;

namespace {

struct Case {
  int64_t n, d, k;
};

class OpReference : public ::testing::TestWithParam<std::tuple<Case, torch::ScalarType>> {};

TEST_P(OpReference, LossGradientAndUpdateMatchReference) {
  const auto [shape, dtype] = GetParam();
  torch::manual_seed(shape.n * 131 + shape.d * 17 + shape.k);
  const auto x64 = torch::randn({shape.n, shape.d}, torch::kDouble);
  const auto features = x64.to(dtype);
  const auto labels = torch::randint(shape.k, {shape.n}, torch::kLong);
  const auto centers = torch::randn({shape.k, shape.d});
  const double grad_tol = dtype == torch::kBFloat16 ? 1.6e-2 : dtype == torch::kHalf ? 2e-3 : 1e-6;
  for (const double margin : {0.0, 0.5}) {
    for (const int64_t reduction : {0, 1, 2}) {
      auto x = features.clone().requires_grad_(true);
      auto loss = centerloss::center_loss(x, labels, centers, margin,
                                          static_cast<centerloss::Reduction>(reduction));
      auto x_ref = features.to(torch::kDouble).clone().requires_grad_(true);
      auto want = reference_loss(x_ref, labels, centers.to(torch::kDouble), margin, reduction);
      EXPECT_TRUE(torch::allclose(loss.to(torch::kDouble), want, 1e-5, 1e-6))
          << "margin " << margin << " reduction " << reduction;
      loss.sum().backward();
      want.sum().backward();
      ASSERT_EQ(x.grad().scalar_type(), dtype);
      const double scale = std::max(x_ref.grad().abs().max().item<double>(), 1e-30);
      EXPECT_LE((x.grad().to(torch::kDouble) - x_ref.grad()).abs().max().item<double>(),
                grad_tol * scale);
    }
  }
  for (const bool paper : {true, false}) {
    auto got = centers.clone();
    const auto applied = centerloss::update_centers_(
        got, features, labels, 0.4, paper ? centerloss::UpdateRule::Paper : centerloss::UpdateRule::Mean);
    EXPECT_TRUE(applied.item<bool>());
    const auto want = reference_update(centers.to(torch::kDouble), features.to(torch::kDouble),
                                       labels, 0.4, paper);
    EXPECT_TRUE(torch::allclose(got.to(torch::kDouble), want, 1e-5, 1e-5));
  }
}

INSTANTIATE_TEST_SUITE_P(
    ShapesAndDtypes, OpReference,
    ::testing::Combine(::testing::Values(Case{1, 1, 1}, Case{9, 3, 4}, Case{256, 2, 10},
                                         Case{700, 64, 1000}, Case{2000, 512, 7},
                                         Case{1500, 8, 100000}),
                       ::testing::Values(torch::kFloat, torch::kDouble, torch::kHalf,
                                         torch::kBFloat16)),
    [](const auto& info) {
      const Case& c = std::get<0>(info.param);
      return "N" + std::to_string(c.n) + "_D" + std::to_string(c.d) + "_K" + std::to_string(c.k) +
             "_" + std::string(c10::toString(std::get<1>(info.param)));
    });

TEST(OpReference, HandWorkedPaperStep) {
  auto centers = torch::tensor({{0.0}, {10.0}, {5.0}});
  const auto x = torch::tensor({{1.0}, {8.0}, {3.0}});
  const auto y = torch::tensor({0, 1, 0});
  centerloss::update_centers_(centers, x, y, 0.5, centerloss::UpdateRule::Paper);
  // c0 -= 0.5 * ((0-1)+(0-3))/3, c1 -= 0.5 * (10-8)/2, c2 absent
  EXPECT_TRUE(torch::allclose(centers, torch::tensor({{2.0 / 3.0}, {9.5}, {5.0}})));
}

TEST(OpReference, GradcheckFloat64) {
  torch::manual_seed(3);
  auto x = torch::randn({10, 4}, torch::TensorOptions().dtype(torch::kDouble).requires_grad(true));
  auto c = torch::randn({3, 4}, torch::TensorOptions().dtype(torch::kDouble).requires_grad(true));
  const auto y = torch::randint(3, {10}, torch::kLong);
  // Central differences against the analytic gradient, for features and centers.
  auto loss = centerloss::center_loss(x, y, c, 0.3, centerloss::Reduction::Mean);
  loss.backward();
  const double eps = 1e-6;
  for (auto* t : {&x, &c}) {
    auto flat = t->detach().view(-1);
    const auto grad = t->grad().view(-1);
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

TEST(OpReference, EmptyBatch) {
  auto centers = torch::randn({4, 3});
  const auto before = centers.clone();
  auto x = torch::zeros({0, 3}, torch::requires_grad());
  const auto y = torch::zeros({0}, torch::kLong);
  auto loss = centerloss::center_loss(x, y, centers);
  EXPECT_EQ(loss.item<float>(), 0.0f);
  loss.backward();
  EXPECT_EQ(x.grad().sizes(), x.sizes());
  EXPECT_TRUE(centerloss::update_centers_(centers, x.detach(), y).item<bool>());
  EXPECT_TRUE(torch::equal(centers, before));
}

TEST(OpReference, NonContiguousInputs) {
  torch::manual_seed(5);
  const auto x = torch::randn({40, 6});
  const auto y = torch::randint(5, {40}, torch::kLong);
  const auto c = torch::randn({5, 6});
  const auto xs = x.t().contiguous().t();
  const auto ys = torch::stack({y, y}, 1).select(1, 0);
  ASSERT_FALSE(xs.is_contiguous());
  ASSERT_FALSE(ys.is_contiguous());
  EXPECT_TRUE(torch::equal(centerloss::center_loss(xs, ys, c), centerloss::center_loss(x, y, c)));
  auto a = c.clone();
  auto b = c.t().contiguous().t();
  centerloss::update_centers_(a, x, y);
  centerloss::update_centers_(b, xs, ys);
  EXPECT_TRUE(torch::equal(a, b));
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
