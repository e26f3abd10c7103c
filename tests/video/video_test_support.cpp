#include "video_test_support.h"

#include <algorithm>

namespace anju::video::testing {

std::vector<std::filesystem::path> LfwImages(const std::filesystem::path& lfw, size_t n) {
  std::filesystem::path root = lfw / "lfw";
  if (!std::filesystem::is_directory(root)) root = lfw;
  std::vector<std::filesystem::path> people;
  for (const auto& e : std::filesystem::directory_iterator(root)) {
    if (e.is_directory()) people.push_back(e.path());
  }
  std::sort(people.begin(), people.end());
  std::vector<std::filesystem::path> out;
  for (const auto& person : people) {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(person)) {
      if (e.path().extension() == ".jpg") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      if (out.size() == n) return out;
      out.push_back(f);
    }
  }
  return out;
}

cv::Mat Background(int width, int height) {
  cv::Mat bg(height, width, CV_8UC3);
  for (int y = 0; y < bg.rows; ++y) {
    for (int x = 0; x < bg.cols; ++x) {
      auto v = static_cast<uchar>(60 + y / 4 + ((x / 32 + y / 32) % 2) * 20);
      bg.at<cv::Vec3b>(y, x) = {v, static_cast<uchar>(v + 10), static_cast<uchar>(v + 5)};
    }
  }
  return bg;
}

}  // namespace anju::video::testing
