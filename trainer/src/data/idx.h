// Reader for the IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/):
// a big-endian header (magic 0x0000TTNN: TT = element type, NN = number of dimensions), one
// uint32 size per dimension, then the elements. Files may be raw or gzip-compressed.
#pragma once

#include <torch/types.h>

#include <string>

namespace centerloss::trainer {

// Reads an IDX file of unsigned bytes (type 0x08) with exactly `expected_dims` dimensions
// (3 for images, 1 for labels) and returns a uint8 CPU tensor with the header's sizes.
// Validation is strict; a std::runtime_error names the file and the problem when the file is
// missing or unreadable, is not valid gzip, has a wrong magic number, an element type other
// than ubyte, another number of dimensions, a zero size, fewer data bytes than the header
// announces (truncated) or more (trailing bytes).
torch::Tensor read_idx(const std::string& path, int expected_dims);

// Parses IDX bytes already in memory (what read_idx does after decompressing); `name` is used
// in error messages.
torch::Tensor parse_idx(const std::string& bytes, int expected_dims, const std::string& name);

}  // namespace centerloss::trainer
