#include "cli/train_options.h"

#include <fmt/format.h>

#include <tuple>

namespace centerloss::trainer {

void add_train_options(CLI::App& cmd, TrainCli& cli) {
  TrainConfig& c = cli.config;
  cmd.add_option("--data", c.data_dir, "IDX files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz], "
                 "or an image folder DIR/<class>/<image>.{png,jpg,jpeg,bmp}")
      ->capture_default_str();
  cmd.add_option("--test-data", c.test_data_dir, "image folders: the closed-set test split (same class "
                 "folders; default: none, no test accuracy)");
  cmd.add_option("--image-size", cli.image_size, "image folders: network input HxW, e.g. 100x100 or "
                 "112x96 (resize, then centre-crop); default: the images' common size");
  cmd.add_option("--channels", cli.channels, "1 (grey) or 3 (RGB); default: 1 for IDX, 3 for image folders")
      ->check(CLI::IsMember({1, 3}));
  cmd.add_flag("--no-flip", cli.no_flip, "image folders: no random horizontal flips (on by default)");
  cmd.add_flag("--skip-bad-images", cli.run.skip_bad_images,
               "image folders: leave unreadable image files out (and list them) instead of stopping");
  cmd.add_option("--loader-threads", c.loader_threads, "background threads preparing batches (0: none)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  auto* classes = cmd.add_option("--classes", cli.classes, "train on these class ids only, e.g. 0,1,2");
  cmd.add_option("--holdout", cli.holdout, "train on every class except these, e.g. 7,8,9")
      ->excludes(classes);
  cmd.add_option("--train-limit", c.train_limit, "use the first N training samples (0: all)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd.add_option("--test-limit", c.test_limit, "evaluate on the first N test samples (0: all)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd.add_option("--arch", cli.arch, "network: lenets++ (the paper's), small, or face (residual CNN for "
                 "colour images such as 100x100 face crops)")
      ->check(CLI::IsMember(enum_names(kArchNames)))->capture_default_str();
  cmd.add_option("--feature-dim", c.feature_dim, "feature dimension D (2 for pictures)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd.add_option("--epochs", c.epochs, "epochs in total")->check(CLI::PositiveNumber)->capture_default_str();
  cmd.add_option("--batch-size", c.batch_size, "samples per step (per process under torchrun)")->check(CLI::PositiveNumber)->capture_default_str();
  cmd.add_option("--lr", c.lr, "SGD learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  cmd.add_option("--momentum", c.momentum, "SGD momentum")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd.add_option("--weight-decay", c.weight_decay, "SGD weight decay")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd.add_option("--lr-step", c.lr_step, "multiply lr by --lr-gamma every N epochs (0: never)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd.add_option("--lr-gamma", c.lr_gamma, "step schedule factor")->check(CLI::PositiveNumber)->capture_default_str();
  cmd.add_option("--lambda", c.lambda, "weight of the center loss: L = L_S + lambda * L_C")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd.add_option("--alpha", c.alpha, "center learning rate of the paper/mean rules, in (0, 1]")
      ->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd.add_option("--reduction", cli.reduction, "center loss reduction: mean (authors' code), sum (paper), none")
      ->check(CLI::IsMember(enum_names(kReductionNames)))->capture_default_str();
  cmd.add_option("--update", cli.update, "center update rule: paper, mean (IJCV) or gradient (an optimizer)")
      ->check(CLI::IsMember(enum_names(kUpdateNames)))->capture_default_str();
  cmd.add_option("--margin", c.margin, "generalised center loss margin rho >= 0")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd.add_option("--init", cli.init, "center initialisation: zeros, normal, xavier, first_sight")
      ->check(CLI::IsMember(enum_names(kInitNames)))->capture_default_str();
  cmd.add_option("--init-std", c.init_std, "std of --init normal")->check(CLI::PositiveNumber)->capture_default_str();
  cmd.add_option("--center-lr", c.center_lr, "--update gradient: lr of the centers' SGD (gradient / lambda)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd.add_option("--seed", c.seed, "random seed (weights and sample order)")->capture_default_str();
  cmd.add_option("--threads", c.threads, "intra-op threads")->check(CLI::PositiveNumber)->capture_default_str();
  cmd.add_option("--log-every", c.log_every, "steps per 'step' line in metrics.jsonl")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd.add_flag("--no-progress", cli.no_progress, "no progress bar");
  cmd.add_flag("--no-outputs", cli.no_outputs, "skip test features, figures and report at the end");
  cmd.add_option("--python", cli.run.python, "python with matplotlib and torch, for the figures")
      ->capture_default_str();
  auto* resume = cmd.add_option("--resume", cli.resume,
                                "continue the run in --out from its last checkpoint; '--resume "
                                "auto': continue if there is one, else start")
                     ->expected(0, 1)
                     ->check(CLI::Validator(
                         [](std::string& value) {
                           return value.empty() || value == "auto"
                                      ? std::string()
                                      : "expected nothing or 'auto', got '" + value + "'";
                         },
                         "[auto]"));
  cli.resume_option = resume;
  cmd.add_flag("--overwrite", cli.overwrite, "delete the results of a run already in --out and start again")
      ->excludes(resume);
  cmd.add_option("--checkpoint-every", cli.checkpoint_every,
                 "also checkpoint within an epoch: N steps (500), a time (90s, 10min, 2h) or 0")
      ->capture_default_str();
  cmd.add_option("--on-nonfinite", cli.on_nonfinite,
                 "a NaN/infinite loss: stop (exit code 3, last good checkpoint kept) or continue")
      ->check(CLI::IsMember(enum_names(kOnNonfiniteNames)))->capture_default_str();
}

StartMode start_mode(const TrainCli& cli) {
  if (cli.overwrite) return StartMode::Overwrite;
  if (cli.resume_option == nullptr || cli.resume_option->count() == 0) return StartMode::New;
  return cli.resume == "auto" ? StartMode::ResumeAuto : StartMode::Resume;
}

RunOptions run_options(const TrainCli& cli) {
  RunOptions run = cli.run;
  run.start = start_mode(cli);
  run.progress = !cli.no_progress;
  run.outputs = !cli.no_outputs;
  run.checkpoint_every = parse_checkpoint_every(cli.checkpoint_every);
  run.on_nonfinite = parse_enum(kOnNonfiniteNames, cli.on_nonfinite, "--on-nonfinite");
  return run;
}

std::vector<int64_t> resolve_classes(const std::string& data_dir, const std::string& classes,
                                     const std::string& holdout) {
  return select_classes(parse_id_list(classes, "--classes"), parse_id_list(holdout, "--holdout"),
                        count_classes(data_dir));
}

TrainConfig resolve_train_config(const TrainCli& cli) {
  TrainConfig config = cli.config;
  config.arch = parse_arch(cli.arch);
  config.reduction = parse_reduction(cli.reduction);
  config.update = parse_update(cli.update);
  config.init = parse_init(cli.init);
  if (config.alpha <= 0.0) throw std::invalid_argument("--alpha must be in (0, 1]");
  config.classes = resolve_classes(config.data_dir, cli.classes, cli.holdout);
  // IDX files are grey at their own size; image folders are RGB, flipped, at --image-size (0x0:
  // the images' common size, found when training starts).
  const bool idx = is_idx_dir(config.data_dir);
  config.class_names = data_class_names(config.data_dir);
  config.channels = cli.channels > 0 ? cli.channels : (idx ? 1 : 3);
  config.flip = !idx && !cli.no_flip;
  if (idx && !cli.image_size.empty()) {
    throw std::invalid_argument(fmt::format("--image-size: '{}' holds IDX files, which are used at "
                                            "their own size", config.data_dir));
  }
  config.image_height = config.image_width = 0;
  if (!cli.image_size.empty()) std::tie(config.image_height, config.image_width) = parse_image_size(cli.image_size);
  return config;
}

}  // namespace centerloss::trainer
