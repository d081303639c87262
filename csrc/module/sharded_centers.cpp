#include "module/sharded_centers.h"

#include <ATen/ATen.h>

#include "centerloss/ops.h"
#include "module/batch_header.h"
#include "op/checks.h"

namespace centerloss::group {

at::Tensor exchange_center_rows(const Group& group, const at::Tensor& features,
                                const at::Tensor& labels, Shard& shard, const ShardStep& what) {
  const int rank = group->getRank();
  const Sharding sharding{shard.num_classes};
  const GroupBatches batches =
      exchange_headers(group, features, labels, shard.centers, false, &sharding);
  at::NoGradGuard no_grad;
  const at::Tensor x = features.detach().contiguous();
  const at::Tensor y = checks::labels_as_int64(labels);

  // Rows sorted by owner, keeping batch order within an owner (a stable sort).
  const at::Tensor owners = owner_of(y, shard.num_classes, group->getSize());
  const at::Tensor order = std::get<1>(at::sort(owners, /*stable=*/true, 0, false));
  const std::vector<int64_t> sent = batches.ranks[rank].per_owner;
  const std::vector<int64_t> received = batches.rows_from(rank);
  const at::Tensor mine_x = all_to_all_rows(group, x.index_select(0, order), sent, received);
  const at::Tensor mine_y =
      all_to_all_rows(group, y.index_select(0, order), sent, received) - shard.begin;

  const bool finite = batches.all_finite();  // the union's verdict, as one process would give
  if (what.first_sight && finite) init_centers_first_sight_(shard.centers, shard.seen, mine_x, mine_y);
  const at::Tensor rows_out = shard.centers.index_select(0, mine_y);
  if (what.step) {
    if (finite) {
      update_centers_(shard.centers, mine_x, mine_y, what.alpha, static_cast<UpdateRule>(what.rule));
    } else {
      shard.skipped.add_(1);
    }
  }
  const at::Tensor back = all_to_all_rows(group, rows_out, received, sent);
  return at::empty_like(back).index_copy_(0, order, back);
}

}  // namespace centerloss::group
