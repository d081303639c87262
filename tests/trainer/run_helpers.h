// Helpers shared by the training tests: quiet run options and a bitwise state comparison.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "train/checkpoint.h"
#include "train/trainer.h"

// Two epochs of the small net on the first 256 Fashion-MNIST training samples.
inline centerloss::trainer::TrainConfig tiny_config() {
  centerloss::trainer::TrainConfig c;
  c.arch = centerloss::trainer::Arch::Small;
  c.classes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  c.train_limit = 256;
  c.test_limit = 100;
  c.batch_size = 64;
  c.epochs = 2;
  c.lr = 0.05;
  c.lambda = 0.01;
  c.threads = 2;
  return c;
}

// A run into `dir` with no progress bar and no end-of-run outputs (features, figures, report).
inline centerloss::trainer::RunOptions quiet(const std::string& dir) {
  centerloss::trainer::RunOptions o;
  o.out_dir = dir;
  o.progress = false;
  o.outputs = false;
  return o;
}

// Every parameter of model and the centers, bitwise, and the epoch.
inline void expect_same_state(centerloss::trainer::TrainState& a, centerloss::trainer::TrainState& b) {
  const auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  EXPECT_TRUE(torch::equal(a.center_loss->centers(), b.center_loss->centers()));
  EXPECT_EQ(a.epoch, b.epoch);
}
