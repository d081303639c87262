#include "eval/identification.h"
#include "eval/random.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>

namespace centerloss::eval {

GalleryProbeSplit split_gallery_probe(const std::vector<int64_t>& labels,
                                      const std::vector<int64_t>& classes,
                                      int64_t gallery_per_class, uint64_t seed) {
  if (gallery_per_class < 1) {
    throw std::invalid_argument("gallery_per_class must be >= 1, got " +
                                std::to_string(gallery_per_class));
  }
  const std::set<int64_t> wanted(classes.begin(), classes.end());
  std::map<int64_t, std::vector<int64_t>> members;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (wanted.empty() || wanted.count(labels[i])) members[labels[i]].push_back(int64_t(i));
  }
  for (int64_t c : wanted) {
    if (!members.count(c)) {
      throw std::invalid_argument("classes: class " + std::to_string(c) + " has no samples");
    }
  }
  std::mt19937_64 rng(seed);
  std::set<int64_t> in_gallery;
  GalleryProbeSplit split;
  for (auto& [cls, idx] : members) {
    if (static_cast<int64_t>(idx.size()) <= gallery_per_class) {
      throw std::invalid_argument("class " + std::to_string(cls) + " has " +
                                  std::to_string(idx.size()) + " samples: needs more than " +
                                  "gallery_per_class = " + std::to_string(gallery_per_class));
    }
    // Partial Fisher-Yates with a portable bounded draw.
    for (int64_t k = 0; k < gallery_per_class; ++k) {
      const uint64_t range = idx.size() - static_cast<uint64_t>(k);
      std::swap(idx[k], idx[k + static_cast<int64_t>(uniform_below(rng, range))]);
      split.gallery.push_back(idx[k]);
      in_gallery.insert(idx[k]);
    }
  }
  for (const auto& [cls, idx] : members) {
    (void)cls;
    for (int64_t i : idx) {
      if (!in_gallery.count(i)) split.probes.push_back(i);
    }
  }
  std::sort(split.probes.begin(), split.probes.end());
  return split;
}

Rank1Result rank1_identification(const torch::Tensor& features, const std::vector<int64_t>& labels,
                                 const GalleryProbeSplit& split, Similarity similarity) {
  if (features.dim() != 2 || !features.is_floating_point()) {
    throw std::invalid_argument("features must be a 2-D floating tensor [N, D]");
  }
  if (static_cast<int64_t>(labels.size()) != features.size(0)) {
    throw std::invalid_argument("labels must have one entry per feature row");
  }
  if (split.gallery.empty() || split.probes.empty()) {
    throw std::invalid_argument("split needs a non-empty gallery and probe set");
  }
  auto x = features.to(torch::kCPU, torch::kFloat64);
  if (similarity == Similarity::Cosine) x = l2_normalize(x);
  const auto gallery = x.index_select(0, torch::tensor(split.gallery, torch::kInt64));
  std::vector<int64_t> gallery_labels;
  std::set<int64_t> class_set;
  for (int64_t g : split.gallery) {
    gallery_labels.push_back(labels[g]);
    class_set.insert(labels[g]);
  }
  int64_t correct = 0;
  constexpr int64_t kChunk = 1024;  // bounds the [chunk, gallery] score matrix
  const int64_t num_probes = static_cast<int64_t>(split.probes.size());
  for (int64_t start = 0; start < num_probes; start += kChunk) {
    const int64_t end = std::min(start + kChunk, num_probes);
    const std::vector<int64_t> chunk(split.probes.begin() + start, split.probes.begin() + end);
    const auto probes = x.index_select(0, torch::tensor(chunk, torch::kInt64));
    const auto scores = similarity == Similarity::Cosine
                            ? probes.matmul(gallery.t())
                            : -torch::cdist(probes, gallery, 2.0, /*no matmul form*/ 2);
    // argmax returns the first maximum: ties go to the lower gallery index.
    const auto best = scores.argmax(1).contiguous();
    const int64_t* b = best.data_ptr<int64_t>();
    for (int64_t k = 0; k < end - start; ++k) {
      if (gallery_labels[b[k]] == labels[chunk[k]]) ++correct;
    }
  }
  Rank1Result r;
  r.probes = num_probes;
  r.gallery = static_cast<int64_t>(split.gallery.size());
  r.classes = static_cast<int64_t>(class_set.size());
  r.accuracy = static_cast<double>(correct) / static_cast<double>(num_probes);
  return r;
}

}  // namespace centerloss::eval
