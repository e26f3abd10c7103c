// Real face images for the video tests (LFW from the evaluation data).
#pragma once

#include <filesystem>
#include <vector>

namespace anju::video::testing {

// The first N LFW images (sorted by person, then file), or empty without the data.
std::vector<std::filesystem::path> LfwImages(const std::filesystem::path& lfw, size_t n);

}  // namespace anju::video::testing
