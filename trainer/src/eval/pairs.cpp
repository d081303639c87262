#include "eval/pairs.h"

namespace centerloss::eval {

std::vector<bool> pair_same(const std::vector<Pair>& pairs) {
  std::vector<bool> same;
  same.reserve(pairs.size());
  for (const Pair& p : pairs) same.push_back(p.same);
  return same;
}

std::vector<int> pair_fold(const std::vector<Pair>& pairs) {
  std::vector<int> fold;
  fold.reserve(pairs.size());
  for (const Pair& p : pairs) fold.push_back(p.fold);
  return fold;
}

}  // namespace centerloss::eval
