// CPU kernels of center loss, written to run at the memory limit.
//
// Fused forward: one pass over the batch gathers c_{y_i}, computes the squared distance, the
// per-sample loss and the scaled gradient basis s * g_i * (x_i - c_{y_i}); no N x K matrix and
// no K x D temporary. Center update: a finite check over the raw bits of the features, then
// rows grouped by label with a counting sort when K <= 2N, else a radix sort (O(N) whatever K
// is: a comparison sort was the largest cost at small D), then each (class, column
// block) task sums its rows in batch order; only the classes present in the batch are read or
// written.
//
// Speed: every inner loop is a plain loop over contiguous elements that the compiler vectorises
// (bfloat16 converted with integer bit operations, bit-exact with c10's conversions); the batch
// is split across threads in tasks of ~16K elements.
//
// Instruction sets: this file is compiled twice, for baseline x86-64 and for AVX2 (+FMA, with
// -ffp-contract=off so no multiply-add is fused); csrc/cpu/dispatch_cpu.cpp picks one at run
// time. The loops keep their fixed lanes whatever the vector width, so both give the same bits.
//
// Determinism: each output element is computed by exactly one task in a fixed order, partial
// sums use a fixed number of lanes, and the scalar reduction is a serial fixed-order sum, so
// results are bitwise identical for any thread count.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../center_loss_math.h"
#include "../checks.h"
#include "../dispatch.h"

#include "cpu_variants.h"

// Compiled once per instruction set (CENTERLOSS_CPU_ISA, see csrc/cpu/cpu_variants.h).
namespace centerloss::kernels::CENTERLOSS_CPU_ISA {
namespace {

constexpr int64_t kLanes = 8;          // independent partial sums per row (vectorisable)
constexpr int64_t kColumnBlock = 256;  // columns per center-update task
constexpr int64_t kWorkPerTask = 16384;

// ---- element access: how a feature element is stored, read as float and written back ----

template <typename To, typename From>
To bit_cast(From v) {
  static_assert(sizeof(To) == sizeof(From));
  To out;
  std::memcpy(&out, &v, sizeof(To));
  return out;
}

// Io<T>::raw is the type the loops see. For bfloat16 it is the uint16_t bit pattern, converted
// with integer operations that the compiler vectorises (same results as c10::BFloat16: exact
// widening, round-to-nearest-even narrowing, NaN -> 0x7FC0). Exponent masks drive the finite
// check: a value is non-finite exactly when its exponent field is all ones.
template <typename T>
struct Io {  // float, double
  using raw = T;
  using bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  static constexpr bits kExponent = sizeof(T) == 4 ? bits(0x7F800000u) : bits(0x7FF0000000000000ull);
  static T load(T v) { return v; }
  template <typename acc_t>
  static T store(acc_t v) { return static_cast<T>(v); }
};

template <>
struct Io<c10::BFloat16> {
  using raw = uint16_t;
  using bits = uint16_t;
  static constexpr bits kExponent = 0x7F80;
  static float load(uint16_t b) { return bit_cast<float>(static_cast<uint32_t>(b) << 16); }
  template <typename acc_t>
  static uint16_t store(acc_t value) {
    const uint32_t u = bit_cast<uint32_t>(static_cast<float>(value));
    const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return (u & 0x7FFFFFFFu) > 0x7F800000u ? uint16_t(0x7FC0) : static_cast<uint16_t>(rounded);
  }
};

template <>
struct Io<c10::Half> {  // c10's scalar conversions (float16 is not a hot path on CPU)
  using raw = c10::Half;
  using bits = uint16_t;
  static constexpr bits kExponent = 0x7C00;
  static float load(c10::Half v) { return static_cast<float>(v); }
  template <typename acc_t>
  static c10::Half store(acc_t v) { return static_cast<c10::Half>(v); }
};

template <typename T>
const typename Io<T>::raw* raw_ptr(const at::Tensor& t) {
  return reinterpret_cast<const typename Io<T>::raw*>(t.const_data_ptr<T>());
}
template <typename T>
typename Io<T>::raw* raw_mut_ptr(at::Tensor& t) {
  return reinterpret_cast<typename Io<T>::raw*>(t.mutable_data_ptr<T>());
}

template <typename feat_t, typename acc_t>
acc_t read(typename Io<feat_t>::raw v) {
  return static_cast<acc_t>(Io<feat_t>::load(v));
}

// Center rows are read in label order, which is random: fetching the rows a few tasks ahead
// hides the cache and TLB misses that otherwise make a large table (K = 10^6) several times
// slower than a small one. About 8 KiB ahead, at least 4 and at most 32 rows.
template <typename T>
int64_t rows_ahead(int64_t dim) {
  return std::clamp<int64_t>(8192 / (dim * static_cast<int64_t>(sizeof(T))), 4, 32);
}

// A read prefetch also serves rows about to be written: without -mprfchw the compiler drops
// write prefetches altogether.
template <typename T>
void prefetch_span(const T* p, int64_t count) {
  const char* bytes = reinterpret_cast<const char*>(p);
  const int64_t size = count * static_cast<int64_t>(sizeof(T));
  for (int64_t off = 0; off < size; off += 64) __builtin_prefetch(bytes + off, 0, 3);
}

// ---- forward ----

// Runs fn(std::integral_constant<int64_t, W>) with W = D for D <= 4 (unrolled rows), else 0.
template <typename Fn>
void with_small_dim(int64_t dim, Fn&& fn) {
  switch (dim) {
    case 1: fn(std::integral_constant<int64_t, 1>{}); break;
    case 2: fn(std::integral_constant<int64_t, 2>{}); break;
    case 3: fn(std::integral_constant<int64_t, 3>{}); break;
    case 4: fn(std::integral_constant<int64_t, 4>{}); break;
    default: fn(std::integral_constant<int64_t, 0>{}); break;
  }
}


// Squared distance between a feature row and a center row: kChains x kLanes fixed partial sums,
// folded in a fixed order, so the compiler vectorises it and it stays deterministic. With one
// chain (one AVX2 register of floats) every add waited for the previous one (3-4 cycles per 8
// elements); kChains independent chains run at the load ports' speed.
constexpr int64_t kChains = 4;

template <typename feat_t, typename center_t, typename acc_t>
acc_t squared_distance(const typename Io<feat_t>::raw* x, const center_t* c, int64_t dim) {
  acc_t lane[kChains][kLanes] = {};
  int64_t k = 0;
  for (; k + kChains * kLanes <= dim; k += kChains * kLanes) {
    for (int64_t h = 0; h < kChains; ++h) {
      for (int64_t l = 0; l < kLanes; ++l) {
        const int64_t e = k + h * kLanes + l;
        const acc_t d = read<feat_t, acc_t>(x[e]) - static_cast<acc_t>(c[e]);
        lane[h][l] += d * d;
      }
    }
  }
  for (; k + kLanes <= dim; k += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      const acc_t d = read<feat_t, acc_t>(x[k + l]) - static_cast<acc_t>(c[k + l]);
      lane[0][l] += d * d;
    }
  }
  for (int64_t l = 0; k < dim; ++k, ++l) {
    const acc_t d = read<feat_t, acc_t>(x[k]) - static_cast<acc_t>(c[k]);
    lane[0][l] += d * d;
  }
  // Fixed fold: chains first (lane[0][l] + 0 == lane[0][l], so D <= kLanes still gives the plain
  // column-order sum), then the lanes.
  acc_t total = acc_t(0);
  for (int64_t l = 0; l < kLanes; ++l) {
    acc_t chained = lane[0][l];
    for (int64_t h = 1; h < kChains; ++h) chained += lane[h][l];
    total += chained;
  }
  return total;
}

template <typename acc_t>
acc_t fixed_order_sum(const acc_t* v, int64_t n) {
  acc_t lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) lane[l] += v[i + l];
  }
  for (int64_t l = 0; i < n; ++i, ++l) lane[l] += v[i];
  acc_t total = acc_t(0);
  for (int64_t l = 0; l < kLanes; ++l) total += lane[l];
  return total;
}

int64_t grain_rows(int64_t dim) { return std::max<int64_t>(1, kWorkPerTask / std::max<int64_t>(dim, 1)); }

// Row i of the forward. kDim > 0: D known at compile time (D <= kLanes), so the row is fully
// unrolled; its squared distance is the plain sum in column order, which is what
// squared_distance gives for D <= kLanes (each lane holds one term, the others add +0), so the
// result is bitwise the same as the general path.
template <int kDim, typename feat_t, typename center_t, typename acc_t>
void forward_row(const typename Io<feat_t>::raw* x, const int64_t* y, const center_t* c,
                 int64_t runtime_dim, acc_t rho, acc_t scale, acc_t* loss,
                 typename Io<feat_t>::raw* basis, int64_t i) {
  using raw_t = typename Io<feat_t>::raw;
  const int64_t dim = kDim > 0 ? kDim : runtime_dim;
  const raw_t* xi = x + i * dim;
  const center_t* ci = c + y[i] * dim;
  acc_t sq;
  if constexpr (kDim > 0) {
    static_assert(kDim <= kLanes);
    sq = acc_t(0);
    for (int k = 0; k < kDim; ++k) {
      const acc_t d = read<feat_t, acc_t>(xi[k]) - static_cast<acc_t>(ci[k]);
      sq += d * d;
    }
  } else {
    sq = squared_distance<feat_t, center_t, acc_t>(xi, ci, dim);
  }
  loss[i] = math::sample_loss(sq, rho);
  const acc_t coef = scale * math::gradient_coefficient(sq, rho);
  raw_t* bi = basis + i * dim;
  for (int64_t k = 0; k < dim; ++k) {
    bi[k] = Io<feat_t>::store(coef * (read<feat_t, acc_t>(xi[k]) - static_cast<acc_t>(ci[k])));
  }
}

// Rows [begin, end) of the forward, in batch order, each row's center fetched a few rows ahead.
template <int kDim, typename feat_t, typename center_t, typename acc_t>
void forward_rows(const typename Io<feat_t>::raw* x, const int64_t* y, const center_t* c,
                  int64_t runtime_dim, acc_t rho, acc_t scale, acc_t* loss,
                  typename Io<feat_t>::raw* basis, int64_t begin, int64_t end) {
  const int64_t dim = kDim > 0 ? kDim : runtime_dim;
  const int64_t ahead = rows_ahead<center_t>(dim);
  for (int64_t i = begin; i < end; ++i) {
    if (i + ahead < end) prefetch_span(c + y[i + ahead] * dim, dim);
    forward_row<kDim, feat_t, center_t, acc_t>(x, y, c, dim, rho, scale, loss, basis, i);
  }
}

template <typename feat_t, typename center_t>
void forward_typed(const at::Tensor& features, const at::Tensor& labels, const at::Tensor& centers,
                   double margin, int64_t reduction, at::Tensor& losses, at::Tensor& grad_basis) {
  using acc_t = std::conditional_t<std::is_same_v<feat_t, double> || std::is_same_v<center_t, double>,
                                   double, float>;
  const int64_t n = features.size(0);
  const int64_t dim = features.size(1);
  const auto* x = raw_ptr<feat_t>(features);
  const int64_t* y = labels.const_data_ptr<int64_t>();
  const center_t* c = centers.const_data_ptr<center_t>();
  acc_t* loss = losses.mutable_data_ptr<acc_t>();
  auto* basis = raw_mut_ptr<feat_t>(grad_basis);
  const acc_t rho = static_cast<acc_t>(margin);
  const acc_t scale = math::reduction_scale<acc_t>(reduction, n);

  at::parallel_for(0, n, grain_rows(dim), [&](int64_t begin, int64_t end) {
    // Small D: per-row overhead dominates, so unroll it (the 2-D plots' case).
    with_small_dim(dim, [&](auto known_dim) {
      forward_rows<static_cast<int>(decltype(known_dim)::value), feat_t, center_t, acc_t>(
          x, y, c, dim, rho, scale, loss, basis, begin, end);
    });
  });
}

// ---- center update ----

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

// Rows grouped by class: order[group_start[g] .. group_start[g+1]) are the batch positions of
// class labels[order[group_start[g]]], in increasing position; groups in class order. Built in
// O(N) for any K (below). Which task sums a group, and in which order the groups come, never
// changes the bits: each group is summed by one task in batch order.
struct ClassGroups {
  std::vector<int64_t> order;
  std::vector<int64_t> group_start;
};

// K <= 2N: a counting sort over the class ids (an O(K) = O(N) count array).
ClassGroups group_by_class_dense(const int64_t* y, int64_t n, int64_t num_classes) {
  std::vector<int64_t> cursor(static_cast<size_t>(num_classes), 0);
  for (int64_t i = 0; i < n; ++i) ++cursor[y[i]];
  ClassGroups g;
  g.group_start.push_back(0);
  for (int64_t j = 0; j < num_classes; ++j) {
    if (cursor[j] == 0) continue;
    const int64_t count = cursor[j];
    cursor[j] = g.group_start.back();
    g.group_start.push_back(cursor[j] + count);
  }
  g.order.resize(n);
  for (int64_t i = 0; i < n; ++i) g.order[cursor[y[i]]++] = i;
  return g;
}

// K > 2N: a least-significant-digit radix sort of (label, position), 11 bits per pass over the
// bits that K - 1 needs (two passes for K = 10^6). Each pass is stable, so a class keeps its
// rows in batch order; groups come out in class order. O(N) per pass whatever K is, with
// sequential reads (a hash table of 2N slots took 21 us at N = 4096, K = 10^6, mostly branch
// misses on its probes).
ClassGroups group_by_class_sparse(const int64_t* y, int64_t n, int64_t num_classes) {
  constexpr int kRadixBits = 11;
  constexpr uint64_t kDigitMask = (uint64_t(1) << kRadixBits) - 1;
  const int label_bits = 64 - __builtin_clzll(static_cast<uint64_t>(num_classes - 1));
  std::vector<uint64_t> key(y, y + n), key_out(n);
  std::vector<int64_t> pos(n), pos_out(n);
  for (int64_t i = 0; i < n; ++i) pos[i] = i;
  std::vector<int64_t> start(kDigitMask + 2);
  for (int shift = 0; shift < label_bits; shift += kRadixBits) {
    std::fill(start.begin(), start.end(), 0);
    for (int64_t i = 0; i < n; ++i) ++start[((key[i] >> shift) & kDigitMask) + 1];
    for (size_t d = 1; d < start.size(); ++d) start[d] += start[d - 1];
    for (int64_t i = 0; i < n; ++i) {
      const int64_t to = start[(key[i] >> shift) & kDigitMask]++;
      key_out[to] = key[i];
      pos_out[to] = pos[i];
    }
    key.swap(key_out);
    pos.swap(pos_out);
  }
  ClassGroups g;
  g.group_start.push_back(0);
  for (int64_t i = 1; i < n; ++i) {
    if (key[i] != key[i - 1]) g.group_start.push_back(i);
  }
  g.group_start.push_back(n);
  g.order = std::move(pos);
  return g;
}

ClassGroups group_by_class(const int64_t* y, int64_t n, int64_t num_classes) {
  if (num_classes <= 2 * n) return group_by_class_dense(y, n, num_classes);
  return group_by_class_sparse(y, n, num_classes);
}

// One class group's step on the columns [col0, col0 + width): sums c_j - x_i over the group's
// rows in batch order (the first row initialises the sums: the same value as adding it to
// zero, without a memset whose wide stores the following narrow loads cannot forward from),
// then c_j -= factor * sum. kWidth > 0: the width, known at compile time (D <= 4).
template <int64_t kWidth, typename feat_t, typename center_t, typename acc_t>
C10_ALWAYS_INLINE void step_group_columns(center_t* cj, const typename Io<feat_t>::raw* x, int64_t dim,
                        const int64_t* rows, int64_t count, int64_t col0, int64_t width,
                        acc_t factor) {
  using raw_t = typename Io<feat_t>::raw;
  if constexpr (kWidth > 0) width = kWidth;
  acc_t sum[kWidth > 0 ? kWidth : kColumnBlock];
  const raw_t* x0 = x + rows[0] * dim + col0;
  for (int64_t k = 0; k < width; ++k) sum[k] = static_cast<acc_t>(cj[k]) - read<feat_t, acc_t>(x0[k]);
  for (int64_t r = 1; r < count; ++r) {
    const raw_t* xi = x + rows[r] * dim + col0;
    for (int64_t k = 0; k < width; ++k) sum[k] += static_cast<acc_t>(cj[k]) - read<feat_t, acc_t>(xi[k]);
  }
  for (int64_t k = 0; k < width; ++k) {
    cj[k] = static_cast<center_t>(static_cast<acc_t>(cj[k]) - factor * sum[k]);
  }
}

template <typename feat_t, typename center_t>
void update_typed(at::Tensor& centers, const at::Tensor& features, const int64_t* y,
                  const ClassGroups& groups, double alpha, int64_t rule) {
  using acc_t = std::conditional_t<std::is_same_v<center_t, double>, double, float>;
  using raw_t = typename Io<feat_t>::raw;
  const int64_t dim = features.size(1);
  const raw_t* x = raw_ptr<feat_t>(features);
  center_t* c = centers.mutable_data_ptr<center_t>();
  const int64_t num_groups = static_cast<int64_t>(groups.group_start.size()) - 1;
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

// ---- forward and center step in one pass (the module's training step) ----

// Per class group: the forward of each of its rows (the same function and bits as
// forward_typed), then the group's center step (the same bits as update_typed). A group's rows
// read its center before the group moves it, and no other task touches that center, so the
// result equals forward then update; x and the center row are read once instead of twice.
template <typename feat_t, typename center_t>
void forward_step_typed(const at::Tensor& features, const int64_t* y, const ClassGroups& groups,
                        at::Tensor& centers, double margin, int64_t reduction, double alpha,
                        int64_t rule, at::Tensor& losses, at::Tensor& grad_basis) {
  using fwd_acc_t = std::conditional_t<std::is_same_v<feat_t, double> || std::is_same_v<center_t, double>,
                                       double, float>;
  using step_acc_t = std::conditional_t<std::is_same_v<center_t, double>, double, float>;
  const int64_t n = features.size(0);
  const int64_t dim = features.size(1);
  const auto* x = raw_ptr<feat_t>(features);
  center_t* c = centers.mutable_data_ptr<center_t>();
  fwd_acc_t* loss = losses.mutable_data_ptr<fwd_acc_t>();
  auto* basis = raw_mut_ptr<feat_t>(grad_basis);
  const fwd_acc_t rho = static_cast<fwd_acc_t>(margin);
  const fwd_acc_t scale = math::reduction_scale<fwd_acc_t>(reduction, n);
  const step_acc_t a = static_cast<step_acc_t>(alpha);
  const int64_t num_groups = static_cast<int64_t>(groups.group_start.size()) - 1;
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

// The loss of forward_cpu from its per-sample losses: a fixed-order sum, scaled.
at::Tensor reduce_losses(const at::Tensor& losses, int64_t reduction) {
  if (reduction == static_cast<int64_t>(Reduction::None)) return losses;
  const int64_t n = losses.size(0);
  at::Tensor total = at::empty({}, losses.options());
  AT_DISPATCH_FLOATING_TYPES(losses.scalar_type(), "centerloss_reduce_cpu", [&] {
    const scalar_t sum = fixed_order_sum(losses.const_data_ptr<scalar_t>(), n);
    *total.mutable_data_ptr<scalar_t>() = sum * math::reduction_scale<scalar_t>(reduction, n);
  });
  return total;
}

std::tuple<at::Tensor, at::Tensor> empty_forward_outputs(const at::Tensor& features,
                                                         const at::Tensor& centers) {
  const bool wide = features.scalar_type() == at::kDouble || centers.scalar_type() == at::kDouble;
  return {at::empty({features.size(0)}, features.options().dtype(wide ? at::kDouble : at::kFloat)),
          at::empty_like(features, at::MemoryFormat::Contiguous)};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> forward_cpu(const at::Tensor& features, const at::Tensor& labels,
                                               const at::Tensor& centers, double margin,
                                               int64_t reduction) {
  auto [losses, grad_basis] = empty_forward_outputs(features, centers);
  CENTERLOSS_DISPATCH_TYPES(features, centers, "centerloss_forward_cpu", [&] {
    forward_typed<feat_t, center_t>(features, labels, centers, margin, reduction, losses,
                                    grad_basis);
  });
  return {reduce_losses(losses, reduction), grad_basis};
}

namespace {
// out[i, :] = grad_loss (or grad_loss[i]) * basis[i, :]; out may be basis itself (elementwise).
void scale_basis(const at::Tensor& grad_loss, const at::Tensor& grad_basis, at::Tensor& out) {
  const int64_t n = grad_basis.size(0);
  const int64_t dim = grad_basis.size(1);
  const bool per_sample = grad_loss.dim() == 1;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_basis.scalar_type(),
                                  "centerloss_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    using raw_t = typename Io<scalar_t>::raw;
    const acc_t* g = grad_loss.const_data_ptr<acc_t>();
    const raw_t* b = raw_ptr<scalar_t>(grad_basis);
    raw_t* o = raw_mut_ptr<scalar_t>(out);
    if (!per_sample) {  // one scale for the whole batch: a flat loop, whatever D is
      const acc_t g0 = g[0];
      at::parallel_for(0, n * dim, kWorkPerTask, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
          o[k] = Io<scalar_t>::store(g0 * read<scalar_t, acc_t>(b[k]));
        }
      });
      return;
    }
    at::parallel_for(0, n, grain_rows(dim), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const acc_t gi = g[i];
        for (int64_t k = i * dim; k < (i + 1) * dim; ++k) {
          o[k] = Io<scalar_t>::store(gi * read<scalar_t, acc_t>(b[k]));
        }
      }
    });
  });
}
}  // namespace

at::Tensor backward_cpu(const at::Tensor& grad_loss, const at::Tensor& grad_basis) {
  at::Tensor grad = at::empty_like(grad_basis, at::MemoryFormat::Contiguous);
  scale_basis(grad_loss, grad_basis, grad);
  return grad;
}

void backward_in_place_cpu(const at::Tensor& grad_loss, at::Tensor& grad_basis) {
  scale_basis(grad_loss, grad_basis, grad_basis);
}

namespace {
bool features_finite(const at::Tensor& features) {
  bool finite = true;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, features.scalar_type(),
                                  "centerloss_finite_cpu", [&] {
    finite = all_finite<scalar_t>(raw_ptr<scalar_t>(features), features.numel());
  });
  return finite;
}
}  // namespace

bool update_centers_cpu(at::Tensor& centers, const at::Tensor& features, const at::Tensor& labels,
                        double alpha, int64_t rule) {
  const int64_t n = features.size(0);
  if (n == 0) return true;
  if (!features_finite(features)) return false;
  const int64_t* y = labels.const_data_ptr<int64_t>();
  const ClassGroups groups = group_by_class(y, n, centers.size(0));
  CENTERLOSS_DISPATCH_TYPES(features, centers, "centerloss_update_cpu", [&] {
    update_typed<feat_t, center_t>(centers, features, y, groups, alpha, rule);
  });
  return true;
}

namespace {
// Whether the one-pass step beats forward then step. It reads x and the center rows once and
// runs two parallel regions instead of three (the finite check, then forward and step per class
// group), but visits the rows in class order, which the prefetchers cannot follow. Measured on
// the 2-core EPYC, 2 threads, 2026-11-29 03:40 UTC, two passes / one pass, medians of 5
// alternated processes per path (`bench/bench_kernels.py --n 512 1024 2048 4096 --d 32 64 128
// 256 512 --k 1000 --threads 2 --isa default --one-pass both --repeat 5`, the same with
// `--dtype bfloat16`, and `--n 512 4096 --d 128 512 --k 1000000`; docs/benchmarks.md):
// - x within 1 MiB and at most 1024 rows: 0.94-1.25x float32, 0.94-1.72x bfloat16 (one pass
//   1.08-1.72x faster from D = 128; a tie below);
// - more rows of less than 1 KiB: 0.67-0.99x (N = 4096, D = 64: 0.80x float32, 0.67x bfloat16),
//   except 1.08x for bfloat16 N = 2048, D = 256;
// - rows of 1 KiB or more and x within 2 MiB: 1.05-1.72x (float32 N = 1024, D = 512: 1.10x;
//   N = 2048, D = 256: 1.05x; bfloat16 N = 2048, D = 512: 1.41x); beyond 2 MiB 0.76-1.00x;
// - a table of 64 MiB or more, whose rows come from DRAM anyway: 1.10-1.64x (K = 10^6, N = 512
//   and 4096, D = 128 and 512);
// - it loses at D <= 4, where the per-row work is too small, and with few classes per batch.
constexpr int64_t kMinGroupsPerThread = 8;  // batch classes per thread for the one pass

bool one_pass_pays(const at::Tensor& features, const at::Tensor& centers, int64_t num_groups) {
  if (cpu_one_pass() != OnePass::Auto) return cpu_one_pass() == OnePass::Always;  // forced
  constexpr int64_t kCachedFeatures = int64_t(1) << 20;  // bytes of x that stay in L2
  constexpr int64_t kMaxCachedRows = 1024;               // rows visited out of order (above)
  constexpr int64_t kLongRow = 1024;                     // bytes: a row the prefetcher can follow
  constexpr int64_t kLongRowFeatures = int64_t(2) << 20; // bytes of x in such rows
  constexpr int64_t kDramTable = int64_t(64) << 20;      // bytes of a table read from DRAM
  // One task per class: with few classes in the batch (K = 10) the threads get uneven shares,
  // while the separate update also splits the columns.
  if (features.size(1) <= 4 || num_groups < kMinGroupsPerThread * at::get_num_threads()) {
    return false;
  }
  const int64_t x_bytes = features.numel() * features.element_size();
  const int64_t table_bytes = centers.numel() * centers.element_size();
  const int64_t row_bytes = features.size(1) * features.element_size();
  return (x_bytes <= kCachedFeatures && features.size(0) <= kMaxCachedRows) ||
         (row_bytes >= kLongRow && x_bytes <= kLongRowFeatures) || table_bytes >= kDramTable;
}
}  // namespace

std::tuple<at::Tensor, at::Tensor> forward_step_cpu(const at::Tensor& features,
                                                    const at::Tensor& labels, at::Tensor& centers,
                                                    at::Tensor& skipped, double margin,
                                                    int64_t reduction, double alpha, int64_t rule) {
  const int64_t n = features.size(0);
  if (n == 0 || !features_finite(features)) {
    // Nothing to move: the plain forward (a non-finite batch shows in the loss, spec section 3).
    auto result = forward_cpu(features, labels, centers, margin, reduction);
    if (n > 0) *skipped.mutable_data_ptr<int64_t>() += 1;
    return result;
  }
  const int64_t* y = labels.const_data_ptr<int64_t>();
  const ClassGroups groups = group_by_class(y, n, centers.size(0));
  const int64_t num_groups = static_cast<int64_t>(groups.group_start.size()) - 1;
  if (!one_pass_pays(features, centers, num_groups)) {  // forward, then the update on the groups
    auto result = forward_cpu(features, labels, centers, margin, reduction);
    CENTERLOSS_DISPATCH_TYPES(features, centers, "centerloss_update_cpu", [&] {
      update_typed<feat_t, center_t>(centers, features, y, groups, alpha, rule);
    });
    return result;
  }
  auto [losses, grad_basis] = empty_forward_outputs(features, centers);
  CENTERLOSS_DISPATCH_TYPES(features, centers, "centerloss_forward_step_cpu", [&] {
    forward_step_typed<feat_t, center_t>(features, y, groups, centers, margin, reduction, alpha,
                                         rule, losses, grad_basis);
  });
  return {reduce_losses(losses, reduction), grad_basis};
}

}  // namespace centerloss::kernels::CENTERLOSS_CPU_ISA
