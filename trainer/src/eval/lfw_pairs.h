// Reader for pair lists in the LFW `pairs.txt` layout, and their mapping onto a data set.
//
// Layout (fields separated by spaces or tabs; blank lines are ignored):
//   line 1:  "<sets> <pairs_per_set>"   (or just "<pairs_per_set>", meaning one set, as in
//            LFW's pairsDevTrain.txt)
//   then, for each set: <pairs_per_set> genuine lines   "<name> <n1> <n2>"
//                       <pairs_per_set> impostor lines  "<name1> <n1> <name2> <n2>"
// Image numbers n are 1-based, as in LFW (Aaron_Peirsol 1 2 = his first and second image).
// Each set becomes one cross-validation fold. Malformed input (wrong field count, a number
// that is not a positive integer, a genuine line in an impostor block or the reverse, missing
// or extra lines) throws std::runtime_error naming the line.
//
// Mapping onto a data set in IDX layout (which has labels but no names), resolve_pairs():
//   name  -> class: the class whose name is `name` in `class_names` (line i of a names file is
//            the name of class i); without class names, `name` must be the class number itself.
//   n     -> sample: the n-th sample of that class, counting in data-set order from 1.
// So "7 1 2" is a genuine pair of the first and second samples of class 7, and
// "Sandal 3 Bag 10" with names from a names file an impostor pair.
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "eval/pairs.h"

namespace centerloss::eval {

struct PairEntry {
  std::string name_a;
  int64_t image_a = 0;  // 1-based image number within name_a
  std::string name_b;   // equal to name_a for genuine pairs
  int64_t image_b = 0;
  bool same = false;
  int fold = 0;
  int line = 0;  // 1-based line in the file, for error messages
};

struct PairList {
  std::string source;  // where it was read from, for error messages
  int sets = 0;
  int64_t pairs_per_set = 0;
  std::vector<PairEntry> entries;
};

// `source` names the input in error messages.
PairList read_lfw_pairs(std::istream& in, const std::string& source = "pairs");
PairList read_lfw_pairs_file(const std::string& path);  // throws if the file cannot be opened

// One name per line, line i (from 0) naming class i; blank lines are not allowed.
std::vector<std::string> read_class_names_file(const std::string& path);

// Maps entries onto sample indices of a data set with these labels (see the header comment).
// Throws std::runtime_error naming the line for an unknown name, an image number beyond the
// class's sample count, or an impostor line whose two names resolve to the same class.
std::vector<Pair> resolve_pairs(const PairList& list, const std::vector<int64_t>& labels,
                                const std::vector<std::string>& class_names = {});

}  // namespace centerloss::eval
