// Backend kernels: the one interface that csrc/cpu and csrc/cuda implement.
//
// The op layer (csrc/ops.cpp) has already checked every argument (csrc/checks.h) and made
// features and labels contiguous, labels int64, and centers contiguous, before calling these.
// Kernels therefore assume valid input and never throw on user error.
//
// Shapes: features [N, D] (float32, float64, float16, bfloat16), labels [N] int64 in [0, K),
// centers [K, D] (float32 or float64). acc_t is float, or double when features or centers are
// double.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace centerloss::kernels {

// Forward pass, fused: gathers c_{y_i}, computes the per-sample loss, the reduced loss and the
// scaled per-sample gradient basis in one pass over the batch.
// Returns (loss, grad_basis):
//   loss        reduction None: [N] per-sample losses; Mean/Sum: [] scalar. dtype acc_t.
//   grad_basis  [N, D] in the features' dtype: s * g_i * (x_i - c_{y_i}), i.e. dLoss/dx_i for
//               an incoming gradient of 1 (s = reduction scale, g_i = margin coefficient).
// The scalar reduction is a fixed-order sum: bitwise identical for any thread count.
std::tuple<at::Tensor, at::Tensor> forward_cpu(const at::Tensor& features, const at::Tensor& labels,
                                               const at::Tensor& centers, double margin,
                                               int64_t reduction);

// Backward: grad_features[i, :] = grad_loss * grad_basis[i, :] (grad_loss scalar for Mean/Sum,
// [N] for None). Returns a new tensor of the features' dtype; does not write to grad_basis.
at::Tensor backward_cpu(const at::Tensor& grad_loss, const at::Tensor& grad_basis);
// The same scaling written over grad_basis itself (contiguous, [N, D]; grad_loss in the
// accumulation dtype, contiguous): the same bits as backward_cpu, no allocation. For autograd's
// last use of a saved basis.
void backward_in_place_cpu(const at::Tensor& grad_loss, at::Tensor& grad_basis);

// Center step of spec section 3 for rules Paper and Mean, in place on `centers`:
//   c_j <- c_j - step_factor(n_j) * sum_{i: y_i = j} (c_j - x_i)
// only for classes present in the batch; per-class sums in batch order (deterministic).
// If any feature row holds a NaN or an infinity, nothing is written and false is returned.
bool update_centers_cpu(at::Tensor& centers, const at::Tensor& features, const at::Tensor& labels,
                        double alpha, int64_t rule);

// The module's training step in one call (op _forward_step_): forward_cpu on the centers as
// they are, then the center step of update_centers_cpu, whose verdict adds 1 to `skipped`
// (int64, one element) for a non-finite batch. Same results, bit for bit, as forward_cpu
// followed by update_centers_cpu; where it pays, reads the features and each batch class's
// center once instead of twice. Labels must be in [0, K).
std::tuple<at::Tensor, at::Tensor> forward_step_cpu(const at::Tensor& features,
                                                    const at::Tensor& labels, at::Tensor& centers,
                                                    at::Tensor& skipped, double margin,
                                                    int64_t reduction, double alpha, int64_t rule);

#if defined(CENTERLOSS_WITH_CUDA)
// As forward_cpu, with the label check fused in: the third tensor ([1] int64 on the device,
// undefined when N = 0 and while the current stream captures a graph, where nothing can be read
// back) holds the position of the first label outside [0, K), or -1. A row with such a label
// reads no center (never an out-of-bounds read): its loss is NaN and its basis row 0
// (math::bad_label_loss), which a reduced loss turns into NaN.
std::tuple<at::Tensor, at::Tensor, at::Tensor> forward_cuda(const at::Tensor& features,
                                                            const at::Tensor& labels,
                                                            const at::Tensor& centers,
                                                            double margin, int64_t reduction);
at::Tensor backward_cuda(const at::Tensor& grad_loss, const at::Tensor& grad_basis);
// Always deterministic (sort by label, reduce per class in batch order; there is no atomic
// variant, see the top of center_loss_cuda.cu). Returns a 0-d bool tensor on the device (no host
// sync): false, and nothing written, when a feature row is non-finite or a label is outside
// [0, K) (a guard: the op checks labels on the host first, except under graph capture).
at::Tensor update_centers_cuda(at::Tensor& centers, const at::Tensor& features,
                               const at::Tensor& labels, double alpha, int64_t rule);
// The center step of the module (op _forward_step_ on CUDA, after forward_cuda): as
// update_centers_cuda, but the verdict adds 1 to `skipped` on the device, without any sync, and
// a label outside [0, K) also skips the step (a guard: forward_cuda has raised for it, unless a
// graph is being captured).
void step_centers_cuda(at::Tensor& centers, at::Tensor& skipped, const at::Tensor& features,
                       const at::Tensor& labels, double alpha, int64_t rule);
// True while the current CUDA stream of `on`'s device is capturing a graph: the ops then read
// nothing back to the host (op_impl::never_capturing explains what a bad label gives instead).
bool capturing_cuda(const at::Tensor& on);
// Position of the first label outside [0, K) in a contiguous int64 CUDA tensor, or -1: one
// kernel and one 8-byte device-to-host read (a sync), instead of a chain of ATen ops.
int64_t first_bad_label_cuda(const at::Tensor& labels64, int64_t num_classes);
#endif

}  // namespace centerloss::kernels
