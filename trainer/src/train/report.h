// The end of a run: figures (scripts/plots/scatter.py, curves.py) and report.md, from the files
// already in the run folder (config.json, metrics.jsonl, test_features.pt).
#pragma once

#include <string>

namespace centerloss::trainer {

// Draws DIR/scatter.png and DIR/curves.png and writes DIR/report.md. A failed plot is a
// warning (the report says which figure is missing). Returns the report's path.
std::string write_run_outputs(const std::string& run_dir, const std::string& python);

}  // namespace centerloss::trainer
