// `centerloss openset`: open-set evaluation of a trained run (see docs/openset.md).
//
//   centerloss openset --run runs/x                      # held-out = classes not trained on
//   centerloss openset --run runs/x --holdout 7,8,9 --normalize
//   centerloss openset --run runs/x --data DIR --pairs pairs.txt [--class-names names.txt]
//
// Writes RUN/openset.json (or --out): closed-set accuracy on the trained classes, the LFW
// 10-fold verification accuracy, ROC AUC, TAR at FAR 1e-2 / 1e-3 on pairs of held-out classes,
// rank-1 identification and feature statistics; and RUN/openset_roc.png.
#pragma once

#include <CLI/CLI.hpp>

namespace centerloss::trainer {

// Also declared in cli/commands.h with the other subcommands; main.cpp calls it.
void add_openset_command(CLI::App& app);

}  // namespace centerloss::trainer
