#include "eval/verification.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

namespace centerloss::eval {

void check_pair_scores(const std::vector<double>& scores, const std::vector<bool>& same) {
  if (scores.size() != same.size()) {
    throw std::invalid_argument("scores and same must have the same length, got " +
                                std::to_string(scores.size()) + " and " +
                                std::to_string(same.size()));
  }
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) {
      throw std::invalid_argument("scores[" + std::to_string(i) + "] is not finite");
    }
  }
  const auto genuine = std::count(same.begin(), same.end(), true);
  if (genuine == 0 || genuine == static_cast<std::ptrdiff_t>(same.size())) {
    throw std::invalid_argument(
        "same must hold at least one genuine (true) and one impostor (false) pair");
  }
}

namespace {

// Indices sorted by decreasing score (stable, so the order is deterministic).
std::vector<size_t> order_by_score_desc(const std::vector<double>& scores) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return order;
}

}  // namespace

RocCurve roc_curve(const std::vector<double>& scores, const std::vector<bool>& same) {
  check_pair_scores(scores, same);
  const double genuine = static_cast<double>(std::count(same.begin(), same.end(), true));
  const double impostors = static_cast<double>(same.size()) - genuine;
  RocCurve roc;
  roc.num_impostors = static_cast<int64_t>(impostors);
  roc.thresholds.push_back(std::numeric_limits<double>::infinity());
  roc.far.push_back(0.0);
  roc.tar.push_back(0.0);
  const auto order = order_by_score_desc(scores);
  int64_t tp = 0, fp = 0;
  // Tied scores are accepted together, so a tie group is one diagonal step of the curve.
  for (size_t k = 0; k < order.size();) {
    const double t = scores[order[k]];
    for (; k < order.size() && scores[order[k]] == t; ++k) (same[order[k]] ? tp : fp)++;
    roc.thresholds.push_back(t);
    roc.far.push_back(static_cast<double>(fp) / impostors);
    roc.tar.push_back(static_cast<double>(tp) / genuine);
  }
  return roc;
}

double roc_auc(const std::vector<double>& scores, const std::vector<bool>& same) {
  check_pair_scores(scores, same);
  // Mid-ranks (ascending, ties share their average rank), then the Mann-Whitney U statistic.
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double rank_sum_genuine = 0.0;
  double genuine = 0.0;
  for (size_t k = 0; k < order.size();) {
    size_t end = k;
    while (end < order.size() && scores[order[end]] == scores[order[k]]) ++end;
    const double mid_rank = 0.5 * static_cast<double>(k + 1 + end);  // ranks k+1 .. end
    for (size_t j = k; j < end; ++j) {
      if (same[order[j]]) {
        rank_sum_genuine += mid_rank;
        genuine += 1.0;
      }
    }
    k = end;
  }
  const double impostors = static_cast<double>(scores.size()) - genuine;
  const double u = rank_sum_genuine - genuine * (genuine + 1.0) / 2.0;
  return u / (genuine * impostors);
}

TarAtFar tar_at_far(const RocCurve& roc, double target_far) {
  if (!(target_far >= 0.0 && target_far <= 1.0)) {
    throw std::invalid_argument("target_far must be in [0, 1], got " + std::to_string(target_far));
  }
  if (roc.thresholds.empty() || roc.far.size() != roc.thresholds.size() ||
      roc.tar.size() != roc.thresholds.size()) {
    throw std::invalid_argument("roc: thresholds, far and tar must be non-empty and of one length");
  }
  TarAtFar best;
  best.num_impostors = roc.num_impostors;
  best.threshold = roc.thresholds[0];
  // FAR and TAR grow together along the curve: the last point within the target is the best.
  for (size_t k = 0; k < roc.far.size() && roc.far[k] <= target_far; ++k) {
    best.tar = roc.tar[k];
    best.far = roc.far[k];
    best.threshold = roc.thresholds[k];
  }
  return best;
}

TarAtFar tar_at_far(const std::vector<double>& scores, const std::vector<bool>& same,
                    double target_far) {
  if (!(target_far >= 0.0 && target_far <= 1.0)) {  // before the sort, as the overload would
    throw std::invalid_argument("target_far must be in [0, 1], got " + std::to_string(target_far));
  }
  return tar_at_far(roc_curve(scores, same), target_far);
}

}  // namespace centerloss::eval
