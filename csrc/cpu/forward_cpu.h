// The loss buffer of the CPU forward, shared by forward_cpu.cpp and center_step_cpu.cpp (the
// one-pass training step writes the same per-sample losses).
#pragma once

#include <ATen/core/Tensor.h>

#include "../backend.h"
#include "cpu_variants.h"

namespace centerloss::kernels::CENTERLOSS_CPU_ISA {

// Where the per-sample losses go: out.loss itself for reduction None, else a [N] buffer.
at::Tensor per_sample_losses(const ForwardOutputs& out, int64_t reduction);
// out.loss from the per-sample losses for Mean and Sum: a fixed-order sum, scaled.
void reduce_losses(const at::Tensor& losses, int64_t reduction, ForwardOutputs& out);

}  // namespace centerloss::kernels::CENTERLOSS_CPU_ISA
