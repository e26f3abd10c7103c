// anju-capture's configuration file (JSON; docs/capture.md, "Configuration"): the
// GA/T 1400 server and credentials, the local buffer, and one entry per camera with its
// source and capture options. Parse errors name the key ("cameras[1].jpeg_quality: …").
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "capture/capturer.h"
#include "capture/live_preview.h"

namespace anju::capture {

struct CameraConfig {
  std::string id;         // name in logs and captures
  std::string source;     // video::FrameSource URI (RTSP/HTTP URL, file, image directory)
  std::string device_id;  // GA/T 1400 DeviceID of this camera (default: the process's)
  CaptureOptions options;
  PreviewOptions preview;  // live preview frames to the server (off by default)
};

struct CaptureConfig {
  std::string server_url;      // empty = capture into the buffer only, no upload
  std::string server_ca_file;  // https with a self-signed / private CA certificate
  bool verify_tls = true;
  std::string device_id;  // GA/T 1400 DeviceID (20 digits)
  std::string username;   // digest user (default: device_id)
  std::string password;
  int keepalive_s = 30;
  std::filesystem::path buffer_dir;  // the durable outbox lives here (capture.db)
  int64_t buffer_quota_mb = 2048;
  std::filesystem::path save_dir;  // optional: also write each capture's JPEGs here
  std::string models;              // model directory (default: the installed models)
  std::vector<CameraConfig> cameras;

  // Throws Error(kInvalidArgument) with the offending key for anything wrong, including
  // unknown keys (a typo must not silently fall back to a default).
  static CaptureConfig FromJson(const nlohmann::json& j);
  // Reads and parses FILE (Error(kNotFound) / kInvalidArgument). Relative paths in it
  // are relative to the file's directory.
  static CaptureConfig Load(const std::filesystem::path& file);
};

// Camera options from a JSON object (the keys of a camera entry that concern capture;
// `eval capture --config` reads the same keys). PATH prefixes error messages.
CaptureOptions OptionsFromJson(const nlohmann::json& j, const std::string& path);

}  // namespace anju::capture
