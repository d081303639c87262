// centerloss::CenterLoss (the LibTorch module): update timing, state, NaN guard, bad input; its
// training step on every device (tests/cpp/devices.h).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>

#include "centerloss/center_loss.h"
#include "centerloss/ops.h"
#include "devices.h"

namespace {

using centerloss::CenterLoss;
using centerloss::CenterLossOptions;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("centerloss_test_" + name)).string();
}

TEST(Module, ForwardReturnsLossOfOldCentersThenSteps) {
  CenterLoss m(CenterLossOptions(3, 1).alpha(0.5));
  {
    torch::NoGradGuard g;
    const_cast<torch::Tensor&>(m->centers()).copy_(torch::tensor({{0.0}, {10.0}, {5.0}}));
  }
  auto x = torch::tensor({{1.0f}, {8.0f}, {3.0f}}).requires_grad_(true);
  const auto y = torch::tensor({0, 1, 0});
  auto loss = m->forward(x, y);
  EXPECT_NEAR(loss.item<double>(), 7.0 / 3.0, 1e-6);
  EXPECT_TRUE(torch::allclose(m->centers(), torch::tensor({{2.0f / 3.0f}, {9.5f}, {5.0f}})));
  loss.backward();
  EXPECT_TRUE(torch::allclose(x.grad(), torch::tensor({{1.0f}, {-2.0f}, {3.0f}}) / 3));
}

TEST(Module, EvalModeNeverMovesCenters) {
  CenterLoss m(CenterLossOptions(4, 2).init(centerloss::Init::Normal));
  m->eval();
  const auto before = m->centers().clone();
  m->forward(torch::randn({8, 2}), torch::randint(4, {8}, torch::kLong));
  EXPECT_TRUE(torch::equal(m->centers(), before));
}

TEST(Module, NanBatchSkipsEveryCenterAndCounts) {
  CenterLoss m(CenterLossOptions(4, 3).init(centerloss::Init::Normal));
  const auto before = m->centers().clone();
  auto x = torch::randn({6, 3});
  x[2][1] = std::numeric_limits<float>::quiet_NaN();
  const auto loss = m->forward(x, torch::tensor({0, 1, 2, 3, 0, 1}));
  EXPECT_FALSE(std::isfinite(loss.item<float>()));
  EXPECT_TRUE(torch::equal(m->centers(), before));
  EXPECT_EQ(m->skipped_updates(), 1);
  EXPECT_FALSE(m->update_centers(x, torch::tensor({0, 1, 2, 3, 0, 1})));
  EXPECT_EQ(m->skipped_updates(), 2);
}

TEST(Module, BadLabelsThrowAndChangeNothing) {
  CenterLoss m(CenterLossOptions(4, 3).init(centerloss::Init::FirstSight));
  const auto before = m->centers().clone();
  try {
    m->forward(torch::randn({3, 3}), torch::tensor({0, 4, 1}));
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("found label 4 at position 1"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(torch::equal(m->centers(), before));
  EXPECT_EQ(m->skipped_updates(), 0);
}

TEST(Module, InvalidOptionsNameTheOption) {
  EXPECT_THROW(CenterLoss(CenterLossOptions(0, 2)), c10::Error);
  EXPECT_THROW(CenterLoss(CenterLossOptions(2, 0)), c10::Error);
  EXPECT_THROW(CenterLoss(CenterLossOptions(2, 2).alpha(0.0)), c10::Error);
  EXPECT_THROW(CenterLoss(CenterLossOptions(2, 2).alpha(1.01)), c10::Error);
  EXPECT_THROW(CenterLoss(CenterLossOptions(2, 2).margin(-1.0)), c10::Error);
  try {
    CenterLoss(CenterLossOptions(2, 2).alpha(2.0));
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("alpha must be in (0, 1]"), std::string::npos);
  }
}

TEST(Module, SaveLoadRoundTripResumesExactly) {
  CenterLoss a(CenterLossOptions(10, 4).init(centerloss::Init::FirstSight));
  torch::manual_seed(1);
  for (int step = 0; step < 3; ++step) {
    a->forward(torch::randn({16, 4}), torch::randint(10, {16}, torch::kLong));
  }
  auto nan_batch = torch::full({2, 4}, std::numeric_limits<float>::infinity());
  a->forward(nan_batch, torch::tensor({0, 1}));
  const auto path = temp_path("roundtrip.pt");
  torch::save(a, path);
  CenterLoss b(CenterLossOptions(10, 4).init(centerloss::Init::FirstSight));
  torch::load(b, path);
  std::remove(path.c_str());
  EXPECT_TRUE(torch::equal(a->centers(), b->centers()));
  EXPECT_EQ(b->skipped_updates(), 1);
  const auto x = torch::randn({8, 4});
  const auto y = torch::randint(10, {8}, torch::kLong);
  EXPECT_TRUE(torch::equal(a->forward(x, y), b->forward(x, y)));
  EXPECT_TRUE(torch::equal(a->centers(), b->centers()));
}

TEST(Module, LoadingWrongShapeNamesBothShapesAndKeepsState) {
  CenterLoss small(CenterLossOptions(10, 4));
  const auto path = temp_path("wrong_shape.pt");
  torch::save(small, path);
  CenterLoss big(CenterLossOptions(12, 4).init(centerloss::Init::Normal));
  const auto before = big->centers().clone();
  try {
    torch::load(big, path);
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("[10, 4]"), std::string::npos) << what;
    EXPECT_NE(what.find("[12, 4]"), std::string::npos) << what;
  }
  std::remove(path.c_str());
  EXPECT_TRUE(torch::equal(big->centers(), before));
}

TEST(Module, GradientRuleUsesOptimizer) {
  CenterLoss m(CenterLossOptions(3, 1).update(centerloss::UpdateRule::Gradient));
  ASSERT_EQ(m->parameters().size(), 1u);
  torch::optim::SGD opt(m->parameters(), torch::optim::SGDOptions(0.5));
  const auto x = torch::tensor({{1.0f}, {8.0f}, {3.0f}});
  const auto y = torch::tensor({0, 1, 0});
  auto loss = m->forward(x, y);
  EXPECT_TRUE(torch::equal(m->centers(), torch::zeros({3, 1})));
  loss.backward();
  // dL/dc_j = -1/N * sum_{y_i=j} (x_i - c_j)
  EXPECT_TRUE(torch::allclose(m->centers().grad(), torch::tensor({{-4.0f / 3}, {-8.0f / 3}, {0.0f}})));
  opt.step();
  EXPECT_TRUE(torch::allclose(m->centers(), torch::tensor({{2.0f / 3}, {4.0f / 3}, {0.0f}})));
  EXPECT_THROW(m->update_centers(x, y), c10::Error);
}

TEST(Module, FirstSightStartsAtBatchMean) {
  CenterLoss m(CenterLossOptions(3, 1).init(centerloss::Init::FirstSight));
  const auto loss = m->forward(torch::tensor({{1.0f}, {8.0f}, {3.0f}}), torch::tensor({0, 1, 0}));
  EXPECT_NEAR(loss.item<double>(), 1.0 / 3.0, 1e-6);
  EXPECT_TRUE(torch::allclose(m->centers(), torch::tensor({{2.0f}, {8.0f}, {0.0f}})));
}

}  // namespace

// net->to(dtype) reaches every submodule: the module must stay usable. Centers follow float32
// and float64 only; the counter stays int64 and seen bool.
TEST(Module, ToDtypeConvertsOnlyTheCentersAndKeepsTraining) {
  for (const auto init : {centerloss::Init::Zeros, centerloss::Init::FirstSight}) {
    centerloss::CenterLoss m(centerloss::CenterLossOptions(4, 3).init(init));
    torch::nn::Sequential net(torch::nn::Linear(3, 3));
    net->register_module("center_loss", m.ptr());
    net->to(torch::kDouble);
    EXPECT_EQ(m->centers().scalar_type(), torch::kDouble);
    EXPECT_EQ(m->named_buffers()["skipped_updates"].scalar_type(), torch::kLong);
    if (init == centerloss::Init::FirstSight) {
      EXPECT_EQ(m->named_buffers()["seen"].scalar_type(), torch::kBool);
    }
    const auto x = torch::randn({6, 3}, torch::kDouble);
    const auto y = torch::tensor({0, 1, 2, 0, 1, 3});
    const auto loss = m->forward(x, y);
    EXPECT_EQ(loss.scalar_type(), torch::kDouble);
    EXPECT_EQ(m->skipped_updates(), 0);
    net->to(torch::kHalf);  // centers stay float64 (never half); half features still work
    EXPECT_EQ(m->centers().scalar_type(), torch::kDouble);
    m->forward(x.to(torch::kHalf), y);
    net->to(torch::kFloat);
    EXPECT_EQ(m->centers().scalar_type(), torch::kFloat);
    m->forward(x.to(torch::kBFloat16), y);
    EXPECT_EQ(m->skipped_updates(), 0);
  }
}

TEST(Module, InfiniteInitStdIsRefused) {
  try {
    centerloss::CenterLoss m(centerloss::CenterLossOptions(2, 2)
                                 .init(centerloss::Init::Normal)
                                 .init_std(std::numeric_limits<double>::infinity()));
    FAIL() << "init_std = inf was accepted";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("init_std must be a finite number > 0"),
              std::string::npos);
  }
}

namespace {

class ModuleOnDevice : public centerloss::testing::OnDevice {};

INSTANTIATE_TEST_SUITE_P(Devices, ModuleOnDevice, centerloss::testing::kEveryDevice,
                         centerloss::testing::device_test_name);

// The module's step skips the host label check (the forward has just done it, fused into its
// kernel on CUDA): a bad label must still raise in forward and leave the state as it was, and
// the step's guard must count a NaN batch (on CUDA without a sync).
TEST_P(ModuleOnDevice, ForwardChecksLabelsAndStepMatchesUpdateCenters) {
  torch::manual_seed(5);
  centerloss::CenterLoss module(
      centerloss::CenterLossOptions(10, 8).alpha(0.4).init(centerloss::Init::Normal));
  module->to(device());
  const auto x = torch::randn({300, 8}, on_device());
  auto y = torch::randint(10, {300}, on_device(torch::kLong));
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

}  // namespace
