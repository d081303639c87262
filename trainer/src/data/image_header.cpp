// Header parsing only: the pixels are decoded by OpenCV (data/image_decode.cpp).
#include "data/image_header.h"

#include <fmt/format.h>

#include <cstring>
#include <fstream>

namespace centerloss::trainer {
namespace {

uint32_t big_endian(const unsigned char* p, int bytes) {
  uint32_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

uint32_t little_endian(const unsigned char* p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

ImageHeader png_header(const ByteReader& read, const std::string& path) {
  // signature (8), then the first chunk, which must be IHDR: length (4), type (4), width, height
  unsigned char h[24];
  if (!read(0, sizeof(h), h)) throw BadImageError(path, "PNG header cut short");
  if (std::memcmp(h + 12, "IHDR", 4) != 0) throw BadImageError(path, "PNG without an IHDR chunk first");
  return {ImageFormat::Png, big_endian(h + 16, 4), big_endian(h + 20, 4)};
}

bool is_sof(unsigned char marker) {  // start of frame: C0-CF except DHT (C4), JPG (C8), DAC (CC)
  return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
}

// Walks the marker segments from SOI to the first frame header (SOF), which holds the size.
ImageHeader jpeg_header(const ByteReader& read, const std::string& path) {
  uint64_t at = 2;  // after SOI
  unsigned char m[2];
  while (true) {
    if (!read(at, 2, m)) throw BadImageError(path, "JPEG cut short before its frame header");
    if (m[0] != 0xFF) throw BadImageError(path, fmt::format("JPEG: no marker at byte {}", at));
    if (m[1] == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    at += 2;
    if (m[1] == 0x01 || (m[1] >= 0xD0 && m[1] <= 0xD7)) continue;  // markers without a length
    if (m[1] == 0xD8 || m[1] == 0xD9 || m[1] == 0xDA) {
      throw BadImageError(path, "JPEG without a frame header before its image data");
    }
    unsigned char segment[7];  // length (2), then for SOF: precision (1), height (2), width (2)
    if (!read(at, is_sof(m[1]) ? 7 : 2, segment)) {
      throw BadImageError(path, "JPEG cut short before its frame header");
    }
    const uint32_t length = big_endian(segment, 2);
    if (length < 2) throw BadImageError(path, fmt::format("JPEG: bad segment length at byte {}", at));
    if (is_sof(m[1])) {
      return {ImageFormat::Jpeg, big_endian(segment + 5, 2), big_endian(segment + 3, 2)};
    }
    at += length;
  }
}

ImageHeader bmp_header(const ByteReader& read, const std::string& path) {
  unsigned char h[26];
  if (!read(0, 18, h)) throw BadImageError(path, "BMP header cut short");
  const uint32_t info_size = little_endian(h + 14, 4);
  if (info_size == 12) {  // OS/2 BITMAPCOREHEADER: 16-bit sizes
    if (!read(0, 22, h)) throw BadImageError(path, "BMP header cut short");
    return {ImageFormat::Bmp, little_endian(h + 18, 2), little_endian(h + 20, 2)};
  }
  if (info_size < 40 || !read(0, 26, h)) throw BadImageError(path, "BMP header cut short or unknown");
  const auto width = static_cast<int32_t>(little_endian(h + 18, 4));
  const auto height = static_cast<int32_t>(little_endian(h + 22, 4));  // < 0: stored top-down
  return {ImageFormat::Bmp, width < 0 ? -int64_t{width} : width, height < 0 ? -int64_t{height} : height};
}

// Scans the entropy-coded data after the first SOS for the EOI marker. In that data a 0xFF byte
// is followed by 0x00 (a stuffed byte), a restart marker or another 0xFF; any other marker
// (progressive JPEGs have several scans) is a segment with a length, which is skipped.
bool jpeg_reaches_end(std::string_view bytes) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t at = 2;
  bool in_scan = false;
  while (at + 1 < n) {
    if (!in_scan) {  // header segments: marker, length
      if (data[at] != 0xFF) return false;
      const unsigned char marker = data[at + 1];
      if (marker == 0xFF) {
        ++at;
        continue;
      }
      if (marker == 0xD9) return true;
      if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
        at += 2;
        continue;
      }
      if (at + 3 >= n) return false;
      at += 2 + big_endian(data + at + 2, 2);
      in_scan = marker == 0xDA;
      continue;
    }
    const void* ff = std::memchr(data + at, 0xFF, n - at);
    if (ff == nullptr) return false;
    at = static_cast<size_t>(static_cast<const unsigned char*>(ff) - data);
    if (at + 1 >= n) return false;
    const unsigned char next = data[at + 1];
    if (next == 0x00 || next == 0xFF || (next >= 0xD0 && next <= 0xD7)) {
      at += next == 0xFF ? 1 : 2;
    } else {
      in_scan = false;  // a marker: EOI, or the segments before the next scan
    }
  }
  return false;
}

}  // namespace

ImageHeader parse_image_header(const ByteReader& read, const std::string& path) {
  unsigned char magic[8];
  if (!read(0, 1, magic)) throw BadImageError(path, "empty file (0 bytes)");
  const bool long_enough = read(0, sizeof(magic), magic);
  ImageHeader header;
  if (long_enough && std::memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0) {
    header = png_header(read, path);
  } else if (long_enough && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) {
    header = jpeg_header(read, path);
  } else if (long_enough && magic[0] == 'B' && magic[1] == 'M') {
    header = bmp_header(read, path);
  } else {
    throw BadImageError(path, "not a PNG, JPEG or BMP image (its first bytes match none of "
                              "these formats, whatever its name says)");
  }
  if (header.width <= 0 || header.height <= 0) {
    throw BadImageError(path, fmt::format("header claims {}x{} pixels", header.width, header.height));
  }
  // Divided, not multiplied: two sides just below 2^32 overflow int64 (found by fuzz_image).
  if (header.width > kMaxImagePixels / header.height) {
    throw BadImageError(path, fmt::format("header claims {}x{} pixels ({:.0f} megapixels), over the "
                                          "limit of {} megapixels (refused before decoding)",
                                          header.width, header.height,
                                          1e-6 * static_cast<double>(header.width) *
                                              static_cast<double>(header.height),
                                          kMaxImagePixels / 1'000'000));
  }
  return header;
}

ImageHeader read_image_header(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw BadImageError(path, "cannot be opened");
  return parse_image_header(
      [&](uint64_t offset, size_t size, unsigned char* out) {
        file.clear();
        file.seekg(static_cast<std::streamoff>(offset));
        file.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(size));
        return file.gcount() == static_cast<std::streamsize>(size);
      },
      path);
}

ImageHeader check_image_bytes(std::string_view bytes, const std::string& path) {
  const ImageHeader header = parse_image_header(
      [&](uint64_t offset, size_t size, unsigned char* out) {
        if (offset > bytes.size() || bytes.size() - offset < size) return false;
        std::memcpy(out, bytes.data() + offset, size);
        return true;
      },
      path);
  if (header.format == ImageFormat::Jpeg && !jpeg_reaches_end(bytes)) {
    throw BadImageError(path, "JPEG data ends before its end-of-image marker (truncated file)");
  }
  return header;
}

}  // namespace centerloss::trainer
