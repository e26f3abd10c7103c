// Images a GA/T 1400 camera gives only as a URL (SubImageInfoObject.StoragePath, no Data):
// the server fetches them from that camera and nowhere else, so an upload cannot make the
// server reach into other hosts (R4.2.5.1: least exposure), with the intake's size limit
// (protocol::viid::kMaxImageBytes) and a time limit, then through the same JPEG checks as
// Data (protocol::viid::CheckJpeg). docs/viid.md, "Images by URL".
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/viid.h"

namespace anju::server::cameras {

struct ImageFetchOptions {
  size_t max_bytes = protocol::viid::kMaxImageBytes;
  std::chrono::milliseconds timeout{3000};  // per image: connect, request and whole body
  // All the URL images of one upload together (the HTTP thread is held meanwhile); the
  // images after it are refused.
  std::chrono::milliseconds budget{10'000};
};

// GETs URL, which must be http:// with an IP-literal host equal to CAMERA_ADDR (the upload's
// source address; no name lookup, no redirects), and returns the JPEG. Throws
// Error(kInvalidArgument) for a URL that is not allowed, a refused answer or a body that is not
// a JPEG within the limit, Error(kUnavailable) when the camera is unreachable or too slow; the
// messages are "中文 / English" and name the URL.
std::vector<uint8_t> FetchCameraImage(const std::string& url, const std::string& camera_addr,
                                      const ImageFetchOptions& options = {});

// Fills every image of PARSED's faces that has a StoragePath and no Data by FetchCameraImage;
// a face with an image that cannot be fetched moves to PARSED.errors (its message says why).
// Returns the number of images fetched.
size_t ResolveStoragePaths(protocol::viid::ParsedFaceList& parsed, const std::string& camera_addr,
                           const ImageFetchOptions& options = {});

}  // namespace anju::server::cameras
