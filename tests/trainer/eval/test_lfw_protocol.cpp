// The 10-fold LFW protocol and its threshold choice, against cases worked by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "eval/lfw_protocol.h"

using namespace centerloss::eval;

TEST(BestThreshold, MidpointsAndTiesTakeTheLowest) {
  // Genuine 0.9 0.8 0.4, impostor 0.5 0.3 0.1. Candidates (midpoints) and their accuracy:
  // +inf 3/6, 0.85 4/6, 0.65 5/6, 0.45 4/6, 0.35 5/6, 0.2 4/6, 0.1 (lowest score) 3/6.
  // Best 5/6 at 0.65 and 0.35: the lower one is taken.
  const auto b =
      best_threshold({0.9, 0.8, 0.4, 0.5, 0.3, 0.1}, {true, true, true, false, false, false});
  EXPECT_DOUBLE_EQ(b.accuracy, 5.0 / 6);
  EXPECT_DOUBLE_EQ(b.threshold, (0.4 + 0.3) / 2);
}

// Ten folds of one genuine and one impostor pair: fold f has impostor score f and genuine
// score 10 + f, except fold 0 (genuine 5, an outlier) and fold 1 (genuine 9.6, just above
// every impostor).
//  - Fold 0 tested: training genuine 9.6, 12..19 over impostors 1..9: threshold (9.6+9)/2;
//    its genuine pair (5) is rejected: accuracy 1/2.
//  - Fold 1 tested: training genuine 5, 12..19, impostors up to 9: threshold (12+9)/2 = 10.5
//    (only the outlier wrong), which rejects fold 1's genuine pair (9.6): accuracy 1/2.
//  - Fold 9 tested: training impostors stop at 8: threshold (9.6+8)/2 = 8.8, which accepts
//    fold 9's impostor (9): accuracy 1/2.
//  - Folds 2..8: threshold (9.6+9)/2, both pairs right: accuracy 1.
// Mean 0.85; sample std sqrt((3 * 0.35^2 + 7 * 0.15^2) / 9) = sqrt(0.525 / 9).
TEST(FoldedAccuracy, HandWorkedTenFolds) {
  std::vector<double> s;
  std::vector<bool> same;
  std::vector<int> fold;
  for (int f = 0; f < 10; ++f) {
    s.push_back(f == 0 ? 5 : f == 1 ? 9.6 : 10 + f);
    same.push_back(true);
    fold.push_back(f);
    s.push_back(f);
    same.push_back(false);
    fold.push_back(f);
  }
  const auto r = folded_accuracy(s, same, fold, 10);
  ASSERT_EQ(r.fold_accuracy.size(), 10u);
  for (int f = 0; f < 10; ++f) {
    EXPECT_DOUBLE_EQ(r.fold_accuracy[f], f == 0 || f == 1 || f == 9 ? 0.5 : 1.0) << f;
  }
  EXPECT_DOUBLE_EQ(r.fold_threshold[0], (9.6 + 9) / 2);
  EXPECT_DOUBLE_EQ(r.fold_threshold[1], 10.5);
  EXPECT_DOUBLE_EQ(r.fold_threshold[5], (9.6 + 9) / 2);
  EXPECT_DOUBLE_EQ(r.fold_threshold[9], (9.6 + 8) / 2);
  EXPECT_NEAR(r.mean, 0.85, 1e-12);
  EXPECT_NEAR(r.std, std::sqrt(0.525 / 9), 1e-12);
  EXPECT_NEAR(r.standard_error, std::sqrt(0.525 / 9) / std::sqrt(10.0), 1e-12);
}

TEST(FoldedAccuracy, SeparableScoresGiveOne) {
  std::vector<double> s;
  std::vector<bool> same;
  std::vector<int> fold;
  for (int i = 0; i < 100; ++i) {
    same.push_back(i % 2 == 0);
    s.push_back(i % 2 == 0 ? 1.0 + i : -1.0 - i);
    fold.push_back(i % 10);
  }
  const auto r = folded_accuracy(s, same, fold, 10);
  EXPECT_DOUBLE_EQ(r.mean, 1.0);
  EXPECT_DOUBLE_EQ(r.std, 0.0);
}

TEST(FoldedAccuracy, BadInputThrows) {
  EXPECT_THROW(folded_accuracy({1, 2}, {true, false}, {0, 1}, 1), std::invalid_argument);
  EXPECT_THROW(folded_accuracy({1, 2}, {true, false}, {0, 2}, 2), std::invalid_argument);
  EXPECT_THROW(folded_accuracy({1, 2}, {true, false}, {0, 0}, 2),
               std::invalid_argument);  // empty fold 1
  EXPECT_THROW(folded_accuracy({1, 2}, {true, false}, {0}, 2), std::invalid_argument);
}
