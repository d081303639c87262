// Short real training runs on the first few hundred Fashion-MNIST samples: the loss goes down,
// a resumed run equals an uninterrupted one bitwise, checkpoints and embeddings round-trip.
#include <torch/torch.h>
#include <zip.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <vector>

#include "embed/embed.h"
#include "train/run.h"
#include "train/trainer.h"
#include "test_util.h"
#include "tiny_run.h"

using namespace centerloss::trainer;

using namespace centerloss::trainer::tiny;

TEST(Training, FewStepsLowerTheLoss) {
  torch::set_num_threads(2);
  const TrainConfig config = tiny_config();
  TrainState state = make_state(config);
  const Dataset data = load_split(kDefaultDataDir, Split::Train, config.classes);
  const Dataset subset = limit_samples(data, 256);
  const torch::Tensor targets = remap_labels(subset.labels, config.classes);
  std::vector<double> losses;
  for (int64_t epoch = 1; epoch <= 12; ++epoch) {  // 12 x 4 steps of 64 samples
    const EpochStats s = train_epoch(state, subset, targets, epoch_order(1, epoch, 256), config.lr,
                                     "test", false, nullptr, epoch);
    losses.push_back(s.softmax + config.lambda * s.center);
  }
  EXPECT_LT(losses.back(), 0.8 * losses.front()) << losses.front() << " -> " << losses.back();
  EXPECT_GT(state.center_loss->centers().abs().sum().item<double>(), 0.0);  // centers moved
}

TEST(Training, SameSeedSameWeightsOtherSeedDifferent) {
  TempDir dir;
  TrainConfig config = tiny_config();
  config.epochs = 1;
  train(config, quiet(dir / "a"));
  train(config, quiet(dir / "b"));
  config.seed = 2;
  train(config, quiet(dir / "c"));
  TrainState a = load_run(dir / "a"), b = load_run(dir / "b"), c = load_run(dir / "c");
  expect_same_state(a, b);
  EXPECT_FALSE(torch::equal(a.center_loss->centers(), c.center_loss->centers()));
}

class ResumeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ResumeTest, ResumedRunEqualsUninterruptedRunBitwise) {
  TempDir dir;
  TrainConfig config = tiny_config();
  config.update = centerloss::UpdateRule::Gradient;
  if (GetParam() == "paper") config.update = centerloss::UpdateRule::Paper;
  config.lr_step = 1;  // the schedule must continue too
  train(config, quiet(dir / "straight"));

  TrainConfig first = config;
  first.epochs = 1;
  train(first, quiet(dir / "resumed"));
  const RunOptions resume = quiet(dir / "resumed", StartMode::Resume);
  const TrainSummary summary = train(config, resume);  // epochs = 2 again
  EXPECT_EQ(summary.epochs, 2);

  TrainState a = load_run(dir / "straight"), b = load_run(dir / "resumed");
  expect_same_state(a, b);
  EXPECT_FALSE(path_exists(dir / "resumed/checkpoint.pt.tmp"));
  // metrics.jsonl: one epoch line per epoch, none duplicated by the resume
  int epoch_lines = 0;
  for (const auto& r : read_metrics(dir / "resumed/metrics.jsonl")) epoch_lines += r["kind"] == "epoch";
  EXPECT_EQ(epoch_lines, 2);
}

INSTANTIATE_TEST_SUITE_P(Rules, ResumeTest, ::testing::Values("paper", "gradient"));

TEST(Training, CheckpointKeepsConfigAndEmbeddingRoundTrips) {
  TempDir dir;
  TrainConfig config = tiny_config();
  config.classes = {0, 3, 5};
  config.epochs = 1;
  config.feature_dim = 3;
  train(config, quiet(dir / "run"));
  TrainState state = load_run(dir / "run");
  EXPECT_EQ(state.config.classes, config.classes);
  EXPECT_EQ(state.config.feature_dim, 3);

  const Dataset test = load_split(kDefaultDataDir, Split::Test, {0, 3, 5, 9});
  const Embedding e = embed(state.model, test);
  EXPECT_EQ(e.features.sizes(), (std::vector<int64_t>{4000, 3}));
  const Accuracy acc = closed_set_accuracy(e, config.classes);
  EXPECT_EQ(acc.count, 3000);  // class 9 is not a trained class
  save_embedding(dir / "f.pt", e, state.center_loss->centers(), config.classes);
  std::ifstream in(dir / "f.pt", std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  const auto items = torch::pickle_load(bytes).toTupleRef().elements();
  ASSERT_EQ(items.size(), 4u);
  EXPECT_TRUE(torch::equal(items[0].toTensor(), e.features));
  EXPECT_TRUE(torch::equal(items[1].toTensor(), test.labels));
  EXPECT_EQ(items[2].toTensor().sizes(), (std::vector<int64_t>{3, 3}));
  EXPECT_TRUE(torch::equal(items[3].toTensor(), torch::tensor({0, 3, 5})));
}

TEST(Training, CorruptCheckpointIsACleanError) {
  TempDir dir;
  std::ofstream(dir / "checkpoint.pt") << "not a checkpoint";
  expect_error([&] { load_run(dir.path()); },
               "checkpoint '" + (dir / "checkpoint.pt") + "' cannot be loaded");
  expect_error([&] { load_run(dir / "missing"); }, "does not exist");
}

// A stored config (checkpoint, config.json) may have been edited by hand: values outside the
// CLI's ranges are refused by name instead of crashing later (batch_size 0 divided by zero).
TEST(Training, StoredConfigOutOfRangeIsRefusedByName) {
  centerloss::trainer::TrainConfig config;
  config.classes = {0, 1};
  const nlohmann::json good = centerloss::trainer::to_json(config);
  EXPECT_NO_THROW(centerloss::trainer::config_from_json(good));
  for (const auto& [field, bad] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"batch_size", 0}, {"epochs", 0}, {"lr", -1.0}, {"alpha", 1.5}, {"threads", 0},
           {"train_limit", -5}, {"classes", nlohmann::json::array()}}) {
    nlohmann::json j = good;
    j[field] = bad;
    try {
      centerloss::trainer::config_from_json(j);
      ADD_FAILURE() << field << " = " << bad.dump() << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  }
}

// Torch's archive reader does not verify what it reads: a flipped bit in the stored centers
// must be refused by the records' CRC-32, not loaded as a slightly different center.
TEST(Training, CheckpointWithAFlippedBitInTheCentersIsRefused) {
  TempDir dir;
  const TrainConfig config = tiny_config();
  TrainState state = make_state(config);
  {
    torch::NoGradGuard no_grad;
    state.center_loss->centers().fill_(1234.5f);  // a byte pattern to find in the file
  }
  const std::string path = dir / "checkpoint.pt";
  save_checkpoint(path, state);
  TrainState intact = make_state(config);
  CheckpointFile(path).restore(intact);
  EXPECT_TRUE(torch::equal(intact.center_loss->centers(), state.center_loss->centers()));

  std::vector<char> bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const float pattern = 1234.5f;
  const char* p = reinterpret_cast<const char*>(&pattern);
  const auto at = std::search(bytes.begin(), bytes.end(), p, p + sizeof(float));
  ASSERT_NE(at, bytes.end()) << "the centers' bytes are not in the file";
  at[1] ^= 0x01;  // 1234.5 becomes another finite float
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  TrainState damaged = make_state(config);
  expect_error([&] { CheckpointFile(path).restore(damaged); },
               "checkpoint '" + path + "' is corrupt: record 'archive/data/");

  // The config text is covered too: a seed changed in the file (still a valid config).
  save_checkpoint(path, state);
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string seed = "\"seed\":" + std::to_string(config.seed);
  const auto field = std::search(bytes.begin(), bytes.end(), seed.begin(), seed.end());
  ASSERT_NE(field, bytes.end()) << "the config's seed is not in the file";
  field[seed.size() - 1] = '7';
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  expect_error([&] { CheckpointFile(path).config(); },
               "checkpoint '" + path + "' is corrupt: record 'archive/data.pkl' fails its check");

  // The same edit with the record's CRC-32 made valid again (libzip rewrites it): the zip check
  // passes, and the checkpoint's own digest of what it restores refuses it.
  save_checkpoint(path, state);
  {
    int code = 0;
    zip_t* z = zip_open(path.c_str(), 0, &code);
    ASSERT_NE(z, nullptr) << code;
    const zip_int64_t index = zip_name_locate(z, "archive/data.pkl", 0);
    ASSERT_GE(index, 0);
    std::string record;
    {
      zip_stat_t st;
      ASSERT_EQ(zip_stat_index(z, static_cast<zip_uint64_t>(index), 0, &st), 0);
      record.resize(st.size);
      zip_file_t* f = zip_fopen_index(z, static_cast<zip_uint64_t>(index), 0);
      ASSERT_NE(f, nullptr);
      ASSERT_EQ(zip_fread(f, record.data(), record.size()), static_cast<zip_int64_t>(record.size()));
      zip_fclose(f);
    }
    const auto at_seed = record.find(seed);
    ASSERT_NE(at_seed, std::string::npos) << "the config's seed is not in data.pkl";
    record[at_seed + seed.size() - 1] = '7';
    zip_source_t* source = zip_source_buffer(z, record.data(), record.size(), 0);
    ASSERT_NE(source, nullptr);
    ASSERT_EQ(zip_file_replace(z, static_cast<zip_uint64_t>(index), source, 0), 0);
    ASSERT_EQ(zip_set_file_compression(z, static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0), 0);
    ASSERT_EQ(zip_close(z), 0) << zip_strerror(z);
  }
  EXPECT_EQ(CheckpointFile(path).config().seed, 7u);
  TrainState reseeded = make_state(config);
  expect_error([&] { CheckpointFile(path).restore(reseeded); },
               "checkpoint '" + path + "' is corrupt: its tensors do not match the CRC-32");
}
