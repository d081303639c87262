// Making c10d process groups in C++ (include/centerloss/process_group.h). The Gloo and NCCL
// backends come from LibTorch itself; only their headers are needed here, so each is compiled
// in when this build found them (CENTERLOSS_HAVE_GLOO: Debian's libgloo-dev, whose objects
// c10d passes by shared_ptr; CENTERLOSS_HAVE_NCCL: builds with the CUDA kernels).
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(CENTERLOSS_HAVE_GLOO)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(CENTERLOSS_HAVE_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <c10/util/Exception.h>

#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>

#include "centerloss/process_group.h"

namespace centerloss {
namespace {

// The integer in variable `name`, `fallback` when it is unset; throws naming it otherwise.
int env_int(const char* name, int fallback, int low, int high) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < low || value > high) {
    throw std::invalid_argument(std::string("environment variable ") + name + "='" + text +
                                "' is not an integer in [" + std::to_string(low) + ", " +
                                std::to_string(high) + "]");
  }
  return static_cast<int>(value);
}

#if defined(CENTERLOSS_HAVE_GLOO)
c10::intrusive_ptr<c10d::Backend> gloo_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                               int rank, int size,
                                               std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  // As torch.distributed does: the interface GLOO_SOCKET_IFNAME names, else this host's address.
  const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
  options->devices.push_back(interface != nullptr && *interface != '\0'
                                 ? c10d::ProcessGroupGloo::createDeviceForInterface(interface)
                                 : c10d::ProcessGroupGloo::createDefaultDevice());
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
}
#endif

#if defined(CENTERLOSS_HAVE_NCCL)
c10::intrusive_ptr<c10d::Backend> nccl_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                               int rank, int size,
                                               std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
}
#endif

}  // namespace

void wait_collective(const c10::intrusive_ptr<c10d::Work>& work, const c10d::ProcessGroup& group,
                     const std::string& what) {
  std::string reason;
  try {
    work->wait();
    return;
  } catch (const c10::Error& e) {
    reason = e.what_without_backtrace();
  } catch (const std::exception& e) {
    reason = e.what();
  }
  TORCH_CHECK(false, what, " failed on rank ", group.getRank(), " of ", group.getSize(),
              " (another rank died, raised, or did not answer within the group's timeout): ",
              reason);
}

Launch launch_from_env() {
  Launch launch;
  launch.world_size = env_int("WORLD_SIZE", 1, 1, std::numeric_limits<int>::max());
  launch.rank = env_int("RANK", 0, 0, launch.world_size - 1);
  launch.local_rank = env_int("LOCAL_RANK", launch.rank, 0, launch.world_size - 1);
  const char* addr = std::getenv("MASTER_ADDR");
  launch.master_addr = addr != nullptr ? addr : "";
  launch.master_port = env_int("MASTER_PORT", 0, 0, 65535);
  const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  launch.agent_store = agent != nullptr && std::string(agent) == "True";
  if (launch.world_size > 1 && (launch.master_addr.empty() || launch.master_port == 0)) {
    throw std::invalid_argument(
        "WORLD_SIZE=" + std::to_string(launch.world_size) +
        " needs MASTER_ADDR and MASTER_PORT (the address and port of rank 0's store); torchrun "
        "sets them");
  }
  return launch;
}

ProcessGroupPtr make_process_group(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                   int world_size, const ProcessGroupOptions& options) {
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    throw std::invalid_argument("make_process_group: rank " + std::to_string(rank) +
                                " is not in [0, world_size = " + std::to_string(world_size) + ")");
  }
  // One prefix per backend, as torch.distributed keys each group: the store may be shared.
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("centerloss/" + options.backend, store);
  c10::intrusive_ptr<c10d::Backend> backend;
  auto device = c10::DeviceType::CPU;
  auto type = c10d::ProcessGroup::BackendType::GLOO;
  if (options.backend == "gloo") {
#if defined(CENTERLOSS_HAVE_GLOO)
    backend = gloo_backend(prefixed, rank, world_size, options.timeout);
#else
    throw std::invalid_argument(
        "make_process_group: this centerloss build has no Gloo backend (gloo's headers were not "
        "found when it was built: install libgloo-dev and rebuild)");
#endif
  } else if (options.backend == "nccl") {
#if defined(CENTERLOSS_HAVE_NCCL)
    backend = nccl_backend(prefixed, rank, world_size, options.timeout);
    device = c10::DeviceType::CUDA;
    type = c10d::ProcessGroup::BackendType::NCCL;
#else
    throw std::invalid_argument(
        "make_process_group: this centerloss build has no NCCL backend (it is built with the "
        "CUDA kernels only)");
#endif
  } else {
    throw std::invalid_argument("make_process_group: backend must be \"gloo\" or \"nccl\", got \"" +
                                options.backend + "\"");
  }
  auto group = c10::make_intrusive<c10d::ProcessGroup>(prefixed, rank, world_size);
  group->setBackend(device, type, backend);
  group->setDefaultBackend(type);
  return group;
}

ProcessGroupPtr process_group_from_env(const Launch& launch, const ProcessGroupOptions& options) {
  c10::intrusive_ptr<c10d::Store> store;
  if (launch.world_size == 1 && launch.master_addr.empty()) {
    store = c10::make_intrusive<c10d::HashStore>();  // nobody to meet
  } else {
    c10d::TCPStoreOptions tcp;
    tcp.port = static_cast<std::uint16_t>(launch.master_port);
    tcp.isServer = launch.rank == 0 && !launch.agent_store;  // torch.distributed's rule
    tcp.numWorkers = launch.world_size;
    tcp.timeout = options.timeout;
    tcp.multiTenant = true;
    store = c10::make_intrusive<c10d::TCPStore>(launch.master_addr, tcp);
  }
  return make_process_group(store, launch.rank, launch.world_size, options);
}

}  // namespace centerloss
