// A FrameSource that plays the images of a directory (sorted by name) as frames: how
// tests and the demo feed the terminal. Undecodable images are skipped with a warning.
#pragma once

#include <filesystem>
#include <vector>

#include "video/frame_source.h"

namespace anju::video {

class DirectorySource : public FrameSource {
 public:
  DirectorySource(const std::string& text, const SourceUri& uri, SourceOptions options);

  // Image files (.jpg .jpeg .png .bmp, any case) of DIR sorted by name.
  static std::vector<std::filesystem::path> ListImages(const std::filesystem::path& dir);

 protected:
  bool Connect(std::string* error) override;
  void Disconnect() override {}
  GrabResult Grab(cv::Mat& image, std::string* error) override;

 private:
  std::vector<std::filesystem::path> files_;
  size_t next_ = 0;
};

}  // namespace anju::video
