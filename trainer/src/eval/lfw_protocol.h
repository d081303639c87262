// The LFW verification protocol: k-fold cross-validated accuracy of a threshold on pair scores.
//
// For each fold f, the threshold that maximises accuracy on the other folds' pairs is chosen
// and the accuracy on fold f's pairs is measured with it. A pair is called "same" when
// score >= threshold. Candidate thresholds are +inf (call nothing "same"), the midpoints
// between adjacent distinct training scores, and the lowest training score (call everything
// "same"); midpoints keep the threshold off the training pairs' edge, so that a test pair
// just beyond the training range is not decided by a hair. Among equally accurate candidates
// the lowest is taken (deterministic).
#pragma once

#include <cstdint>
#include <vector>

namespace centerloss::eval {

struct FoldedAccuracy {
  double mean = 0.0;            // mean of the fold accuracies
  double std = 0.0;             // sample standard deviation (n - 1) of the fold accuracies
  double standard_error = 0.0;  // std / sqrt(folds), what the LFW README reports as S_E
  std::vector<double> fold_accuracy;
  std::vector<double> fold_threshold;
};

// scores/same as in verification.h; fold[i] in [0, num_folds) is pair i's fold. Every fold
// must hold at least one pair; num_folds >= 2. Throws std::invalid_argument otherwise.
FoldedAccuracy folded_accuracy(const std::vector<double>& scores, const std::vector<bool>& same,
                               const std::vector<int>& fold, int num_folds = 10);

// The threshold with the best accuracy on the given pairs (same rule as above) and that
// accuracy. Exposed for tests and for reporting a single operating point.
struct BestThreshold {
  double threshold = 0.0;
  double accuracy = 0.0;
};
BestThreshold best_threshold(const std::vector<double>& scores, const std::vector<bool>& same);

}  // namespace centerloss::eval
