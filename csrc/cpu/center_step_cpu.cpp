// CPU center step of center loss, alone (update_centers_) and fused with the forward (the
// module's training step).
//
// The step: a finite check over the raw bits of the features (nothing moves for a non-finite
// batch), the rows grouped by class (class_groups.h), then each (class, column block) task sums
// its rows in batch order and moves its center; only the classes present in the batch are read
// or written. The training step does the forward and the step per class group in one pass
// where that pays (one_pass_pays), with the same bits as the two passes. Deterministic for any
// thread count: each center element is written by one task, in a fixed order. Compiled once per
// instruction set, like forward_cpu.cpp.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <atomic>

#include "../dispatch.h"
#include "class_groups.h"
#include "cpu_variants.h"
#include "forward_cpu.h"
#include "row_kernels.h"

namespace centerloss::kernels::CENTERLOSS_CPU_ISA {
namespace {

// True when no element is NaN or infinite: OR-reduces (exponent field + one exponent unit),
// whose top bit is set exactly for an all-ones exponent. Integer-only, so it vectorises.
template <typename feat_t>
bool all_finite(const typename Io<feat_t>::raw* x, int64_t count) {
  using bits = typename Io<feat_t>::bits;
  constexpr bits kExp = Io<feat_t>::kExponent;
  constexpr bits kUnit = kExp & ~(kExp << 1);  // lowest bit of the exponent field
  constexpr bits kTop = bits(1) << (8 * sizeof(bits) - 1);
  const bits* b = reinterpret_cast<const bits*>(x);
  std::atomic<bool> finite{true};
  at::parallel_for(0, count, kWorkPerTask * 4, [&](int64_t begin, int64_t end) {
    bits acc = 0;
    for (int64_t e = begin; e < end; ++e) acc |= static_cast<bits>((b[e] & kExp) + kUnit);
    if (acc & kTop) finite.store(false, std::memory_order_relaxed);
  });
  return finite.load();
}

bool features_finite(const at::Tensor& features) {
  bool finite = true;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, features.scalar_type(),
                                  "centerloss_finite_cpu", [&] {
    finite = all_finite<scalar_t>(raw_ptr<scalar_t>(features), features.numel());
  });
  return finite;
}

template <typename feat_t, typename center_t>
void update_typed(at::Tensor& centers, const at::Tensor& features, const int64_t* y,
                  const cpu::ClassGroups& groups, double alpha, int64_t rule) {
  using acc_t = math::step_acc_t<center_t>;
  using raw_t = typename Io<feat_t>::raw;
  const int64_t dim = features.size(1);
  const raw_t* x = raw_ptr<feat_t>(features);
  center_t* c = centers.mutable_data_ptr<center_t>();
  const int64_t num_groups = groups.size();
  const int64_t column_blocks = (dim + kColumnBlock - 1) / kColumnBlock;
  const int64_t tasks = num_groups * column_blocks;
  const acc_t a = static_cast<acc_t>(alpha);
  const int64_t rows_per_group = std::max<int64_t>(1, features.size(0) / num_groups);
  const int64_t grain =
      std::max<int64_t>(1, kWorkPerTask / (rows_per_group * std::min(dim, kColumnBlock)));

  // Task t: class group t / column_blocks, columns from (t % column_blocks) * kColumnBlock. The
  // cursors step through (group, block) without a division per task (with one row per class,
  // 64-bit divisions were most of the update's time).
  struct TaskCursor {
    int64_t group, block, blocks;
    TaskCursor(int64_t t, int64_t blocks_) : group(t / blocks_), block(t % blocks_), blocks(blocks_) {}
    void next() {
      if (++block == blocks) {
        block = 0;
        ++group;
      }
    }
  };
  auto center_block = [&](const TaskCursor& at) {
    return c + y[groups.order[groups.group_start[at.group]]] * dim + at.block * kColumnBlock;
  };
  const int64_t ahead = rows_ahead<center_t>(std::min(dim, kColumnBlock));

  at::parallel_for(0, tasks, grain, [&](int64_t begin, int64_t end) {
    with_small_dim(dim, [&](auto known_width) {
      constexpr int64_t kWidth = decltype(known_width)::value;
      TaskCursor at(begin, column_blocks);
      TaskCursor at_ahead(std::min(begin + ahead, end), column_blocks);
      for (int64_t t = begin; t < end; ++t, at.next(), at_ahead.next()) {
        const int64_t first = groups.group_start[at.group];
        const int64_t last = groups.group_start[at.group + 1];
        const int64_t col0 = at.block * kColumnBlock;
        if (t + ahead < end) prefetch_span(center_block(at_ahead), std::min(dim, kColumnBlock));
        step_group_columns<kWidth, feat_t>(center_block(at), x, dim, groups.order.data() + first,
                                           last - first, col0, std::min(kColumnBlock, dim - col0),
                                           math::center_step_factor<acc_t>(last - first, a, rule));
      }
    });
  });
}

// Per class group: the forward of each of its rows (the same function and bits as
// forward_typed), then the group's center step (the same bits as update_typed). A group's rows
// read its center before the group moves it, and no other task touches that center, so the
// result equals forward then update; x and the center row are read once instead of twice.
template <typename feat_t, typename center_t>
void forward_step_typed(const at::Tensor& features, const int64_t* y, const cpu::ClassGroups& groups,
                        at::Tensor& centers, double margin, int64_t reduction, double alpha,
                        int64_t rule, at::Tensor& losses, at::Tensor& grad_basis) {
  using fwd_acc_t = math::forward_acc_t<feat_t, center_t>;
  using step_acc_t = math::step_acc_t<center_t>;
  const int64_t n = features.size(0);
  const int64_t dim = features.size(1);
  const auto* x = raw_ptr<feat_t>(features);
  center_t* c = centers.mutable_data_ptr<center_t>();
  fwd_acc_t* loss = losses.mutable_data_ptr<fwd_acc_t>();
  auto* basis = raw_mut_ptr<feat_t>(grad_basis);
  const fwd_acc_t rho = static_cast<fwd_acc_t>(margin);
  const fwd_acc_t scale = math::reduction_scale<fwd_acc_t>(reduction, n);
  const step_acc_t a = static_cast<step_acc_t>(alpha);
  const int64_t num_groups = groups.size();
  const int64_t rows_per_group = std::max<int64_t>(1, n / num_groups);
  const int64_t grain = std::max<int64_t>(1, kWorkPerTask / (2 * rows_per_group * dim));
  auto center_of = [&](int64_t g) { return c + y[groups.order[groups.group_start[g]]] * dim; };
  const int64_t ahead = rows_ahead<center_t>(dim);

  at::parallel_for(0, num_groups, grain, [&](int64_t begin, int64_t end) {
    with_small_dim(dim, [&](auto known_dim) {
      constexpr int64_t kDim = decltype(known_dim)::value;
      for (int64_t g = begin; g < end; ++g) {
        if (g + ahead < end) prefetch_span(center_of(g + ahead), dim);
        const int64_t first = groups.group_start[g];
        const int64_t last = groups.group_start[g + 1];
        const int64_t* rows = groups.order.data() + first;
        for (int64_t r = 0; r < last - first; ++r) {
          forward_row<static_cast<int>(kDim), feat_t, center_t, fwd_acc_t>(
              x, y, c, dim, rho, scale, loss, basis, rows[r]);
        }
        center_t* cj = center_of(g);
        const step_acc_t factor = math::center_step_factor<step_acc_t>(last - first, a, rule);
        for (int64_t col0 = 0; col0 < dim; col0 += kColumnBlock) {
          step_group_columns<kDim, feat_t>(cj + col0, x, dim, rows, last - first, col0,
                                           std::min(kColumnBlock, dim - col0), factor);
        }
      }
    });
  });
}


// Whether the one-pass step beats forward then step. It reads x and the center rows once and
// runs two parallel regions instead of three, but visits the rows in class order, which the
// prefetchers cannot follow. The thresholds come from bench/bench_kernels.py --one-pass both
// (docs/benchmarks.md, "one pass or two"): one pass wins while x stays in cache, for long rows,
// and when the table's rows come from DRAM anyway; it loses at D <= 4 and with few classes per
// thread (uneven shares, where the separate update also splits the columns).
constexpr int64_t kMinGroupsPerThread = 8;

bool one_pass_pays(const at::Tensor& features, const at::Tensor& centers, int64_t num_groups) {
  if (cpu_one_pass() != OnePass::Auto) return cpu_one_pass() == OnePass::Always;  // forced
  constexpr int64_t kCachedFeatures = int64_t(1) << 20;  // bytes of x that stay in L2
  constexpr int64_t kMaxCachedRows = 1024;               // rows visited out of order (above)
  constexpr int64_t kLongRow = 1024;                     // bytes: a row the prefetcher can follow
  constexpr int64_t kLongRowFeatures = int64_t(2) << 20; // bytes of x in such rows
  constexpr int64_t kDramTable = int64_t(64) << 20;      // bytes of a table read from DRAM
  if (features.size(1) <= 4 || num_groups < kMinGroupsPerThread * at::get_num_threads()) {
    return false;
  }
  const int64_t x_bytes = features.numel() * features.element_size();
  const int64_t table_bytes = centers.numel() * centers.element_size();
  const int64_t row_bytes = features.size(1) * features.element_size();
  return (x_bytes <= kCachedFeatures && features.size(0) <= kMaxCachedRows) ||
         (row_bytes >= kLongRow && x_bytes <= kLongRowFeatures) || table_bytes >= kDramTable;
}

void update_groups(at::Tensor& centers, const at::Tensor& features, const int64_t* y,
                   const cpu::ClassGroups& groups, double alpha, int64_t rule) {
  CENTERLOSS_DISPATCH_TYPES(features, centers, "centerloss_update_cpu", [&] {
    update_typed<feat_t, center_t>(centers, features, y, groups, alpha, rule);
  });
}

}  // namespace

bool update_centers(at::Tensor& centers, const at::Tensor& features, const at::Tensor& labels,
                    double alpha, int64_t rule) {
  if (!features_finite(features)) return false;
  const int64_t* y = labels.const_data_ptr<int64_t>();
  update_groups(centers, features, y, cpu::group_by_class(y, features.size(0), centers.size(0)),
                alpha, rule);
  return true;
}

void forward_step(const at::Tensor& features, const at::Tensor& labels, at::Tensor& centers,
                  at::Tensor& skipped, double margin, int64_t reduction, double alpha,
                  int64_t rule, ForwardOutputs& out) {
  if (!features_finite(features)) {
    // Nothing to move: the plain forward (a non-finite batch shows in the loss, spec section 3).
    forward(features, labels, centers, margin, reduction, out);
    *skipped.mutable_data_ptr<int64_t>() += 1;
    return;
  }
  const int64_t* y = labels.const_data_ptr<int64_t>();
  const cpu::ClassGroups groups = cpu::group_by_class(y, features.size(0), centers.size(0));
  if (!one_pass_pays(features, centers, groups.size())) {
    forward(features, labels, centers, margin, reduction, out);
    update_groups(centers, features, y, groups, alpha, rule);
    return;
  }
  at::Tensor losses = per_sample_losses(out, reduction);
  CENTERLOSS_DISPATCH_TYPES(features, centers, "centerloss_forward_step_cpu", [&] {
    forward_step_typed<feat_t, center_t>(features, y, groups, centers, margin, reduction, alpha,
                                         rule, losses, out.grad_basis);
  });
  reduce_losses(losses, reduction, out);
}

}  // namespace centerloss::kernels::CENTERLOSS_CPU_ISA
