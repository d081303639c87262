// Pair lists written inline in a test: the text read as the file `name` (error messages cite it).
#pragma once

#include <sstream>
#include <string>

#include "eval/lfw_pairs.h"

inline centerloss::eval::PairList parse_pairs(const std::string& text,
                                              const std::string& name = "pairs.txt") {
  std::istringstream in(text);
  return centerloss::eval::read_lfw_pairs(in, name);
}
