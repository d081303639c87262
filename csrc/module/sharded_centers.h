// Sharded center tables: rank r of W holds only the rows [k0, k1) = [r K / W, (r + 1) K / W)
// of the K x D table. Each step sends every feature row to the rank that owns its class (an
// all-to-all); the owner initialises its unseen classes (first_sight), returns each row's
// center as it was before this step, and applies the step to its classes; a second all-to-all
// brings the center rows back, and each rank computes its loss and gradient from them with the
// same kernel as the unsharded module. So loss, gradient and centers are bitwise the unsharded
// module's, whatever the reduction and margin: each class's rows reach its owner in the order
// of the ranks' concatenated batches, the order in which the step sums a class. Memory per rank:
// the K / W x D shard, and O(N x D) for the exchange.
#pragma once

#include <ATen/core/Tensor.h>

#include "module/collectives.h"

namespace centerloss::group {

// A rank's shard and the state that goes with it (in place).
struct Shard {
  at::Tensor centers;  // [k1 - k0, D]
  at::Tensor seen;     // [k1 - k0] bool, or undefined (no first_sight)
  at::Tensor skipped;  // [] int64: a step skipped because some rank's batch was non-finite
  int64_t begin = 0;   // k0
  int64_t num_classes = 0;
};

struct ShardStep {
  bool step = false;         // apply the center step (rules Paper, Mean)
  bool first_sight = false;  // initialise unseen classes first
  double alpha = 0.5;
  int64_t rule = 0;
};

// The [N, D] centers c_{y_i} of this rank's rows, as the loss must see them (after first_sight,
// before the step); a collective of the whole group. Checks every rank's batch first and
// throws on every rank, changing nothing, if one is invalid (a label outside [0, K) included).
// A non-finite feature on any rank skips the step and first_sight on every rank (the skip
// counter of every rank counts it).
at::Tensor exchange_center_rows(const Group& group, const at::Tensor& features,
                                const at::Tensor& labels, Shard& shard, const ShardStep& what);

}  // namespace centerloss::group
