// CPU forward and backward of center loss, written to run at the memory limit.
//
// Fused forward: one pass over the batch gathers c_{y_i}, computes the squared distance, the
// per-sample loss and the scaled gradient basis s * g_i * (x_i - c_{y_i}) (row_kernels.h); no
// N x K matrix and no K x D temporary; rows split across threads in tasks of ~16K elements.
// The scalar reduction is a serial fixed-order sum, so results are bitwise identical for any
// thread count. Compiled once per instruction set (cpu_variants.h): the loops keep their fixed
// lanes whatever the vector width, and -ffp-contract=off keeps multiply-adds unfused, so every
// copy gives the same bits.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "../dispatch.h"
#include "cpu_variants.h"
#include "forward_cpu.h"
#include "row_kernels.h"

namespace centerloss::kernels::CENTERLOSS_CPU_ISA {
namespace {

template <typename feat_t, typename center_t>
void forward_typed(const at::Tensor& features, const at::Tensor& labels, const at::Tensor& centers,
                   double margin, int64_t reduction, at::Tensor& losses, at::Tensor& grad_basis) {
  using acc_t = math::forward_acc_t<feat_t, center_t>;
  const int64_t n = features.size(0);
  const int64_t dim = features.size(1);
  const auto* x = raw_ptr<feat_t>(features);
  const int64_t* y = labels.const_data_ptr<int64_t>();
  const center_t* c = centers.const_data_ptr<center_t>();
  acc_t* loss = losses.mutable_data_ptr<acc_t>();
  auto* basis = raw_mut_ptr<feat_t>(grad_basis);
  const acc_t rho = static_cast<acc_t>(margin);
  const acc_t scale = math::reduction_scale<acc_t>(reduction, n);

  at::parallel_for(0, n, grain_rows(dim), [&](int64_t begin, int64_t end) {
    // Small D: per-row overhead dominates, so unroll it (the 2-D plots' case).
    with_small_dim(dim, [&](auto known_dim) {
      forward_rows<static_cast<int>(decltype(known_dim)::value), feat_t, center_t, acc_t>(
          x, y, c, dim, rho, scale, loss, basis, begin, end);
    });
  });
}

// out[i, :] = grad_loss (or grad_loss[i]) * basis[i, :]; out may be basis itself (elementwise).
void scale_basis(const at::Tensor& grad_loss, const at::Tensor& grad_basis, at::Tensor& out) {
  const int64_t n = grad_basis.size(0);
  const int64_t dim = grad_basis.size(1);
  const bool per_sample = grad_loss.dim() == 1;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_basis.scalar_type(),
                                  "centerloss_backward_cpu", [&] {
    using acc_t = math::backward_acc_t<scalar_t>;
    using raw_t = typename Io<scalar_t>::raw;
    const acc_t* g = grad_loss.const_data_ptr<acc_t>();
    const raw_t* b = raw_ptr<scalar_t>(grad_basis);
    raw_t* o = raw_mut_ptr<scalar_t>(out);
    if (!per_sample) {  // one scale for the whole batch: a flat loop, whatever D is
      const acc_t g0 = g[0];
      at::parallel_for(0, n * dim, kWorkPerTask, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
          o[k] = Io<scalar_t>::store(g0 * read<scalar_t, acc_t>(b[k]));
        }
      });
      return;
    }
    at::parallel_for(0, n, grain_rows(dim), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const acc_t gi = g[i];
        for (int64_t k = i * dim; k < (i + 1) * dim; ++k) {
          o[k] = Io<scalar_t>::store(gi * read<scalar_t, acc_t>(b[k]));
        }
      }
    });
  });
}

}  // namespace

at::Tensor per_sample_losses(const ForwardOutputs& out, int64_t reduction) {
  if (reduction == static_cast<int64_t>(Reduction::None)) return out.loss;
  return at::empty({out.grad_basis.size(0)}, out.loss.options());
}

void reduce_losses(const at::Tensor& losses, int64_t reduction, ForwardOutputs& out) {
  if (reduction == static_cast<int64_t>(Reduction::None)) return;  // already out.loss
  const int64_t n = losses.size(0);
  AT_DISPATCH_FLOATING_TYPES(losses.scalar_type(), "centerloss_reduce_cpu", [&] {
    const scalar_t sum = fixed_order_sum(losses.const_data_ptr<scalar_t>(), n);
    *out.loss.mutable_data_ptr<scalar_t>() = sum * math::reduction_scale<scalar_t>(reduction, n);
  });
}

void forward(const at::Tensor& features, const at::Tensor& labels, const at::Tensor& centers,
             double margin, int64_t reduction, ForwardOutputs& out) {
  at::Tensor losses = per_sample_losses(out, reduction);
  CENTERLOSS_DISPATCH_TYPES(features, centers, "centerloss_forward_cpu", [&] {
    forward_typed<feat_t, center_t>(features, labels, centers, margin, reduction, losses,
                                    out.grad_basis);
  });
  reduce_losses(losses, reduction, out);
}

void backward(const at::Tensor& grad_loss, const at::Tensor& grad_basis,
              at::Tensor& grad_features) {
  scale_basis(grad_loss, grad_basis, grad_features);
}

}  // namespace centerloss::kernels::CENTERLOSS_CPU_ISA
