// IDX parsing with strict checks. zlib's gz* functions read raw and gzip files alike.
#include "data/idx.h"

#include <fmt/format.h>
#include <zlib.h>

#include <cstring>
#include <stdexcept>
#include <vector>

#include "util/fs.h"

namespace centerloss::trainer {
namespace {

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw std::runtime_error(fmt::format("IDX file '{}': {}", name, what));
}

uint32_t big_endian_u32(const std::string& bytes, size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + offset);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string read_all(const std::string& path) {
  if (!is_file(path)) fail(path, "no such file");
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) fail(path, "cannot be opened");
  std::string bytes;
  std::vector<char> chunk(1 << 20);
  while (true) {
    const int n = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      const std::string message = gzerror(file, &code);
      gzclose(file);
      fail(path, "read error (" + message + ")");
    }
    if (n == 0) break;
    bytes.append(chunk.data(), static_cast<size_t>(n));
  }
  // A gzip stream cut short reads as a short file; zlib reports it only through gzerror.
  int code = Z_OK;
  const std::string message = gzerror(file, &code);
  gzclose(file);
  if (code != Z_OK && code != Z_STREAM_END) fail(path, "corrupt gzip data (" + message + ")");
  return bytes;
}

}  // namespace

torch::Tensor parse_idx(const std::string& bytes, int expected_dims, const std::string& name) {
  if (bytes.size() < 4) fail(name, fmt::format("only {} bytes, too short for a header", bytes.size()));
  const auto* head = reinterpret_cast<const unsigned char*>(bytes.data());
  if (head[0] != 0 || head[1] != 0) {
    fail(name, fmt::format("bad magic number 0x{:02x}{:02x}{:02x}{:02x} (expected 0x0000TTNN)",
                           head[0], head[1], head[2], head[3]));
  }
  if (head[2] != 0x08) {
    fail(name, fmt::format("element type 0x{:02x} is not supported (expected 0x08, unsigned byte)",
                           head[2]));
  }
  if (head[3] != expected_dims) {
    fail(name, fmt::format("has {} dimensions, expected {} (magic 0x{:08x})", head[3],
                           expected_dims, 0x800 + expected_dims));
  }
  const size_t header = 4 + 4 * static_cast<size_t>(expected_dims);
  if (bytes.size() < header) fail(name, "truncated header");
  std::vector<int64_t> sizes;
  uint64_t count = 1;
  const uint64_t available = bytes.size() - header;
  for (int d = 0; d < expected_dims; ++d) {
    const uint32_t size = big_endian_u32(bytes, 4 + 4 * static_cast<size_t>(d));
    if (size == 0) fail(name, fmt::format("dimension {} has size 0", d));
    sizes.push_back(size);
    count *= size;  // cannot overflow: checked against the file size at each step
    if (count > available) {
      fail(name, fmt::format("truncated: the header announces more data than the {} bytes present",
                             available));
    }
  }
  if (count < available) {
    fail(name, fmt::format("size mismatch: {} data bytes for {} elements ({} trailing bytes)",
                           available, count, available - count));
  }
  torch::Tensor out = torch::empty(sizes, torch::kUInt8);
  std::memcpy(out.data_ptr<uint8_t>(), bytes.data() + header, count);
  return out;
}

torch::Tensor read_idx(const std::string& path, int expected_dims) {
  return parse_idx(read_all(path), expected_dims, path);
}

}  // namespace centerloss::trainer
