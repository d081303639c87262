// Input checks of spec section 7, shared by every op and every backend.
//
// Each check throws c10::Error (RuntimeError in Python) whose message starts with the op name
// and names the argument and what was expected. They only read their arguments, so an op that
// runs them all before its kernel changes nothing when one fails.
#pragma once

#include <ATen/core/Tensor.h>

namespace centerloss::checks {

// features [N, D] floating (f32/f64/f16/bf16), labels [N] integer, centers [K, D] f32/f64,
// all on one device, D equal. Reads metadata only (also valid for meta/fake tensors).
void check_batch_layout(const char* op, const at::Tensor& features, const at::Tensor& labels,
                        const at::Tensor& centers);

// check_batch_layout, then every label in [0, K) (one device sync on CUDA), reporting the first
// bad value and its position. Returns the labels as contiguous int64 (labels_as_int64), the
// form the kernels take, so a caller converts them once.
at::Tensor check_batch(const char* op, const at::Tensor& features, const at::Tensor& labels,
                       const at::Tensor& centers);
// The part of check_batch after check_batch_layout: the device, then the label values.
at::Tensor check_batch_values(const char* op, const at::Tensor& features, const at::Tensor& labels,
                              const at::Tensor& centers);

// Throws the spec's bad-label error for labels64[position] (reads that one value).
[[noreturn]] void fail_bad_label(const char* op, const at::Tensor& labels64, int64_t position,
                                 int64_t num_classes);

// skipped: the module's skip counter, one int64 element on the centers' device.
void check_skip_counter(const char* op, const at::Tensor& skipped, const at::Tensor& centers);

void check_margin(const char* op, double margin);
void check_alpha(const char* op, double alpha);
void check_reduction(const char* op, int64_t reduction);
void check_update_rule(const char* op, int64_t rule);  // Paper or Mean only

// Position of the first label outside [0, K) in a contiguous int64 tensor, or -1. Reads the
// labels on the host (CPU) or launches one kernel and syncs once (CUDA).
int64_t first_bad_label_position(const at::Tensor& labels64, int64_t num_classes);

// Labels as a contiguous int64 tensor (a copy only when needed).
at::Tensor labels_as_int64(const at::Tensor& labels);

}  // namespace centerloss::checks
