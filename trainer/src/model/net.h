// The networks: the paper's LeNets++, a smaller net for quick runs, and a face CNN for colour
// images such as 100x100 or 112x96 face crops. Each returns two outputs, the logits and the
// feature layer the center loss pulls together.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/pimpl.h>

#include <string>

#include "util/enum_names.h"

namespace centerloss::trainer {

enum class Arch {
  LeNetsPP,  // paper: (conv5x5 32, 32) pool (64, 64) pool (128, 128) pool, PReLU, padding 2
  Small,     // one conv per stage, 16 / 32 / 64 channels: about 10x cheaper
  Face       // the paper's face CNN family, scaled for CPU training: see model/face_net.h
};
// "lenetspp" is accepted for shells that mangle "++".
inline constexpr EnumNames<Arch, 4> kArchNames{{{Arch::LeNetsPP, "lenets++"},
                                                {Arch::LeNetsPP, "lenetspp"},
                                                {Arch::Small, "small"},
                                                {Arch::Face, "face"}}};
inline Arch parse_arch(const std::string& name) { return parse_enum(kArchNames, name, "--arch"); }
inline std::string arch_name(Arch arch) { return enum_name(kArchNames, arch); }

struct NetConfig {
  Arch arch = Arch::LeNetsPP;
  int64_t feature_dim = 2;   // D: 2 for pictures, 64 or more for retrieval
  int64_t num_classes = 10;  // K
  int64_t channels = 1;      // input: [N, channels, height, width]
  int64_t height = 28;
  int64_t width = 28;
};

struct NetOutput {
  torch::Tensor logits;    // [N, K] float32
  torch::Tensor features;  // [N, D] float32: the feature layer (LeNets++, small: after its
                           // PReLU, the paper's ip1; face: the linear fc5 output, as the paper's)
};

class FeatureNetImpl : public torch::nn::Module {
 public:
  // Throws std::invalid_argument for sizes below 8, channels other than 1 or 3, D or K < 1.
  explicit FeatureNetImpl(const NetConfig& config);
  // images: [N, C, H, W] float32 (normalize_images output).
  NetOutput forward(const torch::Tensor& images);
  const NetConfig& config() const { return config_; }

 private:
  NetConfig config_;
  torch::nn::Sequential trunk_{nullptr};
  torch::nn::Linear feature_layer_{nullptr};
  torch::nn::PReLU feature_act_{nullptr};  // not for the face net
  torch::nn::Linear classifier_{nullptr};
};
TORCH_MODULE(FeatureNet);

}  // namespace centerloss::trainer
