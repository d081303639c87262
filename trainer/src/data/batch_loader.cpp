#include "data/batch_loader.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace centerloss::trainer {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

void add(LoaderStats& total, const LoaderStats& part) {
  total.images += part.images;
  total.prepare_seconds += part.prepare_seconds;
  total.wait_seconds += part.wait_seconds;
  total.skipped += part.skipped;
}

void mirror_rows(uint8_t* chw, const ImageShape& shape) {
  for (int64_t row = 0; row < shape.channels * shape.height; ++row) {
    uint8_t* line = chw + row * shape.width;
    std::reverse(line, line + shape.width);
  }
}

}  // namespace

bool flip_sample(uint64_t seed, int64_t position) {
  return (splitmix64(seed ^ splitmix64(static_cast<uint64_t>(position))) & 1) != 0;
}

BatchLoader::BatchLoader(const Dataset& data, torch::Tensor order, int64_t batch_size,
                         LoaderOptions options)
    : data_(data),
      order_(order.to(torch::kLong).contiguous()),
      batch_size_(batch_size),
      options_(options),
      batches_(batch_size > 0 ? (order_.numel() + batch_size - 1) / batch_size : 0) {
  if (batch_size < 1) throw std::invalid_argument("BatchLoader: batch_size must be >= 1");
  if (options.threads < 0 || options.prefetch < 1) {
    throw std::invalid_argument("BatchLoader: threads must be >= 0 and prefetch >= 1");
  }
  if (options.first_batch < 0 || options.first_batch > batches_) {
    throw std::invalid_argument(fmt::format("BatchLoader: first_batch {} is outside [0, {}]",
                                            options.first_batch, batches_));
  }
  next_to_build_ = consumed_ = options.first_batch;
  if (data.images.defined() && !data.images.is_contiguous()) {
    throw std::invalid_argument("BatchLoader: in-memory images must be contiguous");
  }
  if (order_.numel() > 0 &&
      (order_.min().item<int64_t>() < 0 || order_.max().item<int64_t>() >= data.size())) {
    throw std::invalid_argument(fmt::format("BatchLoader: order holds indices outside [0, {})", data.size()));
  }
  slots_.resize(static_cast<size_t>(options.prefetch));
  for (int t = 0; t < options.threads; ++t) threads_.emplace_back([this] { work(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void BatchLoader::work() {
  while (true) {
    int64_t batch = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] {
        return stop_ || next_to_build_ >= batches_ || next_to_build_ < consumed_ + options_.prefetch;
      });
      if (stop_ || next_to_build_ >= batches_) return;
      batch = next_to_build_++;
    }
    Slot slot;
    slot.batch = batch;
    LoaderStats local;
    try {
      slot.data = build(batch, local);
    } catch (...) {
      slot.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      slots_[static_cast<size_t>(batch % options_.prefetch)] = std::move(slot);
      add(stats_, local);
    }
    changed_.notify_all();
  }
}

bool BatchLoader::next(Batch& batch) {
  if (consumed_ >= batches_) return false;  // consumed_ changes only here
  const int64_t wanted = consumed_;
  Slot slot;
  if (threads_.empty()) {
    const auto start = Clock::now();
    LoaderStats local;
    slot.batch = wanted;
    try {
      slot.data = build(wanted, local);
    } catch (...) {
      slot.error = std::current_exception();
    }
    local.wait_seconds = seconds_since(start);  // the step waits for all of it
    std::lock_guard<std::mutex> lock(mutex_);
    add(stats_, local);
    ++consumed_;
  } else {
    std::unique_lock<std::mutex> lock(mutex_);
    Slot& parked = slots_[static_cast<size_t>(wanted % options_.prefetch)];
    if (parked.batch != wanted) {
      const auto start = Clock::now();
      changed_.wait(lock, [&] { return parked.batch == wanted; });
      stats_.wait_seconds += seconds_since(start);
    }
    slot = std::move(parked);
    parked = Slot();
    ++consumed_;
  }
  changed_.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  batch = std::move(slot.data);
  return true;
}

LoaderStats BatchLoader::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

Batch BatchLoader::build(int64_t batch, LoaderStats& stats) const {
  const int64_t begin = batch * batch_size_;
  const int64_t end = std::min<int64_t>(order_.numel(), begin + batch_size_);
  const ImageShape shape = data_.shape();
  const int64_t per_image = shape.numel();
  torch::Tensor images = torch::empty({end - begin, shape.channels, shape.height, shape.width}, torch::kFloat);
  std::vector<int64_t> samples;
  std::vector<uint8_t> pixels(static_cast<size_t>(per_image));
  float* out = images.data_ptr<float>();
  const int64_t* order = order_.data_ptr<int64_t>();
  for (int64_t position = begin; position < end; ++position) {
    const auto start = Clock::now();
    const int64_t index = order[position];
    if (data_.images.defined()) {
      std::memcpy(pixels.data(), data_.images.data_ptr<uint8_t>() + index * per_image,
                  static_cast<size_t>(per_image));
    } else {
      const std::string& path = data_.files[static_cast<size_t>(index)];
      if (data_.skip_bad && data_.skip_bad->contains(path)) {
        ++stats.skipped;
        continue;
      }
      try {
        decode_image_file(path, shape, pixels.data());
      } catch (const BadImageError& e) {
        if (!data_.skip_bad) throw;
        data_.skip_bad->add(path, e.reason());
        ++stats.skipped;
        continue;
      }
    }
    if (options_.flip && flip_sample(options_.flip_seed, position)) mirror_rows(pixels.data(), shape);
    float* target = out + static_cast<int64_t>(samples.size()) * per_image;
    for (int64_t k = 0; k < per_image; ++k) target[k] = (static_cast<float>(pixels[static_cast<size_t>(k)]) - 127.5f) / 128.0f;
    samples.push_back(index);
    ++stats.images;
    stats.prepare_seconds += seconds_since(start);
  }
  const auto kept = static_cast<int64_t>(samples.size());
  if (kept < end - begin) images = images.narrow(0, 0, kept).contiguous();
  return {images, torch::tensor(samples, torch::kLong)};
}

}  // namespace centerloss::trainer
