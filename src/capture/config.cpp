#include "capture/config.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <set>

#include "core/error.h"
#include "video/source_uri.h"

namespace anju::capture {

namespace {

using nlohmann::json;

[[noreturn]] void Bad(const std::string& path, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, "抓拍配置错误 / capture config: " + path + ": " + why);
}

void OnlyKeys(const json& j, const std::string& path, const std::set<std::string>& keys) {
  if (!j.is_object()) Bad(path, "must be a JSON object");
  for (const auto& [k, v] : j.items())
    if (!keys.count(k)) Bad(path.empty() ? k : path + "." + k, "unknown key");
}

template <typename T>
void Get(const json& j, const char* key, const std::string& path, T* out) {
  if (!j.contains(key)) return;
  const json& v = j.at(key);
  const std::string where = path.empty() ? key : path + "." + key;
  try {
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) Bad(where, "must be true or false");
    } else if constexpr (std::is_arithmetic_v<T>) {
      if (!v.is_number()) Bad(where, "must be a number");
      if constexpr (std::is_integral_v<T>)
        if (!v.is_number_integer()) Bad(where, "must be an integer");
    } else {
      if (!v.is_string()) Bad(where, "must be a string");
    }
    *out = v.get<T>();
  } catch (const json::exception& e) {
    Bad(where, e.what());
  }
}

}  // namespace

CaptureOptions OptionsFromJson(const json& j, const std::string& path) {
  CaptureOptions o;
  Get(j, "det_threshold", path, &o.det_threshold);
  Get(j, "min_face", path, &o.min_face);
  Get(j, "tiles", path, &o.tiles);
  Get(j, "jpeg_quality", path, &o.jpeg_quality);
  Get(j, "max_per_track", path, &o.max_per_track);
  Get(j, "interval_ms", path, &o.interval_ms);
  Get(j, "extra_best", path, &o.extra_best);
  Get(j, "send_full_frame", path, &o.full_frame);
  Get(j, "crop_scale", path, &o.crop_scale);
  Get(j, "min_quality", path, &o.min_quality);
  Get(j, "min_hits", path, &o.min_hits);
  Get(j, "max_missed", path, &o.tracker.max_missed);
  Get(j, "clip_fps", path, &o.clip_fps);
  Get(j, "clip_before_ms", path, &o.clip_before_ms);
  Get(j, "clip_after_ms", path, &o.clip_after_ms);
  Get(j, "clip_width", path, &o.clip_width);
  Get(j, "clip_jpeg_quality", path, &o.clip_jpeg_quality);
  if (j.contains("roi")) {
    try {
      o.roi = Roi::FromJson(j.at("roi"));
    } catch (const Error& e) {
      Bad(path.empty() ? "roi" : path + ".roi", e.what());
    }
  }
  try {
    Validate(o);
  } catch (const Error& e) {
    Bad(path.empty() ? "camera" : path, e.what());
  }
  return o;
}

CaptureConfig CaptureConfig::FromJson(const json& j) {
  OnlyKeys(j, "",
           {"server_url", "server_ca_file", "verify_tls", "device_id", "username", "password",
            "keepalive_s", "buffer_dir", "buffer_quota_mb", "save_dir", "models", "cameras"});
  CaptureConfig c;
  Get(j, "server_url", "", &c.server_url);
  Get(j, "server_ca_file", "", &c.server_ca_file);
  Get(j, "verify_tls", "", &c.verify_tls);
  Get(j, "device_id", "", &c.device_id);
  Get(j, "username", "", &c.username);
  Get(j, "password", "", &c.password);
  Get(j, "keepalive_s", "", &c.keepalive_s);
  std::string buffer, save;
  Get(j, "buffer_dir", "", &buffer);
  Get(j, "save_dir", "", &save);
  c.buffer_dir = buffer;
  c.save_dir = save;
  Get(j, "buffer_quota_mb", "", &c.buffer_quota_mb);
  Get(j, "models", "", &c.models);

  if (!c.server_url.empty() && c.server_url.rfind("http://", 0) != 0 &&
      c.server_url.rfind("https://", 0) != 0)
    Bad("server_url", "must start with http:// or https:// (got '" + c.server_url + "')");
  if (c.device_id.empty()) Bad("device_id", "required (the GA/T 1400 DeviceID, 20 digits)");
  if (c.device_id.size() != 20 || c.device_id.find_first_not_of("0123456789") != std::string::npos)
    Bad("device_id", "must be 20 digits as GA/T 1400 requires (got '" + c.device_id + "')");
  if (!c.server_url.empty() && c.password.empty())
    Bad("password", "required with server_url (digest authentication at registration)");
  if (c.keepalive_s < 1 || c.keepalive_s > 3600) Bad("keepalive_s", "must be 1..3600");
  if (c.buffer_dir.empty()) Bad("buffer_dir", "required (the durable local buffer)");
  if (c.buffer_quota_mb < 1) Bad("buffer_quota_mb", "must be >= 1");
  if (!c.server_ca_file.empty() && c.server_url.rfind("https://", 0) != 0)
    Bad("server_ca_file", "only applies to an https:// server_url");

  if (!j.contains("cameras") || !j.at("cameras").is_array() || j.at("cameras").empty())
    Bad("cameras", "required: a non-empty array of cameras");
  std::set<std::string> ids;
  for (size_t i = 0; i < j.at("cameras").size(); ++i) {
    const json& cj = j.at("cameras")[i];
    const std::string path = "cameras[" + std::to_string(i) + "]";
    OnlyKeys(cj, path,
             {"id",
              "source",
              "device_id",
              "roi",
              "min_face",
              "det_threshold",
              "tiles",
              "jpeg_quality",
              "max_per_track",
              "interval_ms",
              "extra_best",
              "send_full_frame",
              "crop_scale",
              "min_quality",
              "min_hits",
              "max_missed",
              "preview_interval_ms",
              "preview_width",
              "preview_jpeg_quality",
              "clip_before_ms",
              "clip_after_ms",
              "clip_fps",
              "clip_width",
              "clip_jpeg_quality"});
    CameraConfig cam;
    Get(cj, "id", path, &cam.id);
    Get(cj, "source", path, &cam.source);
    Get(cj, "device_id", path, &cam.device_id);
    if (cam.id.empty()) cam.id = "cam" + std::to_string(i + 1);
    if (!ids.insert(cam.id).second) Bad(path + ".id", "duplicate camera id '" + cam.id + "'");
    if (cam.source.empty())
      Bad(path + ".source", "required (RTSP/HTTP URL, video file or image directory)");
    try {
      video::ParseSourceUri(cam.source);
    } catch (const Error& e) {
      Bad(path + ".source", e.what());
    }
    if (cam.device_id.empty()) cam.device_id = c.device_id;
    if (cam.device_id.size() != 20 ||
        cam.device_id.find_first_not_of("0123456789") != std::string::npos)
      Bad(path + ".device_id", "must be 20 digits (got '" + cam.device_id + "')");
    cam.options = OptionsFromJson(cj, path);
    Get(cj, "preview_interval_ms", path, &cam.preview.interval_ms);
    Get(cj, "preview_width", path, &cam.preview.width);
    Get(cj, "preview_jpeg_quality", path, &cam.preview.jpeg_quality);
    if (cam.preview.interval_ms < 0 ||
        (cam.preview.interval_ms > 0 && cam.preview.interval_ms < 100))
      Bad(path + ".preview_interval_ms", "must be 0 (off) or >= 100");
    if (cam.preview.width < 64 || cam.preview.width > 4096)
      Bad(path + ".preview_width", "must be 64..4096");
    if (cam.preview.jpeg_quality < 1 || cam.preview.jpeg_quality > 100)
      Bad(path + ".preview_jpeg_quality", "must be 1..100");
    c.cameras.push_back(std::move(cam));
  }
  return c;
}

CaptureConfig CaptureConfig::Load(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in)
    throw Error(ErrorCode::kNotFound, "找不到配置文件 / config file not found: " + file.string());
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument, "配置文件不是有效 JSON / config is not valid JSON: " +
                                                 file.string() + ": " + e.what());
  }
  CaptureConfig c = FromJson(j);
  const auto base = file.parent_path();
  auto rel = [&](std::filesystem::path& p) {
    if (!p.empty() && p.is_relative()) p = base / p;
  };
  rel(c.buffer_dir);
  rel(c.save_dir);
  if (!c.server_ca_file.empty() && std::filesystem::path(c.server_ca_file).is_relative())
    c.server_ca_file = (base / c.server_ca_file).string();
  return c;
}

}  // namespace anju::capture
