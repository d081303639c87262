// CUDA kernels of center loss.
//
// At the sizes people train with (N = 512, D = 512: about 3 MB moved per step) every launch
// (~2-4 us) costs more than the bytes, so each op is as few launches as the data flow allows,
// with no O(K) work:
//   forward   1 kernel: checks every label against [0, K) on the way (so the op needs no
//             separate label-check kernel; its one 8-byte read of the verdict is the op's only
//             sync), gathers c_{y_i}, computes the squared distance, the per-sample loss and the
//             scaled gradient basis; for mean/sum the same launch reduces the loss: per-block
//             partials, then the last block to finish (a per-stream ticket that the last block
//             resets, so no memset) sums the partials in a fixed order: deterministic.
//   backward  1 elementwise kernel.
//   update    2 kernels for N <= 4096: (1) block 0 sorts the (label, position) pairs (a stable
//             block radix sort) and marks the class segments, while the other blocks check every
//             feature for NaN/inf and every label for range (one flag per block, so nothing needs
//             zeroing); (2) every (class, 32-column) item sums its rows in batch order, then
//             applies the step only if all flags say good, and block 0 records the verdict (the
//             returned 0-d bool, or +1 on the module's skip counter): no device-to-host read.
//             Larger batches sort with cub::DeviceRadixSort.
//   label check  1 kernel + one 8-byte read, for update_centers_'s error message (the module's
//             step relies on the forward's check and the device guard instead).
// Graph capture (torch.cuda.graph): every launch goes to the current stream and takes its
// temporaries from the caching allocator; while a capture is on, the ops skip both host reads
// and the forward takes its scratch from the graph's pool and returns no label verdict (op_impl.h
// says what bad labels give).
// The center update is deterministic in every mode: an atomic variant would still need the
// per-class counts (the step size depends on n_j) and the global NaN verdict before its first
// write, so it would save no launch. Class segments longer than 16 rows (on average) are split
// among up to 8 warps whose partial sums are added in warp order: still a fixed order.
// Per-element maths comes from ../center_loss_math.h, shared with the CPU kernels.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_select.cuh>
#include <thrust/iterator/counting_iterator.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <mutex>
#include <type_traits>
#include <unordered_map>

#include "../center_loss_math.h"
#include "../dispatch.h"
#include "../kernels.h"

namespace centerloss::kernels {
namespace {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kWarp = 32;

int sm_count(c10::DeviceIndex device) {
  static int cached[128] = {};  // benign race: every writer stores the same value
  int& slot = cached[device];
  if (slot == 0) {
    int count = 0;
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
    slot = count;
  }
  return slot;
}

template <typename T>
T* byte_offset(at::Tensor& workspace, int64_t offset) {
  return reinterpret_cast<T*>(workspace.data_ptr<uint8_t>() + offset);
}

int64_t align_up(int64_t bytes) { return (bytes + 15) / 16 * 16; }

// ------------------------------------------------------------------------------------------
// Forward

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
// Labels are checked on the way: a row whose label is outside [0, K) reads center row 0 instead,
// gets the loss math::bad_label_loss (NaN) and a zero gradient row (what the op returns under
// graph capture; otherwise it raises), and the smallest such position is reported in
// *first_bad (-1 if none), so the op needs no separate label-check kernel.
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

// ------------------------------------------------------------------------------------------
// Backward

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

// ------------------------------------------------------------------------------------------
// Center update

constexpr int kSortThreads = 256;   // block size of the prepare kernel
constexpr int kSmallItems = 4;      // N <= 1024: one block sorts 256 x 4 keys
constexpr int kLargeItems = 16;     // N <= 4096: 256 x 16 keys
constexpr int64_t kBlockSortMax = int64_t(kSortThreads) * kLargeItems;
constexpr int kApplyWarps = 8;      // warps per apply block
constexpr int kCheckPerThread = 16; // features checked per thread in the prepare kernel

// Block 0 (when sort_in_block): stable sort of (label, position), then writes order[p] (the
// batch position of sorted row p), seg_start[s] (first sorted row of class segment s) and
// *num_segs. Every other block: one flag saying whether its slice of the features is finite.
template <typename feat_t, int kItems>
__global__ void __launch_bounds__(kSortThreads)
    prepare_kernel(const feat_t* __restrict__ x, int64_t numel, const int64_t* __restrict__ y,
                   int n, int64_t num_classes, unsigned pad_key, int end_bit, bool sort_in_block,
                   int* __restrict__ order,
                   int* __restrict__ seg_start, int* __restrict__ num_segs,
                   unsigned char* __restrict__ finite) {
  using Sort = cub::BlockRadixSort<unsigned, kSortThreads, kItems, int>;
  using Scan = cub::BlockScan<int, kSortThreads>;
  if (sort_in_block && blockIdx.x == 0) {
    __shared__ typename Sort::TempStorage sort_storage;
    __shared__ typename Scan::TempStorage scan_storage;
    __shared__ unsigned sorted[kSortThreads * kItems];
    unsigned keys[kItems];
    int rows[kItems];
#pragma unroll
    for (int j = 0; j < kItems; ++j) {  // blocked arrangement: item j of thread t is t*kItems+j
      const int p = threadIdx.x * kItems + j;
      keys[j] = p < n ? static_cast<unsigned>(y[p]) : pad_key;  // pad_key = K: after all labels
      rows[j] = p;
    }
    Sort(sort_storage).Sort(keys, rows, 0, end_bit);
#pragma unroll
    for (int j = 0; j < kItems; ++j) sorted[threadIdx.x * kItems + j] = keys[j];
    __syncthreads();
    int head[kItems];
#pragma unroll
    for (int j = 0; j < kItems; ++j) {
      const int p = threadIdx.x * kItems + j;
      head[j] = p < n && (p == 0 || sorted[p] != sorted[p - 1]) ? 1 : 0;
    }
    int segment[kItems];
    int segments = 0;
    Scan(scan_storage).ExclusiveSum(head, segment, segments);
#pragma unroll
    for (int j = 0; j < kItems; ++j) {
      const int p = threadIdx.x * kItems + j;
      if (p < n) {
        order[p] = rows[j];
        if (head[j]) seg_start[segment[j]] = p;
      }
    }
    if (threadIdx.x == 0) {
      *num_segs = segments;
      finite[0] = 1;
    }
    return;
  }
  const int64_t checkers = gridDim.x - (sort_in_block ? 1 : 0);
  const int64_t block = blockIdx.x - (sort_in_block ? 1 : 0);
  using check_t = std::conditional_t<std::is_same_v<feat_t, double>, double, float>;
  bool ok = true;
  for (int64_t e = block * kSortThreads + threadIdx.x; e < numel; e += checkers * kSortThreads) {
    ok &= math::is_finite(static_cast<check_t>(x[e]));
  }
  // Labels too: the module's step (_forward_step_, after the forward's check) relies on this guard.
  for (int64_t e = block * kSortThreads + threadIdx.x; e < n; e += checkers * kSortThreads) {
    ok &= y[e] >= 0 && y[e] < num_classes;
  }
  ok = __syncthreads_and(ok);
  if (threadIdx.x == 0) finite[blockIdx.x] = ok ? 1 : 0;
}

// One item = (class segment s, 32 columns), handled by a team of team_warps warps; warp w sums
// the w-th contiguous share of the segment's rows in batch order, and the team adds the shares
// in warp order (team_warps = 1: exactly batch order). Nothing is written unless every flag of
// the prepare kernel says good; block 0 records that verdict (*applied and/or *skipped). The
// flags are loaded first but only waited for after the sums, so their latency overlaps the
// segment's loads (a bad batch does the sums for nothing, then writes nothing).
template <typename feat_t, typename center_t, typename acc_t>
__global__ void __launch_bounds__(kApplyWarps * kWarp)
    apply_kernel(const feat_t* __restrict__ x, const int64_t* __restrict__ y, int64_t dim,
                 const int* __restrict__ order, const int* __restrict__ seg_start,
                 const int* __restrict__ num_segs, int n,
                 const unsigned char* __restrict__ finite, int num_flags,
                 center_t* __restrict__ c, int64_t num_classes, acc_t alpha, int64_t rule,
                 int team_warps,
                 int64_t column_chunks, bool* __restrict__ applied,
                 int64_t* __restrict__ skipped) {
  __shared__ acc_t share[kApplyWarps][kWarp];
  const int first_flag = threadIdx.x < num_flags ? finite[threadIdx.x] : 1;

  const int warp = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  const int team = warp / team_warps;
  const int member = warp % team_warps;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * (kApplyWarps / team_warps) + team;
  const int64_t s = item / column_chunks;
  const int64_t col = (item % column_chunks) * kWarp + lane;
  const int segments = *num_segs;
  const bool active = s < segments;  // uniform within a team

  int start = 0, count = 0;
  int64_t cls = 0;
  acc_t center = acc_t(0);
  acc_t sum = acc_t(0);
  if (active) {
    start = seg_start[s];
    count = (s + 1 < segments ? seg_start[s + 1] : n) - start;
    cls = y[order[start]];
    // A label outside [0, K) fails the guard below and nothing is written: clamp only the read.
    const int64_t read_cls = cls < 0 ? 0 : (cls >= num_classes ? num_classes - 1 : cls);
    if (col < dim) center = static_cast<acc_t>(c[read_cls * dim + col]);
    const int share_rows = (count + team_warps - 1) / team_warps;
    const int r0 = start + min(count, member * share_rows);
    const int r1 = start + min(count, (member + 1) * share_rows);
    for (int p = r0; p < r1; p += kWarp) {
      const int rows_here = min(kWarp, r1 - p);
      const int my_row = lane < rows_here ? order[p + lane] : 0;
      for (int q = 0; q < rows_here; q += 8) {
        acc_t v[8];
#pragma unroll
        for (int u = 0; u < 8; ++u) {  // eight loads in flight, then the adds in batch order
          const int row = __shfl_sync(kFullMask, my_row, (q + u) & (kWarp - 1));
          v[u] = (q + u < rows_here && col < dim)
                     ? static_cast<acc_t>(x[static_cast<int64_t>(row) * dim + col])
                     : acc_t(0);
        }
#pragma unroll
        for (int u = 0; u < 8; ++u) {
          if (q + u < rows_here) sum += center - v[u];
        }
      }
    }
  }
  // The guard: NaN/inf features or bad labels anywhere in the batch -> no center changes.
  int ok = first_flag;
  for (int f = threadIdx.x + blockDim.x; f < num_flags; f += blockDim.x) ok &= finite[f];
  ok = __syncthreads_and(ok);
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    if (applied != nullptr) *applied = ok != 0;
    if (skipped != nullptr && !ok) *skipped += 1;
  }
  if (!ok) return;
  if (team_warps == 1) {
    if (active && col < dim) {
      const acc_t factor = math::center_step_factor<acc_t>(count, alpha, rule);
      c[cls * dim + col] = static_cast<center_t>(center - factor * sum);
    }
    return;
  }
  share[warp][lane] = sum;
  __syncthreads();
  if (active && member == 0 && col < dim) {
    acc_t total = share[warp][lane];
    for (int w = 1; w < team_warps; ++w) total += share[warp + w][lane];
    const acc_t factor = math::center_step_factor<acc_t>(count, alpha, rule);
    c[cls * dim + col] = static_cast<center_t>(center - factor * total);
  }
}

struct IsSegmentHead {
  const int64_t* sorted_keys;
  __device__ bool operator()(int p) const { return p == 0 || sorted_keys[p] != sorted_keys[p - 1]; }
};

int bits_for(int64_t value) {  // bits needed to hold every key in [0, value]
  int bits = 1;
  while (bits < 63 && (int64_t(1) << bits) <= value) ++bits;
  return bits;
}

// Warps per item: enough that each warp sums about 16 rows of an average class segment.
int team_warps_for(int64_t n, int64_t num_classes) {
  const int64_t avg_rows = n / std::max<int64_t>(1, std::min(n, num_classes));
  int warps = 1;
  while (warps < kApplyWarps && warps * 16 < avg_rows) warps *= 2;
  return warps;
}

// Launches the center step; the verdict goes to *applied and/or adds 1 to *skipped (either may
// be null).
template <typename feat_t, typename center_t>
void update_typed(at::Tensor& centers, const at::Tensor& features, const at::Tensor& labels,
                  double alpha, int64_t rule, bool* applied, int64_t* skipped,
                  cudaStream_t stream) {
  using acc_t = std::conditional_t<std::is_same_v<center_t, double>, double, float>;
  const int64_t n64 = features.size(0);
  const int64_t dim = features.size(1);
  const int64_t num_classes = centers.size(0);
  TORCH_CHECK(n64 < INT_MAX, "centerloss.update_centers_: batch too large (N = ", n64, ")");
  const int n = static_cast<int>(n64);
  const int64_t numel = n64 * dim;
  const bool block_sort = n64 <= kBlockSortMax && num_classes < INT_MAX;

  // Prepare-kernel grid: checker blocks for the features (+ block 0 for the sort).
  const int64_t per_block = int64_t(kSortThreads) * kCheckPerThread;
  const int64_t checkers =
      std::clamp<int64_t>((numel + per_block - 1) / per_block, 1, 4 * sm_count(features.get_device()));
  const int64_t prep_blocks = checkers + (block_sort ? 1 : 0);

  const int64_t order_off = 0;
  const int64_t seg_off = align_up(n64 * 4);
  const int64_t count_off = seg_off + align_up(n64 * 4);
  const int64_t flags_off = count_off + 16;
  at::Tensor workspace =
      at::empty({flags_off + align_up(prep_blocks)}, features.options().dtype(at::kByte));
  int* order = byte_offset<int>(workspace, order_off);
  int* seg_start = byte_offset<int>(workspace, seg_off);
  int* num_segs = byte_offset<int>(workspace, count_off);
  unsigned char* finite = byte_offset<unsigned char>(workspace, flags_off);
  const feat_t* x = features.data_ptr<feat_t>();
  const int64_t* y = labels.data_ptr<int64_t>();
  const int end_bit = bits_for(num_classes);

  if (block_sort) {
    auto prepare = n64 <= int64_t(kSortThreads) * kSmallItems ? prepare_kernel<feat_t, kSmallItems>
                                                              : prepare_kernel<feat_t, kLargeItems>;
    prepare<<<static_cast<unsigned>(prep_blocks), kSortThreads, 0, stream>>>(
        x, numel, y, n, num_classes, static_cast<unsigned>(num_classes), end_bit, true, order,
        seg_start, num_segs, finite);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  } else {
    // Device-wide stable radix sort of (label, position), then the segment heads compacted
    // in order (cub::DeviceSelect keeps the input order): both deterministic.
    at::Tensor positions = at::arange(n64, labels.options().dtype(at::kInt));
    at::Tensor sorted_keys = at::empty_like(labels);
    size_t sort_bytes = 0, select_bytes = 0;
    C10_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
        nullptr, sort_bytes, y, sorted_keys.data_ptr<int64_t>(), positions.data_ptr<int>(), order,
        n, 0, end_bit, stream));
    const IsSegmentHead is_head{sorted_keys.data_ptr<int64_t>()};
    C10_CUDA_CHECK(cub::DeviceSelect::If(nullptr, select_bytes, thrust::counting_iterator<int>(0),
                                         seg_start, num_segs, n, is_head, stream));
    at::Tensor temp = at::empty({static_cast<int64_t>(std::max(sort_bytes, select_bytes))},
                                features.options().dtype(at::kByte));
    C10_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
        temp.data_ptr(), sort_bytes, y, sorted_keys.data_ptr<int64_t>(),
        positions.data_ptr<int>(), order, n, 0, end_bit, stream));
    C10_CUDA_CHECK(cub::DeviceSelect::If(temp.data_ptr(), select_bytes,
                                         thrust::counting_iterator<int>(0), seg_start, num_segs,
                                         n, is_head, stream));
    prepare_kernel<feat_t, kSmallItems><<<static_cast<unsigned>(prep_blocks), kSortThreads, 0,
                                          stream>>>(x, numel, y, n, num_classes, 0u, 1, false,
                                                    order, seg_start, num_segs, finite);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  const int team_warps = team_warps_for(n64, num_classes);
  const int64_t column_chunks = (dim + kWarp - 1) / kWarp;
  const int64_t items = std::min(n64, num_classes) * column_chunks;
  const int64_t teams_per_block = kApplyWarps / team_warps;
  const int64_t apply_blocks = (items + teams_per_block - 1) / teams_per_block;
  TORCH_CHECK(apply_blocks <= INT_MAX, "centerloss.update_centers_: batch too large (N = ", n64,
              ", D = ", dim, ")");
  apply_kernel<feat_t, center_t, acc_t>
      <<<static_cast<unsigned>(apply_blocks), kApplyWarps * kWarp, 0, stream>>>(
          x, y, dim, order, seg_start, num_segs, n, finite, static_cast<int>(prep_blocks),
          centers.data_ptr<center_t>(), num_classes, static_cast<acc_t>(alpha), rule, team_warps,
          column_chunks, applied, skipped);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// ------------------------------------------------------------------------------------------
// Label check

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

bool capturing_cuda(const at::Tensor& on) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  C10_CUDA_CHECK(cudaStreamIsCapturing(c10::cuda::getCurrentCUDAStream(on.get_device()), &status));
  return status != cudaStreamCaptureStatusNone;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> forward_cuda(const at::Tensor& features,
                                                            const at::Tensor& labels,
                                                            const at::Tensor& centers,
                                                            double margin, int64_t reduction) {
  const c10::cuda::CUDAGuard guard(features.device());
  const bool wide = features.scalar_type() == at::kDouble || centers.scalar_type() == at::kDouble;
  const auto acc_type = wide ? at::kDouble : at::kFloat;
  const int64_t n = features.size(0);
  const bool reduce = reduction != static_cast<int64_t>(Reduction::None);
  at::Tensor grad_basis = at::empty_like(features, at::MemoryFormat::Contiguous);
  if (n == 0) {  // mean/sum of nothing is 0; none is the empty vector
    return {reduce ? at::zeros({}, features.options().dtype(acc_type))
                   : at::empty({0}, features.options().dtype(acc_type)),
            grad_basis, at::Tensor()};
  }
  at::Tensor losses = reduce ? at::Tensor() : at::empty({n}, features.options().dtype(acc_type));
  at::Tensor total = reduce ? at::empty({}, features.options().dtype(acc_type)) : at::Tensor();
  at::Tensor first_bad = at::empty({1}, labels.options());
  const c10::cuda::CUDAStream stream = c10::cuda::getCurrentCUDAStream();
  const bool capturing = capturing_cuda(features);
  CENTERLOSS_DISPATCH_TYPES(features, centers, "centerloss_forward_cuda", [&] {
    using acc_t = std::conditional_t<std::is_same_v<feat_t, double> || std::is_same_v<center_t, double>,
                                     double, float>;
    launch_forward<feat_t, center_t, acc_t>(features, labels, centers, margin, reduction, losses,
                                            total, grad_basis, first_bad, capturing, stream);
  });
  // Under capture no verdict: reading it would need the host, so the op cannot raise.
  return {reduce ? total : losses, grad_basis, capturing ? at::Tensor() : first_bad};
}

at::Tensor backward_cuda(const at::Tensor& grad_loss, const at::Tensor& grad_basis) {
  const c10::cuda::CUDAGuard guard(grad_basis.device());
  at::Tensor grad = at::empty_like(grad_basis, at::MemoryFormat::Contiguous);
  const int64_t numel = grad_basis.numel();
  if (numel == 0) return grad;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((numel + threads - 1) / threads,
                                           int64_t(16) * sm_count(grad_basis.get_device()));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_basis.scalar_type(),
                                  "centerloss_backward_cuda", [&] {
    using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    backward_kernel<scalar_t, acc_t><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
        grad_loss.data_ptr<acc_t>(), grad_loss.dim() == 1, grad_basis.data_ptr<scalar_t>(),
        grad.data_ptr<scalar_t>(), numel, grad_basis.size(1));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad;
}

at::Tensor update_centers_cuda(at::Tensor& centers, const at::Tensor& features,
                               const at::Tensor& labels, double alpha, int64_t rule) {
  const c10::cuda::CUDAGuard guard(features.device());
  if (features.size(0) == 0) return at::ones({}, features.options().dtype(at::kBool));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor applied = at::empty({}, features.options().dtype(at::kBool));
  CENTERLOSS_DISPATCH_TYPES(features, centers, "centerloss_update_cuda", [&] {
    update_typed<feat_t, center_t>(centers, features, labels, alpha, rule,
                                   applied.data_ptr<bool>(), nullptr, stream);
  });
  return applied;
}

void step_centers_cuda(at::Tensor& centers, at::Tensor& skipped, const at::Tensor& features,
                       const at::Tensor& labels, double alpha, int64_t rule) {
  const c10::cuda::CUDAGuard guard(features.device());
  if (features.size(0) == 0) return;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  CENTERLOSS_DISPATCH_TYPES(features, centers, "centerloss_step_cuda", [&] {
    update_typed<feat_t, center_t>(centers, features, labels, alpha, rule, nullptr,
                                   skipped.data_ptr<int64_t>(), stream);
  });
}

int64_t first_bad_label_cuda(const at::Tensor& labels64, int64_t num_classes) {
  const int64_t n = labels64.numel();
  if (n == 0) return -1;
  const c10::cuda::CUDAGuard guard(labels64.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor first_bad = at::empty({1}, labels64.options());
  auto* slot = reinterpret_cast<unsigned long long*>(first_bad.data_ptr<int64_t>());
  const int64_t blocks =
      n <= kLabelOneBlockMax
          ? 1
          : std::min<int64_t>((n + kLabelThreads - 1) / kLabelThreads,
                              int64_t(4) * sm_count(labels64.get_device()));
  if (blocks > 1) C10_CUDA_CHECK(cudaMemsetAsync(slot, 0xff, sizeof(*slot), stream));
  first_bad_label_kernel<<<static_cast<unsigned>(blocks), kLabelThreads, 0, stream>>>(
      labels64.data_ptr<int64_t>(), n, num_classes, slot);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const int64_t found = first_bad.item<int64_t>();  // the one device-to-host read (syncs)
  return found < 0 ? -1 : found;  // all-ones bytes read as -1: no bad label
}

}  // namespace centerloss::kernels
