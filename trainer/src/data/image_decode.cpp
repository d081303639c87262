#include "data/image_decode.h"

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <stdexcept>

namespace centerloss::trainer {
namespace {

// The loader decodes one image per thread: OpenCV's own thread pool would only oversubscribe
// the cores, and its log lines would repeat what our errors say.
void configure_opencv() {
  static std::once_flag once;
  std::call_once(once, [] {
    cv::setNumThreads(0);
    cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  });
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BadImageError(path, "cannot be opened");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw BadImageError(path, "read error");
  return bytes;
}

// Scale to cover height x width, then cut out the middle.
cv::Mat resize_and_crop(const cv::Mat& image, int height, int width) {
  if (image.rows == height && image.cols == width) return image;
  const double scale = std::max(static_cast<double>(height) / image.rows,
                                static_cast<double>(width) / image.cols);
  const int h = std::max(height, static_cast<int>(std::lround(image.rows * scale)));
  const int w = std::max(width, static_cast<int>(std::lround(image.cols * scale)));
  cv::Mat resized;
  cv::resize(image, resized, cv::Size(w, h), 0, 0, scale < 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR);
  return resized(cv::Rect((w - width) / 2, (h - height) / 2, width, height));
}

}  // namespace

std::string shape_text(const ImageShape& shape) {
  return fmt::format("{}x{}x{}", shape.channels, shape.height, shape.width);
}

void decode_image_bytes(std::string_view bytes, const std::string& path, const ImageShape& shape,
                        uint8_t* chw) {
  configure_opencv();
  if (bytes.size() > (size_t{1} << 30)) throw BadImageError(path, "file over 1 GB");
  check_image_bytes(bytes, path);  // format, pixel limit, JPEG completeness: before any decoding
  const int flags = (shape.channels == 3 ? cv::IMREAD_COLOR : cv::IMREAD_GRAYSCALE) |
                    cv::IMREAD_IGNORE_ORIENTATION;
  cv::Mat image;
  try {
    const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8UC1,
                         const_cast<char*>(bytes.data()));
    image = cv::imdecode(buffer, flags);
  } catch (const cv::Exception& e) {
    throw BadImageError(path, std::string("cannot be decoded: ") + e.what());
  }
  if (image.empty()) throw BadImageError(path, "cannot be decoded (corrupt or truncated data)");
  cv::Mat out = resize_and_crop(image, static_cast<int>(shape.height), static_cast<int>(shape.width));
  const int64_t plane = shape.height * shape.width;
  // OpenCV's pixels are interleaved BGR; the network's channels are planes in RGB order.
  for (int64_t y = 0; y < shape.height; ++y) {
    const uint8_t* row = out.ptr<uint8_t>(static_cast<int>(y));
    for (int64_t x = 0; x < shape.width; ++x) {
      for (int64_t c = 0; c < shape.channels; ++c) {
        chw[(shape.channels - 1 - c) * plane + y * shape.width + x] = row[x * shape.channels + c];
      }
    }
  }
}

void decode_image_file(const std::string& path, const ImageShape& shape, uint8_t* chw) {
  decode_image_bytes(read_file(path), path, shape, chw);
}

std::pair<int64_t, int64_t> parse_image_size(const std::string& text) {
  const auto bad = [&] {
    return std::invalid_argument(fmt::format(
        "--image-size: expected HEIGHTxWIDTH (e.g. 112x96) or one side for a square, sides from "
        "8 to 4096; got '{}'", text));
  };
  const size_t x = text.find('x');
  const std::string first = text.substr(0, x);
  const std::string second = x == std::string::npos ? first : text.substr(x + 1);
  int64_t sides[2] = {0, 0};
  const std::string parts[2] = {first, second};
  for (int i = 0; i < 2; ++i) {
    if (parts[i].empty() || parts[i].size() > 4 ||
        !std::all_of(parts[i].begin(), parts[i].end(), [](char c) { return c >= '0' && c <= '9'; })) {
      throw bad();
    }
    sides[i] = std::stoll(parts[i]);
    if (sides[i] < 8 || sides[i] > 4096) throw bad();
  }
  return {sides[0], sides[1]};
}

}  // namespace centerloss::trainer
