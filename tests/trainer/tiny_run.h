// The tiny real run the trainer tests share: the small net on the first 256 Fashion-MNIST
// training samples (4 steps of 64 an epoch), and run options without output or progress.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "train/trainer.h"

namespace centerloss::trainer::tiny {

inline TrainConfig tiny_config() {
  TrainConfig c;
  c.arch = Arch::Small;
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

// No progress bar, no figures or report, checkpoints at epoch ends only.
inline RunOptions quiet(const std::string& dir, StartMode start = StartMode::New) {
  RunOptions o;
  o.out_dir = dir;
  o.start = start;
  o.progress = false;
  o.outputs = false;
  o.checkpoint_every = CheckpointEvery{0, 0};
  return o;
}

// Every parameter of the model, the centers and the epoch, bitwise.
inline void expect_same_state(TrainState& a, TrainState& b) {
  const auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  EXPECT_TRUE(torch::equal(a.center_loss->centers(), b.center_loss->centers()));
  EXPECT_EQ(a.epoch, b.epoch);
}

}  // namespace centerloss::trainer::tiny
