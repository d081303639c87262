// The image-folder loader's file handling (data/image_header.h, data/image_decode.h) on any
// bytes: the header check and the decoder either throw BadImageError naming the file, or give
// a header within the pixel cap and an output that is fully written and the same every time.
// Input: byte 0 picks the channels (odd: RGB, even: grey), bytes 1 and 2 the output height and
// width (8 to 64 pixels), the rest is the file.
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "data/image_decode.h"
#include "data/image_header.h"
#include "fuzz_target.h"

using namespace centerloss::trainer;

namespace {
constexpr const char* kPath = "fuzz.img";

bool names_the_file(const BadImageError& e) {
  return std::string(e.what()).rfind(std::string("image '") + kPath + "': ", 0) == 0;
}
}  // namespace

CENTERLOSS_FUZZ_TARGET(image) {
  if (size < 3) return 0;
  const ImageShape shape{data[0] % 2 == 1 ? 3 : 1, 8 + data[1] % 57, 8 + data[2] % 57};
  const std::string_view file(reinterpret_cast<const char*>(data) + 3, size - 3);
  try {
    const ImageHeader header = check_image_bytes(file, kPath);
    FUZZ_CHECK(header.width >= 1 && header.height >= 1 &&
                   header.width * header.height <= kMaxImagePixels,
               "accepted a header of %lld x %lld pixels", static_cast<long long>(header.width),
               static_cast<long long>(header.height));
  } catch (const BadImageError& e) {
    FUZZ_CHECK(names_the_file(e), "message does not name the file: %s", e.what());
    return 0;
  }
  // Decoded twice into buffers that start different: every byte written, the same both times.
  std::vector<uint8_t> first(static_cast<size_t>(shape.numel()), 0x00);
  std::vector<uint8_t> second(first.size(), 0xFF);
  try {
    decode_image_bytes(file, kPath, shape, first.data());
  } catch (const BadImageError& e) {
    FUZZ_CHECK(names_the_file(e), "message does not name the file: %s", e.what());
    return 0;
  }
  decode_image_bytes(file, kPath, shape, second.data());  // decoded once: must decode again
  FUZZ_CHECK(std::memcmp(first.data(), second.data(), first.size()) == 0,
             "a %s image decoded to different or partly unwritten pixels",
             shape_text(shape).c_str());
  return 0;
}
