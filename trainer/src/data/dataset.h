// An image-classification data set in the MNIST layout, with a class filter.
//
// A data directory holds {train,t10k}-images-idx3-ubyte[.gz] and {train,t10k}-labels-idx1-ubyte[.gz]
// (Fashion-MNIST from Debian's dataset-fashion-mnist, MNIST, KMNIST, ...).
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "util/enum_names.h"

namespace centerloss::trainer {

// Debian's dataset-fashion-mnist.
inline constexpr const char* kDefaultDataDir = "/usr/share/datasets/fashion-mnist";

enum class Split { Train, Test };
inline constexpr EnumNames<Split, 2> kSplitNames{{{Split::Test, "test"}, {Split::Train, "train"}}};
inline Split parse_split(const std::string& name) { return parse_enum(kSplitNames, name, "--split"); }

struct Dataset {
  torch::Tensor images;  // [N, 1, H, W] uint8 (raw pixels; see normalize_images)
  torch::Tensor labels;  // [N] int64, the data set's own class ids (not remapped)
  int64_t size() const { return labels.size(0); }
};

// Loads one split. `keep` lists the class ids to keep (empty: every class); the order of the
// samples is the file's. Throws std::runtime_error (naming the file) for missing or corrupt
// files and when images and labels disagree in count.
Dataset load_split(const std::string& dir, Split split, const std::vector<int64_t>& keep = {});

// uint8 images -> float32 in [-1, 1): (x - 127.5) / 128, the paper's preprocessing.
torch::Tensor normalize_images(const torch::Tensor& images);

// Parses "0,1,2" into class ids; throws std::invalid_argument naming `what` on bad input.
std::vector<int64_t> parse_id_list(const std::string& text, const std::string& what);

// The classes a run trains on: `classes` if given, else every id in [0, num_classes) not in
// `holdout`. Sorted, unique; ids are checked against [0, num_classes).
std::vector<int64_t> select_classes(const std::vector<int64_t>& classes,
                                    const std::vector<int64_t>& holdout, int64_t num_classes);

// Maps data-set class ids to the model's label space: position of each id in `classes`, -1 for
// ids not in it. labels: [N] int64 -> [N] int64.
torch::Tensor remap_labels(const torch::Tensor& labels, const std::vector<int64_t>& classes);

// Number of classes in a data directory: 1 + the largest label of the training split.
int64_t count_classes(const std::string& dir);

}  // namespace centerloss::trainer
