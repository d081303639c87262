// ROC, AUC and TAR@FAR against cases worked by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>

#include "eval/verification.h"

using namespace centerloss::eval;

TEST(RocAuc, PerfectSeparatorIsOne) {
  const std::vector<double> s = {0.9, 0.8, 0.7, 0.3, 0.2};
  const std::vector<bool> same = {true, true, true, false, false};
  EXPECT_DOUBLE_EQ(roc_auc(s, same), 1.0);
  const auto roc = roc_curve(s, same);
  bool reaches_corner = false;  // (FAR 0, TAR 1) is on the curve
  for (size_t k = 0; k < roc.far.size(); ++k) reaches_corner |= roc.far[k] == 0 && roc.tar[k] == 1;
  EXPECT_TRUE(reaches_corner);
}

TEST(RocAuc, InvertedSeparatorIsZero) {
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.2, 0.8, 0.9}, {true, true, false, false}), 0.0);
}

TEST(RocAuc, RandomScoresGiveAboutOneHalf) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  std::vector<double> s;
  std::vector<bool> same;
  for (int i = 0; i < 20000; ++i) {
    s.push_back(normal(rng));
    same.push_back(i % 2 == 0);
  }
  // The AUC of 10k vs 10k random scores has a standard deviation of about 0.004.
  EXPECT_NEAR(roc_auc(s, same), 0.5, 0.02);
}

TEST(RocAuc, AllTiedIsOneHalf) {
  EXPECT_DOUBLE_EQ(roc_auc({1.0, 1.0, 1.0, 1.0, 1.0}, {true, false, true, false, false}), 0.5);
}

// Genuine {3, 2, 1}, impostor {2, 0}: of the 6 (genuine, impostor) comparisons, (3,2) (3,0)
// (2,0) (1,0) are won, (2,2) is a tie worth 1/2, (1,2) is lost: AUC = 4.5 / 6.
TEST(RocAuc, TiesCountOneHalf) {
  const std::vector<double> s = {3, 2, 1, 2, 0};
  const std::vector<bool> same = {true, true, true, false, false};
  EXPECT_DOUBLE_EQ(roc_auc(s, same), 0.75);
}

TEST(RocCurve, HandWorkedWithTies) {
  const auto roc = roc_curve({3, 2, 1, 2, 0}, {true, true, true, false, false});
  // Thresholds +inf, 3, 2 (a genuine and an impostor together), 1, 0.
  ASSERT_EQ(roc.thresholds.size(), 5u);
  EXPECT_TRUE(std::isinf(roc.thresholds[0]));
  EXPECT_EQ(roc.thresholds[2], 2.0);
  const std::vector<double> tar = {0, 1.0 / 3, 2.0 / 3, 1, 1};
  const std::vector<double> far = {0, 0, 0.5, 0.5, 1};
  for (size_t k = 0; k < 5; ++k) {
    EXPECT_DOUBLE_EQ(roc.tar[k], tar[k]) << k;
    EXPECT_DOUBLE_EQ(roc.far[k], far[k]) << k;
  }
}

TEST(RocAuc, EqualsTrapezoidAreaUnderTheCurve) {
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int> score(0, 20);  // few values: many ties
  std::vector<double> s;
  std::vector<bool> same;
  for (int i = 0; i < 500; ++i) {
    const bool g = i % 3 == 0;
    same.push_back(g);
    s.push_back(score(rng) + (g ? 3 : 0));
  }
  const auto roc = roc_curve(s, same);
  double area = 0;
  for (size_t k = 1; k < roc.far.size(); ++k) {
    area += (roc.far[k] - roc.far[k - 1]) * (roc.tar[k] + roc.tar[k - 1]) / 2;
  }
  EXPECT_NEAR(roc_auc(s, same), area, 1e-12);
  EXPECT_GT(area, 0.6);  // the shift makes genuine pairs score higher
}

// Impostors score 0..9 (10 of them), genuine pairs 9.5, 8.5, 7.5, 5.
class TarAtFarHand : public ::testing::Test {
 protected:
  std::vector<double> s = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9.5, 8.5, 7.5, 5};
  std::vector<bool> same = std::vector<bool>(10, false);
  void SetUp() override { same.insert(same.end(), 4, true); }
};

TEST_F(TarAtFarHand, OneImpostorAllowed) {
  // FAR <= 0.1 allows impostor 9 only: the threshold can go down to 8.5 (genuine 9.5, 8.5).
  const auto r = tar_at_far(s, same, 0.1);
  EXPECT_DOUBLE_EQ(r.tar, 0.5);
  EXPECT_DOUBLE_EQ(r.far, 0.1);
  EXPECT_EQ(r.threshold, 8.5);
  EXPECT_EQ(r.num_impostors, 10);
}

TEST_F(TarAtFarHand, ThreeImpostorsAllowed) {
  const auto r = tar_at_far(s, same, 0.3);  // down to 7: genuine 9.5, 8.5, 7.5
  EXPECT_DOUBLE_EQ(r.tar, 0.75);
  EXPECT_EQ(r.threshold, 7.0);
}

TEST_F(TarAtFarHand, TargetBelowResolutionMeansNoImpostor) {
  // 1e-2 < 1/10: only FAR = 0 qualifies, the threshold stays above impostor 9.
  const auto r = tar_at_far(s, same, 1e-2);
  EXPECT_DOUBLE_EQ(r.tar, 0.25);
  EXPECT_DOUBLE_EQ(r.far, 0.0);
  EXPECT_EQ(r.threshold, 9.5);
}

TEST_F(TarAtFarHand, OneCurveServesEveryTarget) {
  // Read off one curve: (target, TAR, FAR reached, threshold), worked out by hand.
  const RocCurve roc = roc_curve(s, same);
  EXPECT_EQ(roc.num_impostors, 10);
  const struct {
    double target, tar, far, threshold;
  } cases[] = {{0.0, 0.25, 0.0, 9.5}, {0.1, 0.5, 0.1, 8.5}, {0.25, 0.75, 0.2, 7.5},
               {0.3, 0.75, 0.3, 7.0}, {1.0, 1.0, 1.0, 0.0}};
  for (const auto& c : cases) {
    const auto r = tar_at_far(roc, c.target);
    EXPECT_DOUBLE_EQ(r.tar, c.tar) << c.target;
    EXPECT_DOUBLE_EQ(r.far, c.far) << c.target;
    EXPECT_EQ(r.threshold, c.threshold) << c.target;
    EXPECT_EQ(r.num_impostors, 10);
  }
  EXPECT_THROW(tar_at_far(roc, -0.1), std::invalid_argument);
  EXPECT_THROW(tar_at_far(RocCurve{}, 0.1), std::invalid_argument);
}

TEST(Verification, BadInputThrows) {
  EXPECT_THROW(roc_auc({1, 2}, {true}), std::invalid_argument);
  EXPECT_THROW(roc_auc({1, NAN}, {true, false}), std::invalid_argument);
  EXPECT_THROW(roc_auc({1, 2}, {true, true}), std::invalid_argument);
  EXPECT_THROW(roc_curve({}, {}), std::invalid_argument);
  EXPECT_THROW(tar_at_far({1, 2}, {true, false}, 1.5), std::invalid_argument);
}
