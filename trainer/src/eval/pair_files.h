// Pairs of an LFW pairs file over an image folder (data/image_folder.h). As in LFW, "<name> <n>"
// is the file DIR/<name>/<name>_<n>.<ext>, n written with at least 4 digits (Aaron_Peirsol 2 =
// Aaron_Peirsol/Aaron_Peirsol_0002.jpg), with any accepted extension (.png, .jpg, .jpeg, .bmp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eval/lfw_pairs.h"
#include "eval/pairs.h"

namespace centerloss::eval {

// Maps entries onto indices into `files` (the data set's image files, whose labels are
// `labels`). Throws std::runtime_error naming the pairs file's line for a file that is not in
// the folder (the expected path, DIR/<name>/<name>_NNNN.*), an image present under two
// extensions, or an impostor line whose two images are of one class.
std::vector<Pair> resolve_pairs_to_files(const PairList& list, const std::string& dir,
                                         const std::vector<std::string>& files,
                                         const std::vector<int64_t>& labels);

}  // namespace centerloss::eval
