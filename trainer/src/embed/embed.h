// Features of a data set through a trained network, and closed-set accuracy.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "data/dataset.h"
#include "model/net.h"

namespace centerloss::trainer {

struct Embedding {
  torch::Tensor features;  // [N, D] float32
  torch::Tensor labels;    // [N] int64, the data set's own class ids (as in Dataset::labels)
  torch::Tensor logits;    // [N, K] float32 (K = the model's classes)
};

// Runs `model` in eval mode without autograd over `data` in batches (the model is left in eval
// mode). Deterministic on CPU.
Embedding embed(FeatureNet& model, const Dataset& data, int64_t batch_size = 1000);

struct Accuracy {
  double accuracy = 0.0;      // fraction of samples of the trained classes predicted right
  double softmax_loss = 0.0;  // mean cross-entropy over those samples
  int64_t count = 0;          // samples whose class is one of `classes`
};

// Closed-set accuracy of an embedding: samples whose label is not in `classes` are ignored;
// prediction j means class classes[j].
Accuracy closed_set_accuracy(const Embedding& embedding, const std::vector<int64_t>& classes);

// Writes the file `centerloss embed` produces: torch::pickle_save of the tuple
//   (features [N, D] float32, labels [N] int64 (data-set ids),
//    centers [K, D] float32, classes [K] int64 (center j belongs to class classes[j])).
// Python: features, labels, centers, classes = torch.load(path)
void save_embedding(const std::string& path, const Embedding& embedding,
                    const torch::Tensor& centers, const std::vector<int64_t>& classes);

}  // namespace centerloss::trainer
