// The IDX reader (data/idx.h) on any bytes: it returns a uint8 tensor whose sizes the header
// announced and whose elements are the bytes after it, or throws std::runtime_error; never
// anything else. The first input byte picks the expected dimension count; the file reader
// (zlib: raw or gzip) must agree with the in-memory parser on the bytes it decompresses.
#include <torch/torch.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "data/idx.h"
#include "fuzz_memfile.h"
#include "fuzz_target.h"

using centerloss::trainer::parse_idx;
using centerloss::trainer::read_idx;

namespace {

// parse_idx's result, or "" with the error message in `error`.
bool parse(const std::string& bytes, int dims, torch::Tensor& out, std::string& error) {
  try {
    out = parse_idx(bytes, dims, "fuzz");
    return true;
  } catch (const std::runtime_error& e) {
    error = e.what();
    FUZZ_CHECK(error.find("fuzz") != std::string::npos, "message does not name the input: %s",
               error.c_str());
    return false;
  }
}

}  // namespace

CENTERLOSS_FUZZ_TARGET(idx) {
  if (size < 1) return 0;
  const int dims = 1 + data[0] % 4;  // the trainer asks for 1 (labels) or 3 (images)
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  torch::Tensor parsed;
  std::string error;
  if (parse(bytes, dims, parsed, error)) {
    FUZZ_CHECK(parsed.dim() == dims && parsed.scalar_type() == torch::kUInt8, "bad result type");
    const size_t header = 4 + 4 * static_cast<size_t>(dims);
    FUZZ_CHECK(static_cast<size_t>(parsed.numel()) == bytes.size() - header,
               "%zu elements from %zu data bytes", static_cast<size_t>(parsed.numel()),
               bytes.size() - header);
    FUZZ_CHECK(std::memcmp(parsed.data_ptr<uint8_t>(), bytes.data() + header, bytes.size() - header) == 0,
               "elements differ from the file's bytes");
  }
  // The same bytes as a file: not gzip, so zlib passes them through unchanged.
  const bool gzip = bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f &&
                    static_cast<uint8_t>(bytes[1]) == 0x8b;
  MemFile file(bytes.data(), bytes.size());
  try {
    const torch::Tensor read = read_idx(file.path(), dims);
    if (!gzip) {
      FUZZ_CHECK(parsed.defined() && torch::equal(read, parsed), "file reader accepted what the parser refused");
    }
  } catch (const std::runtime_error& e) {
    FUZZ_CHECK(gzip || !parsed.defined(), "file reader refused what the parser accepted: %s", e.what());
  }
  return 0;
}
