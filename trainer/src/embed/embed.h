// Features of a data set through a trained network, and closed-set accuracy.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "data/dataset.h"
#include "model/net.h"

namespace centerloss::trainer {

struct Embedding {
  torch::Tensor features;  // [N, D] float32 ([N, 2D] with flip_concat)
  torch::Tensor labels;    // [N] int64, the data set's own class ids (as in Dataset::labels)
  torch::Tensor logits;    // [N, K] float32 (K = the model's classes)
  torch::Tensor samples;   // [N] int64: the data-set index of each row (0..N-1 unless bad
                           // images were skipped)
};

struct EmbedOptions {
  int64_t batch_size = 0;   // 0: 1000 images, fewer for large ones (about 16 MB of input)
  int loader_threads = 2;   // background threads decoding image folders
  // The paper's test trick: the features of each image and of its mirror image, concatenated
  // ([N, 2D]); the logits stay those of the image.
  bool flip_concat = false;
  bool progress = false;    // progress bar on stderr (for 2000 images or more)
};

// Runs `model` in eval mode without autograd over `data` in batches (the model is left in eval
// mode). Deterministic on CPU. A bad image file is an error, or is left out (data.skip_bad).
Embedding embed(FeatureNet& model, const Dataset& data, const EmbedOptions& options = {});

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
