#include "cli/commands.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <memory>
#include <set>
#include <stdexcept>

#include "data/dataset.h"
#include "embed/embed.h"
#include "eval/lfw_pairs.h"
#include "eval/pair_files.h"
#include "eval/openset_report.h"
#include "eval/pair_sampler.h"
#include "eval/report_json.h"
#include "train/run.h"
#include "train/run_data.h"
#include "util/fs.h"
#include "util/plots.h"

namespace centerloss::eval {

namespace {

struct OpensetArgs {
  std::string run_dir;
  std::string data_dir;  // empty: the run's own data directory
  std::string split = "test";
  std::string holdout;  // empty: every class the run did not train on
  std::string pairs_file;
  std::string class_names_file;
  int folds = 10;
  int64_t pairs_per_fold = 300;
  uint64_t pair_seed = 0;
  int64_t gallery_per_class = 1;
  uint64_t split_seed = 0;
  std::string similarity = "cosine";
  bool normalize = false;
  std::string out;  // empty: RUN/openset.json
  bool plot = true;
  std::string python;
  int threads = 2;
  int loader_threads = 2;
  bool flip_concat = false;
};

// "7,8,9". (Not fmt::join: torch's bundled fmt 12 headers shadow Debian's fmt 9 library, and
// join's out-of-line parts do not link.)
std::string join_ids(const std::vector<int64_t>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out;
}

// The ids, or their count when there are many (an LFW folder has thousands of classes).
std::string short_ids(const std::vector<int64_t>& ids) {
  return ids.size() <= 20 ? join_ids(ids) : fmt::format("{} classes", ids.size());
}

std::vector<int64_t> to_vector(const torch::Tensor& labels) {
  const auto c = labels.to(torch::kInt64).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// Held-out classes: given, or (without a pairs file) every class of the data the run did not
// train on. Empty with a pairs file and no --holdout: the pairs decide (openset_pairs).
std::vector<int64_t> heldout_classes(const OpensetArgs& args, const trainer::TrainConfig& config,
                                     const std::vector<int64_t>& labels) {
  if (!args.holdout.empty()) return trainer::parse_id_list(args.holdout, "--holdout");
  std::vector<int64_t> heldout;
  if (!args.pairs_file.empty()) return heldout;
  const std::set<int64_t> trained(config.classes.begin(), config.classes.end());
  const std::set<int64_t> present(labels.begin(), labels.end());
  for (int64_t c : present) {
    if (!trained.count(c)) heldout.push_back(c);
  }
  if (heldout.empty()) {
    throw std::invalid_argument("the run trained on every class of the data: give --holdout or --pairs");
  }
  return heldout;
}

struct OpensetPairs {
  std::vector<Pair> pairs;
  std::string source;  // the pairs file, or "sampled"
};

// The pairs of the verification protocol: read from --pairs (resolved to the data's samples)
// or sampled over the held-out classes. An empty `heldout` becomes the classes the pairs use.
OpensetPairs openset_pairs(const OpensetArgs& args, const trainer::Dataset& data,
                           const std::string& data_dir, const std::vector<int64_t>& labels,
                           std::vector<int64_t>& heldout) {
  OpensetPairs out;
  if (args.pairs_file.empty()) {
    PairSamplerOptions po;
    po.folds = args.folds;
    po.same_per_fold = args.pairs_per_fold;
    po.different_per_fold = args.pairs_per_fold;
    po.seed = args.pair_seed;
    out.pairs = sample_pairs(labels, heldout, po);
    out.source = "sampled";
    return out;
  }
  const PairList list = read_lfw_pairs_file(args.pairs_file);
  if (list.sets < 2) {
    // The verification accuracy takes each set's threshold from the other sets.
    throw std::invalid_argument(fmt::format(
        "{}: one set of pairs; openset cross-validates the verification threshold over the "
        "sets (fitted on the others), so it needs at least 2 (header 'SETS PAIRS_PER_SET')",
        args.pairs_file));
  }
  if (!data.files.empty()) {
    out.pairs = resolve_pairs_to_files(list, data_dir, data.files, labels);
  } else {
    const auto names = args.class_names_file.empty() ? std::vector<std::string>{}
                                                     : read_class_names_file(args.class_names_file);
    out.pairs = resolve_pairs(list, labels, names);
  }
  out.source = args.pairs_file;
  if (heldout.empty()) {  // identification and statistics on the classes the pairs use
    std::set<int64_t> used;
    for (const Pair& p : out.pairs) used.insert({labels[p.a], labels[p.b]});
    heldout.assign(used.begin(), used.end());
  }
  return out;
}

// Classes the run trained on are not open-set: warns for any among the held-out classes or
// those the pairs use (from --holdout, or from a pairs file), and returns them.
std::vector<int64_t> trained_classes_evaluated(const trainer::TrainConfig& config,
                                               const trainer::Dataset& data,
                                               const std::vector<int64_t>& labels,
                                               const std::vector<int64_t>& heldout,
                                               const std::vector<Pair>& pairs) {
  std::set<int64_t> evaluated(heldout.begin(), heldout.end());
  for (const Pair& p : pairs) evaluated.insert({labels[p.a], labels[p.b]});
  std::vector<int64_t> trained_on;
  for (int64_t c : evaluated) {
    if (std::count(config.classes.begin(), config.classes.end(), c)) {
      trained_on.push_back(c);
      fmt::print(stderr, "warning: class {}{} was trained on: not open-set\n", c,
                 data.files.empty() ? "" : " (" + data.class_names[static_cast<size_t>(c)] + ")");
    }
  }
  return trained_on;
}

// The numbers openset prints (the same as openset.json holds).
void print_openset_summary(const trainer::TrainConfig& config, const trainer::Accuracy& closed,
                           const OpenSetReport& report, const std::string& pair_source,
                           const nlohmann::json& seen, const std::string& out) {
  const VerificationReport& v = report.verification;
  if (closed.count > 0) {
    fmt::print("closed-set accuracy  {:.4f} ({} samples of classes {})\n", closed.accuracy,
               closed.count, short_ids(config.classes));
  } else {
    fmt::print("closed-set accuracy  none (no sample of the {} trained classes in the data)\n",
               config.classes.size());
  }
  fmt::print("open-set classes     {} ({} pairs: {} genuine, {} impostor; {})\n",
             short_ids(report.classes),
             v.genuine + v.impostors, v.genuine, v.impostors, pair_source);
  fmt::print("verification acc     {:.4f} +- {:.4f} ({} folds, threshold on the others)\n",
             v.accuracy.mean, v.accuracy.std, v.folds);
  fmt::print("ROC AUC              {:.4f}\n", v.auc);
  for (size_t k = 0; k < v.tar.size(); ++k) {
    fmt::print("TAR @ FAR {:<8g}   {:.4f} (FAR reached {:.4g}, {} impostors)\n", v.far_targets[k],
               v.tar[k].tar, v.tar[k].far, v.tar[k].num_impostors);
  }
  fmt::print("rank-1 identification {:.4f} ({} probes, gallery {} per class)\n",
             report.rank1.accuracy, report.rank1.probes, report.gallery_per_class);
  fmt::print("intra / inter        {:.4f} / {:.4f} = {:.4f} (held-out), {} (seen)\n",
             report.stats.intra, report.stats.inter, report.stats.ratio,
             !seen.contains("ratio") || seen["ratio"].is_null() ? std::string("n/a")
                                                      : fmt::format("{:.4f}", seen["ratio"].get<double>()));
  fmt::print("metrics              {}\n", out);
}

void run_openset(const OpensetArgs& args) {
  torch::set_num_threads(args.threads);
  trainer::TrainState state = trainer::load_run(args.run_dir);
  const trainer::TrainConfig& config = state.config;
  const auto split = trainer::parse_split(args.split);
  const std::string data_dir = args.data_dir.empty() ? trainer::default_data_dir(config, split) : args.data_dir;
  const trainer::Dataset data = trainer::load_data_for_run(config, data_dir, split);
  const bool image_folder = !data.files.empty();
  if (image_folder && !args.class_names_file.empty()) {
    throw std::invalid_argument("--class-names: an image folder names its classes by its sub-folders");
  }
  const std::vector<int64_t> labels = to_vector(data.labels);
  std::vector<int64_t> heldout = heldout_classes(args, config, labels);
  const OpensetPairs pairs = openset_pairs(args, data, data_dir, labels, heldout);
  const std::vector<int64_t> trained_on =
      trained_classes_evaluated(config, data, labels, heldout, pairs.pairs);

  // Pairs are resolved first: a bad pairs file fails before the embedding.
  fmt::print(stderr, "openset: embedding {} images of {}{}\n", data.size(), data_dir,
             args.flip_concat ? " (and their mirror images: --flip-concat)" : "");
  trainer::EmbedOptions embed_options;
  embed_options.loader_threads = args.loader_threads;
  embed_options.flip_concat = args.flip_concat;
  embed_options.progress = true;
  const trainer::Embedding emb = trainer::embed(state.model, data, embed_options);
  const trainer::Accuracy closed = trainer::closed_set_accuracy(emb, config.classes);

  OpenSetOptions options;
  options.similarity = parse_similarity(args.similarity);
  options.normalize = args.normalize;
  options.gallery_per_class = args.gallery_per_class;
  options.seed = args.split_seed;
  const OpenSetReport report = evaluate_openset(emb.features, labels, pairs.pairs, heldout, options);
  const torch::Tensor seen_x = args.normalize ? l2_normalize(emb.features) : emb.features;

  nlohmann::json j;
  j["run"] = args.run_dir;
  j["epoch"] = state.epoch;
  j["config"] = trainer::to_json(config);
  j["data_dir"] = data_dir;
  j["split"] = args.split;
  j["flip_concat"] = args.flip_concat;
  if (image_folder) j["class_names"] = data.class_names;  // label id -> class folder
  j["closed_set"] = {{"accuracy", closed.accuracy},
                     {"softmax_loss", closed.softmax_loss},
                     {"samples", closed.count},
                     {"classes", config.classes}};
  // A folder of other identities (LFW) holds no sample of the trained classes.
  j["feature_stats_seen"] = closed.count > 0 ? to_json(feature_stats(seen_x, labels, config.classes))
                                             : nlohmann::json(nullptr);
  j["open_set"] = to_json(report);
  j["open_set"]["pairs_source"] = pairs.source;
  j["open_set"]["pair_seed"] = args.pair_seed;
  j["open_set"]["trained_classes_evaluated"] = trained_on;  // should be empty

  const std::string out =
      args.out.empty() ? trainer::path_join(args.run_dir, "openset.json") : args.out;
  trainer::write_file_atomic(out, [&](std::ostream& f) { f << j.dump(2) << "\n"; });
  print_openset_summary(config, closed, report, pairs.source, j["feature_stats_seen"], out);

  if (args.plot) {
    const std::string png = trainer::path_join(trainer::parent_dir(out), "openset_roc.png");
    const std::string python = args.python.empty() ? trainer::default_python() : args.python;
    // The ROC script belongs to the experiment scripts, next to scripts/plots.
    if (trainer::run_plot_script(python, "../experiments/plot_roc.py", {out, png})) {
      fmt::print("ROC figure           {}\n", png);
    }
  }
}

}  // namespace
}  // namespace centerloss::eval

namespace centerloss::trainer {

void add_openset_command(CLI::App& app) {
  using eval::OpensetArgs;
  auto args = std::make_shared<OpensetArgs>();
  CLI::App* cmd = app.add_subcommand(
      "openset", "Open-set evaluation of a run: verification, identification, feature stats");
  cmd->add_option("--run", args->run_dir, "Run folder holding checkpoint.pt")->required();
  cmd->add_option("--data", args->data_dir,
                  "IDX directory or image folder (default: the run's, for --split)");
  cmd->add_option("--split", args->split, "Data split to evaluate: test | train")
      ->check(CLI::IsMember(enum_names(kSplitNames)))
      ->capture_default_str();
  cmd->add_option("--holdout", args->holdout,
                  "Held-out class ids, e.g. 7,8,9 (default: every class not trained on)");
  cmd->add_option("--pairs", args->pairs_file,
                  "Pairs in the LFW pairs.txt layout instead of sampled pairs (docs/openset.md); "
                  "over an image folder, 'name n' is DIR/name/name_NNNN.<ext>");
  cmd->add_flag("--flip-concat", args->flip_concat,
                "Features of each image and of its mirror image, concatenated (the paper's test trick)");
  cmd->add_option("--class-names", args->class_names_file,
                  "Names for --pairs: line i names class i (default: names are class ids)");
  cmd->add_option("--folds", args->folds, "Folds of sampled pairs")
      ->check(CLI::Range(2, std::numeric_limits<int>::max()))
      ->capture_default_str();
  cmd->add_option("--pairs-per-fold", args->pairs_per_fold,
                  "Genuine (and as many impostor) sampled pairs per fold")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--pair-seed", args->pair_seed, "Seed of the pair sampler")
      ->capture_default_str();
  cmd->add_option("--gallery-per-class", args->gallery_per_class,
                  "Gallery samples per class for rank-1 identification")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--split-seed", args->split_seed, "Seed of the gallery/probe split")
      ->capture_default_str();
  cmd->add_option("--similarity", args->similarity, "cosine | euclidean")
      ->check(CLI::IsMember(enum_names(eval::kSimilarityNames)))
      ->capture_default_str();
  cmd->add_flag("--normalize", args->normalize, "L2-normalise features first");
  cmd->add_option("--out", args->out, "Metrics JSON (default: RUN/openset.json)");
  cmd->add_flag("!--no-plot", args->plot, "Skip the ROC figure");
  cmd->add_option("--python", args->python, "Python that runs the plotting script");
  cmd->add_option("--threads", args->threads, "LibTorch CPU threads")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--loader-threads", args->loader_threads, "Threads decoding image files")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->callback([args] { eval::run_openset(*args); });
}

}  // namespace centerloss::trainer
