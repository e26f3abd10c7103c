// A FrameSource over cv::VideoCapture: V4L2 devices, FFmpeg streams and video files.
#pragma once

#include <opencv2/videoio.hpp>

#include "video/frame_source.h"

namespace anju::video {

class CaptureSource : public FrameSource {
 public:
  CaptureSource(const std::string& text, const SourceUri& uri, SourceOptions options);
  ~CaptureSource() override;

 protected:
  bool Connect(std::string* error) override;
  void Disconnect() override;
  GrabResult Grab(cv::Mat& image, std::string* error) override;

 private:
  SourceOptions options_;
  cv::VideoCapture cap_;
};

}  // namespace anju::video
