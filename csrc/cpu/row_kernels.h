// Per-row building blocks of the CPU kernels, shared by the forward (forward_cpu.cpp) and the
// center step (center_step_cpu.cpp) so that the one-pass training step computes the same bits:
// the squared distance with fixed partial sums, the forward of one row, and one class group's
// center step on a block of columns.
#pragma once

#include "../center_loss_math.h"
#include "element_io.h"

// Compiled once per instruction set (CENTERLOSS_CPU_ISA, see cpu_variants.h): each copy gets
// its own namespace, and these helpers internal linkage, so the copies never mix.
namespace centerloss::kernels::CENTERLOSS_CPU_ISA {
namespace {

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

// The loss and gradient basis of row i from its squared distance: shared by both row paths.
template <typename feat_t, typename center_t, typename acc_t>
C10_ALWAYS_INLINE void finish_row(const typename Io<feat_t>::raw* xi, const center_t* ci,
                                  int64_t dim, acc_t sq, acc_t rho, acc_t scale, acc_t* loss,
                                  typename Io<feat_t>::raw* bi, int64_t i) {
  loss[i] = math::sample_loss(sq, rho);
  const acc_t coef = scale * math::gradient_coefficient(sq, rho);
  for (int64_t k = 0; k < dim; ++k) {
    bi[k] = Io<feat_t>::store(coef * (read<feat_t, acc_t>(xi[k]) - static_cast<acc_t>(ci[k])));
  }
}

// Row i of the forward for any D, as a call: inlined into the row loops of either pass, those
// ran slower at D >= 128 (bench/compare_builds.sh on BM_Kernels; CHANGELOG.md).
template <typename feat_t, typename center_t, typename acc_t>
C10_NOINLINE void forward_row_any_dim(const typename Io<feat_t>::raw* x, const int64_t* y,
                                      const center_t* c, int64_t dim, acc_t rho, acc_t scale,
                                      acc_t* loss, typename Io<feat_t>::raw* basis, int64_t i) {
  const typename Io<feat_t>::raw* xi = x + i * dim;
  const center_t* ci = c + y[i] * dim;
  const acc_t sq = squared_distance<feat_t, center_t, acc_t>(xi, ci, dim);
  finish_row<feat_t, center_t, acc_t>(xi, ci, dim, sq, rho, scale, loss, basis + i * dim, i);
}

// Row i of the forward. kDim > 0: D known at compile time (D <= kLanes), so the row is fully
// unrolled; its squared distance is the plain sum in column order, which is what
// squared_distance gives for D <= kLanes (each lane holds one term, the others add +0), so the
// result is bitwise the same as the general path (kDim = 0, a call).
template <int kDim, typename feat_t, typename center_t, typename acc_t>
C10_ALWAYS_INLINE void forward_row(const typename Io<feat_t>::raw* x, const int64_t* y,
                                   const center_t* c, int64_t runtime_dim, acc_t rho, acc_t scale,
                                   acc_t* loss, typename Io<feat_t>::raw* basis, int64_t i) {
  if constexpr (kDim > 0) {
    static_assert(kDim <= kLanes);
    const typename Io<feat_t>::raw* xi = x + i * kDim;
    const center_t* ci = c + y[i] * kDim;
    acc_t sq = acc_t(0);
    for (int k = 0; k < kDim; ++k) {
      const acc_t d = read<feat_t, acc_t>(xi[k]) - static_cast<acc_t>(ci[k]);
      sq += d * d;
    }
    finish_row<feat_t, center_t, acc_t>(xi, ci, kDim, sq, rho, scale, loss, basis + i * kDim, i);
  } else {
    forward_row_any_dim<feat_t, center_t, acc_t>(x, y, c, runtime_dim, rho, scale, loss, basis, i);
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

}  // namespace
}  // namespace centerloss::kernels::CENTERLOSS_CPU_ISA
