// dtype dispatch shared by the CPU and CUDA kernels: features float32/float64/float16/bfloat16
// times centers float32/float64, so each kernel is written once as a template.
#pragma once

#include <ATen/Dispatch.h>

// Runs the lambda given last with feat_t and center_t bound to the tensors' element types.
#define CENTERLOSS_DISPATCH_TYPES(features, centers, name, ...)                                \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, (features).scalar_type(), name,    \
                                  [&] {                                                        \
                                    using feat_t = scalar_t;                                   \
                                    if ((centers).scalar_type() == at::kDouble) {              \
                                      using center_t = double;                                 \
                                      __VA_ARGS__();                                           \
                                    } else {                                                   \
                                      using center_t = float;                                  \
                                      __VA_ARGS__();                                           \
                                    }                                                          \
                                  })
