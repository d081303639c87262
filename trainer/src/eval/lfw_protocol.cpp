#include "eval/lfw_protocol.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

namespace centerloss::eval {

BestThreshold best_threshold(const std::vector<double>& scores, const std::vector<bool>& same) {
  if (scores.size() != same.size() || scores.empty()) {
    throw std::invalid_argument("scores and same must be non-empty and of equal length");
  }
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  const int64_t n = static_cast<int64_t>(scores.size());
  const int64_t impostors = std::count(same.begin(), same.end(), false);
  // Threshold +inf: everything "different", impostors right.
  int64_t correct = impostors;
  BestThreshold best{std::numeric_limits<double>::infinity(),
                     static_cast<double>(correct) / static_cast<double>(n)};
  int64_t best_correct = correct;
  // Lowering the threshold past a tie group flips that whole group to "same".
  for (size_t k = 0; k < order.size();) {
    const double t = scores[order[k]];
    for (; k < order.size() && scores[order[k]] == t; ++k) correct += same[order[k]] ? 1 : -1;
    if (correct >= best_correct) {  // >=: among ties keep the lowest threshold
      best_correct = correct;
      // Midway to the next lower score: accepts the same training pairs as t.
      best.threshold = k < order.size() ? 0.5 * (t + scores[order[k]]) : t;
    }
  }
  best.accuracy = static_cast<double>(best_correct) / static_cast<double>(n);
  return best;
}

FoldedAccuracy folded_accuracy(const std::vector<double>& scores, const std::vector<bool>& same,
                               const std::vector<int>& fold, int num_folds) {
  if (num_folds < 2) {
    throw std::invalid_argument("num_folds must be >= 2, got " + std::to_string(num_folds));
  }
  if (scores.size() != same.size() || scores.size() != fold.size()) {
    throw std::invalid_argument("scores, same and fold must have the same length, got " +
                                std::to_string(scores.size()) + ", " + std::to_string(same.size()) +
                                ", " + std::to_string(fold.size()));
  }
  std::vector<int64_t> fold_size(num_folds, 0);
  for (size_t i = 0; i < fold.size(); ++i) {
    if (fold[i] < 0 || fold[i] >= num_folds) {
      throw std::invalid_argument("fold[" + std::to_string(i) + "] = " + std::to_string(fold[i]) +
                                  " is outside [0, " + std::to_string(num_folds) + ")");
    }
    if (!std::isfinite(scores[i])) {
      throw std::invalid_argument("scores[" + std::to_string(i) + "] is not finite");
    }
    ++fold_size[fold[i]];
  }
  for (int f = 0; f < num_folds; ++f) {
    if (fold_size[f] == 0) {
      throw std::invalid_argument("fold " + std::to_string(f) + " holds no pairs");
    }
  }
  FoldedAccuracy result;
  for (int f = 0; f < num_folds; ++f) {
    std::vector<double> train_scores;
    std::vector<bool> train_same;
    for (size_t i = 0; i < scores.size(); ++i) {
      if (fold[i] != f) {
        train_scores.push_back(scores[i]);
        train_same.push_back(same[i]);
      }
    }
    const double t = best_threshold(train_scores, train_same).threshold;
    int64_t correct = 0;
    for (size_t i = 0; i < scores.size(); ++i) {
      if (fold[i] == f && (scores[i] >= t) == same[i]) ++correct;
    }
    result.fold_threshold.push_back(t);
    result.fold_accuracy.push_back(static_cast<double>(correct) /
                                   static_cast<double>(fold_size[f]));
  }
  const double k = static_cast<double>(num_folds);
  result.mean = std::accumulate(result.fold_accuracy.begin(), result.fold_accuracy.end(), 0.0) / k;
  double ss = 0.0;
  for (double a : result.fold_accuracy) ss += (a - result.mean) * (a - result.mean);
  result.std = std::sqrt(ss / (k - 1.0));
  result.standard_error = result.std / std::sqrt(k);
  return result;
}

}  // namespace centerloss::eval
