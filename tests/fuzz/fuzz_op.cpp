// The public ops (include/centerloss/ops.h) on fuzzed arguments: shapes (including wrong
// ones), dtypes, strides, label values (including out of range), non-finite features, margin,
// alpha, reduction and rule (including invalid ones). Each call either raises c10::Error with
// every tensor unchanged, or matches a plain float64 reference written with ATen primitives
// (spec sections 1, 3 and 7). Clearly valid arguments must not raise; an out-of-range label
// must.
#include <fuzzer/FuzzedDataProvider.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "centerloss/ops.h"
#include "fuzz_target.h"

namespace {

using centerloss::Reduction;
using centerloss::UpdateRule;

struct Args {
  at::Tensor features, labels, centers, seen, skipped;
  double margin = 0, alpha = 0.5;
  int64_t reduction = 1, rule = 0;
  bool valid = true;      // every argument as ops.h asks
  bool bad_label = false; // valid but for one label outside [0, K)
};

template <typename T>
T pick(FuzzedDataProvider& in, const std::vector<T>& options) {
  return options[in.ConsumeIntegralInRange<size_t>(0, options.size() - 1)];
}

bool is_feature_dtype(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}

// A tensor of `sizes` and `dtype` with values from `generator`, laid out as `layout` asks:
// 0 contiguous, 1 transposed (2-D), 2 every other column of a wider tensor, 3 one row repeated
// (stride 0).
at::Tensor make(std::vector<int64_t> sizes, at::ScalarType dtype, int layout, double scale,
                at::Generator& generator) {
  auto values = [&](std::vector<int64_t> s) {
    return (at::randn(s, generator, at::TensorOptions(at::kDouble)) * scale).to(dtype);
  };
  if (sizes.size() != 2 || layout == 0) return values(sizes);
  const int64_t rows = sizes[0], cols = sizes[1];
  if (layout == 1) return values({cols, rows}).t();
  if (layout == 2) return values({rows, 2 * cols}).slice(1, 0, 2 * cols, 2);
  return values({1, cols}).expand({rows, cols});
}

// The element at row-major position `flat` of `t`, as a 0-d view (any strides).
at::Tensor element(const at::Tensor& t, int64_t flat) {
  std::vector<int64_t> index(t.dim());
  for (int64_t dim = t.dim() - 1; dim >= 0; --dim) {
    index[dim] = flat % t.size(dim);
    flat /= t.size(dim);
  }
  at::Tensor e = t;
  for (int64_t i : index) e = e.select(0, i);
  return e;
}

Args make_args(FuzzedDataProvider& in) {
  Args a;
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(in.ConsumeIntegral<uint32_t>());
  const int64_t n = in.ConsumeIntegralInRange<int64_t>(0, 33);
  const int64_t d = in.ConsumeIntegralInRange<int64_t>(0, 6);
  const int64_t k = in.ConsumeIntegralInRange<int64_t>(0, 9);
  const auto fdtype = pick<at::ScalarType>(in, {at::kFloat, at::kFloat, at::kDouble, at::kHalf,
                                                at::kBFloat16, at::kInt, at::kBool});
  const auto ldtype = pick<at::ScalarType>(in, {at::kLong, at::kLong, at::kInt, at::kShort,
                                                at::kChar, at::kByte, at::kFloat, at::kBool});
  const auto cdtype = pick<at::ScalarType>(in, {at::kFloat, at::kFloat, at::kDouble, at::kHalf, at::kLong});
  const int shape_fault = in.ConsumeIntegralInRange(0, 15);  // 0..5 break a shape
  double scale = pick<double>(in, {1.0, 1.0, 1e-3, 1e3, 1e30});
  if (!is_feature_dtype(fdtype)) scale = 1.0;  // (a double beyond an integer type's range)
  const int flayout = in.ConsumeIntegralInRange(0, 3), clayout = in.ConsumeIntegralInRange(0, 2);

  std::vector<int64_t> fsizes = {n, d}, lsizes = {n}, csizes = {k, d};
  if (shape_fault == 0) fsizes = {n * d};
  if (shape_fault == 1) fsizes = {n, d, 1};
  if (shape_fault == 2) lsizes = {n, 1};
  if (shape_fault == 3) lsizes = {n + 1};
  if (shape_fault == 4) csizes = {k, d + 1};
  if (shape_fault == 5) csizes = {k};
  a.features = make(fsizes, fdtype, flayout, scale, generator);
  a.centers = make(csizes, cdtype, clayout, 1.0, generator);
  a.labels = k > 0 ? at::randint(k, lsizes, generator, at::TensorOptions(at::kLong))
                   : at::zeros(lsizes, at::kLong);
  // non-finite features: one element NaN, +inf or -inf
  if (a.features.numel() > 0 && in.ConsumeIntegralInRange(0, 3) == 0 && is_feature_dtype(fdtype)) {
    const double bad = pick<double>(in, {std::nan(""), INFINITY, -INFINITY});
    element(a.features, in.ConsumeIntegralInRange<int64_t>(0, a.features.numel() - 1)).fill_(bad);
  }
  // an out-of-range label
  if (a.labels.numel() > 0 && in.ConsumeIntegralInRange(0, 5) == 0) {
    const int64_t bad = pick<int64_t>(in, {-1, k, k + 100, std::numeric_limits<int32_t>::min()});
    a.labels.view(-1)[in.ConsumeIntegralInRange<int64_t>(0, a.labels.numel() - 1)] = bad;
    a.bad_label = true;
  }
  a.labels = a.labels.to(ldtype);  // (a narrow dtype may wrap a bad label into range)
  if (a.bad_label && at::isIntegralType(ldtype, false)) {
    const at::Tensor l = a.labels.to(at::kLong);
    a.bad_label = (l < 0).any().item<bool>() || (l >= k).any().item<bool>();
  }
  a.margin = pick<double>(in, {0.0, 0.0, 0.5, 2.0, -1.0, std::nan(""), INFINITY});
  a.alpha = pick<double>(in, {0.5, 1.0, 0.1, 0.0, -0.5, 1.5, std::nan("")});
  a.reduction = pick<int64_t>(in, {1, 1, 0, 2, 3, -1});
  a.rule = pick<int64_t>(in, {0, 0, 1, 2, 7});
  a.seen = at::rand({std::max<int64_t>(k, 0)}, generator) > 0.5;
  a.skipped = at::zeros({}, at::kLong);
  a.valid = shape_fault > 5 && k >= 1 && d >= 1 && is_feature_dtype(fdtype) &&
            at::isIntegralType(ldtype, false) && (cdtype == at::kFloat || cdtype == at::kDouble);
  return a;
}

// Bitwise copies (NaN == NaN) of tensors, to check that a failed call changed nothing.
std::vector<at::Tensor> snapshot(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> copies;
  for (const auto& t : tensors) copies.push_back(t.clone());
  return copies;
}
bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  if (a.numel() == 0) return true;
  const at::Tensor x = a.contiguous().view(-1), y = b.contiguous().view(-1);
  return std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) == 0;
}
void check_unchanged(const std::vector<at::Tensor>& now, const std::vector<at::Tensor>& before,
                     const char* what) {
  for (size_t i = 0; i < now.size(); ++i) {
    FUZZ_CHECK(same_bits(now[i], before[i]), "%s: argument %zu changed by a failed call", what, i);
  }
}

// Values close to a float64 reference: NaN where it is NaN, the same infinity, else within
// `rtol` of the reference's scale (or an overflow to infinity near the float32 limit).
void check_close(const at::Tensor& got, const at::Tensor& want, const at::Tensor& scale, double rtol,
                 const char* what) {
  FUZZ_CHECK(got.sizes() == want.sizes(), "%s: wrong shape", what);
  const at::Tensor g = got.to(at::kDouble).contiguous().view(-1), w = want.contiguous().view(-1),
                   s = scale.expand_as(want).contiguous().view(-1);
  for (int64_t i = 0; i < w.numel(); ++i) {
    const double a = g[i].item<double>(), b = w[i].item<double>(), m = s[i].item<double>();
    if (std::isnan(b)) {
      FUZZ_CHECK(std::isnan(a), "%s[%lld]: %g where the reference is NaN", what, static_cast<long long>(i), a);
    } else if (std::isinf(b) || std::abs(b) > 1e37 || std::isinf(m)) {
      FUZZ_CHECK(std::isinf(a) || std::abs(a - b) <= rtol * std::abs(b),
                 "%s[%lld]: %g, reference %g", what, static_cast<long long>(i), a, b);
    } else {
      FUZZ_CHECK(std::abs(a - b) <= rtol * (m + 1e-30), "%s[%lld]: %.17g, reference %.17g (scale %g)",
                 what, static_cast<long long>(i), a, b, m);
    }
  }
}

at::ScalarType result_dtype(const Args& a) {
  return a.features.scalar_type() == at::kDouble || a.centers.scalar_type() == at::kDouble
             ? at::kDouble
             : at::kFloat;
}
double tolerance(at::ScalarType computed_in) { return computed_in == at::kDouble ? 1e-10 : 2e-5; }

// Spec section 1, in float64; `scale` is what bounds the rounding error of each value.
void reference_loss(const Args& a, at::Tensor& loss, at::Tensor& scale) {
  const at::Tensor x = a.features.to(at::kDouble), c = a.centers.to(at::kDouble);
  const at::Tensor y = a.labels.to(at::kLong);
  const at::Tensor cy = c.index_select(0, y);
  const at::Tensor dist2 = (x - cy).square().sum(1);
  at::Tensor per = a.margin == 0 ? 0.5 * dist2 : 0.5 * (dist2.sqrt() - a.margin).clamp_min(0).square();
  at::Tensor bound = 0.5 * (x.square().sum(1) + cy.square().sum(1) + a.margin * a.margin) * 4;
  const int64_t n = x.size(0);
  if (a.reduction == 0) {
    loss = per, scale = bound;
  } else {
    const double s = a.reduction == 2 || n == 0 ? 1.0 : 1.0 / static_cast<double>(n);
    loss = per.sum() * s, scale = bound.sum() * s;
  }
}

// Spec section 3: the paper/mean step (or nothing when a feature is not finite).
at::Tensor reference_update(const Args& a, bool& applied) {
  const at::Tensor x = a.features.to(at::kDouble), c = a.centers.to(at::kDouble);
  applied = x.isfinite().all().item<bool>();
  if (!applied) return c;
  const at::Tensor y = a.labels.to(at::kLong);
  const at::Tensor sums = at::zeros_like(c).index_add_(0, y, c.index_select(0, y) - x);
  const at::Tensor counts = at::bincount(y, {}, c.size(0)).to(at::kDouble).unsqueeze(1);
  const at::Tensor denominator = a.rule == 0 ? counts + 1 : counts.clamp_min(1);
  return at::where(counts > 0, c - a.alpha * sums / denominator, c);
}

// The largest finite |value| of `t`, 0 for an empty tensor (a batch of N = 0 is valid; ATen's
// max() refuses an empty tensor).
at::Tensor max_abs(const at::Tensor& t) {
  const at::Tensor finite = t.to(at::kDouble).abs().nan_to_num(0, 0, 0);
  return finite.numel() > 0 ? finite.max() : at::zeros({}, at::kDouble);
}

void check_update(const Args& a, const at::Tensor& centers_before, bool applied_by_op) {
  bool applied = false;
  const at::Tensor want = reference_update(
      Args{a.features, a.labels, centers_before, {}, {}, a.margin, a.alpha, a.reduction, a.rule}, applied);
  FUZZ_CHECK(applied == applied_by_op, "verdict %d, reference %d", applied_by_op, applied);
  const at::Tensor present = at::bincount(a.labels.to(at::kLong), {}, a.centers.size(0)) > 0;
  for (int64_t j = 0; j < a.centers.size(0); ++j) {
    if (!applied || !present[j].item<bool>()) {
      FUZZ_CHECK(same_bits(a.centers[j], centers_before[j]), "center %lld moved", static_cast<long long>(j));
    }
  }
  const at::Tensor scale = max_abs(centers_before) + max_abs(a.features) * 4;
  check_close(a.centers, want, scale, a.centers.scalar_type() == at::kDouble ? 1e-12 : 1e-5, "centers");
}

}  // namespace

CENTERLOSS_FUZZ_TARGET(op) {
  static const bool once = [] {
    at::set_num_threads(1);
    return true;
  }();
  (void)once;
  FuzzedDataProvider in(data, size);
  Args a = make_args(in);
  const int which = in.ConsumeIntegralInRange(0, 3);
  const bool valid_loss = a.valid && a.margin >= 0 && std::isfinite(a.margin) && a.reduction >= 0 &&
                          a.reduction <= 2;
  const bool valid_step = a.valid && a.alpha > 0 && a.alpha <= 1 && (a.rule == 0 || a.rule == 1);
  const bool must_succeed = !a.bad_label && (which == 0   ? valid_loss
                                             : which == 1 ? valid_step
                                             : which == 2 ? a.valid
                                                          : valid_loss && valid_step);
  // (centers are changed in place: a non-contiguous view must be updated through, or refused)
  const std::vector<at::Tensor> before = snapshot({a.features, a.labels, a.centers, a.seen, a.skipped});
  const char* names[] = {"center_loss", "update_centers_", "init_centers_first_sight_",
                         "center_loss_step_"};
  try {
    if (which == 0) {
      const at::Tensor loss = centerloss::center_loss(a.features, a.labels, a.centers, a.margin,
                                                      static_cast<Reduction>(a.reduction));
      FUZZ_CHECK(!a.bad_label, "center_loss accepted an out-of-range label");
      check_unchanged({a.features, a.labels, a.centers}, before, "center_loss");
      FUZZ_CHECK(loss.scalar_type() == result_dtype(a), "loss dtype");
      at::Tensor want, scale;
      reference_loss(a, want, scale);
      check_close(loss, want, scale, tolerance(result_dtype(a)), "loss");
    } else if (which == 1) {
      const at::Tensor verdict = centerloss::update_centers_(a.centers, a.features, a.labels, a.alpha,
                                                             static_cast<UpdateRule>(a.rule));
      FUZZ_CHECK(!a.bad_label, "update_centers_ accepted an out-of-range label");
      check_update(a, before[2], verdict.item<bool>());
    } else if (which == 2) {
      const int64_t count = centerloss::init_centers_first_sight_(a.centers, a.seen, a.features, a.labels);
      FUZZ_CHECK(!a.bad_label, "first sight accepted an out-of-range label");
      const at::Tensor x = a.features.to(at::kDouble);
      const at::Tensor y = a.labels.to(at::kLong);
      const bool finite = x.isfinite().all().item<bool>();
      const at::Tensor present = at::bincount(y, {}, a.centers.size(0)) > 0;
      const at::Tensor fresh = finite ? present.logical_and(before[3].logical_not()) : at::zeros_like(present);
      FUZZ_CHECK(count == fresh.sum().item<int64_t>(), "initialised %lld classes, reference %lld",
                 static_cast<long long>(count), static_cast<long long>(fresh.sum().item<int64_t>()));
      FUZZ_CHECK(same_bits(a.seen, before[3].logical_or(fresh)), "seen is wrong");
      for (int64_t j = 0; j < a.centers.size(0); ++j) {
        if (!fresh[j].item<bool>()) {
          FUZZ_CHECK(same_bits(a.centers[j], before[2][j]), "center %lld moved", static_cast<long long>(j));
          continue;
        }
        const at::Tensor rows = x.index_select(0, (y == j).nonzero().view(-1));
        check_close(a.centers[j], rows.mean(0), rows.abs().max(), tolerance(a.centers.scalar_type()),
                    "first-sight center");
      }
    } else {
      const at::Tensor loss = centerloss::detail::center_loss_step_(
          a.features, a.labels, a.centers, a.skipped, a.margin, static_cast<Reduction>(a.reduction),
          a.alpha, static_cast<UpdateRule>(a.rule));
      FUZZ_CHECK(!a.bad_label, "center_loss_step_ accepted an out-of-range label");
      Args old = a;
      old.centers = before[2];
      at::Tensor want, scale;
      reference_loss(old, want, scale);
      check_close(loss, want, scale, tolerance(result_dtype(a)), "step loss");
      const bool applied = a.skipped.item<int64_t>() == 0;
      check_update(a, before[2], applied);
    }
  } catch (const c10::Error& e) {
    FUZZ_CHECK(!must_succeed, "%s refused valid arguments: %s", names[which], e.what_without_backtrace());
    check_unchanged({a.features, a.labels, a.centers, a.seen, a.skipped}, before, names[which]);
    const std::string message = e.what_without_backtrace();
    FUZZ_CHECK(message.find(names[which]) != std::string::npos || message.find("centerloss") != std::string::npos,
               "the error does not name the op: %s", message.c_str());
  }
  return 0;
}
