// The pair sampler: determinism for a seed, LFW-like layout, valid and distinct pairs.
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <utility>

#include "eval/pair_sampler.h"

using namespace centerloss::eval;

namespace {

// 10 classes, 50 samples each, interleaved like a shuffled data set.
std::vector<int64_t> labels() {
  std::vector<int64_t> y;
  for (int i = 0; i < 500; ++i) y.push_back((i * 7) % 10);
  return y;
}

bool equal(const std::vector<Pair>& x, const std::vector<Pair>& y) {
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i].a != y[i].a || x[i].b != y[i].b || x[i].same != y[i].same || x[i].fold != y[i].fold)
      return false;
  }
  return true;
}

PairSamplerOptions options(uint64_t seed) {
  PairSamplerOptions o;
  o.folds = 10;
  o.same_per_fold = 30;
  o.different_per_fold = 20;
  o.seed = seed;
  return o;
}

}  // namespace

TEST(PairSampler, SameSeedSamePairs) {
  const auto y = labels();
  const auto p1 = sample_pairs(y, {7, 8, 9}, options(42));
  const auto p2 = sample_pairs(y, {9, 8, 7}, options(42));  // class order does not matter
  EXPECT_TRUE(equal(p1, p2));
  EXPECT_FALSE(equal(p1, sample_pairs(y, {7, 8, 9}, options(43))));
}

TEST(PairSampler, LayoutAndValidity) {
  const auto y = labels();
  const std::set<int64_t> heldout = {7, 8, 9};
  const auto pairs = sample_pairs(y, {7, 8, 9}, options(1));
  ASSERT_EQ(pairs.size(), 10u * 50u);
  std::set<std::pair<int64_t, int64_t>> seen;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const Pair& p = pairs[i];
    EXPECT_EQ(p.fold, static_cast<int>(i / 50));
    EXPECT_EQ(p.same, i % 50 < 30) << "genuine pairs first in each fold";
    EXPECT_NE(p.a, p.b);
    EXPECT_TRUE(heldout.count(y[p.a]) && heldout.count(y[p.b]));
    EXPECT_EQ(y[p.a] == y[p.b], p.same);
    EXPECT_TRUE(seen.insert({std::min(p.a, p.b), std::max(p.a, p.b)}).second) << "duplicate";
  }
}

TEST(PairSampler, AllClassesWhenNoneGiven) {
  const auto pairs = sample_pairs(labels(), {}, options(5));
  std::set<int64_t> used;
  for (const Pair& p : pairs) used.insert(labels()[p.a]);
  EXPECT_GT(used.size(), 3u);
}

TEST(PairSampler, ImpossibleRequestsThrow) {
  const std::vector<int64_t> y = {0, 0, 0, 1, 1, 1};
  auto o = options(0);
  EXPECT_THROW(sample_pairs(y, {2}, o), std::invalid_argument);  // class without samples
  EXPECT_THROW(sample_pairs(y, {0}, o), std::invalid_argument);  // impostors need 2 classes
  // Classes 0 and 1 have 3 + 3 distinct genuine pairs in all: 10 x 30 cannot be drawn.
  EXPECT_THROW(sample_pairs(y, {}, o), std::invalid_argument);
  o.folds = 1;
  o.same_per_fold = 6;
  o.different_per_fold = 9;  // exactly every distinct pair
  EXPECT_EQ(sample_pairs(y, {}, o).size(), 15u);
}
