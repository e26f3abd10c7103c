// Camera input URIs (docs/video.md): which kind of source a config string names and
// its options. Malformed strings are Error kInvalidArgument.
#pragma once

#include <string>

namespace anju::video {

enum class SourceKind {
  kDevice,     // /dev/videoN: V4L2
  kStream,     // rtsp://, rtsps://, http://, https://: FFmpeg
  kFile,       // a video file path (or file:PATH)
  kDirectory,  // dir:PATH or an existing directory: its images played as frames
};
const char* SourceKindName(SourceKind kind);

struct SourceUri {
  SourceKind kind = SourceKind::kFile;
  std::string target;         // device path, stream URL (query kept) or file system path
  double fps = 0;             // pacing; 0 = as fast as the source delivers (dir default 10)
  bool loop = false;          // file / directory: start again at the end
  int width = 0, height = 0;  // device: requested capture size (0 = driver default)
};

// Forms: /dev/videoN[?width=W&height=H&fps=N], rtsp://… http://… (passed to FFmpeg as
// they are), [file:]PATH[?fps=N&loop=1], dir:PATH[?fps=N&loop=1], or a directory path.
SourceUri ParseSourceUri(const std::string& uri);

}  // namespace anju::video
