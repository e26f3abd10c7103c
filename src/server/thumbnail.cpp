#include "server/thumbnail.h"

#include <algorithm>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "server/http/router.h"

namespace anju::server {

std::optional<int> ThumbnailSize(const Request& r) {
  if (!r.Query("size")) return std::nullopt;
  return int(r.QueryInt("size", 0, 16, 1024));
}

std::string Thumbnail(std::string bytes, int size) {
  if (bytes.empty() || size <= 0) return bytes;
  const cv::Mat raw(1, int(bytes.size()), CV_8UC1, bytes.data());
  cv::Mat image;
  try {
    image = cv::imdecode(raw, cv::IMREAD_COLOR);
  } catch (const cv::Exception&) {
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
