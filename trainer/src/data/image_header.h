// Cheap checks of an image file before a decoder sees it: what it is (from its first bytes, not
// its name), how many pixels its header claims, and, for JPEG, whether the stream reaches its
// end marker. The pixel cap keeps a decompression bomb (a small file whose header claims, say,
// 60000x60000 pixels) from ever reaching an allocation.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace centerloss::trainer {

enum class ImageFormat { Png, Jpeg, Bmp };

struct ImageHeader {
  ImageFormat format = ImageFormat::Png;
  int64_t width = 0;
  int64_t height = 0;
};

// The most pixels an image may claim: 64 megapixels (8000 x 8000). Larger images are refused
// before decoding (a 3-channel image at the cap decodes to 192 MB).
inline constexpr int64_t kMaxImagePixels = 64'000'000;

// A file that is not a usable image. what() is "image 'PATH': REASON".
class BadImageError : public std::runtime_error {
 public:
  BadImageError(const std::string& path, const std::string& reason)
      : std::runtime_error("image '" + path + "': " + reason), path_(path), reason_(reason) {}
  const std::string& path() const { return path_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string path_;
  std::string reason_;
};

// Reads `size` bytes at `offset` into `out`; returns false if the source ends first.
using ByteReader = std::function<bool(uint64_t offset, size_t size, unsigned char* out)>;

// Parses the header of the PNG, JPEG or BMP image that `read` gives access to. Throws
// BadImageError (naming `path`) for an empty file, a file that is none of these formats, a
// header cut short, zero pixels, or more than kMaxImagePixels.
ImageHeader parse_image_header(const ByteReader& read, const std::string& path);

// The same for a file on disk (reads only the bytes the header needs).
ImageHeader read_image_header(const std::string& path);

// The same for a whole file already in memory, and for JPEG also checks that the compressed
// data reaches the end-of-image marker (libjpeg fills a cut-off image with grey instead of
// failing, so a truncated JPEG would otherwise train as a half-grey picture).
ImageHeader check_image_bytes(std::string_view bytes, const std::string& path);

}  // namespace centerloss::trainer
