// `centerloss sweep`: the paper's Fig. 3 experiment. Trains one run per lambda (same seed and
// options otherwise) into --out/lambda_<value>/, then writes sweep.json, sweep.md and one grid
// figure of the test-feature scatters (scripts/plots/sweep_grid.py).
//
// A folder that already holds a sweep is continued only with --resume (a finished run is not
// retrained, an interrupted one resumes, each only with its own options) or replaced with
// --overwrite. A run whose loss turns non-finite is recorded as diverged and the sweep goes on.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <set>
#include <stdexcept>

#include "cli/commands.h"
#include "cli/train_options.h"
#include "train/resume_config.h"
#include "train/run.h"
#include "util/fs.h"

namespace centerloss::trainer {
namespace {

const std::vector<std::string> kSweepFiles = {"sweep.json", "sweep.md", "sweep_grid.png",
                                              "sweep.json.tmp", "sweep.md.tmp"};

std::string run_folder_name(double lambda) { return fmt::format("lambda_{:g}", lambda); }

// The sweep's own files and its runs' folders (lambda_*/ holding run files) in `dir`.
std::vector<std::string> sweep_contents(const std::string& dir) {
  std::vector<std::string> found = run_files_in(dir);  // a run trained straight into the folder
  for (const auto& name : kSweepFiles) {
    if (path_exists(path_join(dir, name))) found.push_back(name);
  }
  for (const auto& name : list_dir(dir)) {
    if (name.rfind("lambda_", 0) == 0 && !run_files_in(path_join(dir, name)).empty()) {
      found.push_back(name + "/");
    }
  }
  return found;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// Applies the sweep's --resume/--overwrite to its folder; returns true when runs already there
// are continued.
bool prepare_sweep_folder(const std::string& dir, StartMode mode) {
  const std::vector<std::string> found = sweep_contents(dir);
  switch (mode) {
    case StartMode::New:
      if (!found.empty()) {
        throw std::invalid_argument(fmt::format(
            "'{}' holds a sweep ({}). Add --resume to continue it, --overwrite to delete its "
            "results and start again, or choose another --out", dir, join(found)));
      }
      return false;
    case StartMode::Overwrite:
      remove_files(dir, kSweepFiles);
      remove_files(dir, run_files_in(dir));
      for (const auto& name : list_dir(dir)) {
        if (name.rfind("lambda_", 0) == 0) {
          const std::string run = path_join(dir, name);
          remove_files(run, run_files_in(run));
        }
      }
      return false;
    case StartMode::Resume:
      if (found.empty()) {
        throw std::invalid_argument(fmt::format(
            "--resume: '{}' holds no sweep to continue; use --resume auto (continue or start) or "
            "drop --resume", dir));
      }
      return true;
    case StartMode::ResumeAuto:
      return true;
  }
  return false;
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
    const RunOptions options = run_options(*cli);
    std::set<std::string> folders;
    for (double lambda : *lambdas) {  // the folder name is the lambda's short form
      if (!folders.insert(run_folder_name(lambda)).second) {
        throw CLI::ValidationError("--lambdas", fmt::format("{:g} is listed twice", lambda));
      }
    }
    const std::string dir = absolute_path(*out);
    FolderLock lock(dir, "sweep folder");
    const bool continuing = prepare_sweep_folder(dir, options.start);
    nlohmann::json results = nlohmann::json::array();
    std::string table = "| lambda | closed-set test accuracy | run |\n|---:|---:|---|\n";
    std::vector<std::string> diverged;
    for (double lambda : *lambdas) {
      TrainConfig config = base;
      config.lambda = lambda;
      RunOptions run = options;
      run.out_dir = path_join(dir, run_folder_name(lambda));
      run.start = continuing ? StartMode::ResumeAuto : StartMode::New;
      const std::string checkpoint = path_join(run.out_dir, kCheckpointFile);
      fmt::print(stderr, "== lambda = {:g} -> {}\n", lambda, run.out_dir);
      bool stopped = continuing && is_file(path_join(run.out_dir, "diverged.json"));
      TrainSummary summary;
      if (stopped) {
        fmt::print(stderr, "diverged in an earlier attempt (diverged.json): not trained again\n");
      } else {
        if (continuing && is_file(checkpoint)) {  // continue it only if it was trained with these options
          run.checkpoint = std::make_shared<CheckpointFile>(checkpoint);
          config = resume_config(run.checkpoint->config(), config, all_config_keys(), run.out_dir);
        }
        try {
          summary = train(config, run);
        } catch (const TrainingDiverged& e) {  // recorded; the other lambdas still run
          fmt::print(stderr, "lambda {:g} diverged: {}\n", lambda, e.what());
          stopped = true;
        }
      }
      if (stopped) {
        diverged.push_back(fmt::format("{:g}", lambda));
        results.push_back({{"lambda", lambda}, {"status", "diverged"}, {"test_accuracy", nullptr},
                           {"epochs", nullptr}, {"run", run.out_dir}});
        table += fmt::format("| {:g} | diverged | {} |\n", lambda, base_name(run.out_dir));
        continue;
      }
      results.push_back({{"lambda", lambda}, {"status", "finished"},
                         {"test_accuracy", summary.test_accuracy}, {"epochs", summary.epochs},
                         {"run", run.out_dir}});
      table += fmt::format("| {:g} | {:.2f}% | {} |\n", lambda, 100.0 * summary.test_accuracy,
                           base_name(run.out_dir));
    }
    write_file_atomic(path_join(dir, "sweep.json"), [&](std::ostream& f) { f << results.dump(2) << '\n'; });
    write_file_atomic(path_join(dir, "sweep.md"), [&](std::ostream& f) { f << table; });
    const std::string note =
        diverged.empty() ? "" : fmt::format("diverged (no features, see each run's diverged.json): lambda {}\n",
                                            join(diverged));
    if (cli->no_outputs) {  // the grid needs each run's test features
      fmt::print("{}\n{}sweep folder: {}\n", table, note, dir);
      return;
    }
    run_plot_script(cli->run.python, "sweep_grid.py", {path_join(dir, "sweep.json"), path_join(dir, "sweep_grid.png")});
    fmt::print("{}\n{}sweep folder: {}\nfigure:       {}\n", table, note, dir, path_join(dir, "sweep_grid.png"));
  });
}

}  // namespace centerloss::trainer
