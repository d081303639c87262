// What every rank tells the others about its batch before any row moves (spec section 5): so
// that a bad batch on one rank raises on every rank, before anything changes, and no rank is
// left waiting in a collective the others never make.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "module/collectives.h"

namespace centerloss::group {

struct RankBatch {
  bool valid = false;
  int64_t rows = 0;
  int64_t dim = 0;
  int64_t dtype = -1;            // c10::ScalarType of the features
  bool share_state = false;      // the rank asks for rank 0's state
  bool finite = true;            // every feature element finite (sharded tables only)
  std::vector<int64_t> per_owner;  // rows whose class rank t owns (sharded tables only)
};

struct GroupBatches {
  std::vector<RankBatch> ranks;

  bool any_share_state() const;
  bool all_finite() const;
  std::vector<int64_t> rows() const;                 // per rank
  std::vector<int64_t> rows_from(int owner) const;   // rows each rank sends to `owner`
};

// The layout a sharded table needs to sort the rows by owner: K classes over the group.
struct Sharding {
  int64_t num_classes = 0;
};

// Checks this rank's batch (its layout against `centers`; with `sharding` also its label
// values, which decide where its rows go), all-gathers every rank's header, and throws on
// every rank if any batch is invalid or the ranks' features differ in D or dtype.
GroupBatches exchange_headers(const Group& group, const at::Tensor& features,
                              const at::Tensor& labels, const at::Tensor& centers,
                              bool share_state, const Sharding* sharding);

// The owner rank of each label of a table of K classes over W ranks: rank r owns
// [r K / W, (r + 1) K / W) (integer division).
at::Tensor owner_of(const at::Tensor& labels64, int64_t num_classes, int64_t world);
int64_t shard_start(int64_t num_classes, int64_t world, int64_t rank);

}  // namespace centerloss::group
