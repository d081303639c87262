#include "eval/lfw_pairs.h"

#include <charconv>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>

namespace centerloss::eval {

namespace {

std::vector<std::string> split_fields(const std::string& line) {
  std::istringstream ss(line);
  std::vector<std::string> fields;
  for (std::string f; ss >> f;) fields.push_back(f);
  return fields;
}

[[noreturn]] void fail(const std::string& source, int line, const std::string& what) {
  throw std::runtime_error(source + ":" + std::to_string(line) + ": " + what);
}

// A positive integer that fills the whole field ("3", not "3a", "-1" or "0").
int64_t parse_positive(const std::string& field, const std::string& source, int line,
                       const char* what) {
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (ec != std::errc() || end != field.data() + field.size() || value < 1) {
    fail(source, line, std::string(what) + " must be a positive integer, got '" + field + "'");
  }
  return value;
}

// The next line with fields; returns false at the end of the input.
bool next_fields(std::istream& in, int& line_no, std::vector<std::string>& fields) {
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    fields = split_fields(line);  // spaces, tabs and a trailing '\r' all separate fields
    if (!fields.empty()) return true;
  }
  return false;
}

}  // namespace

PairList read_lfw_pairs(std::istream& in, const std::string& source) {
  PairList list;
  list.source = source;
  int line_no = 0;
  std::vector<std::string> f;
  if (!next_fields(in, line_no, f)) fail(source, 1, "empty file, expected a header line");
  if (f.size() == 1) {
    list.sets = 1;
    list.pairs_per_set = parse_positive(f[0], source, line_no, "pairs per set");
  } else if (f.size() == 2) {
    const int64_t sets = parse_positive(f[0], source, line_no, "number of sets");
    if (sets > std::numeric_limits<int>::max()) {  // (it used to wrap: 2^32 + 1 read as 1 set)
      fail(source, line_no, "number of sets " + f[0] + " is too large");
    }
    list.sets = static_cast<int>(sets);
    list.pairs_per_set = parse_positive(f[1], source, line_no, "pairs per set");
  } else {
    fail(source, line_no, "header must be '<sets> <pairs_per_set>' or '<pairs_per_set>'");
  }
  for (int set = 0; set < list.sets; ++set) {
    for (int block = 0; block < 2; ++block) {
      const bool same = block == 0;
      for (int64_t k = 0; k < list.pairs_per_set; ++k) {
        if (!next_fields(in, line_no, f)) {
          fail(source, line_no + 1,
               "file ends early: set " + std::to_string(set + 1) + " needs " +
                   std::to_string(list.pairs_per_set) + (same ? " genuine" : " impostor") +
                   " pairs, found " + std::to_string(k));
        }
        PairEntry e;
        e.same = same;
        e.fold = set;
        e.line = line_no;
        if (same) {
          if (f.size() != 3) {
            fail(source, line_no,
                 "expected a genuine pair '<name> <n1> <n2>', got " + std::to_string(f.size()) +
                     " fields");
          }
          e.name_a = e.name_b = f[0];
          e.image_a = parse_positive(f[1], source, line_no, "image number");
          e.image_b = parse_positive(f[2], source, line_no, "image number");
        } else {
          if (f.size() != 4) {
            fail(source, line_no,
                 "expected an impostor pair '<name1> <n1> <name2> <n2>', got " +
                     std::to_string(f.size()) + " fields");
          }
          e.name_a = f[0];
          e.image_a = parse_positive(f[1], source, line_no, "image number");
          e.name_b = f[2];
          e.image_b = parse_positive(f[3], source, line_no, "image number");
        }
        list.entries.push_back(std::move(e));
      }
    }
  }
  if (next_fields(in, line_no, f)) {
    fail(
        source, line_no,
        "unexpected line after the " + std::to_string(list.sets) + " sets announced by the header");
  }
  return list;
}

PairList read_lfw_pairs_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open pairs file '" + path + "'");
  return read_lfw_pairs(in, path);
}

std::vector<std::string> read_class_names_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open class names file '" + path + "'");
  std::vector<std::string> names;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    const auto f = split_fields(line);
    if (f.size() != 1) {
      fail(path, line_no,
           "expected exactly one class name (no spaces), got " + std::to_string(f.size()) +
               " fields");
    }
    names.push_back(f[0]);
  }
  return names;
}

std::vector<Pair> resolve_pairs(const PairList& list, const std::vector<int64_t>& labels,
                                const std::vector<std::string>& class_names) {
  std::map<int64_t, std::vector<int64_t>> members;  // class -> sample indices in data-set order
  for (size_t i = 0; i < labels.size(); ++i) members[labels[i]].push_back(static_cast<int64_t>(i));
  std::map<std::string, int64_t> by_name;
  for (size_t c = 0; c < class_names.size(); ++c) {
    if (!by_name.emplace(class_names[c], static_cast<int64_t>(c)).second) {
      throw std::runtime_error("class names: '" + class_names[c] + "' appears twice");
    }
  }
  auto sample = [&](const std::string& name, int64_t image, int line) {
    int64_t cls = -1;
    if (!class_names.empty()) {
      const auto it = by_name.find(name);
      if (it == by_name.end()) fail(list.source, line, "unknown class name '" + name + "'");
      cls = it->second;
    } else {
      const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), cls);
      if (ec != std::errc() || end != name.data() + name.size() || cls < 0) {
        fail(list.source, line, "'" + name + "' is not a class number (give a class names file)");
      }
    }
    const auto it = members.find(cls);
    const int64_t count = it == members.end() ? 0 : static_cast<int64_t>(it->second.size());
    if (image > count) {
      fail(list.source, line,
           "image " + std::to_string(image) + " of '" + name + "' (class " + std::to_string(cls) +
               ") does not exist: the class has " + std::to_string(count) + " samples");
    }
    return it->second[static_cast<size_t>(image - 1)];
  };
  std::vector<Pair> pairs;
  pairs.reserve(list.entries.size());
  for (const PairEntry& e : list.entries) {
    const int64_t a = sample(e.name_a, e.image_a, e.line);
    const int64_t b = sample(e.name_b, e.image_b, e.line);
    if (!e.same && labels[a] == labels[b]) {
      fail(list.source, e.line,
           "impostor pair '" + e.name_a + "' / '" + e.name_b + "' resolves to one class (" +
               std::to_string(labels[a]) + ")");
    }
    pairs.push_back({a, b, e.same, e.fold});
  }
  return pairs;
}

}  // namespace centerloss::eval
