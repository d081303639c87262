// Batches for training and embedding, prepared by background threads ahead of the step.
//
// The loader walks `order` (sample indices) in batches of batch_size. Threads take the next
// batch not yet started, decode its images (image folders) or copy them (IDX, in memory),
// optionally flip some horizontally, scale them to the network's input, (x - 127.5) / 128, and
// park the batch in one of `prefetch` slots; next() hands the batches out in order. Memory is
// bounded: no thread starts a batch more than `prefetch` batches ahead of the consumer.
//
// Determinism: a batch's content depends only on the data, `order`, its position and the flip
// seed, never on which thread built it or when, so every thread count (0 included: decode in
// the caller) gives the same batches.
#pragma once

#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "data/dataset.h"

namespace centerloss::trainer {

struct LoaderOptions {
  int threads = 2;          // background threads (0: each batch is built inside next())
  int64_t prefetch = 4;     // batches built ahead of the consumer, at most
  bool flip = false;        // mirror each image left-right with probability 1/2
  uint64_t flip_seed = 0;   // the flip of the sample at position p of `order` is f(flip_seed, p)
  int64_t first_batch = 0;  // start there (a run resumed within an epoch); batches before it are not built
};

struct Batch {
  torch::Tensor images;   // [B, C, H, W] float32, (x - 127.5) / 128
  torch::Tensor samples;  // [B] int64: the data-set index of each image
};

struct LoaderStats {
  int64_t images = 0;          // images prepared (decoded or copied)
  double prepare_seconds = 0;  // summed over the threads: time spent preparing them
  double wait_seconds = 0;     // time next() waited for a batch that was not ready
  int64_t skipped = 0;         // bad images left out (data.skip_bad)
  // Images prepared per second of one thread's work.
  double images_per_second() const { return prepare_seconds > 0 ? images / prepare_seconds : 0.0; }
};

class BatchLoader {
 public:
  // `data` must outlive the loader. order: [n] int64 indices into data.
  BatchLoader(const Dataset& data, torch::Tensor order, int64_t batch_size, LoaderOptions options);
  ~BatchLoader();  // stops and joins the threads
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  int64_t batches() const { return batches_; }

  // The next batch in order; false after the last one. A batch may hold fewer than batch_size
  // images (the last one; or bad images skipped: possibly none). A bad image without
  // data.skip_bad is rethrown here (BadImageError naming the file), in the batch that holds it.
  bool next(Batch& batch);

  LoaderStats stats() const;

 private:
  struct Slot {
    int64_t batch = -1;  // which batch the slot holds (ready once set)
    Batch data;
    std::exception_ptr error;
  };
  void work();
  Batch build(int64_t batch, LoaderStats& stats) const;

  const Dataset& data_;
  const torch::Tensor order_;
  const int64_t batch_size_;
  const LoaderOptions options_;
  const int64_t batches_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Slot> slots_;
  int64_t next_to_build_ = 0;
  int64_t consumed_ = 0;
  bool stop_ = false;
  LoaderStats stats_;
  std::vector<std::thread> threads_;
};

// Horizontal flip decision of the sample at `position` (also used by the tests).
bool flip_sample(uint64_t seed, int64_t position);

}  // namespace centerloss::trainer
