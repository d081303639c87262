// How fast the trainer's BatchLoader prepares an image folder (read, decode, resize, centre-crop,
// normalise) with no training step to wait for: images per second of wall time for each thread
// count, and per second of one thread's work. Usage:
//   bench_loader --data DIR [--image-size 100x100] [--channels 3] [--threads 1,2] [--batch 64]
#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <vector>

#include "data/batch_loader.h"
#include "data/dataset.h"

int main(int argc, char** argv) {
  namespace tr = centerloss::trainer;
  CLI::App app{"Time the trainer's image loader on a folder"};
  std::string data, size = "100x100", json_path;
  int64_t channels = 3, batch = 64;
  std::vector<int> threads = {1, 2};
  app.add_option("--data", data, "image folder DIR/<class>/<image>")->required();
  app.add_option("--image-size", size, "HxW")->capture_default_str();
  app.add_option("--channels", channels, "1 or 3")->check(CLI::IsMember({1, 3}))->capture_default_str();
  app.add_option("--threads", threads, "loader thread counts to time")->delimiter(',')->capture_default_str();
  app.add_option("--batch", batch, "images per batch")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--json", json_path, "write the results here");
  CLI11_PARSE(app, argc, argv);

  const auto [height, width] = tr::parse_image_size(size);
  const tr::ImageFolder folder = tr::scan_image_folder(data, nullptr, true);
  const tr::Dataset dataset = tr::folder_dataset(
      folder, tr::class_ids_by_name(folder.class_names, folder.class_names, false, data), {channels, height, width});
  nlohmann::json results = nlohmann::json::array();
  for (int t : threads) {
    tr::LoaderOptions options;
    options.threads = t;
    options.flip = true;
    const auto start = std::chrono::steady_clock::now();
    tr::BatchLoader loader(dataset, torch::arange(dataset.size(), torch::kLong), batch, options);
    for (tr::Batch b; loader.next(b);) {}
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const tr::LoaderStats stats = loader.stats();
    fmt::print("{} images of {} to {}x{}x{}, {} loader thread(s): {:.0f} images/s ({:.2f} s), "
               "{:.0f} images/s per thread's work\n", stats.images, data, channels, height, width, t,
               stats.images / seconds, seconds, stats.images_per_second());
    results.push_back({{"threads", t}, {"images", stats.images}, {"seconds", seconds},
                       {"images_per_s", stats.images / seconds},
                       {"images_per_s_per_thread", stats.images_per_second()}});
  }
  if (!json_path.empty()) std::ofstream(json_path) << results.dump(2) << '\n';
  return 0;
}
