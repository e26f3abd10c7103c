#include "vision/image.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace anju::vision {
namespace {

[[noreturn]] void Bad(const std::string& why) {
  throw Error(ErrorCode::kBadImage, "图像无效 / bad image: " + why);
}

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Reads width/height from the header without decoding pixels, so a decompression
// bomb is refused before any memory is committed. Returns false if unknown.
bool PeekSize(std::span<const uint8_t> b, int64_t* w, int64_t* h) {
  if (b.size() >= 24 && b[0] == 0x89 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G') {
    *w = Be32(&b[16]);
    *h = Be32(&b[20]);
    return true;
  }
  if (b.size() >= 26 && b[0] == 'B' && b[1] == 'M') {
    int32_t bw, bh;
    std::memcpy(&bw, &b[18], 4);
    std::memcpy(&bh, &b[22], 4);
    *w = std::abs(int64_t{bw});
    *h = std::abs(int64_t{bh});
    return true;
  }
  if (b.size() >= 4 && b[0] == 0xFF && b[1] == 0xD8) {
    size_t i = 2;
    while (i + 9 < b.size()) {
      if (b[i] != 0xFF) return false;
      uint8_t marker = b[i + 1];
      if (marker == 0xFF) {
        ++i;
        continue;
      }
      size_t len = (size_t{b[i + 2]} << 8) | b[i + 3];
      bool sof =
          marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
      if (sof) {
        *h = (int64_t{b[i + 5]} << 8) | b[i + 6];
        *w = (int64_t{b[i + 7]} << 8) | b[i + 8];
        return true;
      }
      i += 2 + len;
    }
  }
  return false;
}

// libjpeg only warns about a missing end, and OpenCV then returns a half-grey image;
// a JPEG without its EOI marker near the end is treated as truncated.
bool JpegLooksTruncated(std::span<const uint8_t> b) {
  if (b.size() < 4 || b[0] != 0xFF || b[1] != 0xD8) return false;
  size_t start = b.size() > 4096 ? b.size() - 4096 : 2;
  for (size_t i = b.size() - 2; i + 1 > start; --i)
    if (b[i] == 0xFF && b[i + 1] == 0xD9) return false;
  return true;
}

}  // namespace

cv::Mat DecodeImage(std::span<const uint8_t> bytes, const ImageLimits& limits) {
  if (bytes.empty()) Bad("empty data");
  if (bytes.size() > limits.max_bytes)
    Bad("file too large (" + std::to_string(bytes.size()) + " bytes)");
  int64_t w = 0, h = 0;
  if (PeekSize(bytes, &w, &h)) {
    if (w <= 0 || h <= 0) Bad("zero size in header");
    if (w > limits.max_side || h > limits.max_side || w * h > limits.max_pixels)
      Bad("image too large (" + std::to_string(w) + "x" + std::to_string(h) + ")");
  }
  if (JpegLooksTruncated(bytes)) Bad("truncated JPEG (no end marker)");
  cv::Mat img;
  try {
    cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<uint8_t*>(bytes.data()));
    img = cv::imdecode(buf, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    Bad(std::string("decoder failed: ") + e.what());
  }
  if (img.empty()) Bad("unsupported or corrupt image data");
  if (img.cols < limits.min_side || img.rows < limits.min_side)
    Bad("image too small (" + std::to_string(img.cols) + "x" + std::to_string(img.rows) + ")");
  if (int64_t{img.cols} * img.rows > limits.max_pixels) Bad("image too large");
  return img;
}

cv::Mat LoadImage(const std::filesystem::path& path, const ImageLimits& limits) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec)
    throw Error(ErrorCode::kNotFound, "cannot open image " + path.string() + ": " + ec.message());
  if (size > limits.max_bytes) Bad(path.string() + " is too large");
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> data(size);
  if (!in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(size)))
    throw Error(ErrorCode::kIo, "cannot read image " + path.string());
  try {
    return DecodeImage(data, limits);
  } catch (const Error& e) {
    throw Error(e.code(), std::string(e.what()) + " (" + path.string() + ")");
  }
}

}  // namespace anju::vision
