#include <gtest/gtest.h>
#include <torch/torch.h>
#include "centerloss/center_loss.h"

TEST(Smoke, ForwardBackward) {
  auto x = torch::randn({4, 3}, torch::requires_grad());
  auto y = torch::tensor({0, 1, 1, 2});
  auto c = torch::randn({3, 3});
  auto loss = centerloss::center_loss(x, y, c);
  loss.backward();
  auto ref = 0.5 * (x - c.index_select(0, y)).pow(2).sum(1).mean();
  EXPECT_TRUE(torch::allclose(loss, ref));
}
