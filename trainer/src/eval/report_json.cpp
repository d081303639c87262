#include "eval/report_json.h"

#include <cmath>

namespace centerloss::eval {

namespace {

// JSON has no infinity: an infinite threshold or ratio is written as null.
nlohmann::json finite_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

nlohmann::json roc_json(const RocCurve& roc, size_t max_points) {
  nlohmann::json far = nlohmann::json::array(), tar = nlohmann::json::array();
  const size_t n = roc.far.size();
  const size_t step =
      max_points < 2 || n <= max_points ? 1 : (n + max_points - 2) / (max_points - 1);
  for (size_t k = 0; k < n; k += step) {
    far.push_back(roc.far[k]);
    tar.push_back(roc.tar[k]);
  }
  if ((n - 1) % step != 0) {  // always end at (1, 1)
    far.push_back(roc.far[n - 1]);
    tar.push_back(roc.tar[n - 1]);
  }
  return {{"far", far}, {"tar", tar}, {"points_full", n}};
}

}  // namespace

nlohmann::json to_json(const FeatureStats& s) {
  return {{"intra", s.intra},
          {"inter", s.inter},
          {"ratio", finite_or_null(s.ratio)},
          {"classes", s.classes},
          {"samples", s.samples}};
}

nlohmann::json to_json(const OpenSetReport& r, size_t max_roc_points) {
  const VerificationReport& v = r.verification;
  nlohmann::json tar = nlohmann::json::array();
  for (size_t k = 0; k < v.tar.size(); ++k) {
    tar.push_back({{"far_target", v.far_targets[k]},
                   {"tar", v.tar[k].tar},
                   {"far", v.tar[k].far},
                   {"threshold", finite_or_null(v.tar[k].threshold)},
                   {"num_impostors", v.tar[k].num_impostors}});
  }
  nlohmann::json thresholds = nlohmann::json::array();
  for (double t : v.accuracy.fold_threshold) thresholds.push_back(finite_or_null(t));
  return {{"classes", r.classes},
          {"similarity", to_string(r.options.similarity)},
          {"normalize", r.options.normalize},
          {"verification",
           {{"pairs", v.genuine + v.impostors},
            {"genuine", v.genuine},
            {"impostors", v.impostors},
            {"folds", v.folds},
            {"accuracy_mean", v.accuracy.mean},
            {"accuracy_std", v.accuracy.std},
            {"accuracy_standard_error", v.accuracy.standard_error},
            {"fold_accuracy", v.accuracy.fold_accuracy},
            {"fold_threshold", thresholds},
            {"roc_auc", v.auc},
            {"tar_at_far", tar},
            {"roc", roc_json(v.roc, max_roc_points)}}},
          {"identification",
           {{"rank1", r.rank1.accuracy},
            {"probes", r.rank1.probes},
            {"gallery", r.rank1.gallery},
            {"gallery_per_class", r.gallery_per_class},
            {"classes", r.rank1.classes},
            {"seed", r.options.seed}}},
          {"feature_stats", to_json(r.stats)}};
}

}  // namespace centerloss::eval
