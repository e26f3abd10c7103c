// Real face images for the video tests (LFW from the evaluation data).
#pragma once

#include <opencv2/core.hpp>

#include <filesystem>
#include <vector>

namespace anju::video::testing {

// The first N LFW images (sorted by person, then file), or empty without the data.
std::vector<std::filesystem::path> LfwImages(const std::filesystem::path& lfw, size_t n);

// A hallway-like background (vertical gradient, checker texture), 8-bit BGR.
cv::Mat Background(int width = 640, int height = 480);

}  // namespace anju::video::testing
