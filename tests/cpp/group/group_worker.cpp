// One rank of the process-group tests (tests/cpp/test_process_group.cpp starts W of them, with
// RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set as torchrun would). Runs every case of
// group_cases.h on one Gloo group and writes what the test compares into OUT/rank<R>.pt.
//
//   group_worker OUT all    the cases, the bad batches, saving and loading shards
//   group_worker OUT die    rank 1 exits during training; the others must fail, not hang
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "centerloss/center_loss.h"
#include "centerloss/process_group.h"
#include "group_cases.h"

namespace {

using namespace centerloss;
using namespace centerloss::testing;

struct Results {
  torch::serialize::OutputArchive archive;
  void put(const std::string& key, const torch::Tensor& t) { archive.write(key, t.detach().clone()); }
  void put(const std::string& key, const std::string& text) { archive.write(key, c10::IValue(text)); }
};

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

void run_case(const GroupCase& c, const ProcessGroupPtr& group, Results& out) {
  const int rank = group->getRank(), world = group->getSize();
  torch::manual_seed(10 + rank);  // per-rank seeds: the centers start apart (init normal)
  CenterLoss m(CenterLossOptions(c.options).process_group(group).shard_centers(c.sharded));
  const std::string key = c.name + ".";
  out.put(key + "initial", m->full_centers());
  for (int step = 0; step < kSteps; ++step) {
    auto [x, y] = group_batch(rank, world, step, c.disjoint);
    x.requires_grad_(true);
    torch::Tensor loss = m->forward(x, y);
    loss.sum().backward();
    out.put(key + "loss" + std::to_string(step), loss);
    out.put(key + "grad" + std::to_string(step), x.grad());
  }
  out.put(key + "centers", m->full_centers());
  out.put(key + "shard", m->centers());
  out.put(key + "skipped", torch::tensor(m->skipped_updates()));

  // One rank's bad batch: every rank raises, none changes, none hangs.
  const std::vector<std::pair<std::string, int>> bad = {
      {"label", 0}, {"float_labels", 1}, {"float64_features", 1}, {"length", 0}};
  for (const auto& [what, bad_rank] : bad) {
    auto batch = group_batch(rank, world, 9, false);
    torch::Tensor& x = batch.first;  // references, not structured bindings: a lambda captures them
    torch::Tensor& y = batch.second;
    if (rank == bad_rank) {
      if (what == "label") y[0] = kClasses;
      if (what == "float_labels") y = y.to(torch::kFloat);
      if (what == "float64_features") x = x.to(torch::kDouble);
      if (what == "length") y = y.slice(0, 0, -1);
    }
    const torch::Tensor before = m->centers().clone();
    const int64_t skipped = m->skipped_updates();
    out.put(key + "error." + what, error_of([&] { m->forward(x, y); }));
    const bool unchanged = torch::equal(before, m->centers()) && skipped == m->skipped_updates();
    out.put(key + "unchanged." + what, torch::tensor(unchanged));
  }
  auto [x, y] = group_batch(rank, world, 5, c.disjoint);  // the group still works
  out.put(key + "after_errors", m->forward(x, y));
}

// Saving and loading shards: one's own, another rank's (refused), a whole table (re-sharded).
void run_shard_files(const ProcessGroupPtr& group, const std::string& dir, Results& out) {
  const int rank = group->getRank(), world = group->getSize();
  const auto options = CenterLossOptions(kClasses, kDim).init(Init::Normal).process_group(group);
  torch::manual_seed(20 + rank);
  CenterLoss sharded(CenterLossOptions(options).shard_centers(true));
  const std::string mine = dir + "/shard" + std::to_string(rank) + ".pt";
  torch::save(sharded, mine);
  if (rank == 0) {
    torch::manual_seed(30);
    torch::save(CenterLoss(CenterLossOptions(kClasses, kDim).init(Init::Normal)), dir + "/whole.pt");
  }
  group->barrier()->wait();
  const std::string other = dir + "/shard" + std::to_string((rank + 1) % world) + ".pt";
  CenterLoss loaded(CenterLossOptions(options).shard_centers(true));
  out.put("files.other_error", error_of([&] { torch::load(loaded, other); }));
  torch::load(loaded, mine);
  out.put("files.own_equal", torch::tensor(torch::equal(loaded->centers(), sharded->centers())));
  torch::load(loaded, dir + "/whole.pt");
  out.put("files.whole_rows", loaded->centers());
  group->barrier()->wait();
}

int run(const std::string& dir, const std::string& mode) {
  ProcessGroupOptions options;
  options.timeout = std::chrono::seconds(mode == "die" ? 10 : 60);
  const ProcessGroupPtr group = process_group_from_env(launch_from_env(), options);
  const int rank = group->getRank(), world = group->getSize();
  if (mode == "die") {
    CenterLoss m(CenterLossOptions(kClasses, kDim).process_group(group));
    for (int step = 0; step < 1000; ++step) {
      if (rank == 1 && step == 3) std::_Exit(3);  // a crash: no exception, no goodbye
      auto [x, y] = group_batch(rank, world, step % kSteps, false);
      m->forward(x, y);
    }
    return 0;  // not reached by a survivor: its collective with rank 1 fails
  }
  Results out;
  for (const GroupCase& c : group_cases()) run_case(c, group, out);
  run_shard_files(group, dir, out);
  out.archive.save_to(dir + "/rank" + std::to_string(rank) + ".pt");
  group->barrier()->wait();  // nobody leaves while another still needs the group
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: group_worker OUT_DIR all|die\n");
    return 2;
  }
  try {
    return run(argv[1], argv[2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
