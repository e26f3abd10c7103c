// Image input: every decoder entry point in anju goes through here, so that broken,
// truncated or oversized images fail the same way (Error kBadImage) and never crash.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <filesystem>
#include <span>

namespace anju::vision {

struct ImageLimits {
  size_t max_bytes = 64u << 20;     // encoded size
  int max_side = 12000;             // pixels
  int64_t max_pixels = 50'000'000;  // decoded width × height
  int min_side = 16;
  int max_jpeg_scans = 100;  // progressive JPEG scans (encoders write about 10)
};

// Decodes JPEG / PNG / BMP (by content, not by name) into 8-bit BGR; greyscale
// input is expanded to three channels. The format and the size are read from the header
// first (image_probe.h): every other format (GIF, TIFF, WebP, JPEG 2000 …) and a header
// beyond LIMITS are refused with Error(kBadImage) before any decoder runs.
cv::Mat DecodeImage(std::span<const uint8_t> bytes, const ImageLimits& limits = {});
cv::Mat LoadImage(const std::filesystem::path& path, const ImageLimits& limits = {});

}  // namespace anju::vision
