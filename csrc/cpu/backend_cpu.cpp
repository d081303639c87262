// The CPU backend (csrc/backend.h): the labels checked on the host, then the kernels of the
// best instruction set this CPU supports (cpu_variants.h), chosen once. Also reads the one-pass
// setting of the training step once.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>

#include "cpu_variants.h"

namespace centerloss::kernels {
namespace {

struct IsaKernels {
  const char* isa;
  decltype(&baseline::forward) forward;
  decltype(&baseline::backward) backward;
  decltype(&baseline::update_centers) update_centers;
  decltype(&baseline::forward_step) forward_step;
};

// The AVX2 copy where the build has it and the CPU supports AVX2 and FMA, unless
// CENTERLOSS_CPU_ISA=baseline.
const IsaKernels& chosen() {
  static const IsaKernels kernels = [] {
    const IsaKernels base{"baseline", &baseline::forward, &baseline::backward,
                          &baseline::update_centers, &baseline::forward_step};
#if defined(CENTERLOSS_HAVE_AVX2_KERNELS)
    const char* forced = std::getenv("CENTERLOSS_CPU_ISA");
    if (forced != nullptr && std::strcmp(forced, "baseline") == 0) return base;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      return IsaKernels{"avx2", &avx2::forward, &avx2::backward, &avx2::update_centers,
                        &avx2::forward_step};
    }
#endif
    return base;
  }();
  return kernels;
}

int64_t first_bad_label(const at::Tensor& labels, int64_t num_classes) {
  const int64_t* y = labels.const_data_ptr<int64_t>();
  for (int64_t i = 0; i < labels.numel(); ++i) {
    if (y[i] < 0 || y[i] >= num_classes) return i;
  }
  return -1;
}

LabelVerdict forward(const at::Tensor& features, const at::Tensor& labels,
                     const at::Tensor& centers, double margin, int64_t reduction,
                     ForwardOutputs& out) {
  if (const int64_t bad = first_bad_label(labels, centers.size(0)); bad >= 0) return LabelVerdict::on_host(bad);
  chosen().forward(features, labels, centers, margin, reduction, out);
  return {};
}

void backward(const at::Tensor& grad_loss, const at::Tensor& grad_basis,
              at::Tensor& grad_features) {
  chosen().backward(grad_loss, grad_basis, grad_features);
}

at::Tensor update_centers(at::Tensor& centers, const at::Tensor& features,
                          const at::Tensor& labels, double alpha, int64_t rule) {
  const bool applied = chosen().update_centers(centers, features, labels, alpha, rule);
  return at::scalar_tensor(applied, centers.options().dtype(at::kBool));
}

LabelVerdict forward_step(const at::Tensor& features, const at::Tensor& labels,
                          at::Tensor& centers, at::Tensor& skipped, double margin,
                          int64_t reduction, double alpha, int64_t rule, ForwardOutputs& out) {
  if (const int64_t bad = first_bad_label(labels, centers.size(0)); bad >= 0) return LabelVerdict::on_host(bad);
  cpu_one_pass();  // a bad setting raises here, before anything changes
  chosen().forward_step(features, labels, centers, skipped, margin, reduction, alpha, rule, out);
  return {};
}

bool never_capturing(const at::Tensor&) { return false; }

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

}  // namespace centerloss::kernels

namespace centerloss {

const Backend& cpu_backend() {
  static const Backend backend{&kernels::forward,      &kernels::backward,
                               &kernels::update_centers, &kernels::forward_step,
                               &kernels::never_capturing, &kernels::first_bad_label};
  return backend;
}

}  // namespace centerloss
