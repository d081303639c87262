// The data of a run: what --data and --test-data hold, read the way the run's config says.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"
#include "train/config.h"

namespace centerloss::trainer {

struct RunData {
  Dataset train;
  Dataset test;  // size 0 when the run has no test split (an image folder without --test-data)
};

// For train(): loads --data (and the test split: IDX t10k files, or --test-data), limited to
// config.classes (empty: every class, filled in) and the limits, and completes the config from
// the data: class_names of an image folder (or checks that the folder still has the stored
// ones, on resume), the image size (IDX: the files'; image folders when 0x0: the images'
// common size, else an error asking for --image-size). With skip_bad_images, bad image files
// are left out and recorded in the data sets' skip_bad (one record for both), and said on
// stderr; without, the first bad file found is an error. Throws std::invalid_argument /
// std::runtime_error naming the option or file before anything is written.
RunData load_run_data(TrainConfig& config, bool skip_bad_images, bool progress);

// The folder eval, embed and openset read when --data is not given: IDX: the run's data_dir;
// image folders: --test-data for the test split (an error if the run has none), --data for train.
std::string default_data_dir(const TrainConfig& config, Split split);

// Data for eval, embed and openset, read the way the run was trained (image size, channels;
// never flipped). `dir` empty: default_data_dir. An image folder's classes get the run's ids by
// name, other names ids after them (Dataset::class_names says which is which); `split` picks
// the IDX file pair. keep: class ids to keep (empty: all).
Dataset load_data_for_run(const TrainConfig& config, const std::string& dir, Split split,
                          const std::vector<int64_t>& keep = {}, bool progress = true);

}  // namespace centerloss::trainer
