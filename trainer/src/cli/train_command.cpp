// `centerloss train`: trains a run into --out, or continues it with --resume.
#include <fmt/format.h>

#include <cmath>
#include <set>

#include "cli/commands.h"
#include "cli/train_options.h"
#include "train/run.h"
#include "util/fs.h"

namespace centerloss::trainer {
namespace {

// On --resume the run's stored config is used; only these may be changed.
const std::set<std::string> kResumable = {"--out", "--resume", "--epochs", "--threads", "--no-progress",
                                          "--no-outputs", "--python", "--loader-threads",
                                          "--skip-bad-images"};

void run_train(CLI::App& cmd, const TrainCli& cli) {
  RunOptions run = cli.run;
  run.progress = !cli.no_progress;
  run.outputs = !cli.no_outputs;
  TrainConfig config;
  if (run.resume) {
    run.checkpoint = std::make_shared<CheckpointFile>(path_join(run.out_dir, kCheckpointFile));
    config = run.checkpoint->config();
    for (const CLI::Option* option : cmd.get_options()) {
      if (option->count() > 0 && kResumable.count(option->get_name()) == 0) {
        throw CLI::ValidationError(option->get_name(),
                                   "cannot be changed on --resume (the run's config.json is used)");
      }
    }
    if (cmd.get_option("--epochs")->count() > 0) config.epochs = cli.config.epochs;
    if (cmd.get_option("--threads")->count() > 0) config.threads = cli.config.threads;
    if (cmd.get_option("--loader-threads")->count() > 0) config.loader_threads = cli.config.loader_threads;
  } else {
    config = resolve_train_config(cli);
  }
  const TrainSummary summary = train(config, run);
  const std::string dir = absolute_path(run.out_dir);
  fmt::print("trained {} epochs: {}, {:.1f} ms/step\n", summary.epochs,
             std::isnan(summary.test_accuracy)
                 ? std::string("no test split (--test-data)")
                 : fmt::format("closed-set test accuracy {:.2f}%", 100.0 * summary.test_accuracy),
             summary.ms_per_step);
  fmt::print("run folder: {}\n", dir);
  if (run.outputs) {
    fmt::print("report:     {}\n", path_join(dir, "report.md"));
    fmt::print("figures:    {}\n            {}\n", path_join(dir, "scatter.png"),
               path_join(dir, "curves.png"));
  }
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto cli = std::make_shared<TrainCli>();
  CLI::App* cmd = app.add_subcommand("train", "train softmax + lambda * center loss into a run folder");
  add_train_options(*cmd, *cli);
  cmd->add_option("--out", cli->run.out_dir, "run folder (checkpoint, metrics, figures, report)")->required();
  cmd->add_flag("--resume", cli->run.resume, "continue the run in --out from its last checkpoint");
  cmd->callback([cmd, cli] { run_train(*cmd, *cli); });
}

}  // namespace centerloss::trainer
