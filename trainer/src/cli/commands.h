// The subcommands of the `centerloss` executable. Each add_*_command registers one subcommand
// (options and callback) on the top-level app; main.cpp calls them in turn.
#pragma once

#include <CLI/CLI.hpp>

namespace centerloss::trainer {

void add_train_command(CLI::App& app);  // train (or --resume) a run into a folder
void add_eval_command(CLI::App& app);   // closed-set accuracy of a run's checkpoint
void add_embed_command(CLI::App& app);  // features of a data split -> a .pt file
void add_sweep_command(CLI::App& app);  // lambda sweep with 2-D features and a grid figure
void add_openset_command(CLI::App& app);  // open-set evaluation (src/eval/openset_command.cpp)

}  // namespace centerloss::trainer
