// Data-parallel center steps on a replicated table (spec section 5): every rank gathers the
// ranks' (features, labels) batches, padded to the largest N, and runs the same deterministic
// step on the same concatenation (rank order), so every rank's centers are bitwise those of one
// process fed that concatenation, with no broadcast per step. Compared with all-reducing
// per-class sums and counts this moves world x N x D values and needs no K x D (or
// union-of-classes) buffer. The NaN guard is collective for free: a non-finite row on any rank
// is in every rank's union. Used by the C++ module and, through the op centerloss::
// _gather_batches, by the Python module.
#pragma once

#include <ATen/core/Tensor.h>

#include <utility>
#include <vector>

#include "module/collectives.h"

namespace centerloss::group {

// The concatenation, in rank order, of every rank's (features, labels as int64), the same on
// every rank; features detached. Every rank first checks its batch against `centers` and learns
// every other's (exchange_headers): a bad batch anywhere raises on every rank before anything
// moves. If any rank asks (share_state: its first step, or its first after loading a state),
// every rank then takes rank 0's values of `state` (in place; the same tensors in the same
// order on every rank), so ranks seeded or loaded differently step from the same centers.
std::pair<at::Tensor, at::Tensor> gather_batches(const Group& group, const at::Tensor& features,
                                                 const at::Tensor& labels,
                                                 const at::Tensor& centers,
                                                 std::vector<at::Tensor> state, bool share_state);

}  // namespace centerloss::group
