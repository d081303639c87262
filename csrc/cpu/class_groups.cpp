#include "class_groups.h"

#include <algorithm>

namespace centerloss::kernels::cpu {

// K <= 2N: a counting sort over the class ids (an O(K) = O(N) count array).
namespace {

ClassGroups group_by_class_dense(const int64_t* y, int64_t n, int64_t num_classes) {
  std::vector<int64_t> cursor(static_cast<size_t>(num_classes), 0);
  for (int64_t i = 0; i < n; ++i) ++cursor[y[i]];
  ClassGroups g;
  g.group_start.reserve(static_cast<size_t>(std::min(n, num_classes)) + 1);
  g.group_start.push_back(0);
  for (int64_t j = 0; j < num_classes; ++j) {
    if (cursor[j] == 0) continue;
    const int64_t count = cursor[j];
    cursor[j] = g.group_start.back();
    g.group_start.push_back(cursor[j] + count);
  }
  g.order.resize(n);
  for (int64_t i = 0; i < n; ++i) g.order[cursor[y[i]]++] = i;
  return g;
}

// K > 2N: a least-significant-digit radix sort of (label, position) over the bits that K - 1
// needs. Each pass is stable, so a class keeps its rows in batch order; groups come out in class
// order. O(N + 2^bits) per pass whatever K is, with sequential reads (a hash table lost to it:
// branch misses on its probes). Digits of about log2(N) bits, at most 11, split evenly over
// the passes: a small batch does not clear and scan 2048 buckets per pass.
ClassGroups group_by_class_sparse(const int64_t* y, int64_t n, int64_t num_classes) {
  const int label_bits = 64 - __builtin_clzll(static_cast<uint64_t>(num_classes - 1));
  const int batch_bits = 64 - __builtin_clzll(static_cast<uint64_t>(std::max<int64_t>(n, 1)));
  const int widest = std::clamp(batch_bits, 4, 11);
  const int passes = (label_bits + widest - 1) / widest;
  const int radix_bits = (label_bits + passes - 1) / passes;
  const uint64_t digit_mask = (uint64_t(1) << radix_bits) - 1;
  std::vector<uint64_t> key(y, y + n), key_out(n);
  std::vector<int64_t> pos(n), pos_out(n);
  for (int64_t i = 0; i < n; ++i) pos[i] = i;
  std::vector<int64_t> start(digit_mask + 2);
  for (int shift = 0; shift < label_bits; shift += radix_bits) {
    std::fill(start.begin(), start.end(), 0);
    for (int64_t i = 0; i < n; ++i) ++start[((key[i] >> shift) & digit_mask) + 1];
    for (size_t d = 1; d < start.size(); ++d) start[d] += start[d - 1];
    for (int64_t i = 0; i < n; ++i) {
      const int64_t to = start[(key[i] >> shift) & digit_mask]++;
      key_out[to] = key[i];
      pos_out[to] = pos[i];
    }
    key.swap(key_out);
    pos.swap(pos_out);
  }
  ClassGroups g;
  g.group_start.reserve(static_cast<size_t>(n) + 1);
  g.group_start.push_back(0);
  for (int64_t i = 1; i < n; ++i) {
    if (key[i] != key[i - 1]) g.group_start.push_back(i);
  }
  g.group_start.push_back(n);
  g.order = std::move(pos);
  return g;
}

}  // namespace

ClassGroups group_by_class(const int64_t* y, int64_t n, int64_t num_classes) {
  if (num_classes <= 2 * n) return group_by_class_dense(y, n, num_classes);
  return group_by_class_sparse(y, n, num_classes);
}

}  // namespace centerloss::kernels::cpu
