#include "eval/openset_report.h"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace centerloss::eval {

OpenSetReport evaluate_openset(const torch::Tensor& features, const std::vector<int64_t>& labels,
                               const std::vector<Pair>& pairs, const std::vector<int64_t>& heldout,
                               const OpenSetOptions& options) {
  if (pairs.empty()) throw std::invalid_argument("pairs must not be empty");
  const torch::Tensor x = options.normalize ? l2_normalize(features) : features;
  OpenSetReport r;
  r.options = options;
  r.classes = heldout;
  if (r.classes.empty()) {
    const std::set<int64_t> all(labels.begin(), labels.end());
    r.classes.assign(all.begin(), all.end());
  }

  VerificationReport& v = r.verification;
  const auto scores = pair_scores(x, pairs, options.similarity);
  const auto same = pair_same(pairs);
  const auto fold = pair_fold(pairs);
  v.genuine = std::count(same.begin(), same.end(), true);
  v.impostors = static_cast<int64_t>(same.size()) - v.genuine;
  v.folds = *std::max_element(fold.begin(), fold.end()) + 1;
  v.accuracy = folded_accuracy(scores, same, fold, v.folds);
  v.auc = roc_auc(scores, same);
  v.roc = roc_curve(scores, same);
  v.far_targets = options.far_targets;
  for (double target : options.far_targets) v.tar.push_back(tar_at_far(v.roc, target));

  r.gallery_per_class = options.gallery_per_class;
  const auto split =
      split_gallery_probe(labels, r.classes, options.gallery_per_class, options.seed);
  r.rank1 = rank1_identification(x, labels, split, options.similarity);
  r.stats = feature_stats(x, labels, r.classes);
  return r;
}

}  // namespace centerloss::eval
