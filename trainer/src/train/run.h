// A run folder, as `centerloss train --out DIR` writes it:
//   DIR/config.json          the TrainConfig (also inside the checkpoint)
//   DIR/checkpoint.pt        see train/checkpoint.h; rewritten atomically after each epoch
//   DIR/metrics.jsonl        one JSON object per line: {"kind":"step",...} and {"kind":"epoch",...}
//   DIR/test_features.pt     embed() of the test split (see embed/embed.h for the layout)
//   DIR/scatter.png          test features coloured by class, centers marked
//   DIR/curves.png           training curves
//   DIR/report.md            the numbers of the run and links to the figures
#pragma once

#include <string>

#include "train/checkpoint.h"

namespace centerloss::trainer {

inline constexpr const char* kCheckpointFile = "checkpoint.pt";

// Rebuilds the model and center-loss module of a run from DIR/checkpoint.pt (its stored config
// decides the architecture, D and the classes), in eval mode. Throws std::runtime_error naming
// the path when there is no readable checkpoint.
TrainState load_run(const std::string& run_dir);

}  // namespace centerloss::trainer
