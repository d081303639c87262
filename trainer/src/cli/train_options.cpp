#include "cli/train_options.h"

namespace centerloss::trainer {

void add_train_options(CLI::App& cmd, TrainCli& cli) {
  TrainConfig& c = cli.config;
  cmd.add_option("--data", c.data_dir, "directory with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]")
      ->capture_default_str();
  auto* classes = cmd.add_option("--classes", cli.classes, "train on these class ids only, e.g. 0,1,2");
  cmd.add_option("--holdout", cli.holdout, "train on every class except these, e.g. 7,8,9")
      ->excludes(classes);
  cmd.add_option("--train-limit", c.train_limit, "use the first N training samples (0: all)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd.add_option("--test-limit", c.test_limit, "evaluate on the first N test samples (0: all)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd.add_option("--arch", cli.arch, "network: lenets++ (the paper's) or small")
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
  return config;
}

}  // namespace centerloss::trainer
