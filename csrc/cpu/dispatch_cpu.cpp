// Picks the CPU kernels' instruction set once, then forwards every kernel call to that copy; also
// reads the one-pass setting of the training step once (cpu_variants.h).
#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>

#include "../kernels.h"
#include "cpu_variants.h"

namespace centerloss::kernels {
namespace {

struct CpuKernels {
  const char* isa;
  decltype(&baseline::forward_cpu) forward;
  decltype(&baseline::backward_cpu) backward;
  decltype(&baseline::backward_in_place_cpu) backward_in_place;
  decltype(&baseline::update_centers_cpu) update;
  decltype(&baseline::forward_step_cpu) forward_step;
};

// Chosen at the first call: the AVX2 copy where the build has it and the CPU supports AVX2 and
// FMA, unless CENTERLOSS_CPU_ISA=baseline.
const CpuKernels& chosen() {
  static const CpuKernels kernels = [] {
    const CpuKernels base{"baseline", &baseline::forward_cpu, &baseline::backward_cpu,
                          &baseline::backward_in_place_cpu, &baseline::update_centers_cpu,
                          &baseline::forward_step_cpu};
#if defined(CENTERLOSS_HAVE_AVX2_KERNELS)
    const char* forced = std::getenv("CENTERLOSS_CPU_ISA");
    if (forced != nullptr && std::strcmp(forced, "baseline") == 0) return base;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      return CpuKernels{"avx2", &avx2::forward_cpu, &avx2::backward_cpu,
                        &avx2::backward_in_place_cpu, &avx2::update_centers_cpu,
                        &avx2::forward_step_cpu};
    }
#endif
    return base;
  }();
  return kernels;
}

}  // namespace

const char* cpu_isa() { return chosen().isa; }

OnePass cpu_one_pass() {
  static const OnePass setting = [] {
    const char* value = std::getenv("CENTERLOSS_CPU_ONE_PASS");
    if (value == nullptr || *value == '\0' || std::strcmp(value, "auto") == 0) return OnePass::Auto;
    if (std::strcmp(value, "never") == 0) return OnePass::Never;
    TORCH_CHECK(std::strcmp(value, "always") == 0,
                "CENTERLOSS_CPU_ONE_PASS must be auto, never or always, got '", value, "'");
    return OnePass::Always;
  }();
  return setting;
}

const char* cpu_one_pass_name() {
  switch (cpu_one_pass()) {
    case OnePass::Never: return "never";
    case OnePass::Always: return "always";
    default: return "auto";
  }
}

std::tuple<at::Tensor, at::Tensor> forward_cpu(const at::Tensor& features, const at::Tensor& labels,
                                               const at::Tensor& centers, double margin,
                                               int64_t reduction) {
  return chosen().forward(features, labels, centers, margin, reduction);
}

at::Tensor backward_cpu(const at::Tensor& grad_loss, const at::Tensor& grad_basis) {
  return chosen().backward(grad_loss, grad_basis);
}

void backward_in_place_cpu(const at::Tensor& grad_loss, at::Tensor& grad_basis) {
  chosen().backward_in_place(grad_loss, grad_basis);
}

bool update_centers_cpu(at::Tensor& centers, const at::Tensor& features, const at::Tensor& labels,
                        double alpha, int64_t rule) {
  return chosen().update(centers, features, labels, alpha, rule);
}

std::tuple<at::Tensor, at::Tensor> forward_step_cpu(const at::Tensor& features,
                                                    const at::Tensor& labels, at::Tensor& centers,
                                                    at::Tensor& skipped, double margin,
                                                    int64_t reduction, double alpha, int64_t rule) {
  return chosen().forward_step(features, labels, centers, skipped, margin, reduction, alpha, rule);
}

}  // namespace centerloss::kernels
