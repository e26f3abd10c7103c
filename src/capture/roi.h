// Region of interest: a polygon in frame coordinates. A face is considered when the
// centre of its box is inside (edges included). Vertices are pixels, or fractions of the
// frame's width and height when every coordinate is within 0..1 (one config for cameras
// of different resolutions). An empty polygon is the whole frame.
#pragma once

#include <opencv2/core.hpp>

#include <nlohmann/json_fwd.hpp>

#include <vector>

namespace anju::capture {

class Roi {
 public:
  Roi() = default;
  // At least 3 vertices; throws Error(kInvalidArgument) otherwise.
  explicit Roi(std::vector<cv::Point2f> vertices);
  // [[x, y], …] or an empty array / null (whole frame).
  static Roi FromJson(const nlohmann::json& j);

  bool empty() const { return vertices_.empty(); }
  bool normalized() const { return normalized_; }
  const std::vector<cv::Point2f>& vertices() const { return vertices_; }
  bool Contains(cv::Point2f p, cv::Size frame) const;
  bool Contains(const cv::Rect2f& box, cv::Size frame) const {
    return Contains(cv::Point2f(box.x + box.width / 2, box.y + box.height / 2), frame);
  }

 private:
  std::vector<cv::Point2f> vertices_;
  bool normalized_ = false;
};

}  // namespace anju::capture
