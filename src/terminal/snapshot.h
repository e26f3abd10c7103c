// JPEG snapshots for records and alarms: the face with some context, or the whole frame.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <vector>

namespace anju::terminal {

// The face box enlarged 1.6× (kept inside the frame), as JPEG of QUALITY (1..100).
std::vector<uint8_t> FaceSnapshot(const cv::Mat& frame, const cv::Rect2f& box, int quality);
// The whole frame as JPEG.
std::vector<uint8_t> FrameSnapshot(const cv::Mat& frame, int quality);

}  // namespace anju::terminal
