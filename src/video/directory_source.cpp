#include "video/directory_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "vision/image.h"

namespace anju::video {

DirectorySource::DirectorySource(const std::string& text, const SourceUri& uri,
                                 SourceOptions options)
    : FrameSource(text, uri, options) {}

std::vector<std::filesystem::path> DirectorySource::ListImages(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string ext = it->path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp") {
      out.push_back(it->path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool DirectorySource::Connect(std::string* error) {
  std::error_code ec;
  if (!std::filesystem::is_directory(uri().target, ec)) {
    *error = uri().target + ": not a directory";
    return false;
  }
  files_ = ListImages(uri().target);
  next_ = 0;
  if (files_.empty()) {
    *error = uri().target + ": no images (.jpg .jpeg .png .bmp)";
    return false;
  }
  return true;
}

FrameSource::GrabResult DirectorySource::Grab(cv::Mat& image, std::string*) {
  if (next_ >= files_.size()) return GrabResult::kEnd;
  const auto& path = files_[next_++];
  try {
    image = vision::LoadImage(path);
    return GrabResult::kFrame;
  } catch (const std::exception& e) {  // Error kBadImage, or the file vanished
    spdlog::warn("video: skipping {}: {}", path.string(), e.what());
    return GrabResult::kSkip;
  }
}

}  // namespace anju::video
