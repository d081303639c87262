#include "train/run_data.h"

#include <fmt/format.h>

#include <memory>
#include <stdexcept>

namespace centerloss::trainer {
namespace {

std::string size_text(const ImageHeader& h) { return fmt::format("{}x{}", h.height, h.width); }

// The one size every image of the folder has (height, width), or an error naming two that differ.
std::pair<int64_t, int64_t> common_size(const ImageFolder& folder) {
  const ImageHeader& first = folder.headers.front();
  for (size_t i = 1; i < folder.headers.size(); ++i) {
    const ImageHeader& h = folder.headers[i];
    if (h.height != first.height || h.width != first.width) {
      throw std::invalid_argument(fmt::format(
          "the images of '{}' differ in size ('{}' is {}, '{}' is {}, height x width): give "
          "--image-size HxW (each image is resized and centre-cropped to it)",
          folder.dir, folder.files.front(), size_text(first), folder.files[i], size_text(h)));
    }
  }
  return {first.height, first.width};
}

// The first class name where two sorted lists differ, for the message.
std::string first_difference(const std::vector<std::string>& found, const std::vector<std::string>& stored) {
  for (size_t i = 0; i < std::max(found.size(), stored.size()); ++i) {
    const std::string a = i < found.size() ? found[i] : "(none)";
    const std::string b = i < stored.size() ? stored[i] : "(none)";
    if (a != b) return fmt::format("class {} is '{}' now, '{}' in the run", i, a, b);
  }
  return "";
}

RunData load_idx(TrainConfig& config) {
  if (!config.test_data_dir.empty()) {
    throw std::invalid_argument(fmt::format(
        "--test-data: '{}' holds IDX files, whose test split is its own t10k files; --test-data "
        "is for image folders", config.data_dir));
  }
  if (config.channels != 1) {
    throw std::invalid_argument(fmt::format("--channels {}: '{}' holds IDX files, which are grey "
                                            "(1 channel)", config.channels, config.data_dir));
  }
  if (config.classes.empty()) config.classes = select_classes({}, {}, count_classes(config.data_dir));
  RunData data;
  data.train = limit_samples(load_split(config.data_dir, Split::Train, config.classes), config.train_limit);
  data.test = limit_samples(load_split(config.data_dir, Split::Test, config.classes), config.test_limit);
  if (data.train.size() == 0) throw std::runtime_error("no training samples of the selected classes");
  if (data.test.size() > 0 && data.test.shape() != data.train.shape()) {
    // Checked now, not after the first epoch's training, when the test split is embedded.
    throw std::runtime_error(fmt::format("{}: test images are {} but training images are {}",
                                         config.data_dir, c10::str(data.test.images.sizes().slice(1)),
                                         c10::str(data.train.images.sizes().slice(1))));
  }
  config.image_height = data.train.shape().height;
  config.image_width = data.train.shape().width;
  return data;
}

RunData load_folders(TrainConfig& config, bool skip_bad_images, bool progress) {
  const auto bad = skip_bad_images ? std::make_shared<BadImages>() : nullptr;
  const ImageFolder folder = scan_image_folder(config.data_dir, bad.get(), progress);
  if (config.class_names.empty()) {
    config.class_names = folder.class_names;
  } else if (config.class_names != folder.class_names) {
    throw std::runtime_error(fmt::format(
        "'{}' has other class folders than the run was trained with ({} now, {} in the run; {})",
        config.data_dir, folder.class_names.size(), config.class_names.size(),
        first_difference(folder.class_names, config.class_names)));
  }
  const auto num_classes = static_cast<int64_t>(config.class_names.size());
  if (config.classes.empty()) config.classes = select_classes({}, {}, num_classes);
  select_classes(config.classes, {}, num_classes);  // checks the ids
  if (config.image_height == 0 || config.image_width == 0) {
    std::tie(config.image_height, config.image_width) = common_size(folder);
  }
  const ImageShape shape{config.channels, config.image_height, config.image_width};
  RunData data;
  data.train = limit_samples(
      keep_classes(folder_dataset(folder, class_ids_by_name(folder.class_names, config.class_names,
                                                            false, config.data_dir), shape),
                   config.classes),
      config.train_limit);
  if (config.test_data_dir.empty()) {
    data.test.labels = torch::empty({0}, torch::kLong);
    data.test.file_shape = shape;
    data.test.class_names = config.class_names;
  } else {
    const ImageFolder test = scan_image_folder(config.test_data_dir, bad.get(), progress);
    const ClassIds ids = class_ids_by_name(test.class_names, config.class_names, false,
                                           "--test-data '" + config.test_data_dir + "'");
    data.test = limit_samples(keep_classes(folder_dataset(test, ids, shape), config.classes),
                              config.test_limit);
  }
  data.train.skip_bad = data.test.skip_bad = bad;
  if (data.train.size() == 0) throw std::runtime_error("no training images of the selected classes");
  if (bad && bad->count() > 0) fmt::print(stderr, "warning: {}\n", bad->summary());
  fmt::print(stderr, "image folder {}: {} training images of {} classes{}, decoded to {} (CxHxW){}\n",
             config.data_dir, data.train.size(), config.classes.size(),
             config.test_data_dir.empty() ? ", no test split (--test-data)"
                                          : fmt::format(", {} test images", data.test.size()),
             shape_text(shape), config.flip ? ", random horizontal flips" : "");
  return data;
}

}  // namespace

RunData load_run_data(TrainConfig& config, bool skip_bad_images, bool progress) {
  return is_idx_dir(config.data_dir) ? load_idx(config) : load_folders(config, skip_bad_images, progress);
}

std::string default_data_dir(const TrainConfig& config, Split split) {
  if (config.class_names.empty() || split == Split::Train) return config.data_dir;
  if (config.test_data_dir.empty()) {
    throw std::invalid_argument(fmt::format(
        "the run was trained on the image folder '{}' without --test-data: give --data DIR (an "
        "image folder) or --split train", config.data_dir));
  }
  return config.test_data_dir;
}

Dataset load_data_for_run(const TrainConfig& config, const std::string& dir_arg, Split split,
                          const std::vector<int64_t>& keep, bool progress) {
  const std::string dir = dir_arg.empty() ? default_data_dir(config, split) : dir_arg;
  const ImageShape shape{config.channels, config.image_height, config.image_width};
  if (is_idx_dir(dir)) {
    if (!config.class_names.empty()) {
      throw std::invalid_argument(fmt::format("'{}' holds IDX files, but the run was trained on "
                                              "the image folder '{}'", dir, config.data_dir));
    }
    Dataset data = load_split(dir, split, keep);
    if (data.size() > 0 && data.shape() != shape) {
      throw std::runtime_error(fmt::format("'{}': images are {} but the run was trained on {} (CxHxW)",
                                           dir, shape_text(data.shape()), shape_text(shape)));
    }
    return data;
  }
  if (config.class_names.empty()) {
    throw std::invalid_argument(fmt::format("'{}' is an image folder, but the run was trained on "
                                            "the IDX files of '{}'", dir, config.data_dir));
  }
  const ImageFolder folder = scan_image_folder(dir, nullptr, progress);
  return keep_classes(
      folder_dataset(folder, class_ids_by_name(folder.class_names, config.class_names, true, dir), shape),
      keep);
}

}  // namespace centerloss::trainer
