// The face CNN trunk (--arch face), after the network of Wen et al. 2016 (Fig. 5: convolutions
// with residual units and PReLU, then the fc5 feature layer) and its SphereFace-20 relative,
// narrowed so that it trains on CPU in minutes: four stages, each a 3x3 convolution of stride 2
// (halving height and width) followed by residual units of two 3x3 convolutions:
//
//   stage   channels   residual units   100x100 input -> output
//   1       32         1                50x50
//   2       64         2                25x25
//   3       128        2                13x13
//   4       256        1                7x7
//
// Every convolution is followed by a PReLU with one slope per channel; no batch norm (as the
// paper's net). The trunk ends flattened; the feature layer (fc5, linear) follows in FeatureNet.
#pragma once

#include <torch/nn/modules/container/sequential.h>

#include <cstdint>

namespace centerloss::trainer {

struct FaceTrunk {
  torch::nn::Sequential trunk;
  int64_t out_channels = 0;
  int64_t out_height = 0;
  int64_t out_width = 0;
};

FaceTrunk make_face_trunk(int64_t in_channels, int64_t height, int64_t width);

}  // namespace centerloss::trainer
