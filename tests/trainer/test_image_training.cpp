// Training on generated image folders: the net learns the shapes, the class names and input
// shape travel with the checkpoint, a resumed run with flips equals an uninterrupted one, and
// the face network's shapes.
#include <torch/torch.h>

#include "data/batch_loader.h"
#include "embed/embed.h"
#include "image_fixtures.h"
#include "model/net.h"
#include "train/run.h"
#include "train/run_data.h"
#include "train/trainer.h"
#include "test_util.h"
#include "tiny_run.h"

using namespace centerloss::trainer;
using namespace centerloss::trainer::tiny;

namespace {

// tiny_config() on an image folder: RGB, flipped, at the images' common size, every class.
TrainConfig folder_config(const std::string& train_dir, const std::string& test_dir) {
  TrainConfig c = tiny_config();
  c.data_dir = train_dir;
  c.test_data_dir = test_dir;
  c.classes.clear();
  c.train_limit = c.test_limit = 0;
  c.channels = 3;
  c.image_height = c.image_width = 0;
  c.flip = true;
  c.feature_dim = 4;
  c.batch_size = 16;
  return c;
}

}  // namespace

TEST(ImageTraining, LearnsShapesAndKeepsClassNamesAndShapeInTheCheckpoint) {
  TempDir dir;
  fixtures::make_shape_folder(dir / "train", 3, 16, 24, 24, false);
  fixtures::make_shape_folder(dir / "test", 3, 6, 24, 24, false);
  TrainConfig config = folder_config(dir / "train", dir / "test");
  config.epochs = 8;
  const TrainSummary summary = train(config, quiet(dir / "run"));
  EXPECT_GT(summary.test_accuracy, 0.8) << "three shapes of three colours are not hard";

  TrainState state = load_run(dir / "run");
  EXPECT_EQ(state.config.class_names, (std::vector<std::string>{"class_a", "class_b", "class_c"}));
  EXPECT_EQ(state.config.image_height, 24);
  EXPECT_EQ(state.config.channels, 3);
  EXPECT_TRUE(state.config.flip);
  // eval/embed/openset read a folder by names: a foreign class gets an id after the run's.
  fixtures::make_shape_folder(dir / "other", 4, 2, 24, 24, false);
  remove_tree(dir / "other/class_a");
  const Dataset other = load_data_for_run(state.config, dir / "other", Split::Test);
  EXPECT_EQ(other.class_names, (std::vector<std::string>{"class_a", "class_b", "class_c", "class_d"}));
  EXPECT_TRUE(torch::equal(other.labels, torch::tensor({1, 1, 2, 2, 3, 3}, torch::kLong)));
  EmbedOptions flip_concat;
  flip_concat.flip_concat = true;
  const Embedding e = embed(state.model, other, flip_concat);
  ASSERT_EQ(e.features.sizes(), (std::vector<int64_t>{6, 8}));
  // [features of the image, features of its mirror image]
  const Embedding plain = embed(state.model, other);
  EXPECT_TRUE(torch::allclose(e.features.slice(1, 0, 4), plain.features));
  BatchLoader loader(other, torch::arange(6, torch::kLong), 6, LoaderOptions{});
  Batch batch;
  ASSERT_TRUE(loader.next(batch));
  torch::NoGradGuard no_grad;
  const torch::Tensor mirrored = state.model->forward(batch.images.flip({3})).features;
  EXPECT_TRUE(torch::allclose(e.features.slice(1, 4, 8), mirrored));
  EXPECT_FALSE(torch::allclose(mirrored, plain.features));
  expect_error<std::invalid_argument>([&] { load_data_for_run(state.config, kDefaultDataDir, Split::Test); },
                                      "holds IDX files, but the run was trained on the image folder");
}

TEST(ImageTraining, ResumedRunWithFlipsEqualsUninterruptedRunBitwise) {
  TempDir dir;
  fixtures::make_shape_folder(dir / "train", 2, 12, 24, 24, false);
  const TrainConfig config = folder_config(dir / "train", "");
  const TrainSummary straight = train(config, quiet(dir / "straight"));
  EXPECT_TRUE(std::isnan(straight.test_accuracy));  // no --test-data: no test accuracy
  TrainConfig first = config;
  first.epochs = 1;
  first.loader_threads = 0;  // the batches do not depend on the loader's threads
  train(first, quiet(dir / "resumed"));
  const RunOptions resume = quiet(dir / "resumed", StartMode::Resume);
  train(config, resume);
  TrainState a = load_run(dir / "straight"), b = load_run(dir / "resumed");
  expect_same_state(a, b);
  // Without flips the weights differ: the flips are part of the run.
  TrainConfig no_flip = config;
  no_flip.flip = false;
  train(no_flip, quiet(dir / "no_flip"));
  TrainState c = load_run(dir / "no_flip");
  EXPECT_FALSE(torch::equal(a.center_loss->centers(), c.center_loss->centers()));
}

TEST(ImageTraining, RefusedBeforeWritingAnything) {
  TempDir dir;
  fixtures::make_shape_folder(dir / "train", 2, 4);  // mixed sizes
  TrainConfig config = folder_config(dir / "train", "");
  expect_error<std::invalid_argument>([&] { train(config, quiet(dir / "run")); },
                                      "differ in size");
  config.image_height = config.image_width = 32;
  fixtures::make_shape_folder(dir / "test", 3, 2);  // class_c is not a training class
  config.test_data_dir = dir / "test";
  expect_error<std::runtime_error>([&] { train(config, quiet(dir / "run")); },
                                   "class 'class_c' is not one of the run's 2 classes");
  fixtures::write_bad_files(dir / "train/class_b");
  config.test_data_dir.clear();
  expect_error<std::runtime_error>([&] { train(config, quiet(dir / "run")); }, "not usable images");
  EXPECT_FALSE(path_exists(dir / "run"));
  // IDX data: grey at its own size only.
  TrainConfig idx;
  idx.classes = {0, 1};
  idx.channels = 3;
  expect_error<std::invalid_argument>([&] { train(idx, quiet(dir / "idx")); }, "--channels 3");
  EXPECT_FALSE(path_exists(dir / "idx"));
}

TEST(ImageTraining, SkippedBadFilesAreCountedAndTheRunFinishes) {
  TempDir dir;
  fixtures::make_shape_folder(dir / "train", 2, 8, 24, 24, false);
  const fixtures::BadFiles bad = fixtures::write_bad_files(dir / "train/class_a");
  TrainConfig config = folder_config(dir / "train", "");
  config.epochs = 1;
  config.image_height = config.image_width = 24;  // the bad files are 48x48
  RunOptions options = quiet(dir / "run");
  options.skip_bad_images = true;
  train(config, options);
  const auto metrics = read_metrics(dir / "run/metrics.jsonl");
  const auto& epoch = metrics.back();
  ASSERT_EQ(epoch["kind"], "epoch");
  EXPECT_EQ(epoch["bad_images"], 5);  // 3 at start-up, 2 by the loader
  EXPECT_TRUE(epoch["test_accuracy"].is_null());
  EXPECT_GT(epoch["images_per_s"].get<double>(), 0.0);
  EXPECT_GT(epoch["decode_images_per_s"].get<double>(), 0.0);
  EXPECT_GE(epoch["data_wait_s"].get<double>(), 0.0);
}

// Checkpoints written before image folders: square grey input, no names, no flips.
TEST(ImageTraining, ConfigOfEarlierCheckpointsLoadsWithIdxDefaults) {
  TrainConfig config;
  config.classes = {0, 1};
  nlohmann::json old = to_json(config);
  for (const char* field : {"test_data_dir", "class_names", "channels", "flip", "loader_threads"}) old.erase(field);
  old["image_size"] = 28;
  const TrainConfig loaded = config_from_json(old);
  EXPECT_EQ(loaded.image_height, 28);
  EXPECT_EQ(loaded.image_width, 28);
  EXPECT_EQ(loaded.channels, 1);
  EXPECT_FALSE(loaded.flip);
  EXPECT_TRUE(loaded.class_names.empty());
  EXPECT_EQ(to_json(loaded)["image_size"], nlohmann::json::array({28, 28}));
  old["channels"] = 2;
  expect_error<std::invalid_argument>([&] { config_from_json(old); }, "channels");
}

TEST(FaceNet, ShapesForFaceCropSizesAndChannels) {
  for (const auto& [c, h, w] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {3, 100, 100}, {3, 112, 96}, {1, 28, 28}, {3, 8, 8}}) {
    NetConfig config;
    config.arch = Arch::Face;
    config.channels = c;
    config.height = h;
    config.width = w;
    config.feature_dim = 100;
    config.num_classes = 5;
    FeatureNet net(config);
    const NetOutput out = net->forward(torch::randn({2, c, h, w}));
    EXPECT_EQ(out.features.sizes(), (std::vector<int64_t>{2, 100})) << h << "x" << w;
    EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 5}));
    // The feature layer is linear (the paper's fc5): negative features exist.
    EXPECT_LT(out.features.min().item<float>(), 0.f);
  }
  NetConfig lenets;
  lenets.channels = 3;
  lenets.height = 40;
  lenets.width = 24;
  EXPECT_EQ(FeatureNet(lenets)->forward(torch::randn({1, 3, 40, 24})).logits.size(1), 10);
  NetConfig bad;
  bad.channels = 2;
  expect_error<std::invalid_argument>([&] { FeatureNet net(bad); }, "channels 1 or 3");
}
