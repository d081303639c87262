// centerloss process groups: making a c10d process group from C++, what
// torch.distributed.init_process_group does in Python, for CenterLossOptions::process_group and
// the trainer under torchrun (docs/distributed.md).
//
//   auto group = centerloss::process_group_from_env();              // RANK, WORLD_SIZE, ...
//   centerloss::CenterLoss center_loss(
//       centerloss::CenterLossOptions(K, D).process_group(group));   // .shard_centers(true)
//
// Backends: "gloo" (CPU tensors; needs a build that found gloo's headers, see
// scripts/install_system_deps.sh) and "nccl" (CUDA tensors; builds with the CUDA kernels; call
// c10::cuda::set_device(local_rank) first). Every collective of the group fails with an error
// (never hangs) when a rank dies or does not answer within `timeout`.
#pragma once

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <string>

namespace centerloss {

using ProcessGroupPtr = c10::intrusive_ptr<c10d::ProcessGroup>;

struct ProcessGroupOptions {
  std::string backend = "gloo";  // "gloo" or "nccl"
  // How long a collective (and the rendezvous) waits for the other ranks before it throws.
  std::chrono::milliseconds timeout = std::chrono::minutes(5);
};

// This process's place in the job, from the variables torchrun sets (or a user sets by hand):
// RANK, WORLD_SIZE, LOCAL_RANK (each optional: 0, 1, RANK by default), MASTER_ADDR and
// MASTER_PORT (needed when WORLD_SIZE > 1). Throws std::invalid_argument naming the variable
// when one is not a number in range or a needed one is missing.
struct Launch {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr;
  int master_port = 0;
  bool agent_store = false;  // TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent hosts the store
};
Launch launch_from_env();

// A process group of `world_size` ranks over `store` (every rank passes the same store
// address). Throws std::invalid_argument for an unknown backend, or one this build lacks.
ProcessGroupPtr make_process_group(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                   int world_size, const ProcessGroupOptions& options = {});

// The group of `launch`: a TCP store at MASTER_ADDR:MASTER_PORT (hosted by rank 0, or by
// torchrun's agent), then make_process_group. With world_size 1 a group of one rank is still
// made (its collectives return at once).
ProcessGroupPtr process_group_from_env(const Launch& launch = launch_from_env(),
                                       const ProcessGroupOptions& options = {});

// Waits for a collective of `group`; if it fails (a rank died, or did not answer within the
// group's timeout) throws c10::Error "<what> failed on rank r of W (another rank died, ...):
// <the backend's reason>", so every rank's error says what it was doing and where.
void wait_collective(const c10::intrusive_ptr<c10d::Work>& work, const c10d::ProcessGroup& group,
                     const std::string& what);

}  // namespace centerloss
