// The op bodies (csrc/op/op_bodies.h) with a backend that keeps the CUDA kernels' contracts
// (csrc/cuda/cuda_kernels.h: the label verdict left on the device, bad-label rows NaN, the step's
// guard, graph capture) but runs CPU stand-ins, and the CUDA training step's order
// (csrc/cuda/step_after_forward.h). Compared with the registered CPU op: results, state changes
// and error messages must be the same. So the CUDA backend's glue is tested in CI, where no GPU
// exists; the kernels themselves are tested on a GPU. A stand-in that says "capturing" covers
// the op inside a CUDA graph.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <tuple>

#include "backend.h"
#include "cuda/step_after_forward.h"
#include "op/op_bodies.h"

namespace {

using centerloss::ForwardOutputs;
using centerloss::LabelVerdict;

const centerloss::Backend& cpu() { return centerloss::cpu_backend(); }

bool g_capturing = false;  // what the stand-in backend's capturing() answers

at::Tensor bad_rows(const at::Tensor& labels, int64_t num_classes) {
  return labels.lt(0).logical_or(labels.ge(num_classes));
}

// The CUDA forward's contract: a bad label reads no center, its row gets a NaN loss and a zero
// basis row, and its position (the first) is left on the device, -1 if none; no verdict while
// capturing.
LabelVerdict forward_like_cuda(const at::Tensor& features, const at::Tensor& labels,
                               const at::Tensor& centers, double margin, int64_t reduction,
                               ForwardOutputs& out) {
  EXPECT_TRUE(features.is_contiguous() && centers.is_contiguous() && labels.is_contiguous());
  EXPECT_EQ(labels.scalar_type(), at::kLong);
  const at::Tensor bad = bad_rows(labels, centers.size(0));
  EXPECT_EQ(cpu().forward(features, labels.masked_fill(bad, 0), centers, margin, reduction, out)
                .first_bad(),
            -1);
  out.loss.masked_fill_(out.loss.dim() == 1 ? bad : bad.any(), NAN);
  out.grad_basis.masked_fill_(bad.unsqueeze(1), 0);
  LabelVerdict verdict;
  if (!g_capturing) {
    const int64_t first = bad.any().item<bool>() ? bad.nonzero().min().item<int64_t>() : -1;
    verdict.on_device = torch::tensor({first});
  }
  return verdict;
}

// The CUDA center step's guard: a non-finite batch or a bad label moves nothing.
bool guarded_step(at::Tensor& centers, const at::Tensor& features, const at::Tensor& labels,
                  double alpha, int64_t rule) {
  EXPECT_TRUE(centers.is_contiguous() && features.is_contiguous());
  if (bad_rows(labels, centers.size(0)).any().item<bool>()) return false;
  return cpu().update_centers(centers, features, labels, alpha, rule).item<bool>();
}

at::Tensor update_like_cuda(at::Tensor& centers, const at::Tensor& features,
                            const at::Tensor& labels, double alpha, int64_t rule) {
  return torch::scalar_tensor(guarded_step(centers, features, labels, alpha, rule), torch::kBool);
}

LabelVerdict forward_step_like_cuda(const at::Tensor& features, const at::Tensor& labels,
                                    at::Tensor& centers, at::Tensor& skipped, double margin,
                                    int64_t reduction, double alpha, int64_t rule,
                                    ForwardOutputs& out) {
  return centerloss::kernels::cuda::step_after_forward(
      forward_like_cuda(features, labels, centers, margin, reduction, out), [&] {
        if (!guarded_step(centers, features, labels, alpha, rule)) skipped += 1;
      });
}

bool capturing_like_cuda(const at::Tensor&) { return g_capturing; }

const centerloss::Backend kCudaLike{&forward_like_cuda,      cpu().backward,
                                    &update_like_cuda,       &forward_step_like_cuda,
                                    &capturing_like_cuda,    cpu().first_bad_label};

std::tuple<at::Tensor, at::Tensor> cuda_like_step(const at::Tensor& features,
                                                  const at::Tensor& labels, at::Tensor& centers,
                                                  at::Tensor& skipped, double margin,
                                                  int64_t reduction, double alpha, int64_t rule) {
  return centerloss::op::forward_step(kCudaLike, features, labels, centers, skipped, margin,
                                      reduction, alpha, rule);
}

// The same op while a CUDA graph is being captured: no host read of the labels.
std::tuple<at::Tensor, at::Tensor> captured_cuda_like_step(
    const at::Tensor& features, const at::Tensor& labels, at::Tensor& centers,
    at::Tensor& skipped, double margin, int64_t reduction, double alpha, int64_t rule) {
  g_capturing = true;
  try {
    auto result = cuda_like_step(features, labels, centers, skipped, margin, reduction, alpha,
                                 rule);
    g_capturing = false;
    return result;
  } catch (...) {
    g_capturing = false;
    throw;
  }
}

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
              const Outcome cuda_like = run(cuda_like_step, features, labels, c1, s1, margin,
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

// Under graph capture the op must not read the labels back: a bad label gives a NaN loss, a
// zero gradient row, no center step and one skipped update, instead of the error; every other
// outcome (results, state, the errors of bad options) is the uncaptured op's.
TEST(CudaOpGlue, CapturedStepGivesNanForABadLabelAndOtherwiseMatches) {
  int bad_batches = 0, others = 0;
  for (const int64_t n : {1, 37}) {
    for (const auto dtype : {at::kFloat, at::kBFloat16, at::kDouble}) {
      for (const int64_t reduction : {0, 1, 2}) {
        for (const double margin0 : {0.0, 0.5}) {
          for (int v = 0; v < 6; ++v) {  // plain, NaN, label K, label -1, bad margin, rule 2
            SCOPED_TRACE("N " + std::to_string(n) + " " + c10::toString(dtype) + " reduction " +
                         std::to_string(reduction) + " margin " + std::to_string(margin0) +
                         " variant " + std::to_string(v));
            torch::manual_seed(n * 100 + v);
            const int64_t k = 5, d = 6;
            const at::Tensor features = torch::randn({n, d}).to(dtype);
            at::Tensor labels = torch::randint(k, {n}, torch::kLong);
            const at::Tensor centers = torch::randn({k, d});
            double margin = margin0;
            int64_t rule = 0;
            if (v == 1) features[n - 1][0] = NAN;
            if (v == 2) labels[n - 1] = k;
            if (v == 3) labels[0] = -1;
            if (v == 4) margin = -1.0;
            if (v == 5) rule = 2;
            at::Tensor c1 = centers.clone(), c2 = centers.clone();
            at::Tensor s1 = torch::zeros({}, torch::kLong), s2 = torch::zeros({}, torch::kLong);
            const Outcome captured = run(captured_cuda_like_step, features, labels, c1, s1, margin,
                                         reduction, 0.4, rule);
            const Outcome eager = run(cuda_like_step, features, labels, c2, s2, margin, reduction,
                                      0.4, rule);
            if (v == 2 || v == 3) {
              ASSERT_EQ(captured.error, "");
              EXPECT_NE(eager.error.find("labels must be in [0, K)"), std::string::npos);
              EXPECT_TRUE(torch::equal(c1, centers)) << "a bad label moved the centers";
              EXPECT_EQ(s1.item<int64_t>(), 1);
              const at::Tensor bad = bad_rows(labels, k);
              at::Tensor c3 = centers.clone(), s3 = torch::zeros({}, torch::kLong);
              const Outcome good = run(cpu_step, features, labels.masked_fill(bad, 0), c3, s3,
                                       margin, reduction, 0.4, rule);
              if (reduction == 0) {
                EXPECT_TRUE(torch::equal(captured.loss.isnan(), bad));
                EXPECT_TRUE(torch::equal(captured.loss.masked_select(bad.logical_not()),
                                         good.loss.masked_select(bad.logical_not())));
              } else {
                EXPECT_TRUE(captured.loss.isnan().item<bool>());
              }
              EXPECT_EQ(captured.basis.index({bad}).abs().sum().item<double>(), 0.0);
              EXPECT_TRUE(torch::equal(captured.basis.index({bad.logical_not()}),
                                       good.basis.index({bad.logical_not()})));
              ++bad_batches;
              continue;
            }
            EXPECT_EQ(captured.error, eager.error);
            EXPECT_TRUE(torch::equal(c1, c2));
            EXPECT_TRUE(torch::equal(s1, s2));
            if (eager.error.empty()) {
              EXPECT_TRUE(torch::allclose(captured.loss, eager.loss, 0, 0, true));
              EXPECT_TRUE(torch::allclose(captured.basis.to(at::kDouble),
                                          eager.basis.to(at::kDouble), 0, 0, true));
            }
            ++others;
          }
        }
      }
    }
  }
  EXPECT_EQ(bad_batches, 2 * 3 * 3 * 2 * 2);
  EXPECT_EQ(others, 2 * 3 * 3 * 2 * 4);
}

// update_centers_ under capture: a bad label returns false and moves nothing, where the
// uncaptured op raises; options are still checked on the host.
TEST(CudaOpGlue, CapturedUpdateReturnsFalseForABadLabel) {
  auto update = [](at::Tensor& centers, const at::Tensor& features, const at::Tensor& labels,
                   double alpha, bool captured) {
    g_capturing = captured;
    try {
      auto applied = centerloss::op::update_centers(kCudaLike, centers, features, labels, alpha, 0);
      g_capturing = false;
      return applied;
    } catch (...) {
      g_capturing = false;
      throw;
    }
  };
  torch::manual_seed(3);
  const at::Tensor centers = torch::randn({4, 3});
  const at::Tensor features = torch::randn({6, 3});
  at::Tensor c = centers.clone();
  for (const int64_t bad_label : {int64_t{4}, int64_t{-2}}) {
    const at::Tensor labels = torch::tensor({0, 1, 2, 0, 3, 0}, torch::kLong).index_fill(0, torch::tensor({3}), bad_label);
    EXPECT_FALSE(update(c, features, labels, 0.5, true).item<bool>());
    EXPECT_TRUE(torch::equal(c, centers));
    EXPECT_THROW(update(c, features, labels, 0.5, false), c10::Error);
  }
  const at::Tensor good = torch::tensor({0, 1, 2, 3, 3, 0}, torch::kLong);
  EXPECT_THROW(update(c, features, good, 1.5, true), c10::Error);  // alpha still checked
  EXPECT_TRUE(update(c, features, good, 0.5, true).item<bool>());
  at::Tensor expected = centers.clone();
  ASSERT_TRUE(cpu().update_centers(expected, features, good, 0.5, 0).item<bool>());
  EXPECT_TRUE(torch::equal(c, expected));
}

}  // namespace
