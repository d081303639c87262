// `centerloss sweep`: the paper's Fig. 3 experiment. Trains one run per lambda (same seed and
// options otherwise) into --out/lambda_<value>/, then writes sweep.json, sweep.md and one grid
// figure of the test-feature scatters (scripts/plots/sweep_grid.py). A run whose checkpoint
// already has every epoch is not retrained, and an interrupted one is resumed.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/train_options.h"
#include "train/run.h"
#include "util/fs.h"

namespace centerloss::trainer {
namespace {

std::vector<double> parse_lambdas(const std::string& text) {
  std::vector<double> out;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    size_t used = 0;
    double value = -1;
    try {
      value = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || !(value >= 0)) {
      throw CLI::ValidationError("--lambdas", "'" + item + "' is not a number >= 0");
    }
    out.push_back(value);
  }
  if (out.empty()) throw CLI::ValidationError("--lambdas", "no value given");
  return out;
}

}  // namespace

void add_sweep_command(CLI::App& app) {
  auto cli = std::make_shared<TrainCli>();
  auto lambdas = std::make_shared<std::string>("0,1e-4,1e-3,1e-2,1e-1");
  auto out = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("sweep", "train one run per lambda and draw the grid of feature plots");
  add_train_options(*cmd, *cli);
  cmd->add_option("--lambdas", *lambdas, "comma-separated lambda values")->capture_default_str();
  cmd->add_option("--out", *out, "sweep folder")->required();
  cmd->callback([cli, lambdas, out] {
    const TrainConfig base = resolve_train_config(*cli);
    const std::string dir = absolute_path(*out);
    make_dirs(dir);
    nlohmann::json results = nlohmann::json::array();
    std::string table = "| lambda | closed-set test accuracy | run |\n|---:|---:|---|\n";
    for (double lambda : parse_lambdas(*lambdas)) {
      TrainConfig config = base;
      config.lambda = lambda;
      RunOptions run = cli->run;
      run.out_dir = path_join(dir, fmt::format("lambda_{:g}", lambda));
      run.progress = !cli->no_progress;
      run.resume = is_file(path_join(run.out_dir, kCheckpointFile));
      fmt::print(stderr, "== lambda = {:g} -> {}\n", lambda, run.out_dir);
      const TrainSummary summary = train(config, run);
      results.push_back({{"lambda", lambda}, {"test_accuracy", summary.test_accuracy},
                         {"epochs", summary.epochs}, {"run", run.out_dir}});
      table += fmt::format("| {:g} | {:.2f}% | {} |\n", lambda, 100.0 * summary.test_accuracy,
                           base_name(run.out_dir));
    }
    std::ofstream(path_join(dir, "sweep.json")) << results.dump(2) << '\n';
    std::ofstream(path_join(dir, "sweep.md")) << table;
    run_plot_script(cli->run.python, "sweep_grid.py", {path_join(dir, "sweep.json"), path_join(dir, "sweep_grid.png")});
    fmt::print("{}\nsweep folder: {}\nfigure:       {}\n", table, dir, path_join(dir, "sweep_grid.png"));
  });
}

}  // namespace centerloss::trainer
