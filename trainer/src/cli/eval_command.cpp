// `centerloss eval`: closed-set accuracy of a run's checkpoint on a data split.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "embed/embed.h"
#include "train/run.h"
#include "train/run_data.h"

namespace centerloss::trainer {

void add_eval_command(CLI::App& app) {
  struct Options {
    std::string run, data, split = "test";
    int threads = 2, loader_threads = 2;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("eval", "closed-set accuracy of a trained run");
  cmd->add_option("--run", o->run, "run folder (with checkpoint.pt)")->required();
  cmd->add_option("--data", o->data, "IDX directory or image folder (default: the run's, for --split)");
  cmd->add_option("--split", o->split, "test or train (IDX files; for image folders, which of the run's folders)")
      ->check(CLI::IsMember(enum_names(kSplitNames)))->capture_default_str();
  cmd->add_option("--threads", o->threads, "intra-op threads")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--loader-threads", o->loader_threads, "threads decoding image files")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_flag("--json", o->json, "print one JSON object instead of text");
  cmd->callback([o] {
    torch::set_num_threads(o->threads);
    TrainState state = load_run(o->run);
    const Dataset dataset = load_data_for_run(state.config, o->data, parse_split(o->split), state.config.classes);
    EmbedOptions embed_options;
    embed_options.loader_threads = o->loader_threads;
    embed_options.progress = !o->json;
    const Accuracy acc = closed_set_accuracy(embed(state.model, dataset, embed_options), state.config.classes);
    if (o->json) {
      fmt::print("{}\n", nlohmann::json{{"run", o->run}, {"split", o->split}, {"accuracy", acc.accuracy},
                                        {"softmax_loss", acc.softmax_loss}, {"samples", acc.count},
                                        {"epoch", state.epoch}}.dump());
    } else {
      fmt::print("{} split, {} samples of the {} trained classes: accuracy {:.2f}%, softmax loss {:.4f} "
                 "(checkpoint of epoch {})\n",
                 o->split, acc.count, state.config.classes.size(), 100.0 * acc.accuracy, acc.softmax_loss,
                 state.epoch);
    }
  });
}

}  // namespace centerloss::trainer
