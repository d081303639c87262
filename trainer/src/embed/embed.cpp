#include "embed/embed.h"

#include <ATen/core/ivalue.h>
#include <fmt/format.h>
#include <torch/nn/functional/loss.h>
#include <torch/serialize.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include "data/batch_loader.h"
#include "util/fs.h"
#include "util/progress.h"

namespace centerloss::trainer {

Embedding embed(FeatureNet& model, const Dataset& data, const EmbedOptions& options) {
  torch::NoGradGuard no_grad;
  model->eval();
  const int64_t per_image = std::max<int64_t>(data.shape().numel(), 1);
  const int64_t batch_size = options.batch_size > 0
                                 ? options.batch_size
                                 : std::clamp<int64_t>((int64_t{1} << 22) / per_image, 1, 1000);
  LoaderOptions loader_options;
  loader_options.threads = options.loader_threads;
  loader_options.prefetch = 2;
  BatchLoader loader(data, torch::arange(data.size(), torch::kLong), batch_size, loader_options);
  ProgressBar bar(fmt::format("embedding {} images", data.size()), loader.batches(),
                  options.progress && data.size() >= 2000);
  std::vector<torch::Tensor> features, logits, samples;
  Batch batch;
  for (int64_t b = 0; loader.next(batch); ++b) {
    if (batch.samples.numel() > 0) {
      NetOutput out = model->forward(batch.images);
      if (options.flip_concat) {
        out.features = torch::cat({out.features, model->forward(batch.images.flip({3})).features}, 1);
      }
      features.push_back(out.features);
      logits.push_back(out.logits);
      samples.push_back(batch.samples);
    }
    bar.update(b + 1, [] { return std::string(); });
  }
  bar.finish("");
  if (features.empty()) {
    const NetConfig& c = model->config();
    const int64_t d = options.flip_concat ? 2 * c.feature_dim : c.feature_dim;
    return {torch::zeros({0, d}), torch::zeros({0}, torch::kLong), torch::zeros({0, c.num_classes}),
            torch::zeros({0}, torch::kLong)};
  }
  const torch::Tensor rows = torch::cat(samples);
  return {torch::cat(features), data.labels.index_select(0, rows), torch::cat(logits), rows};
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
