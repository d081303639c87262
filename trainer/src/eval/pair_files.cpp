#include "eval/pair_files.h"

#include <fmt/format.h>

#include <map>
#include <stdexcept>

#include "data/image_folder.h"
#include "util/fs.h"

namespace centerloss::eval {
namespace {

// "DIR/Aaron_Peirsol/Aaron_Peirsol_0002.jpg" -> "Aaron_Peirsol/Aaron_Peirsol_0002"
std::string image_key(const std::string& path) {
  const std::string name = trainer::base_name(path);
  const size_t dot = name.rfind('.');
  return trainer::base_name(trainer::parent_dir(path)) + "/" + name.substr(0, dot);
}

}  // namespace

std::vector<Pair> resolve_pairs_to_files(const PairList& list, const std::string& dir,
                                         const std::vector<std::string>& files,
                                         const std::vector<int64_t>& labels) {
  constexpr int64_t kTwice = -1;
  std::map<std::string, int64_t> by_key;
  for (size_t i = 0; i < files.size(); ++i) {
    const auto [it, fresh] = by_key.emplace(image_key(files[i]), static_cast<int64_t>(i));
    if (!fresh) it->second = kTwice;
  }
  auto sample = [&](const std::string& name, int64_t n, int line) {
    const std::string key = fmt::format("{}/{}_{:04d}", name, name, n);
    const auto it = by_key.find(key);
    if (it == by_key.end()) {
      throw std::runtime_error(fmt::format("{}:{}: no image {}.* ({}) in the folder", list.source,
                                           line, trainer::path_join(dir, key),
                                           trainer::kImageExtensions));
    }
    if (it->second == kTwice) {
      throw std::runtime_error(fmt::format("{}:{}: {} exists with two extensions; keep one",
                                           list.source, line, trainer::path_join(dir, key)));
    }
    return it->second;
  };
  std::vector<Pair> pairs;
  pairs.reserve(list.entries.size());
  for (const PairEntry& e : list.entries) {
    const int64_t a = sample(e.name_a, e.image_a, e.line);
    const int64_t b = sample(e.name_b, e.image_b, e.line);
    if (!e.same && labels[static_cast<size_t>(a)] == labels[static_cast<size_t>(b)]) {
      throw std::runtime_error(fmt::format("{}:{}: impostor pair '{}' / '{}' is one class",
                                           list.source, e.line, e.name_a, e.name_b));
    }
    pairs.push_back({a, b, e.same, e.fold});
  }
  return pairs;
}

}  // namespace centerloss::eval
