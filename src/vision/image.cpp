#include "vision/image.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "vision/image_probe.h"

namespace anju::vision {
namespace {

[[noreturn]] void Bad(const std::string& why) {
  throw Error(ErrorCode::kBadImage, "图像无效 / bad image: " + why);
}

}  // namespace

cv::Mat DecodeImage(std::span<const uint8_t> bytes, const ImageLimits& limits) {
  if (bytes.empty()) Bad("empty data");
  if (bytes.size() > limits.max_bytes)
    Bad("file too large (" + std::to_string(bytes.size()) + " bytes)");
  // Everything below is decided from the header alone, before any decoder runs (R3.3.1.1
  // validation; uploads are untrusted): the format by content, the size, the number of JPEG scans.
  const ImageProbe probe = ProbeImage(bytes);
  if (!IsAcceptedFormat(probe.format))
    throw Error(ErrorCode::kBadImage, std::string("不支持的图像格式 / unsupported image format: ") +
                                          ImageFormatName(probe.format) +
                                          " (只接受 JPEG、PNG、BMP / accepted: JPEG, "
                                          "PNG, BMP)");
  if (!probe.problem.empty()) Bad(probe.problem);
  const int64_t w = probe.width, h = probe.height;
  if (w <= 0 || h <= 0) Bad("zero size in header");
  if (w > limits.max_side || h > limits.max_side || w * h > limits.max_pixels)
    throw Error(ErrorCode::kBadImage, "图像尺寸超出限制 / image too large: " + std::to_string(w) +
                                          "x" + std::to_string(h) + " in its header (limit " +
                                          std::to_string(limits.max_side) + " px per side, " +
                                          std::to_string(limits.max_pixels) + " pixels)");
  // Each progressive scan is a pass over the whole image: thousands of tiny scans make a
  // small file cost minutes of CPU. Encoders write about 10.
  if (probe.jpeg_scans > limits.max_jpeg_scans)
    Bad("JPEG with " + std::to_string(probe.jpeg_scans) + " scans (limit " +
        std::to_string(limits.max_jpeg_scans) + ")");
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
  // EXIF orientation may swap the sides; anything else means the header lied.
  if (!(img.cols == w && img.rows == h) && !(img.cols == h && img.rows == w))
    Bad("decoded size " + std::to_string(img.cols) + "x" + std::to_string(img.rows) +
        " differs from the header's");
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
