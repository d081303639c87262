// Sharded vs replicated center tables over a process group: per-rank memory and step time.
// One process per rank, started by torchrun (docs/benchmarks.md, "Sharded center tables"):
//
//   torchrun --nproc-per-node 2 --no-python build/bench/bench_group_step --json FILE
//
// For each K, both modules live side by side on every rank (the replicated one with its whole
// K x D table, the sharded one with K / W rows) and their steps alternate (A B A B ...), so
// machine load hits both alike. A step = the module's training forward (loss, and the center
// step with the union of the ranks' batches) + backward to the features. Memory per rank: the
// table's bytes, the resident memory the module's construction added (RSS before and after,
// /proc/self/statm), and the peak resident memory a step adds on top (VmHWM, reset through
// /proc/self/clear_refs before the step). Checks first that both give the same loss. Rank 0
// gathers every rank's numbers, prints a table and writes the JSON.
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "centerloss/center_loss.h"
#include "centerloss/process_group.h"
#include "util/progress.h"

namespace {

using centerloss::CenterLoss;
using centerloss::CenterLossOptions;

int64_t page_bytes() { return static_cast<int64_t>(sysconf(_SC_PAGESIZE)); }

int64_t resident_bytes() {  // current RSS
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * page_bytes();
}

int64_t peak_resident_bytes() {  // VmHWM
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

void reset_peak_resident() { std::ofstream("/proc/self/clear_refs") << "5"; }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

std::string cpu_model() {
  std::ifstream info("/proc/cpuinfo");
  std::string line;
  while (std::getline(info, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

std::string git_commit() {
  std::string out;
  if (FILE* pipe = popen("git rev-parse HEAD 2>/dev/null", "r")) {
    char buffer[64] = {};
    if (fgets(buffer, sizeof(buffer), pipe) != nullptr) out = buffer;
    pclose(pipe);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

struct Batch {
  torch::Tensor x, y;
};

// The numbers of one module on one rank.
struct Measured {
  int64_t table_bytes = 0, construction_rss = 0, step_peak_rss = 0;
  std::vector<double> seconds;
};

double step(CenterLoss& m, const Batch& b) {
  const auto t0 = std::chrono::steady_clock::now();
  const torch::Tensor x = b.x.detach().requires_grad_(true);
  m->forward(x, b.y).backward();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Every rank's values of `mine`, in rank order (rank 0 collects them for the report).
std::vector<std::vector<double>> gather(const centerloss::ProcessGroupPtr& group,
                                        const std::vector<double>& mine) {
  std::vector<at::Tensor> input{torch::tensor(mine, torch::kDouble)};
  std::vector<std::vector<at::Tensor>> output(1);
  for (int r = 0; r < group->getSize(); ++r) output[0].push_back(torch::empty_like(input[0]));
  group->allgather(output, input)->wait();
  std::vector<std::vector<double>> all;
  for (const auto& t : output[0]) all.emplace_back(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Per-rank memory and step time of sharded vs replicated center tables"};
  std::vector<int64_t> classes{100000, 1000000};
  int64_t batch = 512, dim = 512, steps = 100, warmup = 5, threads = 1, batches = 8;
  std::string json_path;
  app.add_option("--classes", classes, "K values")->capture_default_str();
  app.add_option("--batch", batch, "N per rank")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--feature-dim", dim, "D")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "timed steps of each module")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps of each first")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads per rank")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--label-batches", batches, "batches cycled through")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--json", json_path, "write the results here (rank 0)");
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(static_cast<int>(threads));

  const auto group = centerloss::process_group_from_env();
  const int rank = group->getRank(), world = group->getSize();
  const bool main = rank == 0;
  const double load_start = [] { double l[1] = {0}; getloadavg(l, 1); return l[0]; }();
  nlohmann::json results = nlohmann::json::array();
  for (const int64_t k : classes) {
    torch::manual_seed(rank);
    std::vector<Batch> data;
    for (int64_t i = 0; i < batches; ++i) {
      data.push_back({torch::randn({batch, dim}), torch::randint(k, {batch}, torch::kLong)});
    }
    auto options = CenterLossOptions(k, dim).process_group(group);
    Measured rep, sha;
    int64_t before = resident_bytes();
    CenterLoss replicated(options);
    rep.construction_rss = resident_bytes() - before;
    before = resident_bytes();
    CenterLoss sharded(CenterLossOptions(options).shard_centers(true));
    sha.construction_rss = resident_bytes() - before;
    rep.table_bytes = replicated->centers().nbytes();
    sha.table_bytes = sharded->centers().nbytes();
    {  // same centers (zeros), same batches: the same loss, or the comparison means nothing
      torch::NoGradGuard no_grad;
      const at::Tensor a = replicated->forward(data[0].x, data[0].y);
      const at::Tensor b = sharded->forward(data[0].x, data[0].y);
      TORCH_CHECK(torch::equal(a, b), "sharded and replicated losses differ: ", a, " vs ", b);
    }
    for (auto* m : {&rep, &sha}) {  // the peak a step adds above the module's resident state
      CenterLoss& module = m == &rep ? replicated : sharded;
      reset_peak_resident();
      const int64_t base = resident_bytes();
      step(module, data[1]);
      m->step_peak_rss = std::max<int64_t>(0, peak_resident_bytes() - base);
    }
    for (int64_t i = 0; i < warmup; ++i) {
      step(replicated, data[i % batches]);
      step(sharded, data[i % batches]);
    }
    centerloss::trainer::ProgressBar bar(fmt::format("K={} steps", k), steps, main);
    for (int64_t i = 0; i < steps; ++i) {
      rep.seconds.push_back(step(replicated, data[i % batches]));
      sha.seconds.push_back(step(sharded, data[i % batches]));
      bar.update(i + 1, [&] {
        return fmt::format("replicated {:.1f} ms, sharded {:.1f} ms", rep.seconds.back() * 1e3,
                           sha.seconds.back() * 1e3);
      });
    }
    bar.finish("");
    for (auto* m : {&rep, &sha}) {
      const auto all = gather(group, {static_cast<double>(m->table_bytes),
                                      static_cast<double>(m->construction_rss),
                                      static_cast<double>(m->step_peak_rss), median(m->seconds)});
      nlohmann::json per_rank = nlohmann::json::array();
      for (int r = 0; r < world; ++r) {
        per_rank.push_back({{"rank", r}, {"table_bytes", all[r][0]}, {"construction_rss_bytes", all[r][1]},
                            {"step_peak_rss_bytes", all[r][2]}, {"median_step_s", all[r][3]}});
      }
      results.push_back({{"classes", k}, {"table", m == &rep ? "replicated" : "sharded"},
                         {"ranks", per_rank}});
    }
  }
  double load_end[1] = {0};
  getloadavg(load_end, 1);
  if (main) {
    fmt::print("| K | table | table / rank | RSS added by the module / rank | step peak above it / rank | step (median, ms) |\n"
               "|---|---|---|---|---|---|\n");
    const auto mib = [](double b) { return fmt::format("{:.1f} MiB", b / (1 << 20)); };
    for (const auto& r : results) {
      std::string table, rss, peak, ms;
      for (const auto& p : r["ranks"]) {
        const std::string sep = table.empty() ? "" : ", ";
        table += sep + mib(p["table_bytes"]);
        rss += sep + mib(p["construction_rss_bytes"]);
        peak += sep + mib(p["step_peak_rss_bytes"]);
        ms += sep + fmt::format("{:.1f}", 1e3 * p["median_step_s"].get<double>());
      }
      fmt::print("| {} | {} | {} | {} | {} | {} |\n", r["classes"].get<int64_t>(),
                 r["table"].get<std::string>(), table, rss, peak, ms);
    }
    if (!json_path.empty()) {
      const nlohmann::json out = {
          {"machine", {{"cpu", cpu_model()}, {"cores", std::thread::hardware_concurrency()},
                       {"load_average_start", load_start}, {"load_average_end", load_end[0]}}},
          {"torch", TORCH_VERSION}, {"commit", git_commit()}, {"world_size", world},
          {"threads_per_rank", threads}, {"batch_per_rank", batch}, {"feature_dim", dim},
          {"steps", steps}, {"results", results}};
      std::ofstream(json_path) << out.dump(1) << "\n";
    }
  }
  group->barrier()->wait();
  return 0;
}
