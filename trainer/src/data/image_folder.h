// An image folder: one sub-folder per class, images inside (the layout of CASIA-WebFace,
// VGGFace2, LFW and torchvision's ImageFolder):
//
//   DIR/Aaron_Eckhart/Aaron_Eckhart_0001.jpg
//   DIR/Aaron_Eckhart/Aaron_Eckhart_0002.png
//   DIR/Abel_Pacheco/...
//
// Classes are the sub-folders in bytewise-sorted order (the same on every machine and locale);
// within a class, files are in bytewise-sorted order. Files whose extension (any case) is not
// one of kImageExtensions are ignored, as are hidden entries (a leading '.'), sub-folders of a
// class folder and files directly in DIR.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "data/image_header.h"

namespace centerloss::trainer {

inline constexpr const char* kImageExtensions = ".png, .jpg, .jpeg, .bmp";
bool has_image_extension(const std::string& name);

struct ImageFolder {
  std::string dir;
  std::vector<std::string> class_names;  // the class sub-folders, sorted
  std::vector<std::string> files;        // paths, grouped by class, sorted within each
  std::vector<int64_t> labels;           // files[i] is in class_names[labels[i]]
  std::vector<ImageHeader> headers;      // of each file
};

// The bad files a run skips with --skip-bad-images. Shared by the loader's threads.
class BadImages {
 public:
  // Records `path` once; returns true if it was not recorded before.
  bool add(const std::string& path, const std::string& reason);
  bool contains(const std::string& path) const;
  int64_t count() const;
  // "N bad images skipped: PATH (REASON); ..." with the first `shown`, then "and M more".
  std::string summary(size_t shown = 5) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, std::string>> list_;  // in the order found
  std::set<std::string> paths_;
};

// The class names of an image folder (its sub-folders), without opening any image. Throws
// std::runtime_error when `dir` is not a directory or has no sub-folder.
std::vector<std::string> image_folder_classes(const std::string& dir);

// Lists the classes and image files of `dir` and reads the header of every file (with a
// progress bar on stderr when `progress` and there are many). A file that fails the header
// check (image_header.h) is an error that names it (every bad file is counted, the first few
// named), unless `skip` is given: then bad files are recorded there and left out. A class
// folder without any (good) image file is an error naming it. Throws std::runtime_error.
ImageFolder scan_image_folder(const std::string& dir, BadImages* skip, bool progress);

// The ids under which a run knows the classes of a folder.
struct ClassIds {
  std::vector<int64_t> ids;        // ids[c]: the id of the folder's class c
  std::vector<std::string> names;  // names[id]: the class of each id (the run's classes first)
};

// A name of `known` (the run's class list) gets its position there; with `allow_unknown`,
// other names get ids after the known ones, in sorted order; without, such a name is an error
// that names it and `what`.
ClassIds class_ids_by_name(const std::vector<std::string>& names,
                           const std::vector<std::string>& known, bool allow_unknown,
                           const std::string& what);

}  // namespace centerloss::trainer
