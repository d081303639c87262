#include "eval/pair_sampler.h"
#include "eval/random.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

namespace centerloss::eval {

namespace {

template <typename T>
const T& pick(std::mt19937_64& rng, const std::vector<T>& v) {
  return v[uniform_below(rng, v.size())];
}

}  // namespace

std::vector<Pair> sample_pairs(const std::vector<int64_t>& labels,
                               const std::vector<int64_t>& classes,
                               const PairSamplerOptions& options) {
  if (options.folds < 1) throw std::invalid_argument("folds must be >= 1");
  if (options.same_per_fold < 0 || options.different_per_fold < 0) {
    throw std::invalid_argument("same_per_fold and different_per_fold must be >= 0");
  }
  std::map<int64_t, std::vector<int64_t>> members;  // ordered: deterministic iteration
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0) {
      throw std::invalid_argument("labels[" + std::to_string(i) + "] is negative");
    }
    members[labels[i]].push_back(static_cast<int64_t>(i));
  }
  std::vector<int64_t> eligible;
  if (classes.empty()) {
    for (const auto& kv : members) eligible.push_back(kv.first);
  } else {
    std::set<int64_t> unique(classes.begin(), classes.end());
    for (int64_t c : unique) {
      if (!members.count(c)) {
        throw std::invalid_argument("classes: class " + std::to_string(c) +
                                    " has no samples in labels");
      }
      eligible.push_back(c);
    }
  }
  std::vector<int64_t> with_two;
  for (int64_t c : eligible) {
    if (members[c].size() >= 2) with_two.push_back(c);
  }
  if (options.same_per_fold > 0 && with_two.empty()) {
    throw std::invalid_argument("classes: no class has two samples to form a genuine pair");
  }
  if (options.different_per_fold > 0 && eligible.size() < 2) {
    throw std::invalid_argument("classes: impostor pairs need at least two classes");
  }

  std::mt19937_64 rng(options.seed);
  std::set<std::pair<int64_t, int64_t>> used;
  // Give up after many rejections in a row: the pool of distinct pairs is (nearly) exhausted.
  constexpr int kMaxRejections = 10000;
  auto draw = [&](bool same_class) {
    for (int attempt = 0; attempt < kMaxRejections; ++attempt) {
      int64_t a, b;
      if (same_class) {
        const auto& m = members[pick(rng, with_two)];
        const uint64_t i = uniform_below(rng, m.size());
        uint64_t j = uniform_below(rng, m.size() - 1);
        if (j >= i) ++j;  // distinct from i
        a = m[i];
        b = m[j];
      } else {
        const uint64_t ci = uniform_below(rng, eligible.size());
        uint64_t cj = uniform_below(rng, eligible.size() - 1);
        if (cj >= ci) ++cj;
        a = pick(rng, members[eligible[ci]]);
        b = pick(rng, members[eligible[cj]]);
      }
      if (used.insert({std::min(a, b), std::max(a, b)}).second) return std::make_pair(a, b);
    }
    throw std::invalid_argument(std::string("cannot draw enough distinct ") +
                                (same_class ? "genuine" : "impostor") +
                                " pairs from these classes: ask for fewer pairs");
  };

  std::vector<Pair> pairs;
  pairs.reserve(static_cast<size_t>(options.folds) *
                static_cast<size_t>(options.same_per_fold + options.different_per_fold));
  for (int f = 0; f < options.folds; ++f) {
    for (int64_t k = 0; k < options.same_per_fold; ++k) {
      const auto [a, b] = draw(true);
      pairs.push_back({a, b, true, f});
    }
    for (int64_t k = 0; k < options.different_per_fold; ++k) {
      const auto [a, b] = draw(false);
      pairs.push_back({a, b, false, f});
    }
  }
  return pairs;
}

}  // namespace centerloss::eval
