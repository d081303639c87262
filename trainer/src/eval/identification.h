// Open-set identification: rank-1 accuracy of a gallery/probe split.
//
// For each class, `gallery_per_class` of its samples (chosen by a seeded shuffle of the class's
// samples, so the split is deterministic) form the gallery; all its other samples are probes.
// A probe is identified correctly when its most similar gallery sample (cosine similarity or
// negative Euclidean distance; ties go to the lower gallery index) has the probe's class.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "eval/similarity.h"

namespace centerloss::eval {

struct GalleryProbeSplit {
  std::vector<int64_t> gallery;  // sample indices, ordered by class then draw
  std::vector<int64_t> probes;   // sample indices in data-set order
};

// labels[i] of sample i; only samples whose class is in `classes` take part (empty: all).
// Throws std::invalid_argument when gallery_per_class < 1 or a class has no sample left over
// for the probes.
GalleryProbeSplit split_gallery_probe(const std::vector<int64_t>& labels,
                                      const std::vector<int64_t>& classes,
                                      int64_t gallery_per_class, uint64_t seed);

struct Rank1Result {
  double accuracy = 0.0;
  int64_t probes = 0;
  int64_t gallery = 0;
  int64_t classes = 0;
};

// features: [N, D] floating (any device); labels as above.
Rank1Result rank1_identification(const torch::Tensor& features, const std::vector<int64_t>& labels,
                                 const GalleryProbeSplit& split, Similarity similarity);

}  // namespace centerloss::eval
