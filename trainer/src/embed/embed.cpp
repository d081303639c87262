#include "embed/embed.h"

#include <ATen/core/ivalue.h>
#include <torch/nn/functional/loss.h>
#include <torch/serialize.h>

#include <stdexcept>

#include "util/fs.h"

namespace centerloss::trainer {

Embedding embed(FeatureNet& model, const Dataset& data, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  model->eval();
  std::vector<torch::Tensor> features, logits;
  for (int64_t start = 0; start < data.size(); start += batch_size) {
    const int64_t end = std::min(start + batch_size, data.size());
    NetOutput out = model->forward(normalize_images(data.images.slice(0, start, end)));
    features.push_back(out.features);
    logits.push_back(out.logits);
  }
  if (features.empty()) {
    const NetConfig& c = model->config();
    return {torch::zeros({0, c.feature_dim}), data.labels, torch::zeros({0, c.num_classes})};
  }
  return {torch::cat(features), data.labels, torch::cat(logits)};
}

Accuracy closed_set_accuracy(const Embedding& embedding, const std::vector<int64_t>& classes) {
  const torch::Tensor target = remap_labels(embedding.labels, classes);
  const torch::Tensor known = target.ge(0).nonzero().squeeze(1);
  Accuracy result;
  result.count = known.numel();
  if (result.count == 0) return result;
  const torch::Tensor logits = embedding.logits.index_select(0, known);
  const torch::Tensor y = target.index_select(0, known);
  result.accuracy = logits.argmax(1).eq(y).to(torch::kDouble).mean().item<double>();
  result.softmax_loss = torch::nn::functional::cross_entropy(logits, y).item<double>();
  return result;
}

void save_embedding(const std::string& path, const Embedding& embedding,
                    const torch::Tensor& centers, const std::vector<int64_t>& classes) {
  // A tuple, not a c10::Dict: a typed Dict pickles with a type tag that torch.load's default
  // weights_only=True refuses; a tuple of tensors loads without options.
  const c10::IValue tuple = c10::ivalue::Tuple::create(
      {embedding.features.contiguous(), embedding.labels.contiguous(), centers.detach().clone(),
       torch::tensor(classes, torch::kLong)});
  const std::vector<char> bytes = torch::pickle_save(tuple);
  // Atomic: a full disk or a crash leaves the previous file, never a truncated one.
  write_file_atomic(path, [&](std::ostream& out) {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  });
}

}  // namespace centerloss::trainer
