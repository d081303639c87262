// `centerloss train`: trains a run into --out, or continues it with --resume.
#include <fmt/format.h>

#include <cmath>

#include "cli/commands.h"
#include "cli/train_options.h"
#include "train/resume_config.h"
#include "train/run.h"
#include "util/fs.h"

namespace centerloss::trainer {
namespace {

// On a resume, the run's stored config with the options this command line gave, which must
// equal the stored ones except --epochs, --threads and --loader-threads (train/resume_config.h).
TrainConfig resumed_config(const CLI::App& cmd, TrainCli cli, const TrainConfig& stored,
                           const std::string& dir) {
  std::vector<std::string> given;
  for (const CLI::Option* option : cmd.get_options()) {
    if (option->count() == 0) continue;
    if (const std::string key = config_key_of_option(option->get_name()); !key.empty()) {
      given.push_back(key);
    }
  }
  // --classes/--holdout are resolved against the run's data unless --data is given too.
  if (cmd.get_option("--data")->count() == 0) cli.config.data_dir = stored.data_dir;
  return resume_config(stored, resolve_train_config(cli), given, dir);
}

void run_train(const CLI::App& cmd, const TrainCli& cli, int dist_timeout) {
  RunOptions run = run_options(cli);
  run.data_parallel = DataParallel::from_env(std::chrono::seconds(dist_timeout));
  const int world = run.data_parallel ? run.data_parallel->world() : 1;
  const std::string checkpoint = path_join(run.out_dir, kCheckpointFile);
  TrainConfig config;
  if (run.start == StartMode::Resume && !is_file(checkpoint)) {
    prepare_run_folder(run.out_dir, run.start);  // throws, saying what the folder holds
  }
  if (run.start == StartMode::Resume || (run.start == StartMode::ResumeAuto && is_file(checkpoint))) {
    // A folder another trainer is writing is refused as such, before its options are compared.
    if (!run.data_parallel || run.data_parallel->is_main()) refuse_if_in_use(run.out_dir);
    run.checkpoint = std::make_shared<CheckpointFile>(checkpoint);
    config = resumed_config(cmd, cli, run.checkpoint->config(), run.out_dir);
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
  auto dist_timeout = std::make_shared<int>(300);
  cmd->add_option("--dist-timeout", *dist_timeout,
                  "several processes (torchrun): seconds a rank waits for the others before it "
                  "stops with an error")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->callback([cmd, cli, dist_timeout] { run_train(*cmd, *cli, *dist_timeout); });
}

}  // namespace centerloss::trainer
