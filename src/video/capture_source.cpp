#include "video/capture_source.h"

#include <cmath>
#include <filesystem>
#include <vector>

#include "vision/engine.h"

namespace anju::video {

CaptureSource::CaptureSource(const std::string& text, const SourceUri& uri, SourceOptions options)
    : FrameSource(text, uri, options), options_(options) {}

CaptureSource::~CaptureSource() {
  Disconnect();
}

bool CaptureSource::Connect(std::string* error) {
  const SourceUri& u = uri();
  std::vector<int> params;
  int api = cv::CAP_FFMPEG;
  if (u.kind == SourceKind::kDevice) {
    api = cv::CAP_V4L2;
    if (u.width > 0) params.insert(params.end(), {cv::CAP_PROP_FRAME_WIDTH, u.width});
    if (u.height > 0) params.insert(params.end(), {cv::CAP_PROP_FRAME_HEIGHT, u.height});
    if (u.fps > 0) {
      params.insert(params.end(), {cv::CAP_PROP_FPS, static_cast<int>(std::ceil(u.fps))});
    }
  } else {
    const int ms = static_cast<int>(options_.stream_timeout.count());
    params = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv::CAP_PROP_READ_TIMEOUT_MSEC, ms};
  }
  if (u.kind == SourceKind::kFile || u.kind == SourceKind::kDevice) {
    std::error_code ec;
    if (!std::filesystem::exists(u.target, ec)) {
      *error = u.target + ": no such file";
      return false;
    }
  }
  try {
    if (!cap_.open(u.target, api, params)) {
      *error = "OpenCV cannot open " + u.target;
      return false;
    }
  } catch (const cv::Exception& e) {
    *error = "OpenCV: " + e.msg;
    return false;
  }
  return true;
}

void CaptureSource::Disconnect() {
  cap_.release();
}

FrameSource::GrabResult CaptureSource::Grab(cv::Mat& image, std::string* error) {
  try {
    cv::Mat raw;  // fresh buffer per frame: frames handed out are never overwritten
    if (!cap_.read(raw) || raw.empty()) {
      if (uri().kind == SourceKind::kFile) return GrabResult::kEnd;
      *error = "stream stopped delivering frames";
      return GrabResult::kError;
    }
    image = raw.type() == CV_8UC3 ? raw : vision::ToBgr(raw);
    return GrabResult::kFrame;
  } catch (const std::exception& e) {
    *error = e.what();
    return GrabResult::kError;
  }
}

}  // namespace anju::video
