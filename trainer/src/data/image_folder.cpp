#include "data/image_folder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <stdexcept>

#include "util/fs.h"
#include "util/progress.h"

namespace centerloss::trainer {
namespace {

bool hidden(const std::string& name) { return !name.empty() && name.front() == '.'; }

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string first_lines(const std::vector<std::pair<std::string, std::string>>& list, size_t shown) {
  std::string text;
  for (size_t i = 0; i < std::min(shown, list.size()); ++i) {
    text += fmt::format("\n  {} ({})", list[i].first, list[i].second);
  }
  if (list.size() > shown) text += fmt::format("\n  ... and {} more", list.size() - shown);
  return text;
}

}  // namespace

bool has_image_extension(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  const std::string ext = lower(name.substr(dot));
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

bool BadImages::add(const std::string& path, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!paths_.insert(path).second) return false;
  list_.emplace_back(path, reason);
  return true;
}

bool BadImages::contains(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return paths_.count(path) > 0;
}

int64_t BadImages::count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(list_.size());
}

std::string BadImages::summary(size_t shown) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return fmt::format("{} bad image{} skipped:{}", list_.size(), list_.size() == 1 ? "" : "s",
                     first_lines(list_, shown));
}

std::vector<std::string> image_folder_classes(const std::string& dir) {
  if (!is_dir(dir)) throw std::runtime_error(fmt::format("data directory '{}' does not exist", dir));
  std::vector<std::string> classes;
  bool loose_images = false;
  for (const std::string& name : list_dir(dir)) {
    if (hidden(name)) continue;
    const std::string path = path_join(dir, name);
    if (is_dir(path)) {
      classes.push_back(name);
    } else if (has_image_extension(name)) {
      loose_images = true;
    }
  }
  if (classes.empty()) {
    throw std::runtime_error(fmt::format(
        "data directory '{}' has no class folders{}: expected an image folder, "
        "DIR/<class>/<image> with {} files, or IDX files ({{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte[.gz])",
        dir, loose_images ? " (only images directly inside it)" : "", kImageExtensions));
  }
  return classes;
}

ImageFolder scan_image_folder(const std::string& dir, BadImages* skip, bool progress) {
  ImageFolder folder;
  folder.dir = dir;
  folder.class_names = image_folder_classes(dir);
  for (size_t c = 0; c < folder.class_names.size(); ++c) {
    const std::string class_dir = path_join(dir, folder.class_names[c]);
    size_t found = 0;
    for (const std::string& name : list_dir(class_dir)) {
      const std::string path = path_join(class_dir, name);
      if (hidden(name) || !has_image_extension(name) || !is_file(path)) continue;
      folder.files.push_back(path);
      folder.labels.push_back(static_cast<int64_t>(c));
      ++found;
    }
    if (found == 0) {
      throw std::runtime_error(fmt::format("class folder '{}' holds no image files ({}): remove "
                                           "it or add images", class_dir, kImageExtensions));
    }
  }

  // Headers: a cheap check of every file before any training (a bad file found now costs
  // nothing; found by the loader, it stops a run midway).
  ProgressBar bar(fmt::format("checking {} images", folder.files.size()),
                  static_cast<int64_t>(folder.files.size()), progress && folder.files.size() >= 10000);
  std::vector<std::pair<std::string, std::string>> bad;
  ImageFolder kept{folder.dir, folder.class_names, {}, {}, {}};
  for (size_t i = 0; i < folder.files.size(); ++i) {
    try {
      kept.headers.push_back(read_image_header(folder.files[i]));
      kept.files.push_back(folder.files[i]);
      kept.labels.push_back(folder.labels[i]);
    } catch (const BadImageError& e) {
      bad.emplace_back(e.path(), e.reason());
    }
    bar.update(static_cast<int64_t>(i + 1), [] { return std::string(); });
  }
  bar.finish("");
  if (!bad.empty() && skip == nullptr) {
    throw std::runtime_error(fmt::format(
        "{} of {} image files in '{}' are not usable images (give --skip-bad-images to leave "
        "them out):{}", bad.size(), folder.files.size(), dir, first_lines(bad, 5)));
  }
  for (const auto& [path, reason] : bad) skip->add(path, reason);
  std::vector<int64_t> per_class(kept.class_names.size(), 0);
  for (int64_t label : kept.labels) ++per_class[static_cast<size_t>(label)];
  for (size_t c = 0; c < per_class.size(); ++c) {
    if (per_class[c] == 0) {
      throw std::runtime_error(fmt::format("class folder '{}' has no usable image: all its files "
                                           "are bad", path_join(dir, kept.class_names[c])));
    }
  }
  return kept;
}

ClassIds class_ids_by_name(const std::vector<std::string>& names,
                           const std::vector<std::string>& known, bool allow_unknown,
                           const std::string& what) {
  ClassIds out;
  out.names = known;
  std::map<std::string, int64_t> id;
  for (size_t k = 0; k < known.size(); ++k) id.emplace(known[k], static_cast<int64_t>(k));
  std::vector<std::string> unknown;
  for (const std::string& name : names) {
    if (!id.count(name)) unknown.push_back(name);
  }
  if (!unknown.empty() && !allow_unknown) {
    throw std::runtime_error(fmt::format(
        "{}: class '{}' is not one of the run's {} classes{}", what, unknown.front(), known.size(),
        unknown.size() > 1 ? fmt::format(" (nor are {} others)", unknown.size() - 1) : ""));
  }
  std::sort(unknown.begin(), unknown.end());
  for (const std::string& name : unknown) {
    if (id.emplace(name, static_cast<int64_t>(out.names.size())).second) out.names.push_back(name);
  }
  for (const std::string& name : names) out.ids.push_back(id.at(name));
  return out;
}

}  // namespace centerloss::trainer
