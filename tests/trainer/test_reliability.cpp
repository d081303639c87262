// What keeps a run safe: a resume from any step within an epoch equals an uninterrupted run
// bitwise; a non-finite loss stops before the step is applied; run folders are locked and never
// replaced unless asked; a resume accepts repeated options and names real changes.
#include <torch/torch.h>

#include <fstream>

#include "train/checkpoint_schedule.h"
#include "train/resume_config.h"
#include "train/run.h"
#include "train/run_folder.h"
#include "train/trainer.h"
#include "test_util.h"
#include "tiny_run.h"

using namespace centerloss::trainer;
using namespace centerloss::trainer::tiny;

namespace {

struct StopHere {};  // thrown by the test's step hook: a crash right after a checkpoint

std::vector<nlohmann::json> metrics_without_time(const std::string& path) {
  std::vector<nlohmann::json> records = read_metrics(path);
  for (auto& r : records) {  // the timings and rates, which no two runs share
    for (const char* key : {"seconds", "ms_per_step", "images_per_s", "decode_images_per_s", "data_wait_s"}) {
      r.erase(key);
    }
  }
  return records;
}

}  // namespace

// Epoch 1 is cut after `stop` steps, its checkpoint written as --checkpoint-every would write
// it; train() then resumes it. Weights, centers, optimizer state and metrics equal the
// uninterrupted run's.
class MidEpochResume : public ::testing::TestWithParam<int> {};

TEST_P(MidEpochResume, EqualsAnUninterruptedRunBitwise) {
  TempDir dir;
  TrainConfig config = tiny_config();
  config.log_every = 1;  // a metrics line after every step
  train(config, quiet(dir / "straight"));

  const std::string cut = dir / "cut";
  {
    // The first steps as train() runs them, stopped after `stop` of them.
    FolderLock lock(cut);
    TrainState state = make_state(config);
    const Dataset data = load_split(kDefaultDataDir, Split::Train, config.classes);
    Dataset first;
  first.images = data.images.slice(0, 0, 256);
  first.labels = data.labels.slice(0, 0, 256);
    const torch::Tensor targets = remap_labels(first.labels, config.classes);
    MetricsWriter metrics(path_join(cut, "metrics.jsonl"), -1);
    const int stop = GetParam();
    const AfterStep hook = [&](TrainState& s) {
      if (s.progress.step == stop) {
        save_checkpoint(path_join(cut, kCheckpointFile), s);
        throw StopHere{};
      }
    };
    EXPECT_THROW(train_epoch(state, first, targets, epoch_order(config.seed, 1, 256),
                             learning_rate(config, 1), "cut", false, &metrics, 1, hook),
                 StopHere);
    // a line written after the checkpoint, which the resume must drop
    metrics.write({{"kind", "step"}, {"epoch", 1}, {"step", stop + 1}});
  }
  const CheckpointFile checkpoint(path_join(cut, kCheckpointFile));
  TrainState partial = make_state(config);
  CheckpointFile(path_join(cut, kCheckpointFile)).restore(partial);
  EXPECT_EQ(partial.epoch, 0);
  EXPECT_EQ(partial.progress.step, GetParam());

  train(config, quiet(cut, StartMode::Resume));
  TrainState a = load_run(dir / "straight"), b = load_run(cut);
  expect_same_state(a, b);
  EXPECT_EQ(b.epoch, 2);
  EXPECT_EQ(b.progress.step, 0);
  EXPECT_EQ(metrics_without_time(dir / "straight/metrics.jsonl"), metrics_without_time(cut + "/metrics.jsonl"));
}

INSTANTIATE_TEST_SUITE_P(Steps, MidEpochResume, ::testing::Values(1, 2, 3, 4));

TEST(Divergence, ANonFiniteLossStopsBeforeTheStepIsApplied) {
  const TrainConfig config = tiny_config();
  TrainState state = make_state(config);
  {
    torch::NoGradGuard no_grad;
    state.model->named_parameters()["classifier.bias"].fill_(std::numeric_limits<float>::infinity());
  }
  const std::vector<torch::Tensor> before = [&] {
    std::vector<torch::Tensor> copies;
    for (const auto& p : state.model->parameters()) copies.push_back(p.detach().clone());
    return copies;
  }();
  const Dataset data = load_split(kDefaultDataDir, Split::Train, config.classes);
  Dataset first;
  first.images = data.images.slice(0, 0, 64);
  first.labels = data.labels.slice(0, 0, 64);
  expect_error<TrainingDiverged>(
      [&] {
        train_epoch(state, first, remap_labels(first.labels, config.classes), epoch_order(1, 1, 64),
                    0.05, "x", false, nullptr, 1);
      },
      "the loss is not finite at epoch 1, step 1 of 1");
  const auto params = state.model->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::equal(params[i].nan_to_num(), before[i].nan_to_num())) << i;
  }
  EXPECT_EQ(state.progress.step, 0);
  // "continue" trains on
  const EpochStats stats = train_epoch(state, first, remap_labels(first.labels, config.classes),
                                       epoch_order(1, 1, 64), 0.05, "x", false, nullptr, 1, {},
                                       OnNonfinite::Continue);
  EXPECT_EQ(stats.steps, 1);
  EXPECT_TRUE(std::isnan(stats.softmax));
}

TEST(RunFolder, ANewRunRefusesAnotherRunsFilesAndOverwriteDeletesOnlyThose) {
  TempDir dir;
  EXPECT_FALSE(prepare_run_folder(dir.path(), StartMode::New));  // empty: fine
  std::ofstream(dir / "log.txt") << "not a run file\n";
  EXPECT_FALSE(prepare_run_folder(dir.path(), StartMode::New));
  std::ofstream(dir / "report.md") << "results\n";
  expect_error<std::invalid_argument>([&] { prepare_run_folder(dir.path(), StartMode::New); },
                                      "holds another run (report.md)");
  expect_error<std::invalid_argument>([&] { prepare_run_folder(dir.path(), StartMode::ResumeAuto); },
                                      "holds results (report.md) but no checkpoint.pt");
  expect_error<std::invalid_argument>([&] { prepare_run_folder(dir.path(), StartMode::Resume); },
                                      "has no checkpoint.pt to continue (it holds report.md)");
  EXPECT_FALSE(prepare_run_folder(dir.path(), StartMode::Overwrite));
  EXPECT_FALSE(path_exists(dir / "report.md"));
  EXPECT_TRUE(path_exists(dir / "log.txt"));
  // What a run killed before its first checkpoint leaves: auto starts it again.
  std::ofstream(dir / "config.json") << "{}\n";
  std::ofstream(dir / "checkpoint.pt.tmp") << "half";
  EXPECT_FALSE(prepare_run_folder(dir.path(), StartMode::ResumeAuto));
  EXPECT_FALSE(path_exists(dir / "config.json"));
  std::ofstream(dir / "checkpoint.pt") << "x";
  EXPECT_TRUE(prepare_run_folder(dir.path(), StartMode::Resume));
  EXPECT_TRUE(prepare_run_folder(dir.path(), StartMode::ResumeAuto));
}

TEST(RunFolder, OneLockHolderAtATime) {
  TempDir dir;
  {
    FolderLock first(dir / "run");
    expect_error([&] { FolderLock second(dir / "run"); },
                 "is in use by another centerloss process (pid " + std::to_string(::getpid()) + ")");
  }
  FolderLock again(dir / "run");  // released with the first
}

TEST(CheckpointEvery, ParsesStepsAndTimes) {
  EXPECT_EQ(parse_checkpoint_every("500").steps, 500);
  EXPECT_EQ(parse_checkpoint_every("500steps").steps, 500);
  EXPECT_EQ(parse_checkpoint_every("90s").seconds, 90.0);
  EXPECT_EQ(parse_checkpoint_every("10min").seconds, 600.0);
  EXPECT_EQ(parse_checkpoint_every("2h").seconds, 7200.0);
  const CheckpointEvery none = parse_checkpoint_every("0");
  EXPECT_EQ(none.steps, 0);
  EXPECT_EQ(none.seconds, 0.0);
  for (const char* bad : {"", "ten", "-5", "1.5", "5 min", "3days", "nan"}) {
    expect_error<std::invalid_argument>([&] { parse_checkpoint_every(bad); }, "--checkpoint-every");
  }
  CheckpointClock clock(parse_checkpoint_every("2"));
  clock.step();
  EXPECT_FALSE(clock.due());
  clock.step();
  EXPECT_TRUE(clock.due());
  clock.reset();
  EXPECT_FALSE(clock.due());
}

TEST(ResumeConfig, RepeatedOptionsAreAcceptedAndChangesNamed) {
  TrainConfig stored = tiny_config();
  TrainConfig wanted = stored;
  wanted.epochs = 5;
  wanted.threads = 1;
  const TrainConfig same = resume_config(stored, wanted, {"train_limit", "lr", "epochs", "threads"}, "R");
  EXPECT_EQ(same.epochs, 5);
  EXPECT_EQ(same.threads, 1);
  EXPECT_EQ(same.train_limit, stored.train_limit);
  wanted.train_limit = 500;
  wanted.lr = 0.2;
  wanted.seed = 9;  // not given on the command line: the stored value stays
  try {
    resume_config(stored, wanted, {"train_limit", "lr", "epochs"}, "R");
    ADD_FAILURE() << "a changed --train-limit was accepted";
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'R' was trained with other options: --train-limit 256 (now 500), "
                           "--lr 0.05 (now 0.2)"), std::string::npos) << message;
    EXPECT_EQ(message.find("seed"), std::string::npos) << message;
  }
  EXPECT_EQ(config_key_of_option("--train-limit"), "train_limit");
  EXPECT_EQ(config_key_of_option("--holdout"), "classes");
  EXPECT_EQ(config_key_of_option("--data"), "data_dir");
  EXPECT_EQ(config_key_of_option("--out"), "");
  EXPECT_EQ(config_key_of_option("--checkpoint-every"), "");
}

// A stored config decides how much make_state() allocates: one that disagrees with the
// centers the file holds (an edited or hostile file asking for D = 3e9) is refused before
// anything is built, and a network too large for memory is an error, not an abort.
TEST(Checkpoint, AConfigThatDisagreesWithItsCentersIsRefusedBeforeBuilding) {
  TempDir dir;
  TrainState state = make_state(tiny_config());
  state.config.feature_dim = 3000000000;
  save_checkpoint(dir / "checkpoint.pt", state);
  expect_error([&] { CheckpointFile(dir / "checkpoint.pt").config(); },
               "is corrupt: its config has 10 classes and D = 3000000000, its centers are [10, 2]");
  TrainConfig huge = tiny_config();
  huge.feature_dim = 3000000000;
  expect_error<std::runtime_error>([&] { make_state(huge); },
                                   "cannot build the network of this config (D = 3000000000");
}
