// CUDA forward, backward and label check of center loss.
//
// At the sizes people train with (N = D = 512: about 3 MB moved per step) a launch costs more
// than the bytes, so each is one launch, with no O(K) work:
//   forward   checks every label against [0, K) on the way (so the op needs no separate check;
//             reading its verdict is the op's one sync), gathers c_{y_i}, computes the squared
//             distance, the per-sample loss and the scaled gradient basis; for mean/sum the same
//             launch reduces the loss: per-block partials, then the last block to finish (a
//             per-stream ticket that the last block resets, so no memset) sums the partials in
//             a fixed order: deterministic.
//   backward  one elementwise kernel.
//   label check  one kernel and one 8-byte read, for update_centers_'s error message.
// Graph capture (spec section 7): every launch goes to the current stream and takes its
// temporaries from the caching allocator; while a capture is on, the forward takes its scratch
// from the graph's pool and returns no label verdict.
// Per-element maths comes from ../center_loss_math.h, shared with the CPU kernels.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

#include <cub/block/block_reduce.cuh>

#include <climits>
#include <cstdint>
#include <mutex>
#include <type_traits>
#include <unordered_map>

#include "../center_loss_math.h"
#include "../dispatch.h"
#include "cuda_common.cuh"
#include "cuda_kernels.h"

namespace centerloss::kernels::cuda {
namespace {

constexpr int kForwardBlock = 128;

// Per-stream scratch of the forward kernel: a ticket (how many blocks have finished) and the
// smallest bad label position seen so far. The last block to finish reads both and puts them
// back to their initial values, so the scratch is ready for the next launch on the stream
// without a memset (launches on one stream never overlap). Allocated once per (device, stream),
// kept for the life of the process (16 bytes each).
struct ForwardScratch {
  unsigned int ticket;
  unsigned int unused;
  unsigned long long first_bad;
};

ForwardScratch* forward_scratch(const c10::cuda::CUDAStream& stream) {
  static std::mutex mutex;
  static std::unordered_map<uint64_t, ForwardScratch*> scratch;  // leaked on purpose
  const uint64_t key = (static_cast<uint64_t>(stream.device_index()) << 56) ^
                       static_cast<uint64_t>(stream.id());
  const std::lock_guard<std::mutex> lock(mutex);
  ForwardScratch*& slot = scratch[key];
  if (slot == nullptr) {
    ForwardScratch* p = nullptr;
    C10_CUDA_CHECK(cudaMalloc(&p, sizeof(ForwardScratch)));
    // Initialised on the stream that will run the kernels, so the first launch is ordered after
    // it. (A cudaMemcpy from pageable memory may return before the copy lands, and PyTorch's
    // side streams do not wait for the legacy default stream that it runs on.)
    C10_CUDA_CHECK(cudaMemsetAsync(p, 0, sizeof(ForwardScratch), stream.stream()));  // ticket 0
    C10_CUDA_CHECK(cudaMemsetAsync(&p->first_bad, 0xff, sizeof(p->first_bad),
                                   stream.stream()));  // all ones: ULLONG_MAX, no bad row yet
    slot = p;
  }
  return slot;
}

// kGroup threads per row (a power of two dividing 32); kForwardBlock / kGroup rows per block.
// kPerLane > 0 (D <= kGroup * kPerLane): each lane loads all its elements of x_i and c_{y_i} into
// registers in one unrolled burst (many loads in flight per warp, the latency limit at small N),
// and writes the basis from those registers instead of reading the row a second time. kPerLane
// = 0: a loop for any D. Both add a lane's elements in increasing column order (same result).
// Labels are checked on the way: a row whose label is outside [0, K) reads center row 0 instead
// and gets what spec section 7 gives where no error can be raised; the smallest such position
// goes to *first_bad (-1 if none), for the op to raise.
template <typename feat_t, typename center_t, typename acc_t, int kGroup, int kPerLane>
__global__ void __launch_bounds__(kForwardBlock)
    forward_kernel(const feat_t* __restrict__ x, const int64_t* __restrict__ y,
                   const center_t* __restrict__ c, int64_t n, int64_t dim, int64_t num_classes,
                   acc_t margin, acc_t scale, acc_t* __restrict__ losses,
                   feat_t* __restrict__ basis, acc_t* __restrict__ partials,
                   ForwardScratch* __restrict__ scratch, acc_t* __restrict__ total,
                   int64_t* __restrict__ first_bad) {
  constexpr int kRows = kForwardBlock / kGroup;
  __shared__ acc_t row_loss[kRows];
  __shared__ bool row_bad[kRows];
  __shared__ acc_t reduce[kForwardBlock];
  __shared__ bool is_last;
  const int lane = threadIdx.x % kGroup;
  const int slot = threadIdx.x / kGroup;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kRows + slot;
  const bool valid = i < n;  // uniform within a group, so the shuffles below see whole groups
  const int64_t label = valid ? y[i] : 0;
  const bool bad = label < 0 || label >= num_classes;

  const feat_t* xi = x + (valid ? i : 0) * dim;
  const center_t* ci = c + (bad ? 0 : label) * dim;
  acc_t sq = acc_t(0);
  constexpr int kHeld = kPerLane > 0 ? kPerLane : 1;
  acc_t xv[kHeld];
  acc_t cv[kHeld];
  if constexpr (kPerLane > 0) {
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const int64_t k = lane + j * kGroup;
      const bool here = valid && k < dim;
      xv[j] = here ? static_cast<acc_t>(xi[k]) : acc_t(0);
      cv[j] = here ? static_cast<acc_t>(ci[k]) : acc_t(0);
    }
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const acc_t d = xv[j] - cv[j];
      sq += d * d;  // zero for the padding columns: adds exactly 0
    }
  } else if (valid) {
#pragma unroll 4
    for (int64_t k = lane; k < dim; k += kGroup) {
      const acc_t d = static_cast<acc_t>(xi[k]) - static_cast<acc_t>(ci[k]);
      sq += d * d;
    }
  }
  // Butterfly: every lane ends with the same (commutative, so bitwise equal) sum.
#pragma unroll
  for (int offset = kGroup / 2; offset > 0; offset /= 2) {
    sq += __shfl_xor_sync(kFullMask, sq, offset, kGroup);
  }
  acc_t loss = acc_t(0);
  if (valid) {
    loss = bad ? math::bad_label_loss<acc_t>() : math::sample_loss(sq, margin);
    const acc_t coef = scale * math::gradient_coefficient(sq, margin);
    feat_t* bi = basis + i * dim;
    if constexpr (kPerLane > 0) {
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) {
        const int64_t k = lane + j * kGroup;
        if (k < dim) bi[k] = bad ? feat_t(0) : static_cast<feat_t>(coef * (xv[j] - cv[j]));
      }
    } else {
#pragma unroll 4
      for (int64_t k = lane; k < dim; k += kGroup) {
        bi[k] = bad ? feat_t(0)
                    : static_cast<feat_t>(coef * (static_cast<acc_t>(xi[k]) -
                                                  static_cast<acc_t>(ci[k])));
      }
    }
    if (losses != nullptr && lane == 0) losses[i] = loss;
  }

  if (lane == 0) {
    row_loss[slot] = loss;
    row_bad[slot] = bad;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    acc_t block_sum = acc_t(0);
    for (int r = 0; r < kRows; ++r) block_sum += row_loss[r];  // rows in batch order
    if (partials != nullptr) partials[blockIdx.x] = block_sum;
    for (int r = 0; r < kRows; ++r) {
      if (row_bad[r]) {  // the block's first bad row (rows are in batch order)
        atomicMin(&scratch->first_bad,
                  static_cast<unsigned long long>(static_cast<int64_t>(blockIdx.x) * kRows + r));
        break;
      }
    }
    __threadfence();  // make the partial and the bad position visible before taking a ticket
    is_last = atomicAdd(&scratch->ticket, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!is_last) return;
  // The last block: fixed-order sum of all partials (independent of which block is last).
  if (partials != nullptr) {
    acc_t s = acc_t(0);
    for (int64_t b = threadIdx.x; b < gridDim.x; b += kForwardBlock) s += __ldcg(partials + b);
    reduce[threadIdx.x] = s;
    __syncthreads();
#pragma unroll
    for (int width = kForwardBlock / 2; width > 0; width /= 2) {
      if (threadIdx.x < width) reduce[threadIdx.x] += reduce[threadIdx.x + width];
      __syncthreads();
    }
    if (threadIdx.x == 0) *total = reduce[0] * scale;
  }
  if (threadIdx.x == 0) {
    const unsigned long long found = atomicExch(&scratch->first_bad, ULLONG_MAX);
    *first_bad = found == ULLONG_MAX ? int64_t(-1) : static_cast<int64_t>(found);
    scratch->ticket = 0u;  // every block has taken its ticket: ready for the next launch
  }
}

template <typename feat_t, typename center_t, typename acc_t>
void launch_forward(const at::Tensor& features, const at::Tensor& labels,
                    const at::Tensor& centers, double margin, int64_t reduction,
                    at::Tensor& losses, at::Tensor& total, at::Tensor& grad_basis,
                    at::Tensor& first_bad, bool capturing,
                    const c10::cuda::CUDAStream& stream) {
  const int64_t n = features.size(0);
  const int64_t dim = features.size(1);
  const bool reduce = reduction != static_cast<int64_t>(Reduction::None);
  const acc_t scale = math::reduction_scale<acc_t>(reduction, n);
  const bool narrow = dim <= 16;  // 4 threads per row for tiny D, a warp otherwise
  const int rows_per_block = kForwardBlock / (narrow ? 4 : kWarp);
  const int64_t blocks = (n + rows_per_block - 1) / rows_per_block;
  TORCH_CHECK(blocks <= INT_MAX, "centerloss.forward: batch too large for one launch (N = ", n,
              ")");

  at::Tensor partials;
  if (reduce) partials = at::empty({blocks}, features.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
  // Under graph capture the scratch comes from the graph's memory pool, initialised by two
  // memsets inside the graph: a first-use cudaMalloc is not allowed while capturing, and a
  // graph replayed on another stream must not share the per-stream scratch.
  at::Tensor graph_scratch;
  ForwardScratch* scratch = nullptr;
  if (capturing) {
    graph_scratch = at::empty({static_cast<int64_t>(sizeof(ForwardScratch))},
                              features.options().dtype(at::kByte));
    scratch = reinterpret_cast<ForwardScratch*>(graph_scratch.data_ptr());
    C10_CUDA_CHECK(cudaMemsetAsync(scratch, 0, sizeof(ForwardScratch), stream.stream()));
    C10_CUDA_CHECK(cudaMemsetAsync(&scratch->first_bad, 0xff, sizeof(scratch->first_bad),
                                   stream.stream()));
  } else {
    scratch = forward_scratch(stream);
  }
  auto launch = [&](auto kernel) {
    kernel<<<static_cast<unsigned>(blocks), kForwardBlock, 0, stream.stream()>>>(
        features.data_ptr<feat_t>(), labels.data_ptr<int64_t>(), centers.data_ptr<center_t>(),
        n, dim, centers.size(0), static_cast<acc_t>(margin), scale,
        reduce ? nullptr : losses.data_ptr<acc_t>(), grad_basis.data_ptr<feat_t>(),
        reduce ? partials.data_ptr<acc_t>() : nullptr, scratch,
        reduce ? total.data_ptr<acc_t>() : nullptr, first_bad.data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  };
  if (narrow) {
    launch(forward_kernel<feat_t, center_t, acc_t, 4, 4>);
  } else if (dim <= kWarp * 4) {
    launch(forward_kernel<feat_t, center_t, acc_t, kWarp, 4>);
  } else if (dim <= kWarp * 16) {
    launch(forward_kernel<feat_t, center_t, acc_t, kWarp, 16>);
  } else {
    launch(forward_kernel<feat_t, center_t, acc_t, kWarp, 0>);
  }
}

template <typename scalar_t, typename acc_t>
__global__ void backward_kernel(const acc_t* __restrict__ grad_loss, bool per_sample,
                                const scalar_t* __restrict__ basis, scalar_t* __restrict__ out,
                                int64_t numel, int64_t dim) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const acc_t g0 = per_sample ? acc_t(0) : grad_loss[0];
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < numel;
       e += stride) {
    const acc_t g = per_sample ? grad_loss[e / dim] : g0;
    out[e] = static_cast<scalar_t>(g * static_cast<acc_t>(basis[e]));
  }
}

constexpr int kLabelThreads = 1024;
constexpr int64_t kLabelOneBlockMax = int64_t(1) << 16;

// Smallest position whose label is outside [0, K). One block for small batches (it writes the
// result, so nothing needs initialising); more blocks combine with atomicMin into a slot that
// the host pre-filled with all-ones bytes (= "none").
__global__ void __launch_bounds__(kLabelThreads)
    first_bad_label_kernel(const int64_t* __restrict__ y, int64_t n, int64_t num_classes,
                           unsigned long long* __restrict__ first_bad) {
  unsigned long long mine = ULLONG_MAX;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kLabelThreads;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kLabelThreads + threadIdx.x; i < n;
       i += stride) {
    if (y[i] < 0 || y[i] >= num_classes) {
      mine = static_cast<unsigned long long>(i);
      break;  // later positions of this thread are larger
    }
  }
  using Reduce = cub::BlockReduce<unsigned long long, kLabelThreads>;
  __shared__ typename Reduce::TempStorage storage;
  const unsigned long long block_min = Reduce(storage).Reduce(
      mine, [](unsigned long long a, unsigned long long b) { return b < a ? b : a; });
  if (threadIdx.x != 0) return;
  if (gridDim.x == 1) {
    *first_bad = block_min;
  } else if (block_min != ULLONG_MAX) {
    atomicMin(first_bad, block_min);
  }
}

}  // namespace

bool capturing(const at::Tensor& on) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  C10_CUDA_CHECK(cudaStreamIsCapturing(c10::cuda::getCurrentCUDAStream(on.get_device()), &status));
  return status != cudaStreamCaptureStatusNone;
}

at::Tensor forward(const at::Tensor& features, const at::Tensor& labels, const at::Tensor& centers,
                   double margin, int64_t reduction, ForwardOutputs& out) {
  const bool reduce = reduction != static_cast<int64_t>(Reduction::None);
  at::Tensor losses = reduce ? at::Tensor() : out.loss;
  at::Tensor total = reduce ? out.loss : at::Tensor();
  at::Tensor first_bad = at::empty({1}, labels.options());
  const c10::cuda::CUDAStream stream = c10::cuda::getCurrentCUDAStream();
  const bool graph = capturing(features);
  CENTERLOSS_DISPATCH_TYPES(features, centers, "centerloss_forward_cuda", [&] {
    launch_forward<feat_t, center_t, math::forward_acc_t<feat_t, center_t>>(
        features, labels, centers, margin, reduction, losses, total, out.grad_basis, first_bad,
        graph, stream);
  });
  return graph ? at::Tensor() : first_bad;
}

void backward(const at::Tensor& grad_loss, const at::Tensor& grad_basis,
              at::Tensor& grad_features) {
  const int64_t numel = grad_basis.numel();
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((numel + threads - 1) / threads,
                                           int64_t(16) * sm_count(grad_basis.get_device()));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_basis.scalar_type(),
                                  "centerloss_backward_cuda", [&] {
    using acc_t = math::backward_acc_t<scalar_t>;
    backward_kernel<scalar_t, acc_t><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
        grad_loss.data_ptr<acc_t>(), grad_loss.dim() == 1, grad_basis.data_ptr<scalar_t>(),
        grad_features.data_ptr<scalar_t>(), numel, grad_basis.size(1));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

int64_t first_bad_label(const at::Tensor& labels, int64_t num_classes) {
  const int64_t n = labels.numel();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor first_bad = at::empty({1}, labels.options());
  auto* slot = reinterpret_cast<unsigned long long*>(first_bad.data_ptr<int64_t>());
  const int64_t blocks =
      n <= kLabelOneBlockMax
          ? 1
          : std::min<int64_t>((n + kLabelThreads - 1) / kLabelThreads,
                              int64_t(4) * sm_count(labels.get_device()));
  if (blocks > 1) C10_CUDA_CHECK(cudaMemsetAsync(slot, 0xff, sizeof(*slot), stream));
  first_bad_label_kernel<<<static_cast<unsigned>(blocks), kLabelThreads, 0, stream>>>(
      labels.data_ptr<int64_t>(), n, num_classes, slot);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const int64_t found = first_bad.item<int64_t>();  // the one device-to-host read (syncs)
  return found < 0 ? -1 : found;  // all-ones bytes read as -1: no bad label
}

}  // namespace centerloss::kernels::cuda
