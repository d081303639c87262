// Pair similarity, rank-1 identification, feature statistics and the whole open-set report,
// on small feature sets worked by hand.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>
#include <stdexcept>

#include "eval/feature_stats.h"
#include "eval/identification.h"
#include "eval/openset_report.h"
#include "eval/pair_sampler.h"
#include "eval/report_json.h"
#include "eval/similarity.h"

using namespace centerloss::eval;

TEST(PairScores, CosineAndEuclidean) {
  const auto x = torch::tensor({1.f, 0.f, 0.f, 2.f, 1.f, 1.f, 2.f, 2.f, 3.f, 4.f}).view({5, 2});
  const std::vector<Pair> pairs = {{0, 1, false, 0}, {2, 3, true, 0}, {0, 4, true, 0}};
  const auto c = pair_scores(x, pairs, Similarity::Cosine);
  EXPECT_NEAR(c[0], 0.0, 1e-12);
  EXPECT_NEAR(c[1], 1.0, 1e-12);
  EXPECT_NEAR(c[2], 0.6, 1e-7);  // (1,0).(3,4)/5
  const auto e = pair_scores(x, pairs, Similarity::Euclidean);
  EXPECT_NEAR(e[0], -std::sqrt(5.0), 1e-7);
  EXPECT_NEAR(e[2], -std::sqrt(20.0), 1e-7);
  // Euclidean on normalised features ranks like cosine: |a-b|^2 = 2 - 2 cos.
  const auto en = pair_scores(l2_normalize(x), pairs, Similarity::Euclidean);
  for (size_t k = 0; k < pairs.size(); ++k) EXPECT_NEAR(en[k] * en[k], 2 - 2 * c[k], 1e-6);
  EXPECT_THROW(pair_scores(x, {{0, 5, true, 0}}, Similarity::Cosine), std::invalid_argument);
  EXPECT_THROW(parse_similarity("dot"), std::invalid_argument);
}

TEST(Identification, SplitIsDeterministicAndPartitions) {
  std::vector<int64_t> y;
  for (int i = 0; i < 60; ++i) y.push_back(i % 4);
  const auto s1 = split_gallery_probe(y, {1, 2, 3}, 2, 9);
  const auto s2 = split_gallery_probe(y, {1, 2, 3}, 2, 9);
  EXPECT_EQ(s1.gallery, s2.gallery);
  EXPECT_EQ(s1.probes, s2.probes);
  EXPECT_NE(s1.gallery, split_gallery_probe(y, {1, 2, 3}, 2, 10).gallery);
  EXPECT_EQ(s1.gallery.size(), 6u);
  EXPECT_EQ(s1.probes.size(), 45u - 6u);
  std::set<int64_t> all(s1.gallery.begin(), s1.gallery.end());
  for (int64_t p : s1.probes) EXPECT_TRUE(all.insert(p).second) << "probe also in gallery";
  for (int64_t i : all) EXPECT_NE(y[i], 0) << "class 0 is not held out";
  EXPECT_THROW(split_gallery_probe(y, {1}, 15, 0), std::invalid_argument);  // no probe left
  EXPECT_THROW(split_gallery_probe(y, {7}, 1, 0), std::invalid_argument);
}

TEST(Identification, Rank1HandWorked) {
  // 1-D features; gallery: row 0 (class 0, at 0) and row 3 (class 1, at 10).
  // Probes: 1 (class 0, at 1) -> 0 right; 2 (class 0, at 6) -> 10 wrong;
  //         4 (class 1, at 9) -> 10 right; 5 (class 1, at 4) -> 0 wrong; 6 (class 1, 5) tie
  //         between 0 and 10 -> the lower gallery index (row 0, class 0): wrong.
  const auto x = torch::tensor({0.f, 1.f, 6.f, 10.f, 9.f, 4.f, 5.f}).view({7, 1});
  const std::vector<int64_t> y = {0, 0, 0, 1, 1, 1, 1};
  GalleryProbeSplit split{{0, 3}, {1, 2, 4, 5, 6}};
  const auto r = rank1_identification(x, y, split, Similarity::Euclidean);
  EXPECT_DOUBLE_EQ(r.accuracy, 2.0 / 5);
  EXPECT_EQ(r.probes, 5);
  EXPECT_EQ(r.classes, 2);
}

TEST(FeatureStats, HandWorked) {
  // Class 0: (0,0), (2,0), mean (1,0); class 1: (10,0), (10,2), mean (10,1). Every sample is
  // 1 from its mean; the means are sqrt(81 + 1) apart. Class 2 is filtered out.
  const auto x = torch::tensor({0.f, 0.f, 2.f, 0.f, 10.f, 0.f, 10.f, 2.f, 50.f, 50.f}).view({5, 2});
  const std::vector<int64_t> y = {0, 0, 1, 1, 2};
  const auto s = feature_stats(x, y, {0, 1});
  EXPECT_NEAR(s.intra, 1.0, 1e-12);
  EXPECT_NEAR(s.inter, std::sqrt(82.0), 1e-12);
  EXPECT_NEAR(s.ratio, 1.0 / std::sqrt(82.0), 1e-12);
  EXPECT_EQ(s.samples, 4);
  const auto scaled = feature_stats(x * 3, y, {0, 1});
  EXPECT_NEAR(scaled.ratio, s.ratio, 1e-12);
  EXPECT_TRUE(std::isinf(feature_stats(x, y, {2}).ratio));
  EXPECT_THROW(feature_stats(x, y, {5}), std::invalid_argument);
}

TEST(OpenSetReport, TightClustersBeatLooseOnes) {
  torch::manual_seed(0);
  std::vector<int64_t> y;
  for (int i = 0; i < 300; ++i) y.push_back(i % 3);
  const auto centers = torch::randn({3, 8}) * 3;
  const auto idx = torch::tensor(y, torch::kInt64);
  const auto noise = torch::randn({300, 8});
  PairSamplerOptions po;
  po.same_per_fold = 20;
  po.different_per_fold = 20;
  const auto pairs = sample_pairs(y, {}, po);
  OpenSetOptions o;
  const auto tight = evaluate_openset(centers.index_select(0, idx) + 0.1 * noise, y, pairs, {}, o);
  const auto loose = evaluate_openset(centers.index_select(0, idx) + 3.0 * noise, y, pairs, {}, o);
  EXPECT_GT(tight.verification.auc, 0.99);
  EXPECT_GT(tight.verification.accuracy.mean, 0.95);
  EXPECT_GT(tight.rank1.accuracy, 0.95);
  EXPECT_LT(loose.verification.auc, tight.verification.auc);
  EXPECT_GT(loose.stats.ratio, tight.stats.ratio);
  EXPECT_EQ(tight.verification.folds, 10);
  const auto j = to_json(tight, 50);
  EXPECT_LE(j["verification"]["roc"]["far"].size(), 51u);
  EXPECT_EQ(j["verification"]["roc"]["far"].back(), 1.0);
  EXPECT_EQ(j["verification"]["tar_at_far"].size(), 2u);
}
