// `centerloss train`: trains a run into --out, or continues it with --resume.
#include <fmt/format.h>

#include <set>

#include "cli/commands.h"
#include "cli/train_options.h"
#include "train/run.h"
#include "util/fs.h"

namespace centerloss::trainer {
namespace {

// On --resume the run's stored config is used; only these may be changed.
const std::set<std::string> kResumable = {"--out", "--resume", "--epochs", "--threads", "--no-progress",
                                          "--no-outputs", "--python", "--dist-timeout"};

void run_train(CLI::App& cmd, const TrainCli& cli, int dist_timeout) {
  RunOptions run = cli.run;
  run.progress = !cli.no_progress;
  run.outputs = !cli.no_outputs;
  run.data_parallel = DataParallel::from_env(std::chrono::seconds(dist_timeout));
  const int world = run.data_parallel ? run.data_parallel->world() : 1;
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
    if (config.world_size != world) {
      throw CLI::ValidationError("--resume", fmt::format(
          "the run in {} trained with {} process(es) and this is {}: resume it with the same "
          "number (its --batch-size is per process)", run.out_dir, config.world_size, world));
    }
  } else {
    config = resolve_train_config(cli);
    config.world_size = world;
  }
  const TrainSummary summary = train(config, run);
  if (run.data_parallel && !run.data_parallel->is_main()) return;  // rank 0 reports
  const std::string dir = absolute_path(run.out_dir);
  fmt::print("trained {} epochs: closed-set test accuracy {:.2f}%, {:.1f} ms/step\n", summary.epochs,
             100.0 * summary.test_accuracy, summary.ms_per_step);
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
  auto dist_timeout = std::make_shared<int>(300);
  cmd->add_option("--dist-timeout", *dist_timeout,
                  "several processes (torchrun): seconds a rank waits for the others before it "
                  "stops with an error")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->callback([cmd, cli, dist_timeout] { run_train(*cmd, *cli, *dist_timeout); });
}

}  // namespace centerloss::trainer
