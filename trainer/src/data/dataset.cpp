#include "data/dataset.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "data/idx.h"
#include "util/fs.h"

namespace centerloss::trainer {
namespace {

// Prefers the gzip file (what Debian ships), falls back to the raw one.
std::string find_file(const std::string& dir, const std::string& stem) {
  const std::string base = path_join(dir, stem);
  for (const std::string& candidate : {base + ".gz", base}) {
    if (is_file(candidate)) return candidate;
  }
  throw std::runtime_error(fmt::format("data directory '{}': neither {}.gz nor {} exists", dir,
                                       stem, stem));
}

}  // namespace

Dataset load_split(const std::string& dir, Split split, const std::vector<int64_t>& keep) {
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  const std::string image_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string label_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  torch::Tensor images = read_idx(image_path, 3);
  torch::Tensor labels = read_idx(label_path, 1).to(torch::kLong);
  if (images.size(0) != labels.size(0)) {
    throw std::runtime_error(fmt::format("'{}' has {} images but '{}' has {} labels", image_path,
                                         images.size(0), label_path, labels.size(0)));
  }
  Dataset data;
  data.images = images.unsqueeze(1).contiguous();  // [N, 1, H, W]
  data.labels = labels.contiguous();
  return keep_classes(data, keep);
}

ImageShape Dataset::shape() const {
  if (images.defined()) return {images.size(1), images.size(2), images.size(3)};
  return file_shape;
}

bool is_idx_dir(const std::string& dir) {
  const std::string stem = path_join(dir, "train-images-idx3-ubyte");
  return is_file(stem) || is_file(stem + ".gz");
}

Dataset select_samples(const Dataset& data, const torch::Tensor& samples) {
  const torch::Tensor index = samples.to(torch::kLong).contiguous();
  Dataset out = data;
  out.labels = data.labels.index_select(0, index).contiguous();
  if (data.images.defined()) out.images = data.images.index_select(0, index).contiguous();
  if (!data.files.empty()) {
    out.files.clear();
    const auto* i = index.data_ptr<int64_t>();
    for (int64_t k = 0; k < index.numel(); ++k) out.files.push_back(data.files[static_cast<size_t>(i[k])]);
  }
  return out;
}

Dataset limit_samples(const Dataset& data, int64_t n) {
  if (n <= 0 || n >= data.size()) return data;
  if (data.images.defined()) {
    Dataset out = data;
    out.labels = data.labels.slice(0, 0, n);
    out.images = data.images.slice(0, 0, n);
    return out;
  }
  return select_samples(data, torch::arange(n, torch::kLong).mul(data.size()).div(n, "floor"));
}

Dataset keep_classes(const Dataset& data, const std::vector<int64_t>& keep) {
  if (keep.empty()) return data;
  const torch::Tensor mask = remap_labels(data.labels, keep).ge(0);
  return select_samples(data, mask.nonzero().squeeze(1));
}

Dataset folder_dataset(const ImageFolder& folder, const ClassIds& ids, const ImageShape& shape) {
  Dataset data;
  data.files = folder.files;
  data.file_shape = shape;
  data.class_names = ids.names;
  std::vector<int64_t> labels;
  labels.reserve(folder.labels.size());
  for (int64_t label : folder.labels) labels.push_back(ids.ids.at(static_cast<size_t>(label)));
  data.labels = torch::tensor(labels, torch::kLong);
  return data;
}

torch::Tensor normalize_images(const torch::Tensor& images) {
  return (images.to(torch::kFloat) - 127.5f) / 128.0f;
}

std::vector<int64_t> parse_id_list(const std::string& text, const std::string& what) {
  std::vector<int64_t> ids;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    if (item.empty()) continue;
    size_t used = 0;
    int64_t id = -1;
    try {
      id = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || id < 0) {
      throw std::invalid_argument(fmt::format("{}: '{}' is not a class id (expected a comma-separated "
                                              "list of integers >= 0, got '{}')",
                                              what, item, text));
    }
    ids.push_back(id);
  }
  return ids;
}

std::vector<int64_t> select_classes(const std::vector<int64_t>& classes,
                                    const std::vector<int64_t>& holdout, int64_t num_classes) {
  for (const auto* list : {&classes, &holdout}) {
    for (int64_t id : *list) {
      if (id < 0 || id >= num_classes) {
        throw std::invalid_argument(fmt::format(
            "class id {} is outside the data set's classes [0, {})", id, num_classes));
      }
    }
  }
  std::vector<int64_t> out;
  if (!classes.empty()) {
    out = classes;
  } else {
    for (int64_t id = 0; id < num_classes; ++id) {
      if (std::find(holdout.begin(), holdout.end(), id) == holdout.end()) out.push_back(id);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.empty()) throw std::invalid_argument("the class selection leaves no class to train on");
  return out;
}

torch::Tensor remap_labels(const torch::Tensor& labels, const std::vector<int64_t>& classes) {
  const int64_t max_label = labels.numel() > 0 ? labels.max().item<int64_t>() : 0;
  const int64_t max_class = classes.empty() ? 0 : *std::max_element(classes.begin(), classes.end());
  torch::Tensor table = torch::full({std::max(max_label, max_class) + 1}, -1, torch::kLong);
  for (size_t j = 0; j < classes.size(); ++j) table[classes[j]] = static_cast<int64_t>(j);
  return table.index_select(0, labels);
}

int64_t count_classes(const std::string& dir) {
  if (!is_idx_dir(dir)) return static_cast<int64_t>(image_folder_classes(dir).size());
  const torch::Tensor labels = read_idx(find_file(dir, "train-labels-idx1-ubyte"), 1);
  return labels.max().item<int64_t>() + 1;
}

std::vector<std::string> data_class_names(const std::string& dir) {
  return is_idx_dir(dir) ? std::vector<std::string>{} : image_folder_classes(dir);
}

}  // namespace centerloss::trainer
