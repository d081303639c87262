// One center-loss training step on the CPU, timed from C++ with Google Benchmark.
//
// BM_Step:     loss forward + feature gradient (autograd) + center update (paper rule), i.e.
//              what a LibTorch training loop calls: the CenterLoss module of
//              include/centerloss/center_loss.h, then torch::autograd::grad.
// BM_Kernels:  the op that module runs (_forward_step_), without module or autograd
//              bookkeeping; for a unit loss gradient on the CPU the features' gradient is the
//              basis it returns (autograd hands it over without the backward op).
// BM_Roofline: std::memcpy of the bytes the fused step must move (read x and the centers' rows,
//              write the gradient and the centers' rows), i.e. the memory limit.
// Arguments: N, D, K (float32 features, float32 centers). Each benchmark reports the moved
// bytes per second, so the three can be compared at a glance. Threads: $OMP_NUM_THREADS, else 2.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <torch/autograd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "centerloss/center_loss.h"
#include "centerloss/ops.h"

namespace {

struct Batch {
  at::Tensor features, labels, centers;
};

Batch make_batch(int64_t n, int64_t d, int64_t k, bool with_table = true) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(/*seed=*/n * 7919 + d * 31 + k);
  Batch b;
  b.features = at::randn({n, d}, gen, at::kFloat);
  b.labels = at::randint(k, {n}, gen, at::kLong);
  // Zeros: the values do not change the time; randn of 2 GB does.
  if (with_table) b.centers = at::zeros({k, d}, at::kFloat);
  return b;
}

// Bytes a fused step must move: x and the gradient (features' dtype), center rows read and written.
int64_t moved_bytes(int64_t n, int64_t d) { return n * d * (2 * 4 + 2 * 4); }

void set_threads() {
  const char* env = std::getenv("OMP_NUM_THREADS");
  at::set_num_threads(env ? std::atoi(env) : 2);
}

void BM_Step(benchmark::State& state) {
  set_threads();
  Batch b = make_batch(state.range(0), state.range(1), state.range(2), /*with_table=*/false);
  b.features.requires_grad_(true);
  centerloss::CenterLoss module(state.range(2), state.range(1));  // its own zero table
  for (auto _ : state) {
    at::Tensor loss = module->forward(b.features, b.labels);
    auto grads = torch::autograd::grad({loss}, {b.features});
    benchmark::DoNotOptimize(grads[0].data_ptr());
  }
  state.SetBytesProcessed(state.iterations() * moved_bytes(state.range(0), state.range(1)));
}

void BM_Kernels(benchmark::State& state) {
  set_threads();
  Batch b = make_batch(state.range(0), state.range(1), state.range(2));
  static auto forward_step =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("centerloss::_forward_step_", "")
          .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                    at::Tensor&, at::Tensor&, double, int64_t,
                                                    double, int64_t)>();
  at::Tensor skipped = at::zeros({}, at::kLong);
  for (auto _ : state) {  // the op CenterLoss::forward runs; its basis is the gradient
    auto [loss, basis] = forward_step.call(b.features, b.labels, b.centers, skipped, 0.0,
                                           /*mean*/ 1, 0.5, /*paper*/ 0);
    benchmark::DoNotOptimize(basis.data_ptr());
  }
  state.SetBytesProcessed(state.iterations() * moved_bytes(state.range(0), state.range(1)));
}

void BM_Roofline(benchmark::State& state) {
  const int64_t half = moved_bytes(state.range(0), state.range(1)) / 2;
  std::vector<char> src(half, 1), dst(half);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), half);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 2 * half);
}

void sweep(benchmark::internal::Benchmark* b) {
  for (int64_t k : {1000, 1000000}) {
    for (int64_t d : {2, 128, 512}) {
      for (int64_t n : {128, 512, 4096}) b->Args({n, d, k});
    }
  }
  b->ArgNames({"N", "D", "K"})->Unit(benchmark::kMicrosecond)->MinTime(0.05);
}

void roofline_sweep(benchmark::internal::Benchmark* b) {
  for (int64_t d : {2, 128, 512}) {
    for (int64_t n : {128, 512, 4096}) b->Args({n, d, 0});
  }
  b->ArgNames({"N", "D", "K"})->Unit(benchmark::kMicrosecond)->MinTime(0.05);
}

}  // namespace

BENCHMARK(BM_Step)->Apply(sweep);
BENCHMARK(BM_Kernels)->Apply(sweep);
BENCHMARK(BM_Roofline)->Apply(roofline_sweep);
BENCHMARK_MAIN();
