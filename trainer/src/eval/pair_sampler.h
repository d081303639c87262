// Deterministic sampling of same/different-class pairs, laid out like LFW's pairs.txt:
// `folds` folds, each with `same_per_fold` genuine pairs followed by `different_per_fold`
// impostor pairs. The same labels, classes and seed always give the same pairs, on every
// platform (the generator is std::mt19937_64, whose output the standard fixes, and the range
// reduction is our own rather than std::uniform_int_distribution, which is library-specific).
//
// Genuine pair: a class drawn uniformly among the eligible classes with >= 2 samples, then two
// distinct samples of it. Impostor pair: two distinct eligible classes, one sample of each.
// No unordered pair appears twice. Throws std::invalid_argument when a class filter names a
// class without samples, when fewer than two classes (or no class with two samples) are
// available, or when the requested number of distinct pairs cannot be drawn.
#pragma once

#include <cstdint>
#include <vector>

#include "eval/pairs.h"

namespace centerloss::eval {

struct PairSamplerOptions {
  int folds = 10;
  int64_t same_per_fold = 300;
  int64_t different_per_fold = 300;
  uint64_t seed = 0;
};

// labels[i]: class of sample i (>= 0). classes: the eligible classes (empty: every class that
// occurs in labels). Returned pairs index into labels.
std::vector<Pair> sample_pairs(const std::vector<int64_t>& labels,
                               const std::vector<int64_t>& classes,
                               const PairSamplerOptions& options);

}  // namespace centerloss::eval
