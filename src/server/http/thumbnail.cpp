#include "server/http/thumbnail.h"

#include <algorithm>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "server/http/router.h"
#include "vision/image.h"

namespace anju::server {

std::optional<int> ThumbnailSize(const Request& r) {
  if (!r.Query("size")) return std::nullopt;
  return int(r.QueryInt("size", 0, 16, 1024));
}

std::string Thumbnail(std::string bytes, int size) {
  if (bytes.empty() || size <= 0) return bytes;
  // Through image intake (vision/image.h): a stored snapshot whose header claims a huge
  // size, or a format nobody uploads, is sent as it is instead of being decoded.
  cv::Mat image;
  try {
    image = vision::DecodeImage(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  } catch (const std::exception&) {
    return bytes;
  }
  if (image.empty() || std::max(image.cols, image.rows) <= size) return bytes;
  const double scale = double(size) / std::max(image.cols, image.rows);
  cv::Mat small;
  cv::resize(
      image, small,
      cv::Size(std::max(1, cvRound(image.cols * scale)), std::max(1, cvRound(image.rows * scale))),
      0, 0, cv::INTER_AREA);
  std::vector<uint8_t> out;
  if (!cv::imencode(".jpg", small, out, {cv::IMWRITE_JPEG_QUALITY, 85})) return bytes;
  return std::string(out.begin(), out.end());
}

std::string SizedImage(const Request& r, std::string bytes) {
  const auto size = ThumbnailSize(r);
  return size ? Thumbnail(std::move(bytes), *size) : bytes;
}

}  // namespace anju::server
