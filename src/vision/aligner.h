// Similarity alignment of the 5 points to the 112×112 ArcFace template.
#pragma once

#include <opencv2/core.hpp>

#include "vision/types.h"

namespace anju::vision {

constexpr int kAlignedSize = 112;

// Least-squares similarity (rotation, uniform scale, translation; no reflection)
// mapping `from` onto `to` (Umeyama 1991). Returns a 2×3 CV_64F matrix.
cv::Mat EstimateSimilarity(const std::vector<cv::Point2f>& from,
                           const std::vector<cv::Point2f>& to);

// The 112×112 BGR crop the embedder expects.
cv::Mat AlignFace(const cv::Mat& bgr, const Points5& points);

const Points5& ArcFaceTemplate();

}  // namespace anju::vision
