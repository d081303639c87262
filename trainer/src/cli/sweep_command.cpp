// `centerloss sweep`: the paper's Fig. 3 experiment. Trains one run per lambda (same seed and
// options otherwise) into --out/lambda_<value>/, then writes sweep.json, sweep.md and one grid
// figure of the test-feature scatters (scripts/plots/sweep_grid.py). A run whose checkpoint
// already has every epoch is not retrained, and an interrupted one is resumed.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <memory>
#include <set>
#include <stdexcept>

#include "cli/commands.h"
#include "cli/train_options.h"
#include "train/run.h"
#include "util/fs.h"

namespace centerloss::trainer {
namespace {

// The stored config of a run the sweep would resume, with this sweep's --epochs and
// --threads; throws, naming the fields, if any other option differs from this sweep's.
TrainConfig resumable_config(TrainConfig stored, const TrainConfig& wanted, const std::string& dir) {
  nlohmann::json a = to_json(stored), b = to_json(wanted);
  for (const char* free : {"epochs", "threads", "loader_threads", "image_size"}) {
    a.erase(free);
    b.erase(free);
  }
  std::string differences;
  for (const auto& [key, value] : b.items()) {
    if (!a.contains(key) || a[key] != value) {
      differences += fmt::format("{}{} {} (now {})", differences.empty() ? "" : ", ", key,
                                 a.contains(key) ? a[key].dump() : "unset", value.dump());
    }
  }
  if (!differences.empty()) {
    throw std::invalid_argument(fmt::format(
        "{} was trained with other options: {}. Use another --out, or the run's options (only "
        "--epochs and --threads may change when a run is continued)", dir, differences));
  }
  stored.epochs = wanted.epochs;
  stored.threads = wanted.threads;
  stored.loader_threads = wanted.loader_threads;
  return stored;
}

}  // namespace

void add_sweep_command(CLI::App& app) {
  auto cli = std::make_shared<TrainCli>();
  auto lambdas = std::make_shared<std::vector<double>>(std::vector<double>{0, 1e-4, 1e-3, 1e-2, 1e-1});
  auto out = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("sweep", "train one run per lambda and draw the grid of feature plots");
  add_train_options(*cmd, *cli);
  cmd->add_option("--lambdas", *lambdas, "comma-separated lambda values in [0, 1000]")
      ->delimiter(',')
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  cmd->add_option("--out", *out, "sweep folder")->required();
  cmd->callback([cli, lambdas, out] {
    const TrainConfig base = resolve_train_config(*cli);
    const std::string dir = absolute_path(*out);
    make_dirs(dir);
    std::set<std::string> folders;
    for (double lambda : *lambdas) {  // the folder name is the lambda's short form
      if (!folders.insert(fmt::format("lambda_{:g}", lambda)).second) {
        throw CLI::ValidationError("--lambdas", fmt::format("{:g} is listed twice", lambda));
      }
    }
    nlohmann::json results = nlohmann::json::array();
    std::string table = "| lambda | closed-set test accuracy | run |\n|---:|---:|---|\n";
    for (double lambda : *lambdas) {
      TrainConfig config = base;
      config.lambda = lambda;
      RunOptions run = cli->run;
      run.out_dir = path_join(dir, fmt::format("lambda_{:g}", lambda));
      run.progress = !cli->no_progress;
      run.outputs = !cli->no_outputs;
      run.resume = is_file(path_join(run.out_dir, kCheckpointFile));
      if (run.resume) {  // continue it only if it was trained with these options
        run.checkpoint = std::make_shared<CheckpointFile>(path_join(run.out_dir, kCheckpointFile));
        config = resumable_config(run.checkpoint->config(), config, run.out_dir);
      }
      fmt::print(stderr, "== lambda = {:g} -> {}\n", lambda, run.out_dir);
      const TrainSummary summary = train(config, run);
      results.push_back({{"lambda", lambda}, {"test_accuracy", summary.test_accuracy},
                         {"epochs", summary.epochs}, {"run", run.out_dir}});
      table += fmt::format("| {:g} | {:.2f}% | {} |\n", lambda, 100.0 * summary.test_accuracy,
                           base_name(run.out_dir));
    }
    std::ofstream(path_join(dir, "sweep.json")) << results.dump(2) << '\n';
    std::ofstream(path_join(dir, "sweep.md")) << table;
    if (cli->no_outputs) {  // the grid needs each run's test features
      fmt::print("{}\nsweep folder: {}\n", table, dir);
      return;
    }
    run_plot_script(cli->run.python, "sweep_grid.py", {path_join(dir, "sweep.json"), path_join(dir, "sweep_grid.png")});
    fmt::print("{}\nsweep folder: {}\nfigure:       {}\n", table, dir, path_join(dir, "sweep_grid.png"));
  });
}

}  // namespace centerloss::trainer
