#include "model/net.h"

#include <fmt/format.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/pooling.h>
#include <torch/nn/modules/linear.h>

#include <stdexcept>
#include <vector>

#include "model/face_net.h"

namespace centerloss::trainer {

FeatureNetImpl::FeatureNetImpl(const NetConfig& config) : config_(config) {
  if (config.feature_dim < 1 || config.num_classes < 1 || config.height < 8 || config.width < 8 ||
      (config.channels != 1 && config.channels != 3)) {
    throw std::invalid_argument(fmt::format(
        "FeatureNet: feature_dim and num_classes must be >= 1, channels 1 or 3 and height and "
        "width >= 8 (got D={}, K={}, {}x{}x{})", config.feature_dim, config.num_classes,
        config.channels, config.height, config.width));
  }
  int64_t in = config.channels, height = config.height, width = config.width;
  if (config.arch == Arch::Face) {
    FaceTrunk face = make_face_trunk(in, height, width);
    trunk_ = face.trunk;
    in = face.out_channels;
    height = face.out_height;
    width = face.out_width;
  } else {
    const std::vector<int64_t> channels = config.arch == Arch::LeNetsPP
                                              ? std::vector<int64_t>{32, 64, 128}
                                              : std::vector<int64_t>{16, 32, 64};
    const int convs_per_stage = config.arch == Arch::LeNetsPP ? 2 : 1;
    trunk_ = torch::nn::Sequential();
    for (int64_t out : channels) {
      for (int i = 0; i < convs_per_stage; ++i) {
        trunk_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 5).padding(2)));
        trunk_->push_back(torch::nn::PReLU(torch::nn::PReLUOptions().num_parameters(out)));
        in = out;
      }
      trunk_->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
      height /= 2;
      width /= 2;
    }
    trunk_->push_back(torch::nn::Flatten());
  }
  register_module("trunk", trunk_);
  feature_layer_ = register_module("feature", torch::nn::Linear(in * height * width, config.feature_dim));
  if (config.arch != Arch::Face) {
    feature_act_ = register_module(
        "feature_act", torch::nn::PReLU(torch::nn::PReLUOptions().num_parameters(config.feature_dim)));
  }
  classifier_ = register_module("classifier", torch::nn::Linear(config.feature_dim, config.num_classes));
}

NetOutput FeatureNetImpl::forward(const torch::Tensor& images) {
  torch::Tensor features = feature_layer_(trunk_->forward(images));
  if (feature_act_) features = feature_act_(features);
  return {classifier_(features), features};
}

}  // namespace centerloss::trainer
