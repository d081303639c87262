#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/utils.h>

#include <zlib.h>

#include <cstdint>
#include <mutex>
#include <stdexcept>

#include "util/fs.h"
#include "util/zip_records.h"

namespace centerloss::trainer {
namespace {

// CRC-32 (zlib) of what a checkpoint restores: the config text, every tensor with its name and
// the optimizers' hyperparameters, in a fixed order. Torch's archive reader does not verify the
// records it reads, so without it a flipped bit in a stored tensor (say the centers) or in the
// config (say the seed) would load silently.
class Digest {
 public:
  void add(const std::string& name, const at::Tensor& tensor) {
    bytes(name.data(), name.size());
    if (!tensor.defined()) return;
    const at::Tensor t = tensor.detach().cpu().contiguous();
    bytes(t.data_ptr(), t.nbytes());
  }
  void add(const std::string& name, const std::string& text) {
    bytes(name.data(), name.size());
    bytes(text.data(), text.size());
  }
  // The optimizer's hyperparameters (as loaded: they come from the archive too) and its
  // momentum buffers.
  void add_optimizer(const std::string& name, const torch::optim::SGD& optimizer) {
    const auto& states = optimizer.state();
    int64_t index = 0;
    for (const auto& group : optimizer.param_groups()) {
      const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
      const double values[] = {o.lr(), o.momentum(), o.dampening(), o.weight_decay(),
                               o.nesterov() ? 1.0 : 0.0};
      bytes(values, sizeof(values));
      for (const auto& param : group.params()) {
        const auto it = states.find(param.unsafeGetTensorImpl());
        const auto* sgd = it == states.end()
                              ? nullptr
                              : dynamic_cast<const torch::optim::SGDParamState*>(it->second.get());
        add(name + "." + std::to_string(index++), sgd ? sgd->momentum_buffer() : at::Tensor());
      }
    }
  }
  int64_t value() const { return static_cast<int64_t>(crc_); }

 private:
  void bytes(const void* data, size_t size) {
    crc_ = crc32_z(crc_, static_cast<const Bytef*>(data), size);
  }
  uLong crc_ = crc32_z(0L, Z_NULL, 0);
};

// EpochProgress as two tensors (exact: float64 and int64), in a fixed order.
at::Tensor progress_values(const EpochProgress& p) {
  return torch::tensor({p.softmax, p.center, p.window_softmax, p.window_center, p.seconds},
                       torch::kDouble);
}
at::Tensor progress_counts(const EpochProgress& p) {
  return torch::tensor({p.step, p.correct, p.seen, p.window_correct, p.window_count, p.window_steps},
                       torch::kLong);
}
EpochProgress progress_from(const at::Tensor& values, const at::Tensor& counts) {
  if (values.dtype() != torch::kDouble || values.numel() != 5 || counts.dtype() != torch::kLong ||
      counts.numel() != 6) {
    throw std::runtime_error("its epoch progress has the wrong shape");
  }
  const at::Tensor v = values.contiguous(), c = counts.contiguous();
  const double* x = v.data_ptr<double>();
  const int64_t* n = c.data_ptr<int64_t>();
  EpochProgress p;
  p.softmax = x[0], p.center = x[1], p.window_softmax = x[2], p.window_center = x[3], p.seconds = x[4];
  p.step = n[0], p.correct = n[1], p.seen = n[2], p.window_correct = n[3], p.window_count = n[4],
  p.window_steps = n[5];
  if (p.step < 0 || p.correct < 0 || p.seen < p.correct || p.window_steps < 0) {
    throw std::runtime_error("its epoch progress is out of range");
  }
  return p;
}

// with_progress: false for checkpoints written before the progress entries existed.
int64_t state_digest(TrainState& state, const at::Tensor& rng, const std::string& config,
                     bool with_progress = true) {
  Digest d;
  d.add("config", config);
  for (const auto& p : state.model->named_parameters()) d.add("model." + p.key(), p.value());
  for (const auto& b : state.model->named_buffers()) d.add("model." + b.key(), b.value());
  for (const auto& p : state.center_loss->named_parameters()) d.add("center_loss." + p.key(), p.value());
  for (const auto& b : state.center_loss->named_buffers()) d.add("center_loss." + b.key(), b.value());
  d.add_optimizer("optimizer", *state.optimizer);
  if (state.center_optimizer) d.add_optimizer("center_optimizer", *state.center_optimizer);
  d.add("epoch", torch::tensor(state.epoch, torch::kLong));
  d.add("rng", rng);
  if (with_progress) {
    d.add("progress", progress_values(state.progress));
    d.add("progress_counts", progress_counts(state.progress));
  }
  return d.value();
}

}  // namespace

TrainState make_state(const TrainConfig& config,
                      const c10::intrusive_ptr<c10d::ProcessGroup>& group) {
  if (config.classes.empty()) throw std::invalid_argument("make_state: config.classes is empty");
  torch::manual_seed(config.seed);
  TrainState state;
  state.config = config;
  try {
    state.model = FeatureNet(net_config(config));
    state.center_loss = CenterLoss(center_loss_options(config).process_group(group));
  } catch (const c10::Error& e) {  // a network too large for memory, say
    throw std::runtime_error(fmt::format(
        "cannot build the network of this config (D = {}, {} classes, {}x{} images): {}",
        config.feature_dim, config.classes.size(), config.image_height, config.image_width,
        e.what_without_backtrace()));
  }
  state.optimizer = std::make_unique<torch::optim::SGD>(
      state.model->parameters(), torch::optim::SGDOptions(config.lr)
                                     .momentum(config.momentum)
                                     .weight_decay(config.weight_decay));
  if (config.update == UpdateRule::Gradient) {
    state.center_optimizer = std::make_unique<torch::optim::SGD>(
        state.center_loss->parameters(), torch::optim::SGDOptions(config.center_lr));
  }
  return state;
}

void save_checkpoint(const std::string& path, TrainState& state) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model, center_loss, optimizer;
  state.model->save(model);
  state.center_loss->save(center_loss);
  state.optimizer->save(optimizer);
  archive.write("model", model);
  archive.write("center_loss", center_loss);
  archive.write("optimizer", optimizer);
  if (state.center_optimizer) {
    torch::serialize::OutputArchive center_optimizer;
    state.center_optimizer->save(center_optimizer);
    archive.write("center_optimizer", center_optimizer);
  }
  const at::Tensor rng = at::detail::getDefaultCPUGenerator().get_state();
  const std::string config = to_json(state.config).dump();
  archive.write("epoch", torch::tensor(state.epoch, torch::kLong));
  archive.write("rng", rng);
  archive.write("progress", progress_values(state.progress));
  archive.write("progress_counts", progress_counts(state.progress));
  archive.write("config", c10::IValue(config));
  archive.write("digest", torch::tensor(state_digest(state, rng, config), torch::kLong));

  // Serialised into memory first: LibTorch's archive writer finishes the file in a destructor,
  // and a write that fails there (a full disk) throws from it and aborts the process.
  std::string bytes;
  archive.save_to([&bytes](const void* data, size_t size) {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  try {
    write_file_atomic(path, [&](std::ostream& out) {
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    });
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("cannot write checkpoint '{}': {}; the previous checkpoint "
                                         "there, if any, is unchanged", path, e.what()));
  }
}

namespace {

// Runs `read` on the archive, turning LibTorch's errors (a truncated or foreign file, a missing
// entry) into one message that names the file.
template <typename Read>
auto reading(const std::string& path, Read&& read) {
  try {
    return read();
  } catch (const c10::Error& e) {
    throw std::runtime_error(fmt::format("checkpoint '{}' cannot be loaded: {}", path,
                                         e.what_without_backtrace()));
  }
}

}  // namespace

CheckpointFile::CheckpointFile(std::string path) : path_(std::move(path)) {
  if (!is_file(path_)) throw std::runtime_error("checkpoint '" + path_ + "' does not exist");
  check_zip_records(path_, "checkpoint '" + path_ + "'");
  reading(path_, [&] { archive_.load_from(path_); });
}

std::string CheckpointFile::config_text() {
  return reading(path_, [&] {
    c10::IValue config;
    archive_.read("config", config);
    return config.toStringRef();
  });
}

TrainConfig CheckpointFile::config() {
  const std::string json = config_text();
  TrainConfig config;
  try {
    config = config_from_json(nlohmann::json::parse(json));
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("checkpoint '{}' holds an invalid config: {}", path_, e.what()));
  }
  // The config decides how large a state make_state() allocates: it must agree with the
  // centers the file holds, so that an edited config cannot ask for more than the file backs.
  const at::Tensor centers = reading(path_, [&] {
    torch::serialize::InputArchive center_loss;
    archive_.read("center_loss", center_loss);
    at::Tensor stored;
    center_loss.read("centers", stored);
    return stored;
  });
  const std::vector<int64_t> expected = {static_cast<int64_t>(config.classes.size()), config.feature_dim};
  if (centers.sizes() != at::IntArrayRef(expected) || !centers.is_contiguous()) {
    throw std::runtime_error(fmt::format(
        "checkpoint '{}' is corrupt: its config has {} classes and D = {}, its centers are {}",
        path_, expected[0], expected[1], c10::str(centers.sizes())));
  }
  return config;
}

void CheckpointFile::restore(TrainState& state) {
  reading(path_, [&] {
    torch::serialize::InputArchive model, center_loss, optimizer;
    archive_.read("model", model);
    archive_.read("center_loss", center_loss);
    archive_.read("optimizer", optimizer);
    state.model->load(model);
    state.center_loss->load(center_loss);
    state.optimizer->load(optimizer);
    if (state.center_optimizer) {
      torch::serialize::InputArchive center_optimizer;
      archive_.read("center_optimizer", center_optimizer);
      state.center_optimizer->load(center_optimizer);
    }
    torch::Tensor epoch, rng, digest;
    archive_.read("epoch", epoch);
    archive_.read("rng", rng);
    if (epoch.numel() != 1 || rng.dtype() != torch::kByte) {
      throw std::runtime_error(fmt::format("checkpoint '{}' is corrupt: a malformed epoch or "
                                           "generator state", path_));
    }
    state.epoch = epoch.item<int64_t>();
    if (state.epoch < 0) {
      throw std::runtime_error(fmt::format("checkpoint '{}' is corrupt: epoch {}", path_, state.epoch));
    }
    torch::Tensor values, counts;
    const bool with_progress = archive_.try_read("progress", values);
    if (with_progress) {
      archive_.read("progress_counts", counts);
      try {
        state.progress = progress_from(values, counts);
      } catch (const std::runtime_error& e) {
        throw std::runtime_error(fmt::format("checkpoint '{}' is corrupt: {}", path_, e.what()));
      }
    }
    // Checkpoints written before the digest existed have none: they load unchecked.
    if (archive_.try_read("digest", digest)) {
      const int64_t stored = digest.item<int64_t>(),
                    found = state_digest(state, rng, config_text(), with_progress);
      if (stored != found) {
        throw std::runtime_error(fmt::format(
            "checkpoint '{}' is corrupt: its tensors do not match the CRC-32 stored with them "
            "(stored {:08x}, computed {:08x}); restore it from a copy or start the run again",
            path_, stored, found));
      }
    }
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(rng);
  });
}

}  // namespace centerloss::trainer
