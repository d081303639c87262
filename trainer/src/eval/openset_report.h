// Everything the open-set evaluation measures, from features and labels of one data set:
// verification on pairs (LFW 10-fold accuracy, ROC, AUC, TAR at fixed FARs), rank-1
// identification on a gallery/probe split, and feature statistics. Pure computation on
// tensors and vectors: the trainer's model and data loading stay outside.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "eval/feature_stats.h"
#include "eval/identification.h"
#include "eval/lfw_protocol.h"
#include "eval/pairs.h"
#include "eval/similarity.h"
#include "eval/verification.h"

namespace centerloss::eval {

struct OpenSetOptions {
  Similarity similarity = Similarity::Cosine;
  bool normalize = false;  // L2-normalise features before everything (scores, split, stats)
  int64_t gallery_per_class = 1;
  uint64_t seed = 0;  // gallery/probe split
  std::vector<double> far_targets = {1e-2, 1e-3};
};

struct VerificationReport {
  int64_t genuine = 0;
  int64_t impostors = 0;
  int folds = 0;
  FoldedAccuracy accuracy;
  double auc = 0.0;
  std::vector<double> far_targets;
  std::vector<TarAtFar> tar;  // one per far_targets entry
  RocCurve roc;
};

struct OpenSetReport {
  std::vector<int64_t> classes;  // the held-out classes evaluated
  OpenSetOptions options;
  VerificationReport verification;
  int64_t gallery_per_class = 0;
  Rank1Result rank1;
  FeatureStats stats;  // on the held-out classes
};

// features: [N, D] floating; labels[i] the class of row i; pairs index rows (from
// sample_pairs or resolve_pairs; their folds must be 0..F-1 with F >= 2). heldout: the classes
// for identification and statistics (empty: every class).
OpenSetReport evaluate_openset(const torch::Tensor& features, const std::vector<int64_t>& labels,
                               const std::vector<Pair>& pairs, const std::vector<int64_t>& heldout,
                               const OpenSetOptions& options);

}  // namespace centerloss::eval
