// What the CUDA kernel files share: warp constants and the device's SM count (cached).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace centerloss::kernels::cuda {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kWarp = 32;

inline int sm_count(c10::DeviceIndex device) {
  static int cached[128] = {};  // benign race: every writer stores the same value
  int& slot = cached[device];
  if (slot == 0) {
    int count = 0;
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
    slot = count;
  }
  return slot;
}

}  // namespace centerloss::kernels::cuda
