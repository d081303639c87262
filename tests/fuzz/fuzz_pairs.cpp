// The pair-list readers of `centerloss openset --pairs/--class-names` (eval/lfw_pairs.h) on any
// bytes, then their mapping onto a small labelled data set. Each either throws
// std::runtime_error or gives what its header promises: the announced number of sets and pairs,
// and pairs of valid sample indices that share a class exactly when they are genuine.
#include <charconv>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "eval/lfw_pairs.h"
#include "fuzz_memfile.h"
#include "fuzz_target.h"

using namespace centerloss::eval;

CENTERLOSS_FUZZ_TARGET(pairs) {
  if (size < 1) return 0;
  // First byte: 0 = the pairs reader alone; 1 = a names file, then (after a NUL) pairs by name.
  const bool with_names = data[0] % 2 == 1;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string> names;
  if (with_names) {
    const size_t split = text.find('\0');
    const std::string names_text = text.substr(0, split);
    text = split == std::string::npos ? std::string() : text.substr(split + 1);
    MemFile file(names_text.data(), names_text.size());
    try {
      names = read_class_names_file(file.path());
    } catch (const std::runtime_error&) {
      return 0;
    }
    for (const auto& name : names) {
      FUZZ_CHECK(!name.empty() && name.find_first_of(" \t\r\n") == std::string::npos,
                 "a class name with white space: '%s'", name.c_str());
    }
  }
  std::istringstream in(text);
  PairList list;
  try {
    list = read_lfw_pairs(in, "fuzz");
  } catch (const std::runtime_error& e) {
    FUZZ_CHECK(std::string(e.what()).rfind("fuzz:", 0) == 0, "message does not name the input: %s",
               e.what());
    return 0;
  }
  FUZZ_CHECK(list.sets >= 1 && list.pairs_per_set >= 1, "accepted %d sets of %lld pairs", list.sets,
             static_cast<long long>(list.pairs_per_set));
  {  // the header's own numbers, read again: "<sets> <pairs>" or "<pairs>"
    std::istringstream again(text);
    std::string line, first, second;
    while (std::getline(again, line) && !(std::istringstream(line) >> first)) {
    }
    std::istringstream(line) >> first >> second;
    int64_t announced = 1;
    if (!second.empty()) std::from_chars(first.data(), first.data() + first.size(), announced);
    FUZZ_CHECK(announced == list.sets, "the header announces %s sets, read as %d", first.c_str(), list.sets);
  }
  FUZZ_CHECK(static_cast<int64_t>(list.entries.size()) == 2 * list.sets * list.pairs_per_set,
             "%zu entries for %d sets of %lld pairs", list.entries.size(), list.sets,
             static_cast<long long>(list.pairs_per_set));
  for (const auto& e : list.entries) {
    FUZZ_CHECK(e.image_a >= 1 && e.image_b >= 1 && e.fold >= 0 && e.fold < list.sets, "bad entry");
  }
  // A data set of 4 classes (0..3) with 1, 2, 3 and 5 samples, interleaved.
  const std::vector<int64_t> labels = {3, 0, 1, 3, 2, 1, 3, 2, 3, 2, 3};
  std::vector<Pair> pairs;
  try {
    pairs = resolve_pairs(list, labels, names);
  } catch (const std::runtime_error&) {
    return 0;
  }
  FUZZ_CHECK(pairs.size() == list.entries.size(), "lost pairs");
  for (const auto& p : pairs) {
    const auto n = static_cast<int64_t>(labels.size());
    FUZZ_CHECK(p.a >= 0 && p.a < n && p.b >= 0 && p.b < n, "index out of range");
    FUZZ_CHECK((labels[p.a] == labels[p.b]) == p.same, "a %s pair of classes %lld and %lld",
               p.same ? "genuine" : "impostor", static_cast<long long>(labels[p.a]),
               static_cast<long long>(labels[p.b]));
  }
  return 0;
}
