#include "capture/roi.h"

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>

#include "core/error.h"

namespace anju::capture {

Roi::Roi(std::vector<cv::Point2f> vertices) : vertices_(std::move(vertices)) {
  if (vertices_.empty()) return;
  if (vertices_.size() < 3)
    throw Error(ErrorCode::kInvalidArgument,
                "感兴趣区域至少需要 3 个顶点 / roi: a polygon needs at least 3 vertices");
  normalized_ = true;
  for (const auto& v : vertices_) {
    if (!std::isfinite(v.x) || !std::isfinite(v.y) || v.x < 0 || v.y < 0)
      throw Error(ErrorCode::kInvalidArgument,
                  "感兴趣区域坐标无效 / roi: vertices must be finite and non-negative");
    if (v.x > 1 || v.y > 1) normalized_ = false;
  }
}

Roi Roi::FromJson(const nlohmann::json& j) {
  if (j.is_null()) return Roi();
  if (!j.is_array())
    throw Error(ErrorCode::kInvalidArgument,
                "roi 应为 [[x, y], …] / roi must be an array of [x, y] points");
  std::vector<cv::Point2f> v;
  for (const auto& p : j) {
    if (!p.is_array() || p.size() != 2 || !p[0].is_number() || !p[1].is_number())
      throw Error(ErrorCode::kInvalidArgument,
                  "roi 顶点应为 [x, y] / roi: each vertex must be [x, y], got " + p.dump());
    v.emplace_back(p[0].get<float>(), p[1].get<float>());
  }
  return Roi(std::move(v));
}

bool Roi::Contains(cv::Point2f p, cv::Size frame) const {
  if (vertices_.empty()) return true;
  std::vector<cv::Point2f> poly = vertices_;
  if (normalized_)
    for (auto& v : poly) v = {v.x * frame.width, v.y * frame.height};
  return cv::pointPolygonTest(poly, p, false) >= 0;
}

}  // namespace anju::capture
