// Decoding one image file to the network's input size with OpenCV (imgcodecs, imgproc).
//
// Resize then centre-crop: the image is scaled (keeping its aspect ratio) to the smallest size
// that covers height x width (area interpolation when shrinking, bilinear when enlarging),
// then the middle height x width is cut out. An image of the target size is used as it is.
// Channels: 3 gives RGB (grey images repeated, an alpha channel dropped), 1 gives grey
// (OpenCV's luma of colour images). EXIF orientation is not applied: pixels as stored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "data/image_header.h"

namespace centerloss::trainer {

// What the loader yields per sample: [channels, height, width] uint8.
struct ImageShape {
  int64_t channels = 1, height = 0, width = 0;
  int64_t numel() const { return channels * height * width; }
  bool operator==(const ImageShape& o) const {
    return channels == o.channels && height == o.height && width == o.width;
  }
  bool operator!=(const ImageShape& o) const { return !(*this == o); }
};

// "3x100x100"
std::string shape_text(const ImageShape& shape);

// Reads and decodes `path` into `chw` (shape.numel() bytes, channel-major). Throws
// BadImageError naming the file when it cannot be read, fails check_image_bytes (not an image,
// a JPEG cut short, over the pixel limit) or cannot be decoded (corrupt or truncated data).
void decode_image_file(const std::string& path, const ImageShape& shape, uint8_t* chw);

// The same for a file's bytes already in memory; `path` names it in errors.
void decode_image_bytes(std::string_view bytes, const std::string& path, const ImageShape& shape,
                        uint8_t* chw);

// "--image-size": "112x96" (height x width) or "100" (square). Sides in [8, 4096].
// Throws std::invalid_argument naming the option.
std::pair<int64_t, int64_t> parse_image_size(const std::string& text);

}  // namespace centerloss::trainer
