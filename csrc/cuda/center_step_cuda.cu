// CUDA center step of center loss (spec section 3), deterministic in every mode.
//
// Two launches for N <= 4096: (1) block 0 sorts the (label, position) pairs (a stable block
// radix sort) and marks the class segments, while the other blocks check every feature for
// NaN/inf and every label for range (one flag per block, so nothing needs zeroing); (2) every
// (class, 32-column) item sums its rows in batch order, then applies the step only if all flags
// say good, and block 0 records the verdict (a 0-d bool, or +1 on the module's skip counter): no
// device-to-host read. Larger batches sort with cub::DeviceRadixSort. No O(K) work.
// No atomic variant: it would still need the per-class counts (the step size depends on n_j)
// and the global NaN verdict before its first write, so it would save no launch. Class segments
// longer than 16 rows (on average) are split among up to 8 warps whose partial sums are added
// in warp order: still a fixed order.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_select.cuh>
#include <thrust/iterator/counting_iterator.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "../center_loss_math.h"
#include "../dispatch.h"
#include "cuda_common.cuh"
#include "cuda_kernels.h"

namespace centerloss::kernels::cuda {
namespace {

template <typename T>
T* byte_offset(at::Tensor& workspace, int64_t offset) {
  return reinterpret_cast<T*>(workspace.data_ptr<uint8_t>() + offset);
}

int64_t align_up(int64_t bytes) { return (bytes + 15) / 16 * 16; }

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
  using acc_t = math::step_acc_t<center_t>;
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

}  // namespace

void center_step(at::Tensor& centers, const at::Tensor& features, const at::Tensor& labels,
                 double alpha, int64_t rule, bool* applied, int64_t* skipped) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  CENTERLOSS_DISPATCH_TYPES(features, centers, "centerloss_center_step_cuda", [&] {
    update_typed<feat_t, center_t>(centers, features, labels, alpha, rule, applied, skipped,
                                   stream);
  });
}

}  // namespace centerloss::kernels::cuda
