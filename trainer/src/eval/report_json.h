// JSON form of the evaluation results (nlohmann-json), as written to metrics files.
#pragma once

#include <nlohmann/json.hpp>

#include "eval/openset_report.h"

namespace centerloss::eval {

// The ROC curve is thinned to at most `max_roc_points` points (first and last kept) so that
// metrics files stay small; the metrics themselves use the full curve.
nlohmann::json to_json(const OpenSetReport& report, size_t max_roc_points = 2000);
nlohmann::json to_json(const FeatureStats& stats);

}  // namespace centerloss::eval
