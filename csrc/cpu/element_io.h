// How the CPU kernels read and write elements: bit-exact conversions that vectorise, the
// finite check on raw bits, prefetching of center rows read in label order, and the task sizes
// that split a batch across threads.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cpu_variants.h"

// Compiled once per instruction set (CENTERLOSS_CPU_ISA, see cpu_variants.h): each copy gets
// its own namespace, and these helpers internal linkage, so the copies never mix.
namespace centerloss::kernels::CENTERLOSS_CPU_ISA {
namespace {

constexpr int64_t kLanes = 8;          // independent partial sums per row (vectorisable)
constexpr int64_t kColumnBlock = 256;  // columns per center-update task
constexpr int64_t kWorkPerTask = 16384;

template <typename To, typename From>
To bit_cast(From v) {
  static_assert(sizeof(To) == sizeof(From));
  To out;
  std::memcpy(&out, &v, sizeof(To));
  return out;
}

// Io<T>::raw is the type the loops see. For bfloat16 it is the uint16_t bit pattern, converted
// with integer operations that the compiler vectorises (same results as c10::BFloat16: exact
// widening, round-to-nearest-even narrowing, NaN -> 0x7FC0). Exponent masks drive the finite
// check: a value is non-finite exactly when its exponent field is all ones.
template <typename T>
struct Io {  // float, double
  using raw = T;
  using bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  static constexpr bits kExponent = sizeof(T) == 4 ? bits(0x7F800000u) : bits(0x7FF0000000000000ull);
  static T load(T v) { return v; }
  template <typename acc_t>
  static T store(acc_t v) { return static_cast<T>(v); }
};

template <>
struct Io<c10::BFloat16> {
  using raw = uint16_t;
  using bits = uint16_t;
  static constexpr bits kExponent = 0x7F80;
  static float load(uint16_t b) { return bit_cast<float>(static_cast<uint32_t>(b) << 16); }
  template <typename acc_t>
  static uint16_t store(acc_t value) {
    const uint32_t u = bit_cast<uint32_t>(static_cast<float>(value));
    const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return (u & 0x7FFFFFFFu) > 0x7F800000u ? uint16_t(0x7FC0) : static_cast<uint16_t>(rounded);
  }
};

template <>
struct Io<c10::Half> {  // c10's scalar conversions (float16 is not a hot path on CPU)
  using raw = c10::Half;
  using bits = uint16_t;
  static constexpr bits kExponent = 0x7C00;
  static float load(c10::Half v) { return static_cast<float>(v); }
  template <typename acc_t>
  static c10::Half store(acc_t v) { return static_cast<c10::Half>(v); }
};

template <typename T>
const typename Io<T>::raw* raw_ptr(const at::Tensor& t) {
  return reinterpret_cast<const typename Io<T>::raw*>(t.const_data_ptr<T>());
}
template <typename T>
typename Io<T>::raw* raw_mut_ptr(at::Tensor& t) {
  return reinterpret_cast<typename Io<T>::raw*>(t.mutable_data_ptr<T>());
}

template <typename feat_t, typename acc_t>
acc_t read(typename Io<feat_t>::raw v) {
  return static_cast<acc_t>(Io<feat_t>::load(v));
}

// Center rows are read in label order, which is random: fetching the rows a few tasks ahead
// hides the cache and TLB misses that otherwise make a large table (K = 10^6) several times
// slower than a small one. About 8 KiB ahead, at least 4 and at most 32 rows.
template <typename T>
int64_t rows_ahead(int64_t dim) {
  return std::clamp<int64_t>(8192 / (dim * static_cast<int64_t>(sizeof(T))), 4, 32);
}

// A read prefetch also serves rows about to be written: without -mprfchw the compiler drops
// write prefetches altogether.
template <typename T>
void prefetch_span(const T* p, int64_t count) {
  const char* bytes = reinterpret_cast<const char*>(p);
  const int64_t size = count * static_cast<int64_t>(sizeof(T));
  for (int64_t off = 0; off < size; off += 64) __builtin_prefetch(bytes + off, 0, 3);
}

inline int64_t grain_rows(int64_t dim) {
  return std::max<int64_t>(1, kWorkPerTask / std::max<int64_t>(dim, 1));
}

// Runs fn(std::integral_constant<int64_t, W>) with W = D for D <= 4 (unrolled rows), else 0.
template <typename Fn>
void with_small_dim(int64_t dim, Fn&& fn) {
  switch (dim) {
    case 1: fn(std::integral_constant<int64_t, 1>{}); break;
    case 2: fn(std::integral_constant<int64_t, 2>{}); break;
    case 3: fn(std::integral_constant<int64_t, 3>{}); break;
    case 4: fn(std::integral_constant<int64_t, 4>{}); break;
    default: fn(std::integral_constant<int64_t, 0>{}); break;
  }
}


}  // namespace
}  // namespace centerloss::kernels::CENTERLOSS_CPU_ISA
