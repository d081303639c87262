// CPU kernels of center loss.
//
// Fused forward: one pass over the batch gathers c_{y_i}, computes the squared distance, the
// per-sample loss and the scaled gradient basis s * g_i * (x_i - c_{y_i}); no N x K matrix and
// no K x D temporary. Center update: rows are grouped by label (a stable sort of N indices), and
// each (class, column block) task sums its rows in batch order, so the result does not depend on
// the number of threads; only the classes present in the batch are read or written.
//
// Determinism: each output element is computed by exactly one task in a fixed order, and the
// scalar reduction is a serial fixed-order sum, so results are bitwise identical for any
// thread count.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/OpMathType.h>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <type_traits>
#include <vector>

#include "../center_loss_math.h"
#include "../kernels.h"

namespace centerloss::kernels {
namespace {

constexpr int64_t kLanes = 8;          // independent partial sums per row (vectorisable)
constexpr int64_t kColumnBlock = 256;  // columns per center-update task
constexpr int64_t kWorkPerTask = 16384;

// Squared distance between a feature row and a center row, with kLanes fixed partial sums
// combined in a fixed order: the compiler can vectorise it, and it stays deterministic.
template <typename feat_t, typename center_t, typename acc_t>
acc_t squared_distance(const feat_t* x, const center_t* c, int64_t dim) {
  acc_t lane[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= dim; k += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      const acc_t d = static_cast<acc_t>(x[k + l]) - static_cast<acc_t>(c[k + l]);
      lane[l] += d * d;
    }
  }
  for (int64_t l = 0; k < dim; ++k, ++l) {
    const acc_t d = static_cast<acc_t>(x[k]) - static_cast<acc_t>(c[k]);
    lane[l] += d * d;
  }
  acc_t total = acc_t(0);
  for (int64_t l = 0; l < kLanes; ++l) total += lane[l];
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

template <typename feat_t, typename center_t>
void forward_typed(const at::Tensor& features, const at::Tensor& labels, const at::Tensor& centers,
                   double margin, int64_t reduction, at::Tensor& losses, at::Tensor& grad_basis) {
  using acc_t = std::conditional_t<std::is_same_v<feat_t, double> || std::is_same_v<center_t, double>,
                                   double, float>;
  const int64_t n = features.size(0);
  const int64_t dim = features.size(1);
  const feat_t* x = features.data_ptr<feat_t>();
  const int64_t* y = labels.data_ptr<int64_t>();
  const center_t* c = centers.data_ptr<center_t>();
  acc_t* loss = losses.data_ptr<acc_t>();
  feat_t* basis = grad_basis.data_ptr<feat_t>();
  const acc_t rho = static_cast<acc_t>(margin);
  const acc_t scale = math::reduction_scale<acc_t>(reduction, n);

  at::parallel_for(0, n, grain_rows(dim), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const feat_t* xi = x + i * dim;
      const center_t* ci = c + y[i] * dim;
      const acc_t sq = squared_distance<feat_t, center_t, acc_t>(xi, ci, dim);
      loss[i] = math::sample_loss(sq, rho);
      const acc_t coef = scale * math::gradient_coefficient(sq, rho);
      feat_t* bi = basis + i * dim;
      for (int64_t k = 0; k < dim; ++k) {
        bi[k] = static_cast<feat_t>(coef * (static_cast<acc_t>(xi[k]) - static_cast<acc_t>(ci[k])));
      }
    }
  });
}

template <typename feat_t>
bool all_rows_finite(const feat_t* x, int64_t n, int64_t dim) {
  std::atomic<bool> finite{true};
  at::parallel_for(0, n, grain_rows(dim), [&](int64_t begin, int64_t end) {
    bool ok = true;
    for (int64_t e = begin * dim; e < end * dim; ++e) {
      ok &= math::is_finite(static_cast<at::opmath_type<feat_t>>(x[e]));
    }
    if (!ok) finite.store(false, std::memory_order_relaxed);
  });
  return finite.load();
}

// Rows grouped by class: order[group_start[g] .. group_start[g+1]) are the batch positions of
// class labels[order[group_start[g]]], in increasing position.
struct ClassGroups {
  std::vector<int64_t> order;
  std::vector<int64_t> group_start;
};

ClassGroups group_by_class(const int64_t* y, int64_t n) {
  ClassGroups g;
  g.order.resize(n);
  std::iota(g.order.begin(), g.order.end(), int64_t(0));
  std::stable_sort(g.order.begin(), g.order.end(),
                   [y](int64_t a, int64_t b) { return y[a] < y[b]; });
  for (int64_t i = 0; i < n; ++i) {
    if (i == 0 || y[g.order[i]] != y[g.order[i - 1]]) g.group_start.push_back(i);
  }
  g.group_start.push_back(n);
  return g;
}

template <typename feat_t, typename center_t>
void update_typed(at::Tensor& centers, const at::Tensor& features, const int64_t* y,
                  const ClassGroups& groups, double alpha, int64_t rule) {
  using acc_t = std::conditional_t<std::is_same_v<center_t, double>, double, float>;
  const int64_t dim = features.size(1);
  const feat_t* x = features.data_ptr<feat_t>();
  center_t* c = centers.data_ptr<center_t>();
  const int64_t num_groups = static_cast<int64_t>(groups.group_start.size()) - 1;
  const int64_t column_blocks = (dim + kColumnBlock - 1) / kColumnBlock;
  const int64_t tasks = num_groups * column_blocks;
  const acc_t a = static_cast<acc_t>(alpha);
  const int64_t rows_per_group = std::max<int64_t>(1, features.size(0) / num_groups);
  const int64_t grain =
      std::max<int64_t>(1, kWorkPerTask / (rows_per_group * std::min(dim, kColumnBlock)));

  at::parallel_for(0, tasks, grain, [&](int64_t begin, int64_t end) {
    acc_t sum[kColumnBlock];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t g = t / column_blocks;
      const int64_t col0 = (t % column_blocks) * kColumnBlock;
      const int64_t width = std::min(kColumnBlock, dim - col0);
      const int64_t first = groups.group_start[g];
      const int64_t last = groups.group_start[g + 1];
      center_t* cj = c + y[groups.order[first]] * dim + col0;
      std::fill(sum, sum + width, acc_t(0));
      for (int64_t r = first; r < last; ++r) {
        const feat_t* xi = x + groups.order[r] * dim + col0;
        for (int64_t k = 0; k < width; ++k) {
          sum[k] += static_cast<acc_t>(cj[k]) - static_cast<acc_t>(xi[k]);
        }
      }
      const acc_t factor = math::center_step_factor<acc_t>(last - first, a, rule);
      for (int64_t k = 0; k < width; ++k) {
        cj[k] = static_cast<center_t>(static_cast<acc_t>(cj[k]) - factor * sum[k]);
      }
    }
  });
}

// Runs the lambda given last with feat_t and center_t bound to the tensors' element types.
#define CENTERLOSS_DISPATCH_CPU(features, centers, name, ...)                               \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, (features).scalar_type(), name, \
                                  [&] {                                                     \
                                    using feat_t = scalar_t;                                \
                                    if ((centers).scalar_type() == at::kDouble) {           \
                                      using center_t = double;                              \
                                      __VA_ARGS__();                                             \
                                    } else {                                                \
                                      using center_t = float;                               \
                                      __VA_ARGS__();                                             \
                                    }                                                       \
                                  })

}  // namespace

std::tuple<at::Tensor, at::Tensor> forward_cpu(const at::Tensor& features, const at::Tensor& labels,
                                               const at::Tensor& centers, double margin,
                                               int64_t reduction) {
  const bool wide = features.scalar_type() == at::kDouble || centers.scalar_type() == at::kDouble;
  const auto acc_type = wide ? at::kDouble : at::kFloat;
  const int64_t n = features.size(0);
  at::Tensor losses = at::empty({n}, features.options().dtype(acc_type));
  at::Tensor grad_basis = at::empty_like(features, at::MemoryFormat::Contiguous);
  CENTERLOSS_DISPATCH_CPU(features, centers, "centerloss_forward_cpu", [&] {
    forward_typed<feat_t, center_t>(features, labels, centers, margin, reduction, losses,
                                    grad_basis);
  });
  if (reduction == static_cast<int64_t>(Reduction::None)) return {losses, grad_basis};
  at::Tensor total = at::empty({}, losses.options());
  AT_DISPATCH_FLOATING_TYPES(acc_type, "centerloss_reduce_cpu", [&] {
    const scalar_t sum = fixed_order_sum(losses.data_ptr<scalar_t>(), n);
    *total.data_ptr<scalar_t>() = sum * math::reduction_scale<scalar_t>(reduction, n);
  });
  return {total, grad_basis};
}

at::Tensor backward_cpu(const at::Tensor& grad_loss, const at::Tensor& grad_basis) {
  at::Tensor grad = at::empty_like(grad_basis, at::MemoryFormat::Contiguous);
  const int64_t n = grad_basis.size(0);
  const int64_t dim = grad_basis.size(1);
  const bool per_sample = grad_loss.dim() == 1;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_basis.scalar_type(),
                                  "centerloss_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const acc_t* g = grad_loss.data_ptr<acc_t>();
    const scalar_t* b = grad_basis.data_ptr<scalar_t>();
    scalar_t* out = grad.data_ptr<scalar_t>();
    at::parallel_for(0, n, grain_rows(dim), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const acc_t gi = per_sample ? g[i] : g[0];
        for (int64_t k = i * dim; k < (i + 1) * dim; ++k) {
          out[k] = static_cast<scalar_t>(gi * static_cast<acc_t>(b[k]));
        }
      }
    });
  });
  return grad;
}

bool update_centers_cpu(at::Tensor& centers, const at::Tensor& features, const at::Tensor& labels,
                        double alpha, int64_t rule) {
  const int64_t n = features.size(0);
  const int64_t dim = features.size(1);
  if (n == 0) return true;
  bool finite = true;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, features.scalar_type(),
                                  "centerloss_finite_cpu", [&] {
    finite = all_rows_finite(features.data_ptr<scalar_t>(), n, dim);
  });
  if (!finite) return false;
  const int64_t* y = labels.data_ptr<int64_t>();
  const ClassGroups groups = group_by_class(y, n);
  CENTERLOSS_DISPATCH_CPU(features, centers, "centerloss_update_cpu", [&] {
    update_typed<feat_t, center_t>(centers, features, y, groups, alpha, rule);
  });
  return true;
}

}  // namespace centerloss::kernels
