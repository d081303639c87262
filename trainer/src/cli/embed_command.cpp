// `centerloss embed`: features of a data split through a run's network, written for torch.load.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/train_options.h"
#include "embed/embed.h"
#include "train/run.h"

namespace centerloss::trainer {

void add_embed_command(CLI::App& app) {
  struct Options {
    std::string run, out, data, split = "test", classes, holdout;
    bool trained_only = false;
    int threads = 2;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "embed", "write features [N,D], labels [N], centers [K,D], classes [K] of a split (torch.load)");
  cmd->add_option("--run", o->run, "run folder (with checkpoint.pt)")->required();
  cmd->add_option("--out", o->out, "output file, e.g. features.pt")->required();
  cmd->add_option("--data", o->data, "data directory (default: the run's)");
  cmd->add_option("--split", o->split, "test or train")->check(CLI::IsMember(enum_names(kSplitNames)))->capture_default_str();
  auto* classes = cmd->add_option("--classes", o->classes, "only these class ids (default: every class)");
  auto* holdout = cmd->add_option("--holdout", o->holdout, "every class except these")->excludes(classes);
  cmd->add_flag("--trained-only", o->trained_only, "only the classes the run was trained on")
      ->excludes(classes)->excludes(holdout);
  cmd->add_option("--threads", o->threads, "intra-op threads")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->callback([o] {
    torch::set_num_threads(o->threads);
    TrainState state = load_run(o->run);
    const std::string data = o->data.empty() ? state.config.data_dir : o->data;
    const std::vector<int64_t> keep =
        o->trained_only ? state.config.classes : resolve_classes(data, o->classes, o->holdout);
    const Dataset dataset = load_split(data, parse_split(o->split), keep);
    const Embedding embedding = embed(state.model, dataset);
    save_embedding(o->out, embedding, state.center_loss->centers(), state.config.classes);
    fmt::print("wrote {}: features {}x{} of the {} split, centers {}x{}\n", o->out, embedding.features.size(0),
               embedding.features.size(1), o->split, state.center_loss->centers().size(0),
               state.center_loss->centers().size(1));
  });
}

}  // namespace centerloss::trainer
