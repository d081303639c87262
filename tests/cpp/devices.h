// The devices the op tests run on: CPU always, CUDA where a GPU and this build's CUDA kernels
// exist (skipped otherwise). A test fixture derived from OnDevice runs once per device.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "centerloss/ops.h"

namespace centerloss::testing {

inline bool device_available(torch::DeviceType type) {
  return type == torch::kCPU || (torch::cuda::is_available() && centerloss::has_cuda_kernels());
}

inline std::string device_name(torch::DeviceType type) {
  return type == torch::kCPU ? "cpu" : "cuda";
}

// In a test body or SetUp: skips the test when `type` is not available here.
#define CENTERLOSS_SKIP_UNLESS_AVAILABLE(type)                                  \
  if (!::centerloss::testing::device_available(type)) {                         \
    GTEST_SKIP() << "no CUDA device (or centerloss built without CUDA kernels)"; \
  }

inline torch::Device device_of(torch::DeviceType type) {
  return type == torch::kCPU ? torch::Device(torch::kCPU) : torch::Device(torch::kCUDA, 0);
}

// A test run once per device (instantiate it with kEveryDevice and device_test_name).
class OnDevice : public ::testing::TestWithParam<torch::DeviceType> {
 protected:
  void SetUp() override { CENTERLOSS_SKIP_UNLESS_AVAILABLE(GetParam()); }
  torch::Device device() const { return device_of(GetParam()); }
  torch::TensorOptions on_device(torch::ScalarType dtype = torch::kFloat) const {
    return torch::TensorOptions(device()).dtype(dtype);
  }
};

inline const auto kEveryDevice = ::testing::Values(torch::kCPU, torch::kCUDA);

inline std::string device_test_name(const ::testing::TestParamInfo<torch::DeviceType>& info) {
  return device_name(info.param);
}

}  // namespace centerloss::testing
