#include "video/source_uri.h"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <map>

#include "core/error.h"

namespace anju::video {
namespace {

[[noreturn]] void Bad(const std::string& uri, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, "bad video source '" + uri + "': " + why);
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::map<std::string, std::string> ParseQuery(const std::string& uri, const std::string& query) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string::npos) amp = query.size();
    std::string item = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) Bad(uri, "option '" + item + "' is not key=value");
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

double ParseNumber(const std::string& uri, const std::string& key, const std::string& value,
                   double lo, double hi) {
  double v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc{} || end != value.data() + value.size() || !std::isfinite(v) || v < lo ||
      v > hi) {
    Bad(uri, key + "=" + value + " (expected a number in " + std::to_string(lo) + ".." +
                 std::to_string(hi) + ")");
  }
  return v;
}

void ApplyOptions(const std::string& uri, const std::map<std::string, std::string>& opts,
                  SourceUri& out) {
  for (const auto& [key, value] : opts) {
    if (key == "fps") {
      out.fps = ParseNumber(uri, key, value, 0, 1000);
    } else if (key == "loop" && out.kind != SourceKind::kDevice) {
      if (value != "0" && value != "1") Bad(uri, "loop must be 0 or 1");
      out.loop = value == "1";
    } else if ((key == "width" || key == "height") && out.kind == SourceKind::kDevice) {
      (key == "width" ? out.width : out.height) =
          static_cast<int>(ParseNumber(uri, key, value, 1, 16384));
    } else {
      Bad(uri, "unknown option '" + key + "' for a " + SourceKindName(out.kind) + " source");
    }
  }
}

}  // namespace

const char* SourceKindName(SourceKind kind) {
  switch (kind) {
    case SourceKind::kDevice:
      return "device";
    case SourceKind::kStream:
      return "stream";
    case SourceKind::kFile:
      return "file";
    case SourceKind::kDirectory:
      return "directory";
  }
  return "?";
}

SourceUri ParseSourceUri(const std::string& uri) {
  if (uri.empty()) Bad(uri, "empty");
  if (uri.find_first_of(std::string("\0\n\r", 3)) != std::string::npos) {
    Bad(uri, "contains control characters");
  }
  SourceUri out;
  for (const char* scheme : {"rtsp://", "rtsps://", "http://", "https://"}) {
    if (StartsWith(uri, scheme)) {
      if (uri.size() == std::string(scheme).size()) Bad(uri, "no host");
      out.kind = SourceKind::kStream;
      out.target = uri;  // the query belongs to the camera
      return out;
    }
  }
  size_t colon_slash = uri.find("://");
  if (colon_slash != std::string::npos) {
    Bad(uri, "unsupported scheme '" + uri.substr(0, colon_slash) +
                 "' (use rtsp://, http://, /dev/videoN, dir:PATH or a file path)");
  }

  std::string rest = uri;
  if (StartsWith(rest, "dir:")) {
    out.kind = SourceKind::kDirectory;
    rest = rest.substr(4);
  } else if (StartsWith(rest, "file:")) {
    out.kind = SourceKind::kFile;
    rest = rest.substr(5);
  } else if (StartsWith(rest, "/dev/video")) {
    out.kind = SourceKind::kDevice;
  }
  std::string path = rest, query;
  if (size_t q = rest.find('?'); q != std::string::npos) {
    path = rest.substr(0, q);
    query = rest.substr(q + 1);
  }
  if (path.empty()) Bad(uri, "no path");
  if (out.kind == SourceKind::kDevice) {
    std::string n = path.substr(std::string("/dev/video").size());
    if (n.empty() || n.size() > 3 || n.find_first_not_of("0123456789") != std::string::npos) {
      Bad(uri, "expected /dev/videoN");
    }
  } else if (!StartsWith(uri, "dir:") && !StartsWith(uri, "file:")) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) out.kind = SourceKind::kDirectory;
  }
  out.target = path;
  if (out.kind == SourceKind::kDirectory) out.fps = 10;
  ApplyOptions(uri, ParseQuery(uri, query), out);
  return out;
}

}  // namespace anju::video
