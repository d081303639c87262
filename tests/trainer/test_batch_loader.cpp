// The background batch loader: the same batches for every thread count, seeded flips, in-memory
// IDX batches equal to normalize_images, bad files stopping (named) or skipped, bounded memory.
#include <torch/torch.h>

#include <atomic>

#include "data/batch_loader.h"
#include "data/dataset.h"
#include "image_fixtures.h"
#include "test_util.h"

using namespace centerloss::trainer;

namespace {

Dataset shape_dataset(const std::string& dir, int classes, int per_class, ImageShape shape) {
  fixtures::make_shape_folder(dir, classes, per_class);
  const ImageFolder folder = scan_image_folder(dir, nullptr, false);
  return folder_dataset(folder, class_ids_by_name(folder.class_names, folder.class_names, false, ""), shape);
}

std::vector<Batch> all_batches(const Dataset& data, const torch::Tensor& order, int64_t batch_size,
                               LoaderOptions options) {
  BatchLoader loader(data, order, batch_size, options);
  std::vector<Batch> batches;
  for (Batch b; loader.next(b);) batches.push_back(b);
  EXPECT_EQ(static_cast<int64_t>(batches.size()), loader.batches());
  return batches;
}

}  // namespace

TEST(BatchLoader, EveryThreadCountGivesTheSameBatches) {
  TempDir dir;
  const Dataset data = shape_dataset(dir.path(), 3, 7, {3, 24, 20});
  const torch::Tensor order = torch::randperm(data.size(), torch::kLong);
  LoaderOptions options;
  options.flip = true;
  options.flip_seed = 7;
  options.threads = 0;
  const std::vector<Batch> reference = all_batches(data, order, 4, options);
  ASSERT_EQ(reference.size(), 6u);  // 21 images in batches of 4
  EXPECT_EQ(reference.back().images.size(0), 1);
  EXPECT_EQ(reference[0].images.sizes(), (std::vector<int64_t>{4, 3, 24, 20}));
  for (int threads : {1, 3}) {
    for (int64_t prefetch : {1, 4}) {
      options.threads = threads;
      options.prefetch = prefetch;
      const std::vector<Batch> batches = all_batches(data, order, 4, options);
      ASSERT_EQ(batches.size(), reference.size());
      for (size_t b = 0; b < batches.size(); ++b) {
        EXPECT_TRUE(torch::equal(batches[b].images, reference[b].images)) << threads << " threads, batch " << b;
        EXPECT_TRUE(torch::equal(batches[b].samples, reference[b].samples));
      }
    }
  }
  // The order is followed, and pixels are (x - 127.5) / 128.
  EXPECT_TRUE(torch::equal(torch::cat({reference[0].samples, reference[1].samples}), order.slice(0, 0, 8)));
  const torch::Tensor pixels = reference[0].images * 128 + 127.5;
  EXPECT_TRUE(torch::equal(pixels, pixels.round()));
  EXPECT_GE(pixels.min().item<float>(), 0.f);
  EXPECT_LE(pixels.max().item<float>(), 255.f);
}

TEST(BatchLoader, FlipsMirrorAboutHalfTheImagesAndFollowTheSeed) {
  TempDir dir;
  const Dataset data = shape_dataset(dir.path(), 2, 10, {3, 16, 16});
  const torch::Tensor order = torch::arange(data.size(), torch::kLong);
  LoaderOptions plain;
  plain.threads = 2;
  const torch::Tensor straight = all_batches(data, order, 20, plain)[0].images;
  LoaderOptions flipped = plain;
  flipped.flip = true;
  flipped.flip_seed = 3;
  const torch::Tensor images = all_batches(data, order, 20, flipped)[0].images;
  int mirrored = 0;
  for (int64_t i = 0; i < 20; ++i) {
    const bool flip = flip_sample(3, i);
    mirrored += flip;
    EXPECT_TRUE(torch::equal(images[i], flip ? straight[i].flip({2}) : straight[i])) << i;
  }
  EXPECT_GE(mirrored, 5);
  EXPECT_LE(mirrored, 15);
  int differ = 0;  // another seed, other flips
  for (int64_t i = 0; i < 64; ++i) differ += flip_sample(3, i) != flip_sample(4, i);
  EXPECT_GT(differ, 10);
}

TEST(BatchLoader, InMemoryIdxBatchesEqualNormalizeImages) {
  const Dataset data = limit_samples(load_split(kDefaultDataDir, Split::Test), 300);
  const torch::Tensor order = torch::randperm(300, torch::kLong);
  LoaderOptions options;
  options.threads = 2;
  const std::vector<Batch> batches = all_batches(data, order, 128, options);
  ASSERT_EQ(batches.size(), 3u);
  for (size_t b = 0; b < batches.size(); ++b) {
    const torch::Tensor index = order.slice(0, 128 * static_cast<int64_t>(b), 128 * static_cast<int64_t>(b + 1));
    EXPECT_TRUE(torch::equal(batches[b].images, normalize_images(data.images.index_select(0, index))));
  }
}

TEST(BatchLoader, ABadFileStopsAtItsBatchNamingItOrIsSkipped) {
  TempDir dir;
  Dataset data = shape_dataset(dir.path(), 2, 4, {3, 16, 16});
  const fixtures::BadFiles bad = fixtures::write_bad_files(dir.path());
  data.files[5] = bad.truncated_jpeg;  // batch 1 of batches of 4
  data.files[6] = bad.corrupt_png;
  const torch::Tensor order = torch::arange(data.size(), torch::kLong);
  for (int threads : {0, 2}) {
    LoaderOptions options;
    options.threads = threads;
    BatchLoader loader(data, order, 4, options);
    Batch batch;
    ASSERT_TRUE(loader.next(batch));  // batch 0 is fine
    expect_error<BadImageError>([&] { loader.next(batch); }, "image '" + bad.truncated_jpeg + "'");
  }
  data.skip_bad = std::make_shared<BadImages>();
  for (int epoch = 0; epoch < 2; ++epoch) {  // the second time they are skipped without reading
    const std::vector<Batch> batches = all_batches(data, order, 4, LoaderOptions{});
    ASSERT_EQ(batches.size(), 2u);
    EXPECT_TRUE(torch::equal(batches[1].samples, torch::tensor({4, 7}, torch::kLong)));
    EXPECT_EQ(batches[1].images.size(0), 2);
  }
  EXPECT_EQ(data.skip_bad->count(), 2);
  EXPECT_NE(data.skip_bad->summary().find(bad.corrupt_png), std::string::npos);
}

TEST(BatchLoader, StaysAtMostPrefetchBatchesAheadAndCountsWaiting) {
  // A slow consumer: the threads may not build batch b before batch b - prefetch is taken.
  TempDir dir;
  const Dataset data = shape_dataset(dir.path(), 2, 10, {3, 16, 16});
  LoaderOptions options;
  options.threads = 3;
  options.prefetch = 2;
  BatchLoader loader(data, torch::arange(data.size(), torch::kLong), 2, options);
  Batch batch;
  ASSERT_TRUE(loader.next(batch));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // After one batch taken, at most batches 1 and 2 may exist: 3 batches of 2 images prepared.
  EXPECT_LE(loader.stats().images, 3 * 2);
  while (loader.next(batch)) {}
  const LoaderStats stats = loader.stats();
  EXPECT_EQ(stats.images, 20);
  EXPECT_GT(stats.images_per_second(), 0.0);
  EXPECT_GE(stats.wait_seconds, 0.0);
  expect_error<std::invalid_argument>([&] { BatchLoader(data, torch::tensor({0, 99}), 2, options); },
                                      "outside [0, 20)");
}
