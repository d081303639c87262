// `centerloss embed`: features of a data split through a run's network, written for torch.load.
// For an image folder, two text files go next to it: OUT.classes.txt (line i: the name of class
// id i) and OUT.files.txt (line n: the image file of feature row n).
#include <fmt/format.h>

#include <fstream>

#include "cli/commands.h"
#include "cli/train_options.h"
#include "embed/embed.h"
#include "train/run.h"
#include "train/run_data.h"
#include "util/fs.h"

namespace centerloss::trainer {
namespace {

// "feats.pt" -> "feats.<what>.txt"
std::string sidecar(const std::string& out, const std::string& what) {
  const bool pt = out.size() > 3 && out.compare(out.size() - 3, 3, ".pt") == 0;
  return (pt ? out.substr(0, out.size() - 3) : out) + "." + what + ".txt";
}

}  // namespace

void add_embed_command(CLI::App& app) {
  struct Options {
    std::string run, out, data, split = "test", classes, holdout;
    bool trained_only = false, flip_concat = false;
    int threads = 2, loader_threads = 2;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "embed", "write features [N,D], labels [N], centers [K,D], classes [K] of a split (torch.load)");
  cmd->add_option("--run", o->run, "run folder (with checkpoint.pt)")->required();
  cmd->add_option("--out", o->out, "output file, e.g. features.pt")->required();
  cmd->add_option("--data", o->data, "IDX directory or image folder (default: the run's, for --split)");
  cmd->add_option("--split", o->split, "test or train (IDX files; for image folders, which of the run's folders)")
      ->check(CLI::IsMember(enum_names(kSplitNames)))->capture_default_str();
  auto* classes = cmd->add_option("--classes", o->classes, "only these class ids (default: every class)");
  auto* holdout = cmd->add_option("--holdout", o->holdout, "every class except these")->excludes(classes);
  cmd->add_flag("--trained-only", o->trained_only, "only the classes the run was trained on")
      ->excludes(classes)->excludes(holdout);
  cmd->add_flag("--flip-concat", o->flip_concat,
                "features of each image and of its mirror image, concatenated ([N, 2D])");
  cmd->add_option("--threads", o->threads, "intra-op threads")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--loader-threads", o->loader_threads, "threads decoding image files")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->callback([o] {
    torch::set_num_threads(o->threads);
    TrainState state = load_run(o->run);
    const Split split = parse_split(o->split);
    Dataset dataset = load_data_for_run(state.config, o->data, split);
    if (o->trained_only) {
      dataset = keep_classes(dataset, state.config.classes);
    } else if (!o->classes.empty() || !o->holdout.empty()) {
      const int64_t count = dataset.size() > 0 ? dataset.labels.max().item<int64_t>() + 1 : 0;
      dataset = keep_classes(dataset, select_classes(parse_id_list(o->classes, "--classes"),
                                                     parse_id_list(o->holdout, "--holdout"), count));
    }
    EmbedOptions options;
    options.loader_threads = o->loader_threads;
    options.flip_concat = o->flip_concat;
    options.progress = true;
    const Embedding embedding = embed(state.model, dataset, options);
    save_embedding(o->out, embedding, state.center_loss->centers(), state.config.classes);
    fmt::print("wrote {}: features {}x{} of {}, centers {}x{}\n", o->out, embedding.features.size(0),
               embedding.features.size(1), dataset.files.empty() ? "the " + o->split + " split" : "the image folder",
               state.center_loss->centers().size(0), state.center_loss->centers().size(1));
    if (!dataset.files.empty()) {
      write_file_atomic(sidecar(o->out, "classes"), [&](std::ostream& f) {
        for (const std::string& name : dataset.class_names) f << name << '\n';
      });
      const auto* rows = embedding.samples.data_ptr<int64_t>();
      write_file_atomic(sidecar(o->out, "files"), [&](std::ostream& f) {
        for (int64_t n = 0; n < embedding.samples.numel(); ++n) f << dataset.files[static_cast<size_t>(rows[n])] << '\n';
      });
      fmt::print("     {} (class id -> name), {} (row -> file)\n", sidecar(o->out, "classes"),
                 sidecar(o->out, "files"));
    }
  });
}

}  // namespace centerloss::trainer
