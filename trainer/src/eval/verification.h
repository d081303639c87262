// Verification metrics on pair scores: ROC curve, ROC AUC and TAR at a fixed FAR.
//
// Inputs everywhere: scores[i] is the similarity of pair i (higher = more likely the same
// class), same[i] is true for a genuine (same-class) pair and false for an impostor pair.
// A pair is accepted at threshold t when score >= t. Both classes of pair must be present;
// scores must be finite. Violations throw std::invalid_argument naming the argument.
#pragma once

#include <cstdint>
#include <vector>

namespace centerloss::eval {

struct RocCurve {
  // One point per distinct score (plus the origin), thresholds decreasing, FAR/TAR increasing.
  std::vector<double> thresholds;  // thresholds[0] = +inf (accept nothing)
  std::vector<double> far;         // false accept rate: accepted impostors / impostors
  std::vector<double> tar;         // true accept rate: accepted genuine pairs / genuine pairs
  int64_t num_impostors = 0;       // impostor pairs behind the FAR values
};

RocCurve roc_curve(const std::vector<double>& scores, const std::vector<bool>& same);

// Area under the ROC curve in the Mann-Whitney form: the probability that a random genuine
// pair scores above a random impostor pair, a tie counting 1/2. Equals the trapezoid area
// under roc_curve().
double roc_auc(const std::vector<double>& scores, const std::vector<bool>& same);

struct TarAtFar {
  double tar = 0.0;        // best TAR whose FAR does not exceed the target
  double far = 0.0;        // the FAR actually reached (<= target)
  double threshold = 0.0;  // accept when score >= threshold (+inf when nothing may be accepted)
  // The smallest non-zero FAR these impostors can measure is 1 / num_impostors: a target below
  // it can only be met with FAR = 0, so report it next to the value.
  int64_t num_impostors = 0;
};

// Throws if target_far is not in [0, 1].
TarAtFar tar_at_far(const std::vector<double>& scores, const std::vector<bool>& same,
                    double target_far);
// The same read off a curve already computed (several targets need one sort, not one each).
TarAtFar tar_at_far(const RocCurve& roc, double target_far);

// Shared argument check: equal sizes, finite scores, at least one pair of each kind.
void check_pair_scores(const std::vector<double>& scores, const std::vector<bool>& same);

}  // namespace centerloss::eval
