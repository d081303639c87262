// Picks the CPU kernels' instruction set once, then forwards every kernel call to that copy.
#include <cstdlib>
#include <cstring>

#include "../kernels.h"
#include "cpu_variants.h"

namespace centerloss::kernels {
namespace {

bool use_avx2() {
#if defined(CENTERLOSS_HAVE_AVX2_KERNELS) && (defined(__GNUC__) || defined(__clang__))
  static const bool chosen = [] {
    const char* forced = std::getenv("CENTERLOSS_CPU_ISA");
    if (forced != nullptr && std::strcmp(forced, "baseline") == 0) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return chosen;
#else
  return false;
#endif
}

}  // namespace

const char* cpu_isa() { return use_avx2() ? "avx2" : "baseline"; }

std::tuple<at::Tensor, at::Tensor> forward_cpu(const at::Tensor& features, const at::Tensor& labels,
                                               const at::Tensor& centers, double margin,
                                               int64_t reduction) {
  return use_avx2() ? avx2::forward_cpu(features, labels, centers, margin, reduction)
                    : baseline::forward_cpu(features, labels, centers, margin, reduction);
}

at::Tensor backward_cpu(const at::Tensor& grad_loss, const at::Tensor& grad_basis) {
  return use_avx2() ? avx2::backward_cpu(grad_loss, grad_basis)
                    : baseline::backward_cpu(grad_loss, grad_basis);
}

bool update_centers_cpu(at::Tensor& centers, const at::Tensor& features, const at::Tensor& labels,
                        double alpha, int64_t rule) {
  return use_avx2() ? avx2::update_centers_cpu(centers, features, labels, alpha, rule)
                    : baseline::update_centers_cpu(centers, features, labels, alpha, rule);
}

void step_centers_cpu(at::Tensor& centers, at::Tensor& skipped, const at::Tensor& features,
                      const at::Tensor& labels, double alpha, int64_t rule) {
  if (use_avx2()) {
    avx2::step_centers_cpu(centers, skipped, features, labels, alpha, rule);
  } else {
    baseline::step_centers_cpu(centers, skipped, features, labels, alpha, rule);
  }
}

}  // namespace centerloss::kernels
