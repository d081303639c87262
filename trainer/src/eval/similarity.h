// Pair scores from features: cosine similarity or negative Euclidean distance, optionally on
// L2-normalised features.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "eval/pairs.h"
#include "util/enum_names.h"

namespace centerloss::eval {

enum class Similarity {
  Cosine,     // <a, b> / (|a| |b|); a zero vector gets similarity 0
  Euclidean,  // -|a - b|: higher is more similar, like cosine
};
inline constexpr trainer::EnumNames<Similarity, 2> kSimilarityNames{
    {{Similarity::Cosine, "cosine"}, {Similarity::Euclidean, "euclidean"}}};
inline Similarity parse_similarity(const std::string& name) {
  return trainer::parse_enum(kSimilarityNames, name, "--similarity");
}
inline std::string to_string(Similarity s) { return trainer::enum_name(kSimilarityNames, s); }

// Rows divided by their L2 norm (rows of norm 0 stay 0). features: [N, D] floating.
torch::Tensor l2_normalize(const torch::Tensor& features);

// scores[i] = similarity(features[pairs[i].a], features[pairs[i].b]), computed in float64.
// features: [N, D] floating, any device (copied to the CPU). Throws std::invalid_argument for
// a pair index outside [0, N) or features that are not 2-D.
std::vector<double> pair_scores(const torch::Tensor& features, const std::vector<Pair>& pairs,
                                Similarity similarity);

}  // namespace centerloss::eval
