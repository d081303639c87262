// Small image folders for the tests, written with OpenCV: a coloured shape per class on a grey
// background, in PNG, JPEG and BMP, colour, grey and RGBA, of mixed sizes; and the bad files a
// user's folder may hold (truncated, corrupt, empty, text named .jpg, decompression bomb).
#pragma once

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <zlib.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "util/fs.h"

namespace fixtures {

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Class k: a filled shape (circle, square, triangle, bar) of colour k on grey, with a little
// position jitter from `variant`, as a BGR image of height x width.
inline cv::Mat shape_image(int k, int variant, int height, int width) {
  static const cv::Scalar colours[] = {{40, 40, 220}, {40, 200, 40}, {220, 60, 40}, {30, 200, 220}};
  cv::Mat image(height, width, CV_8UC3, cv::Scalar(128, 128, 128));
  const int s = std::min(height, width);
  const cv::Point c(width / 2 + (variant % 3 - 1) * s / 10, height / 2 + (variant % 2) * s / 10);
  const cv::Scalar colour = colours[k % 4];
  switch (k % 4) {
    case 0: cv::circle(image, c, s / 3, colour, cv::FILLED); break;
    case 1: cv::rectangle(image, c - cv::Point(s / 3, s / 3), c + cv::Point(s / 3, s / 3), colour, cv::FILLED); break;
    case 2: {
      std::vector<cv::Point> t = {c + cv::Point(0, -s / 3), c + cv::Point(s / 3, s / 3), c + cv::Point(-s / 3, s / 3)};
      cv::fillConvexPoly(image, t, colour);
      break;
    }
    default: cv::rectangle(image, c - cv::Point(s / 3, s / 8), c + cv::Point(s / 3, s / 8), colour, cv::FILLED);
  }
  return image;
}

// Writes `image` (BGR) to `path` (format from the extension), converted to grey (channels 1)
// or with an opaque alpha channel (channels 4) first.
inline void write_image(const std::string& path, const cv::Mat& image, int channels = 3) {
  cv::Mat out = image;
  if (channels == 1) cv::cvtColor(image, out, cv::COLOR_BGR2GRAY);
  if (channels == 4) cv::cvtColor(image, out, cv::COLOR_BGR2BGRA);
  if (!cv::imwrite(path, out)) throw std::runtime_error("cannot write " + path);
}

// DIR/class_a ... with `per_class` images each: PNG and JPEG alternating, every third one grey,
// every fifth RGBA (PNG), sizes varying around height x width; plus a notes.txt to ignore.
inline std::vector<std::string> make_shape_folder(const std::string& dir, int classes, int per_class,
                                                  int height = 40, int width = 40, bool mixed_sizes = true) {
  std::vector<std::string> names;
  for (int k = 0; k < classes; ++k) {
    const std::string name = std::string("class_") + static_cast<char>('a' + k);
    names.push_back(name);
    const std::string class_dir = centerloss::trainer::path_join(dir, name);
    centerloss::trainer::make_dirs(class_dir);
    for (int i = 0; i < per_class; ++i) {
      const int h = mixed_sizes ? height + (i % 3) * 8 : height;
      const int w = mixed_sizes ? width + (i % 2) * 12 : width;
      const int channels = i % 5 == 4 ? 4 : (i % 3 == 2 ? 1 : 3);
      const std::string ext = channels == 4 || i % 2 == 0 ? ".png" : ".jpg";
      char file[64];
      std::snprintf(file, sizeof(file), "%s_%04d%s", name.c_str(), i + 1, ext.c_str());
      write_image(centerloss::trainer::path_join(class_dir, file), shape_image(k, i, h, w), channels);
    }
    std::ofstream(centerloss::trainer::path_join(class_dir, "notes.txt")) << "not an image\n";
  }
  return names;
}

// A PNG whose header claims width x height pixels (a valid signature and IHDR with its CRC,
// then a few bytes of nothing): a decompression bomb's calling card.
inline std::string bomb_png(uint32_t width, uint32_t height) {
  std::string ihdr = "IHDR";
  for (uint32_t v : {width, height}) {
    for (int shift = 24; shift >= 0; shift -= 8) ihdr += static_cast<char>((v >> shift) & 0xFF);
  }
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, deflate, no filter, no interlace
  const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(ihdr.data()), static_cast<uInt>(ihdr.size()));
  std::string png = "\x89PNG\r\n\x1a\n";
  png += std::string("\x00\x00\x00\x0d", 4) + ihdr;
  for (int shift = 24; shift >= 0; shift -= 8) png += static_cast<char>((crc >> shift) & 0xFF);
  return png + std::string(64, '\0');
}

// The bad files of the issue, written into `dir` under these names.
struct BadFiles {
  std::string truncated_jpeg, corrupt_png, empty, text_as_jpeg, bomb;
};

inline BadFiles write_bad_files(const std::string& dir) {
  namespace tr = centerloss::trainer;
  BadFiles f{tr::path_join(dir, "truncated.jpg"), tr::path_join(dir, "corrupt.png"),
             tr::path_join(dir, "empty.png"), tr::path_join(dir, "text.jpg"), tr::path_join(dir, "bomb.png")};
  const cv::Mat image = shape_image(0, 0, 48, 48);
  std::vector<uchar> jpeg, png;
  cv::imencode(".jpg", image, jpeg);
  cv::imencode(".png", image, png);
  write_bytes(f.truncated_jpeg, std::string(jpeg.begin(), jpeg.begin() + static_cast<long>(jpeg.size() / 2)));
  std::string damaged(png.begin(), png.end());
  const size_t idat = damaged.find("IDAT");
  for (size_t i = idat + 8; i < idat + 24 && i < damaged.size(); ++i) damaged[i] = static_cast<char>(~damaged[i]);
  write_bytes(f.corrupt_png, damaged);
  write_bytes(f.empty, "");
  write_bytes(f.text_as_jpeg, "This is a text file, not a JPEG.\n");
  write_bytes(f.bomb, bomb_png(60000, 60000));
  return f;
}

}  // namespace fixtures
