// CenterLoss with a c10d process group, in real processes: W = 2 and 3 copies of group_worker
// (group/group_worker.cpp) meet on loopback (TCP store + Gloo) like torchrun's workers, run the
// cases of group/group_cases.h, and this test compares what they wrote with one process fed the
// ranks' concatenated batches (spec section 5). Plus the checks that need no second process.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "centerloss/center_loss.h"
#include "centerloss/ops.h"
#include "centerloss/process_group.h"
#include "group_cases.h"

extern char** environ;

namespace {

using namespace centerloss;
using namespace centerloss::testing;

// A TCP port nobody listens on now (the kernel's choice; it stays free for the next seconds).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct Finished {
  std::vector<int> exit_codes;  // per rank; -1: killed after the deadline
  double seconds = 0;
};

// Starts `world` workers with torchrun's variables and waits for all of them (killing any still
// running after `deadline`, so a hang fails the test instead of stalling CI).
Finished run_ranks(int world, const std::string& dir, const std::string& mode,
                   std::chrono::seconds deadline) {
  const int port = free_port();
  std::vector<pid_t> pids;
  const auto start = std::chrono::steady_clock::now();
  for (int rank = 0; rank < world; ++rank) {
    const std::vector<std::string> ours = {
        "RANK=" + std::to_string(rank), "WORLD_SIZE=" + std::to_string(world),
        "LOCAL_RANK=" + std::to_string(rank), "MASTER_ADDR=127.0.0.1",
        "MASTER_PORT=" + std::to_string(port), "OMP_NUM_THREADS=1"};
    std::vector<std::string> env = ours;
    for (char** e = environ; *e != nullptr; ++e) {  // the rest of this process's environment
      const std::string entry = *e;
      const std::string name = entry.substr(0, entry.find('=') + 1);
      if (std::none_of(ours.begin(), ours.end(),
                       [&](const std::string& v) { return v.rfind(name, 0) == 0; })) {
        env.push_back(entry);
      }
    }
    std::vector<char*> envp;
    for (std::string& v : env) envp.push_back(v.data());
    envp.push_back(nullptr);
    const std::string log = dir + "/rank" + std::to_string(rank) + ".log";
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&files, 1, 2);
    std::string program = CENTERLOSS_GROUP_WORKER, out = dir;
    std::string mode_arg = mode;
    char* argv[] = {program.data(), out.data(), mode_arg.data(), nullptr};
    pid_t pid = 0;
    EXPECT_EQ(posix_spawn(&pid, program.c_str(), &files, nullptr, argv, envp.data()), 0);
    posix_spawn_file_actions_destroy(&files);
    pids.push_back(pid);
  }
  Finished done;
  done.exit_codes.assign(world, -1);
  int running = world;
  while (running > 0 && std::chrono::steady_clock::now() - start < deadline) {
    for (int rank = 0; rank < world; ++rank) {
      int status = 0;
      if (done.exit_codes[rank] == -1 && ::waitpid(pids[rank], &status, WNOHANG) == pids[rank]) {
        done.exit_codes[rank] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        --running;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int rank = 0; rank < world; ++rank) {
    if (done.exit_codes[rank] == -1) {
      ::kill(pids[rank], SIGKILL);
      ::waitpid(pids[rank], nullptr, 0);
    }
  }
  done.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return done;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A fresh directory, removed at the end, with POSIX calls: std::filesystem::remove_all crashed
// in programs linked with the PyPI LibTorch (trainer/src/util/fs.h avoids it too).
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/centerloss_group_XXXXXX";
    path_ = ::mkdtemp(pattern);
  }
  ~TempDir() {
    ::nftw(path_.c_str(), [](const char* p, const struct stat*, int, FTW*) { return ::remove(p); },
           16, FTW_DEPTH | FTW_PHYS);
  }
  std::string str() const { return path_; }

 private:
  std::string path_;
};

// What one rank wrote.
struct RankResults {
  torch::serialize::InputArchive archive;
  torch::Tensor tensor(const std::string& key) {
    torch::Tensor t;
    archive.read(key, t);
    return t;
  }
  std::string text(const std::string& key) {
    c10::IValue v;
    archive.read(key, v);
    return v.toStringRef();
  }
};

// Bitwise equality that counts NaN == NaN (the NaN step's loss and gradient are NaN).
bool same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() &&
         torch::equal(a.contiguous().view(torch::kInt), b.contiguous().view(torch::kInt));
}

#define EXPECT_CONTAINS(haystack, needle)                                           \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos)                  \
      << "'" << (haystack) << "' does not contain '" << (needle) << "'"

// One process fed the ranks' concatenated batches, step by step, from rank 0's initial table;
// each rank's loss and gradient must be those of its own rows on the centers of that moment.
void expect_case_matches_one_process(const GroupCase& c, std::vector<RankResults>& ranks) {
  SCOPED_TRACE(c.name);
  const int world = static_cast<int>(ranks.size());
  const std::string key = c.name + ".";
  const CenterLossOptions& o = c.options;
  torch::Tensor centers = ranks[0].tensor(key + "initial").clone();
  torch::Tensor seen = torch::zeros({kClasses}, torch::kBool);
  CenterLoss one_process(o);  // the module, for the final table
  {
    torch::NoGradGuard no_grad;
    const_cast<torch::Tensor&>(one_process->centers()).copy_(centers);
  }
  if (o.init() == Init::Normal) {  // per-rank seeds: the ranks started apart (so this can fail)
    EXPECT_FALSE(torch::equal(ranks[0].tensor(key + "initial"), ranks[1].tensor(key + "initial")));
  }
  int64_t skipped = 0;
  for (int step = 0; step < kSteps; ++step) {
    std::vector<torch::Tensor> xs, ys;
    for (int r = 0; r < world; ++r) {
      auto [x, y] = group_batch(r, world, step, c.disjoint);
      xs.push_back(x);
      ys.push_back(y);
    }
    const torch::Tensor ux = torch::cat(xs), uy = torch::cat(ys);
    one_process->forward(ux, uy);
    if (o.init() == Init::FirstSight) init_centers_first_sight_(centers, seen, ux, uy);
    for (int r = 0; r < world; ++r) {
      const torch::Tensor x = xs[r].clone().requires_grad_(true);
      const torch::Tensor loss = center_loss(x, ys[r], centers, o.margin(), o.reduction());
      loss.sum().backward();
      const std::string at = " (rank " + std::to_string(r) + ", step " + std::to_string(step) + ")";
      EXPECT_TRUE(same_bits(ranks[r].tensor(key + "loss" + std::to_string(step)), loss)) << at;
      EXPECT_TRUE(same_bits(ranks[r].tensor(key + "grad" + std::to_string(step)), x.grad())) << at;
    }
    if (!update_centers_(centers, ux, uy, o.alpha(), o.update()).item<bool>()) ++skipped;
  }
  EXPECT_EQ(skipped, 1);  // the NaN on rank 1 skipped the step on every rank
  for (int r = 0; r < world; ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    EXPECT_TRUE(torch::equal(ranks[r].tensor(key + "centers"), centers));  // bitwise
    EXPECT_TRUE(torch::equal(ranks[r].tensor(key + "centers"), one_process->centers()));
    EXPECT_EQ(ranks[r].tensor(key + "skipped").item<int64_t>(), skipped);
    const int64_t k0 = r * kClasses / world, k1 = (r + 1) * kClasses / world;
    const torch::Tensor shard = ranks[r].tensor(key + "shard");
    EXPECT_TRUE(torch::equal(shard, c.sharded ? centers.slice(0, k0, k1) : centers));
  }
}

// One rank's bad batch: every rank raised (the bad rank with its reason), nothing changed,
// and the group still worked after.
void expect_bad_batches_raised_everywhere(const GroupCase& c, std::vector<RankResults>& ranks) {
  SCOPED_TRACE(c.name);
  const std::string key = c.name + ".";
  for (int r = 0; r < static_cast<int>(ranks.size()); ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    const std::string label = ranks[r].text(key + "error.label");
    const bool union_sees_label = !c.sharded || r == 0;  // replicated: every union has it
    EXPECT_CONTAINS(label, union_sees_label ? "labels must be in [0, K)" : "rank(s) [0] is invalid");
    EXPECT_CONTAINS(ranks[r].text(key + "error.float_labels"),
                    r == 1 ? "labels must have an integer dtype" : "rank(s) [1] is invalid");
    EXPECT_CONTAINS(ranks[r].text(key + "error.float64_features"), "rank 1: D = 3, float64");
    EXPECT_CONTAINS(ranks[r].text(key + "error.length"),
                    r == 0 ? "features has N = 5 rows but labels has 4 entries"
                           : "rank(s) [0] is invalid");
    for (const char* what : {"label", "float_labels", "float64_features", "length"}) {
      EXPECT_TRUE(ranks[r].tensor(key + "unchanged." + what).item<bool>()) << what;
    }
    EXPECT_TRUE(torch::isfinite(ranks[r].tensor(key + "after_errors")).all().item<bool>());
  }
}

class GroupOfRanks : public ::testing::TestWithParam<int> {};

TEST_P(GroupOfRanks, RanksMatchOneProcessOnTheConcatenatedBatches) {
  const int world = GetParam();
  TempDir dir;
  const Finished done = run_ranks(world, dir.str(), "all", std::chrono::seconds(240));
  for (int r = 0; r < world; ++r) {
    ASSERT_EQ(done.exit_codes[r], 0) << "rank " << r << ":\n"
                                     << read_text(dir.str() + "/rank" + std::to_string(r) + ".log");
  }
  std::vector<RankResults> ranks(world);
  for (int r = 0; r < world; ++r) {
    ranks[r].archive.load_from(dir.str() + "/rank" + std::to_string(r) + ".pt");
  }
  for (const GroupCase& c : group_cases()) {
    expect_case_matches_one_process(c, ranks);
    expect_bad_batches_raised_everywhere(c, ranks);
  }
  torch::manual_seed(30);  // the whole table rank 0 saved: each rank took its rows
  CenterLoss whole(CenterLossOptions(kClasses, kDim).init(Init::Normal));
  for (int r = 0; r < world; ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    EXPECT_CONTAINS(ranks[r].text("files.other_error"), "holds rows [");
    EXPECT_CONTAINS(ranks[r].text("files.other_error"), "load each rank's own shard");
    EXPECT_TRUE(ranks[r].tensor("files.own_equal").item<bool>());
    const int64_t k0 = r * kClasses / world, k1 = (r + 1) * kClasses / world;
    EXPECT_TRUE(torch::equal(ranks[r].tensor("files.whole_rows"), whole->centers().slice(0, k0, k1)));
  }
}

INSTANTIATE_TEST_SUITE_P(ProcessGroup, GroupOfRanks, ::testing::Values(2, 3),
                         [](const auto& info) { return std::to_string(info.param) + "_ranks"; });

TEST(ProcessGroup, AKilledRankEndsTheOthersWithAnError) {
  TempDir dir;
  const Finished done = run_ranks(3, dir.str(), "die", std::chrono::seconds(120));
  EXPECT_EQ(done.exit_codes[1], 3);  // the rank that died
  for (int r : {0, 2}) {
    const std::string log = read_text(dir.str() + "/rank" + std::to_string(r) + ".log");
    EXPECT_EQ(done.exit_codes[r], 1) << "rank " << r << " did not fail cleanly:\n" << log;
    EXPECT_CONTAINS(log, "CenterLoss: the process group's");
  }
  EXPECT_LT(done.seconds, 60.0);  // bounded by the group's timeout (10 s), never a hang
}

TEST(ProcessGroup, ShardingNeedsAGroupAStepRuleAndAClassPerRank) {
  EXPECT_THROW(CenterLoss(CenterLossOptions(4, 2).shard_centers(true)), c10::Error);
  auto one = process_group_from_env(Launch{});  // a group of one rank, in this process
  try {
    CenterLoss(CenterLossOptions(4, 2).process_group(one).shard_centers(true).update(
        UpdateRule::Gradient));
    FAIL() << "shard_centers with the gradient rule was accepted";
  } catch (const c10::Error& e) {
    EXPECT_CONTAINS(e.what(), "shard_centers takes update rules paper and mean");
  }
  CenterLoss sharded(CenterLossOptions(4, 2).process_group(one).shard_centers(true));
  EXPECT_EQ(sharded->centers().sizes(), (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(sharded->shard_begin(), 0);
  EXPECT_EQ(sharded->shard_end(), 4);
}

TEST(ProcessGroup, LaunchVariablesAreCheckedByName) {
  ::setenv("WORLD_SIZE", "2", 1);
  ::setenv("RANK", "2", 1);
  try {
    launch_from_env();
    FAIL() << "RANK=2 of WORLD_SIZE=2 was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_CONTAINS(e.what(), "RANK='2' is not an integer in [0, 1]");
  }
  ::setenv("RANK", "1", 1);
  ::unsetenv("MASTER_ADDR");
  try {
    launch_from_env();
    FAIL() << "WORLD_SIZE=2 without MASTER_ADDR was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_CONTAINS(e.what(), "needs MASTER_ADDR and MASTER_PORT");
  }
  ::unsetenv("WORLD_SIZE");
  ::unsetenv("RANK");
  try {
    ProcessGroupOptions options;
    options.backend = "mpi";
    process_group_from_env(Launch{}, options);
    FAIL() << "backend mpi was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_CONTAINS(e.what(), "backend must be \"gloo\" or \"nccl\"");
  }
}

}  // namespace
