// The one interface every backend (csrc/cpu, csrc/cuda) implements, like ATen's DispatchStub:
// the same slots with the same signatures, filled per device. The op bodies (csrc/op/) call
// kernels only through it.
//
// What callers guarantee: every argument checked (csrc/op/checks.h), N >= 1, the device guard
// set, features and centers contiguous, labels contiguous int64 (values NOT checked: a backend
// reports bad ones, see LabelVerdict), outputs allocated by csrc/op/outputs.h. Kernels never
// throw for user input. Shapes: features [N, D], labels [N], centers [K, D]; dtypes as in
// include/centerloss/ops.h.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace centerloss {

// Where the first label outside [0, K) is. CPU knows it on the host (`position`); CUDA leaves
// it on the device (`on_device`, [1] int64; reading it is the op's one sync); under CUDA graph
// capture nothing can be read back and neither is set (spec section 7: the kernels' guards act
// instead). -1: no bad label.
struct LabelVerdict {
  int64_t position = -1;
  at::Tensor on_device;

  static LabelVerdict on_host(int64_t first_bad_position) {
    LabelVerdict verdict;
    verdict.position = first_bad_position;
    return verdict;
  }
  int64_t first_bad() const { return on_device.defined() ? on_device.item<int64_t>() : position; }
};

// The forward's results: the loss (scalar for mean/sum, [N] for none; float32, or float64 when
// features or centers are float64) and the gradient basis [N, D] in the features' dtype,
// s * g_i * (x_i - c_{y_i}) = dLoss/dx_i for an incoming gradient of 1.
struct ForwardOutputs {
  at::Tensor loss;
  at::Tensor grad_basis;
};

struct Backend {
  // Loss and basis of spec sections 1-2 into `out`. A bad label is reported, never read: then
  // `out` is left unwritten (CPU), or its row gets a NaN loss and a zero basis row (CUDA).
  LabelVerdict (*forward)(const at::Tensor& features, const at::Tensor& labels,
                          const at::Tensor& centers, double margin, int64_t reduction,
                          ForwardOutputs& out);

  // grad_features = grad_loss * grad_basis per row (grad_loss: [] or [N], contiguous, in the
  // basis's accumulation dtype). grad_features may be grad_basis itself (scaled in place).
  void (*backward)(const at::Tensor& grad_loss, const at::Tensor& grad_basis,
                   at::Tensor& grad_features);

  // Center step of spec section 3 (rule Paper or Mean) in place. Returns a 0-d bool tensor on
  // the centers' device: false, and nothing written, for a non-finite batch (or a bad label,
  // which only a CUDA graph capture lets through).
  at::Tensor (*update_centers)(at::Tensor& centers, const at::Tensor& features,
                               const at::Tensor& labels, double alpha, int64_t rule);

  // The module's training step: forward on the centers as they are, then (labels all valid)
  // the center step, whose "skipped" verdict adds 1 to `skipped` ([1] int64). With a bad label
  // nothing but `out` changes (except under capture, where the step is skipped and counted).
  LabelVerdict (*forward_step)(const at::Tensor& features, const at::Tensor& labels,
                               at::Tensor& centers, at::Tensor& skipped, double margin,
                               int64_t reduction, double alpha, int64_t rule,
                               ForwardOutputs& out);

  // Whether the current stream of `on`'s device is capturing a CUDA graph (CPU: never).
  bool (*capturing)(const at::Tensor& on);

  // Position of the first label outside [0, K), or -1 (a host read: one sync on CUDA).
  int64_t (*first_bad_label)(const at::Tensor& labels, int64_t num_classes);
};

const Backend& cpu_backend();
#if defined(CENTERLOSS_WITH_CUDA)
const Backend& cuda_backend();
#endif

}  // namespace centerloss
