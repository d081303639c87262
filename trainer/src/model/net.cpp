#include "model/net.h"

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/pooling.h>
#include <torch/nn/modules/linear.h>

#include <stdexcept>
#include <vector>

namespace centerloss::trainer {

FeatureNetImpl::FeatureNetImpl(const NetConfig& config) : config_(config) {
  if (config.feature_dim < 1 || config.num_classes < 1 || config.image_size < 8) {
    throw std::invalid_argument("FeatureNet: feature_dim and num_classes must be >= 1 and "
                                "image_size >= 8");
  }
  const std::vector<int64_t> channels =
      config.arch == Arch::LeNetsPP ? std::vector<int64_t>{32, 64, 128} : std::vector<int64_t>{16, 32, 64};
  const int convs_per_stage = config.arch == Arch::LeNetsPP ? 2 : 1;
  trunk_ = torch::nn::Sequential();
  int64_t in = 1;
  int64_t size = config.image_size;
  for (int64_t out : channels) {
    for (int i = 0; i < convs_per_stage; ++i) {
      trunk_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 5).padding(2)));
      trunk_->push_back(torch::nn::PReLU(torch::nn::PReLUOptions().num_parameters(out)));
      in = out;
    }
    trunk_->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
    size /= 2;
  }
  trunk_->push_back(torch::nn::Flatten());
  register_module("trunk", trunk_);
  feature_layer_ = register_module("feature", torch::nn::Linear(in * size * size, config.feature_dim));
  feature_act_ = register_module(
      "feature_act", torch::nn::PReLU(torch::nn::PReLUOptions().num_parameters(config.feature_dim)));
  classifier_ = register_module("classifier", torch::nn::Linear(config.feature_dim, config.num_classes));
}

NetOutput FeatureNetImpl::forward(const torch::Tensor& images) {
  torch::Tensor features = feature_act_(feature_layer_(trunk_->forward(images)));
  return {classifier_(features), features};
}

}  // namespace centerloss::trainer
