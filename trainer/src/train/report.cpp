#include "train/report.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <limits>

#include "util/fs.h"
#include "util/metrics.h"
#include "util/plots.h"
#include "util/progress.h"

namespace centerloss::trainer {

std::string write_run_outputs(const std::string& run_dir, const std::string& python) {
  auto file = [&](const char* name) { return path_join(run_dir, name); };
  std::ifstream config_file(file("config.json"));
  const nlohmann::json config = nlohmann::json::parse(config_file);
  const std::string title = fmt::format("{}, D={}, lambda={:g}, alpha={:g}", config["arch"].get<std::string>(),
                                        config["feature_dim"].get<int64_t>(),
                                        config["lambda"].get<double>(), config["alpha"].get<double>());
  // An image folder trained without --test-data has no test features to draw.
  const bool has_test = is_file(file("test_features.pt"));
  const bool scatter = has_test && run_plot_script(python, "scatter.py",
                                                   {file("test_features.pt"), file("scatter.png"),
                                                    "--title", title});
  const bool curves = run_plot_script(python, "curves.py",
                                      {file("metrics.jsonl"), file("curves.png"),
                                       "--title", title});

  // nlohmann writes a NaN or infinity (a diverged run) as null: read it back as NaN.
  auto number = [](const nlohmann::json& record, const char* key) {
    const auto& v = record.at(key);
    return v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN();
  };
  std::string epochs_table =
      "| epoch | lr | train softmax | train center | train acc | test acc | s/epoch | ms/step |\n"
      "|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  double total_seconds = 0;
  nlohmann::json last;
  for (const auto& r : read_metrics(file("metrics.jsonl"))) {
    if (r.value("kind", "") != "epoch") continue;
    total_seconds += number(r, "seconds");
    epochs_table += fmt::format("| {} | {:g} | {:.4f} | {:.4f} | {:.2f}% | {:.2f}% | {:.1f} | {:.1f} |\n",
                                r["epoch"].get<int64_t>(), number(r, "lr"),
                                number(r, "train_softmax"), number(r, "train_center"),
                                100 * number(r, "train_accuracy"), 100 * number(r, "test_accuracy"),
                                number(r, "seconds"), number(r, "ms_per_step"));
    last = r;
  }
  const std::string path = file("report.md");
  write_file_atomic(path, [&](std::ostream& out) {
    out << "# Center loss run: " << title << "\n\n";
    if (!last.is_null()) {
      out << fmt::format("{}. Training time {} ({} threads).\n\n",
                         has_test ? fmt::format("Closed-set test accuracy after epoch {}: **{:.2f}%**",
                                                last["epoch"].get<int64_t>(),
                                                100 * number(last, "test_accuracy"))
                                  : std::string("No test split (--test-data): no test accuracy"),
                         format_duration(total_seconds), config["threads"].get<int>());
    }
    out << epochs_table << "\n";
    out << (scatter    ? "![test features](scatter.png)\n\n"
            : has_test ? "(scatter.png missing: plotting failed)\n\n"
                       : "(no scatter.png: no test split)\n\n");
    out << (curves ? "![training curves](curves.png)\n\n" : "(curves.png missing: plotting failed)\n\n");
    out << "Configuration (config.json):\n\n```json\n" << config.dump(2) << "\n```\n";
  });
  return path;
}

}  // namespace centerloss::trainer
