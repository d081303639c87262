// An image-classification data set, with a class filter. A data directory is either
//  - IDX (the MNIST layout): {train,t10k}-images-idx3-ubyte[.gz] and
//    {train,t10k}-labels-idx1-ubyte[.gz] (Fashion-MNIST from Debian's dataset-fashion-mnist,
//    MNIST, KMNIST, ...), held in memory, or
//  - an image folder (data/image_folder.h), whose files the loader decodes as it goes
//    (data/batch_loader.h).
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "data/image_decode.h"
#include "data/image_folder.h"
#include "util/enum_names.h"

namespace centerloss::trainer {

// Debian's dataset-fashion-mnist.
inline constexpr const char* kDefaultDataDir = "/usr/share/datasets/fashion-mnist";

enum class Split { Train, Test };
inline constexpr EnumNames<Split, 2> kSplitNames{{{Split::Test, "test"}, {Split::Train, "train"}}};
inline Split parse_split(const std::string& name) { return parse_enum(kSplitNames, name, "--split"); }

struct Dataset {
  torch::Tensor images;  // IDX: [N, 1, H, W] uint8 (raw pixels; see normalize_images).
                         // Image folders: undefined (see files)
  torch::Tensor labels;  // [N] int64, the data set's own class ids (not remapped)
  std::vector<std::string> files;  // image folders: the file of each sample
  std::vector<std::string> class_names;  // image folders: class id i is named class_names[i]
  ImageShape file_shape;           // image folders: the [C, H, W] each file is decoded to
  // Image folders with --skip-bad-images: where the loader records the bad files it leaves out.
  // Null: a bad file is an error.
  std::shared_ptr<BadImages> skip_bad;

  int64_t size() const { return labels.size(0); }
  ImageShape shape() const;  // [C, H, W] of a sample as the loader yields it
};

// True when `dir` holds IDX files (train-images-idx3-ubyte[.gz]); otherwise it is read as an
// image folder.
bool is_idx_dir(const std::string& dir);

// The samples `index` ([M] int64) of `data`, in that order.
Dataset select_samples(const Dataset& data, const torch::Tensor& index);
// At most n samples (n <= 0: all). IDX: the first n. Image folders, whose files are sorted by
// class: n samples spread evenly over the list (sample floor(i * size / n)), so that a limit
// keeps every class rather than the first few.
Dataset limit_samples(const Dataset& data, int64_t n);
// The samples whose label is in `keep` (empty: all), in data-set order.
Dataset keep_classes(const Dataset& data, const std::vector<int64_t>& keep);

// An image folder as a data set: sample i is folder.files[i] with label
// ids.ids[folder.labels[i]] (see class_ids_by_name), decoded to `shape`.
Dataset folder_dataset(const ImageFolder& folder, const ClassIds& ids, const ImageShape& shape);

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

// Number of classes in a data directory: IDX: 1 + the largest label of the training split;
// image folder: its class folders.
int64_t count_classes(const std::string& dir);

// The class names of a data directory: an image folder's class folders; none for IDX.
std::vector<std::string> data_class_names(const std::string& dir);

}  // namespace centerloss::trainer
