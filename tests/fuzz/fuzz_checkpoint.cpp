// Checkpoint loading (train/checkpoint.h) on hostile files: CheckpointFile, config(),
// make_state() from that config and restore() either succeed or throw std::runtime_error /
// std::invalid_argument; nothing crashes, and nothing allocates more than the file could
// justify. The first input byte picks the mode:
//   0: the rest of the input is the whole file;
//   1: a real checkpoint (built once, in memory) with edits: byte 1 cuts the file short (when
//      below 64: to that many 64ths), then each 5 bytes XOR one byte (4-byte offset, 1 value);
//   2: as 1, with the offsets folded onto the file's first and last 4 KiB (the zip headers,
//      the pickled records and the central directory, where a flipped byte means most);
//   3: the real checkpoint's state saved with the rest of the input as its config JSON (a
//      config that disagrees with the tensors, e.g. one asking for a huge network).
#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "fuzz_memfile.h"
#include "fuzz_target.h"
#include "train/checkpoint.h"
#include "util/fs.h"

using namespace centerloss::trainer;

namespace {

// The state of a tiny run after two SGD steps (so that it has momentum buffers), within an
// epoch. Deterministic: make_state seeds the generator.
TrainState base_state() {
  torch::set_num_threads(1);
  TrainConfig config;
  config.arch = Arch::Small;
  config.classes = {0, 1, 2};
  config.feature_dim = 2;
  config.image_height = config.image_width = 8;
  config.update = centerloss::UpdateRule::Gradient;  // a center optimizer too
  TrainState state = make_state(config);
  for (int step = 0; step < 2; ++step) {
    const NetOutput out = state.model->forward(torch::randn({4, 1, 8, 8}));
    const torch::Tensor y = torch::tensor({0, 1, 2, 1}, torch::kLong);
    const torch::Tensor loss = torch::nn::functional::cross_entropy(out.logits, y) +
                               state.center_loss->forward(out.features, y);
    state.optimizer->zero_grad();
    state.center_optimizer->zero_grad();
    loss.backward();
    state.optimizer->step();
    state.center_optimizer->step();
  }
  state.progress.step = 1;
  return state;
}

// The checkpoint file of `state`, as bytes.
std::string saved(TrainState& state) {
  const std::string dir = "/tmp/centerloss-fuzz-checkpoint-" + std::to_string(::getpid());
  make_dirs(dir);
  const std::string path = path_join(dir, "checkpoint.pt");
  save_checkpoint(path, state);
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  remove_tree(dir);
  return data;
}

const std::string& base_checkpoint() {
  static const std::string bytes = [] {
    TrainState state = base_state();
    return saved(state);
  }();
  return bytes;
}

// Mode 3: the base state with `text` as its config, if it is one.
std::string with_config(const uint8_t* data, size_t size) {
  TrainState state = base_state();
  try {
    state.config = config_from_json(nlohmann::json::parse(data, data + size));
  } catch (const std::exception&) {
    return std::string();
  }
  return saved(state);
}

std::string edited(const uint8_t* data, size_t size, bool structural) {
  std::string file = base_checkpoint();
  if (size >= 1 && data[0] < 64) file.resize(file.size() * data[0] / 64);
  if (file.empty()) return file;
  for (size_t i = 1; i + 5 <= size; i += 5) {
    uint32_t offset = uint32_t{data[i]} | uint32_t{data[i + 1]} << 8 | uint32_t{data[i + 2]} << 16 |
                      uint32_t{data[i + 3]} << 24;
    size_t at = offset % file.size();
    if (structural && file.size() > 8192) {
      const size_t folded = offset % 8192;
      at = folded < 4096 ? folded : file.size() - 8192 + folded;
    }
    file[at] = static_cast<char>(static_cast<uint8_t>(file[at]) ^ data[i + 4]);
  }
  return file;
}

}  // namespace

CENTERLOSS_FUZZ_TARGET(checkpoint) {
  if (size < 1) return 0;
  const int mode = data[0] % 4;
  const std::string file = mode == 0   ? std::string(reinterpret_cast<const char*>(data) + 1, size - 1)
                           : mode == 3 ? with_config(data + 1, size - 1)
                                       : edited(data + 1, size - 1, mode == 2);
  MemFile memfile(file.data(), file.size());
  try {
    CheckpointFile checkpoint(memfile.path());
    TrainState state = make_state(checkpoint.config());
    checkpoint.restore(state);
    FUZZ_CHECK(state.epoch >= 0 && state.progress.step >= 0, "restored a negative position");
  } catch (const std::runtime_error&) {
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
