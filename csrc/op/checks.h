// Input checks of spec section 7, shared by every op and every backend.
//
// Each check throws c10::Error (RuntimeError in Python) whose message starts with the op name
// and names the argument and what was expected. They only read metadata, so an op that runs
// them before its kernel changes nothing when one fails; they also accept meta/fake tensors.
// Label values are the backends' to find (csrc/backend.h); fail_bad_label words the error.
#pragma once

#include <ATen/core/Tensor.h>

namespace centerloss::checks {

// features [N, D] floating (f32/f64/f16/bf16), labels [N] integer, centers [K, D] f32/f64,
// all on one device, D equal, K and D >= 1.
void check_batch_layout(const char* op, const at::Tensor& features, const at::Tensor& labels,
                        const at::Tensor& centers);

// check_batch_layout, then a device the kernels run on (CPU or CUDA). Returns the labels as
// the kernels take them (labels_as_int64), so a caller converts them once.
at::Tensor check_batch(const char* op, const at::Tensor& features, const at::Tensor& labels,
                       const at::Tensor& centers);

// Throws the spec's bad-label error for labels64[position] (reads that one value).
[[noreturn]] void fail_bad_label(const char* op, const at::Tensor& labels64, int64_t position,
                                 int64_t num_classes);

// skipped: the module's skip counter, one int64 element on the centers' device.
void check_skip_counter(const char* op, const at::Tensor& skipped, const at::Tensor& centers);

// seen: first-sight's [K] bool mask, on the centers' device.
void check_seen(const char* op, const at::Tensor& seen, const at::Tensor& centers);

// grad_loss [] or [N], grad_basis [N, D], one device.
void check_backward(const char* op, const at::Tensor& grad_loss, const at::Tensor& grad_basis);

void check_margin(const char* op, double margin);
void check_alpha(const char* op, double alpha);
void check_reduction(const char* op, int64_t reduction);
void check_update_rule(const char* op, int64_t rule);  // Paper or Mean only

// Labels as a contiguous int64 tensor (a copy only when needed).
at::Tensor labels_as_int64(const at::Tensor& labels);

}  // namespace centerloss::checks
