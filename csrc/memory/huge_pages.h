// Transparent huge pages for large CPU center tables.
//
// The forward and the center step touch one center row per sample at random places in the
// K x D table. With 4 KiB pages a table of K = 10^6, D = 512 (2 GB) costs a TLB miss per row per
// pass; 2 MiB pages need 512x fewer TLB entries (measured: docs/benchmarks.md, huge pages).
// Values are never changed.
#pragma once

#include <ATen/core/Tensor.h>

namespace centerloss::memory {

// Tables at least this large (bytes) are advised; smaller ones fit the TLB anyway.
constexpr int64_t kHugePageMinBytes = int64_t(64) << 20;

// Asks the kernel (madvise MADV_HUGEPAGE) to back the 2 MiB-aligned interior of a CPU tensor's
// memory with huge pages. Best called before the memory is first written (pages are then
// faulted in as huge pages). Returns whether the advice was given: false for non-CPU or small
// tensors, non-Linux builds, or when the kernel refuses (THP disabled). Never changes values.
bool advise_huge_pages(const at::Tensor& tensor);

}  // namespace centerloss::memory
