// The CPU kernels are compiled once per instruction set, each copy in its own namespace
// (centerloss::kernels::baseline, centerloss::kernels::avx2); backend_cpu.cpp fills the CPU
// Backend (csrc/backend.h) with the best copy this CPU supports. Arguments as in backend.h,
// with labels all in [0, K) (backend_cpu.cpp checks them first).
#pragma once

#include <ATen/core/Tensor.h>

#include "../backend.h"

#ifndef CENTERLOSS_CPU_ISA
#define CENTERLOSS_CPU_ISA baseline
#endif

#define CENTERLOSS_DECLARE_CPU_KERNELS(isa)                                                    \
  namespace centerloss::kernels::isa {                                                        \
  void forward(const at::Tensor& features, const at::Tensor& labels, const at::Tensor& centers, \
               double margin, int64_t reduction, ForwardOutputs& out);                        \
  void backward(const at::Tensor& grad_loss, const at::Tensor& grad_basis,                    \
                at::Tensor& grad_features);                                                   \
  /* false, and nothing written, for a non-finite batch */                                    \
  bool update_centers(at::Tensor& centers, const at::Tensor& features,                        \
                      const at::Tensor& labels, double alpha, int64_t rule);                  \
  void forward_step(const at::Tensor& features, const at::Tensor& labels, at::Tensor& centers, \
                    at::Tensor& skipped, double margin, int64_t reduction, double alpha,      \
                    int64_t rule, ForwardOutputs& out);                                       \
  }

CENTERLOSS_DECLARE_CPU_KERNELS(baseline)
#if defined(CENTERLOSS_HAVE_AVX2_KERNELS)  // set on the library when the AVX2 copy is built
CENTERLOSS_DECLARE_CPU_KERNELS(avx2)
#endif
CENTERLOSS_DECLARE_CPU_KERNELS(CENTERLOSS_CPU_ISA)  // the copy being compiled

namespace centerloss::kernels {
// "avx2" or "baseline": the copy in use. CENTERLOSS_CPU_ISA=baseline in the environment forces
// the baseline copy (read once, at the first call); avx2 is used only where the build has it
// and the CPU supports AVX2 and FMA.
const char* cpu_isa();

// Which path the CPU training step (forward_step) takes: Auto chooses by shape; Never (two
// passes) and Always (one pass) force one, for measuring the choice and for tests (both give
// the same bits). CENTERLOSS_CPU_ONE_PASS=auto|never|always in the environment, read once; any
// other value makes the step raise before it changes anything.
enum class OnePass { Auto, Never, Always };
OnePass cpu_one_pass();
const char* cpu_one_pass_name();  // "auto", "never" or "always"
}  // namespace centerloss::kernels
