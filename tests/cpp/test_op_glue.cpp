// The CUDA op's host logic, run on the CPU. _forward_step_ on CUDA is
// op_impl::forward_then_step<forward_cuda, step_centers_cuda>: argument checks, one conversion of
// features and labels, the forward (whose kernel reports the first bad label), then the step
// (which counts a skipped batch on the device). Here the same template runs with CPU stand-ins
// that keep the CUDA kernels' contracts (kernels.h), and is compared with the registered CPU op:
// results, state changes and error messages must be the same. So the glue is tested in CI,
// where no GPU exists; the kernels themselves are tested on a GPU (test_cuda_kernels.cpp).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <tuple>

#include "kernels.h"
#include "op_impl.h"

namespace {

using centerloss::kernels::forward_cpu;
using centerloss::kernels::update_centers_cpu;

// forward_cuda's contract: contiguous int64 labels as given; a bad label reads center row 0 and
// its position (the first) comes back in a [1] int64 tensor, -1 if none; undefined for N = 0.
std::tuple<at::Tensor, at::Tensor, at::Tensor> forward_like_cuda(const at::Tensor& features,
                                                                 const at::Tensor& labels,
                                                                 const at::Tensor& centers,
                                                                 double margin, int64_t reduction) {
  EXPECT_TRUE(features.is_contiguous() && centers.is_contiguous() && labels.is_contiguous());
  EXPECT_EQ(labels.scalar_type(), at::kLong);
  if (features.size(0) == 0) {
    auto [loss, basis] = forward_cpu(features, labels, centers, margin, reduction);
    return {loss, basis, at::Tensor()};
  }
  const at::Tensor bad = labels.lt(0).logical_or(labels.ge(centers.size(0)));
  auto [loss, basis] = forward_cpu(features, labels.masked_fill(bad, 0), centers, margin, reduction);
  const int64_t first = bad.any().item<bool>() ? bad.nonzero().min().item<int64_t>() : -1;
  return {loss, basis, torch::tensor({first})};
}

// step_centers_cuda's contract: a non-finite batch (or a bad label) moves nothing and adds 1 to
// `skipped`.
void step_like_cuda(at::Tensor& centers, at::Tensor& skipped, const at::Tensor& features,
                    const at::Tensor& labels, double alpha, int64_t rule) {
  EXPECT_TRUE(centers.is_contiguous() && features.is_contiguous());
  const bool bad_label = labels.lt(0).any().item<bool>() || labels.ge(centers.size(0)).any().item<bool>();
  if (bad_label || !update_centers_cpu(centers, features, labels, alpha, rule)) skipped += 1;
}

constexpr auto kCudaLikeStep =
    &centerloss::op_impl::forward_then_step<forward_like_cuda, step_like_cuda>;

std::tuple<at::Tensor, at::Tensor> cpu_step(const at::Tensor& features, const at::Tensor& labels,
                                            at::Tensor& centers, at::Tensor& skipped,
                                            double margin, int64_t reduction, double alpha,
                                            int64_t rule) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("centerloss::_forward_step_", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, at::Tensor&, at::Tensor&, double,
                           int64_t, double, int64_t)>();
  return op.call(features, labels, centers, skipped, margin, reduction, alpha, rule);
}

struct Outcome {
  std::string error;  // empty: the call returned
  at::Tensor loss, basis;
};

template <typename Step>
Outcome run(Step step, const at::Tensor& features, const at::Tensor& labels, at::Tensor& centers,
            at::Tensor& skipped, double margin, int64_t reduction, double alpha, int64_t rule) {
  try {
    auto [loss, basis] = step(features, labels, centers, skipped, margin, reduction, alpha, rule);
    return {"", loss, basis};
  } catch (const c10::Error& err) {
    return {err.what_without_backtrace(), {}, {}};
  }
}

enum class Variant { Plain, NanFeature, BadLabel, GradientRule, StridedCenters, StridedFeatures,
                     NegativeMargin, UnknownReduction, BadAlpha };

TEST(CudaOpGlue, ForwardThenStepMatchesTheCpuOp) {
  int compared = 0, raised = 0;
  for (const int64_t n : {0, 1, 37}) {
    for (const auto dtype : {at::kFloat, at::kBFloat16, at::kHalf, at::kDouble}) {
      for (const auto center_dtype : {at::kFloat, at::kDouble}) {
        for (const int64_t reduction0 : {0, 1, 2}) {
          for (const double margin0 : {0.0, 0.5}) {
            for (int v = 0; v <= static_cast<int>(Variant::BadAlpha); ++v) {
              const auto variant = static_cast<Variant>(v);
              const std::string where = "N " + std::to_string(n) + " " +
                                        c10::toString(dtype) + " centers " +
                                        c10::toString(center_dtype) + " reduction " +
                                        std::to_string(reduction0) + " margin " +
                                        std::to_string(margin0) + " variant " + std::to_string(v);
              SCOPED_TRACE(where);
              torch::manual_seed(n * 1000 + v);
              const int64_t k = 5, d = 6;
              at::Tensor features = torch::randn({n, d}).to(dtype);
              at::Tensor labels = torch::randint(k, {n}, torch::kLong);
              at::Tensor centers = torch::randn({k, d}, center_dtype);
              double margin = margin0, alpha = 0.4;
              int64_t reduction = reduction0, rule = 0;
              if (variant == Variant::NanFeature && n > 0) features[n - 1][d - 1] = NAN;
              if (variant == Variant::BadLabel && n > 0) labels[n - 1] = k;
              if (variant == Variant::GradientRule) rule = 2;
              if (variant == Variant::StridedFeatures) {
                features = torch::randn({d, n}).to(dtype).t();
                labels = labels.to(at::kInt);
              }
              if (variant == Variant::NegativeMargin) margin = -1.0;
              if (variant == Variant::UnknownReduction) reduction = 7;
              if (variant == Variant::BadAlpha) alpha = 1.5;
              auto fresh_centers = [&] {
                if (variant != Variant::StridedCenters) return centers.clone();
                at::Tensor strided = torch::empty({d, k}, centers.options()).t();
                return strided.copy_(centers);
              };
              at::Tensor c1 = fresh_centers(), c2 = fresh_centers();
              at::Tensor s1 = torch::zeros({}, torch::kLong), s2 = torch::zeros({}, torch::kLong);
              const Outcome cuda_like = run(kCudaLikeStep, features, labels, c1, s1, margin,
                                            reduction, alpha, rule);
              const Outcome cpu = run(cpu_step, features, labels, c2, s2, margin, reduction,
                                      alpha, rule);
              EXPECT_EQ(cuda_like.error, cpu.error);
              EXPECT_TRUE(torch::equal(c1, c2));
              EXPECT_TRUE(torch::equal(s1, s2));
              if (!cpu.error.empty()) {
                EXPECT_TRUE(torch::equal(c1, centers)) << "a failed call changed the centers";
                ++raised;
                continue;
              }
              ASSERT_EQ(cuda_like.loss.scalar_type(), cpu.loss.scalar_type());
              ASSERT_EQ(cuda_like.loss.sizes(), cpu.loss.sizes());
              EXPECT_TRUE(torch::allclose(cuda_like.loss, cpu.loss, 1e-5, 1e-6, true));
              ASSERT_EQ(cuda_like.basis.scalar_type(), dtype);
              EXPECT_TRUE(torch::equal(cuda_like.basis.isnan(), cpu.basis.isnan()));
              EXPECT_TRUE(torch::allclose(cuda_like.basis.to(at::kDouble),
                                          cpu.basis.to(at::kDouble), 0, 0, true));
              ++compared;
            }
          }
        }
      }
    }
  }
  // 1296 calls: about half are valid (plain, NaN, strided, and a bad label in an empty batch) and
  // compared; the others raise on both. Guards against a loop that compares nothing.
  EXPECT_GT(compared, 300);
  EXPECT_GT(raised, 400);
}

}  // namespace
