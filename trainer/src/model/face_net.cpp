#include "model/face_net.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

namespace centerloss::trainer {
namespace {

torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

torch::nn::PReLU prelu(int64_t channels) {
  return torch::nn::PReLU(torch::nn::PReLUOptions().num_parameters(channels));
}

// x + PReLU(conv(PReLU(conv(x)))): the paper's residual unit (identity shortcut).
class ResidualUnitImpl : public torch::nn::Module {
 public:
  explicit ResidualUnitImpl(int64_t channels)
      : body_(register_module("body", torch::nn::Sequential(conv3x3(channels, channels, 1), prelu(channels),
                                                            conv3x3(channels, channels, 1), prelu(channels)))) {}
  torch::Tensor forward(const torch::Tensor& x) { return x + body_->forward(x); }

 private:
  torch::nn::Sequential body_;
};
TORCH_MODULE(ResidualUnit);

}  // namespace

FaceTrunk make_face_trunk(int64_t in_channels, int64_t height, int64_t width) {
  struct Stage {
    int64_t channels;
    int units;
  };
  constexpr Stage kStages[] = {{32, 1}, {64, 2}, {128, 2}, {256, 1}};
  FaceTrunk out;
  out.trunk = torch::nn::Sequential();
  int64_t in = in_channels;
  for (const Stage& stage : kStages) {
    out.trunk->push_back(conv3x3(in, stage.channels, 2));
    out.trunk->push_back(prelu(stage.channels));
    for (int u = 0; u < stage.units; ++u) out.trunk->push_back(ResidualUnit(stage.channels));
    in = stage.channels;
    height = (height + 1) / 2;  // 3x3, stride 2, padding 1: ceil(n / 2)
    width = (width + 1) / 2;
  }
  out.trunk->push_back(torch::nn::Flatten());
  out.out_channels = in;
  out.out_height = height;
  out.out_width = width;
  return out;
}

}  // namespace centerloss::trainer
