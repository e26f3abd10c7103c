#include "terminal/terminal_config.h"

#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "video/source_uri.h"

namespace anju::terminal {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Checker {
  std::string origin;
  [[noreturn]] void Bad(const std::string& key, const std::string& why) const {
    throw Error(ErrorCode::kInvalidArgument,
                "配置错误 / " + origin + ": key '" + key + "': " + why);
  }
  void Keys(const json& j, const std::string& prefix, const std::set<std::string>& allowed) const {
    if (!j.is_object()) Bad(prefix.empty() ? "(top level)" : prefix, "must be a JSON object");
    for (const auto& [k, v] : j.items())
      if (!allowed.count(k)) Bad(prefix + k, "unknown key (typo?)");
  }
  std::string String(const json& j, const std::string& key, const std::string& name,
                     bool allow_empty = false) const {
    const auto& v = j.at(key);
    if (!v.is_string()) Bad(name, "must be a string, got " + v.dump());
    if (!allow_empty && v.get<std::string>().empty()) Bad(name, "must not be empty");
    return v.get<std::string>();
  }
  int64_t Int(const json& j, const std::string& key, const std::string& name, int64_t lo,
              int64_t hi) const {
    const auto& v = j.at(key);
    if (!v.is_number_integer()) Bad(name, "must be an integer, got " + v.dump());
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi)
      Bad(name,
          std::to_string(x) + " is outside " + std::to_string(lo) + " … " + std::to_string(hi));
    return x;
  }
  bool Bool(const json& j, const std::string& key, const std::string& name) const {
    const auto& v = j.at(key);
    if (!v.is_boolean()) Bad(name, "must be true or false, got " + v.dump());
    return v.get<bool>();
  }
};

}  // namespace

std::pair<std::string, int> ParseHostPort(const std::string& text, const std::string& key) {
  const auto colon = text.rfind(':');
  int port = -1;
  if (colon != std::string::npos && colon > 0 && colon + 1 < text.size()) {
    try {
      size_t used = 0;
      port = std::stoi(text.substr(colon + 1), &used);
      if (used != text.size() - colon - 1) port = -1;
    } catch (const std::exception&) {
      port = -1;
    }
  }
  if (port < 0 || port > 65535)
    throw Error(ErrorCode::kInvalidArgument, "配置错误 / key '" + key + "': '" + text +
                                                 "' is not HOST:PORT (e.g. 127.0.0.1:8650)");
  return {text.substr(0, colon), port};
}

TerminalConfig TerminalConfig::Parse(const std::string& text, const std::string& origin,
                                     const fs::path& base_dir) {
  const Checker c{origin};
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    throw Error(ErrorCode::kInvalidArgument,
                "配置错误 / " + origin + " is not valid JSON: " + e.what());
  }
  c.Keys(j, "",
         {"data_dir", "camera", "ir_camera", "name", "door", "server", "status_listen",
          "status_tls", "thresholds", "model_dir", "outbox_quota_mb", "pipeline"});
  TerminalConfig cfg;
  auto host_port = [&](const std::string& text, const std::string& key) {
    try {
      return ParseHostPort(text, key);
    } catch (const Error&) {
      c.Bad(key, "'" + text + "' is not HOST:PORT (e.g. 127.0.0.1:8650)");
    }
  };
  auto path = [&](const fs::path& p) {
    return p.is_absolute() || base_dir.empty() ? p : base_dir / p;
  };
  if (!j.contains("data_dir")) c.Bad("data_dir", "missing (the terminal's data directory)");
  cfg.data_dir = path(c.String(j, "data_dir", "data_dir"));
  if (!j.contains("camera")) c.Bad("camera", "missing (e.g. /dev/video0, rtsp://…, dir:PATH)");
  cfg.camera = c.String(j, "camera", "camera");
  try {
    video::ParseSourceUri(cfg.camera);
  } catch (const Error& e) {
    c.Bad("camera", e.what());
  }
  if (j.contains("ir_camera")) {
    cfg.ir_camera = c.String(j, "ir_camera", "ir_camera");
    try {
      video::ParseSourceUri(cfg.ir_camera);
    } catch (const Error& e) {
      c.Bad("ir_camera", e.what());
    }
  }
  if (j.contains("name")) cfg.name = c.String(j, "name", "name");

  if (j.contains("door")) {
    const json& d = j.at("door");
    if (d.is_string()) {
      if (d != "log") c.Bad("door", "a string may only be \"log\"; use an object for others");
    } else {
      c.Keys(d, "door.", {"output", "doors", "address", "chip", "lines", "active_low"});
      if (!d.contains("output")) c.Bad("door.output", "missing (log, converter or gpio)");
      cfg.door.output = c.String(d, "output", "door.output");
      if (cfg.door.output == "log") {
        if (d.contains("doors")) cfg.door.doors = int(c.Int(d, "doors", "door.doors", 1, 16));
        for (const char* k : {"address", "chip", "lines", "active_low"})
          if (d.contains(k)) c.Bad(std::string("door.") + k, "does not apply to output \"log\"");
      } else if (cfg.door.output == "converter") {
        if (!d.contains("address")) c.Bad("door.address", "missing (HOST:PORT of the converter)");
        std::tie(cfg.door.host, cfg.door.port) =
            host_port(c.String(d, "address", "door.address"), "door.address");
        for (const char* k : {"doors", "chip", "lines", "active_low"})
          if (d.contains(k))
            c.Bad(std::string("door.") + k, "does not apply to output \"converter\"");
      } else if (cfg.door.output == "gpio") {
        if (d.contains("chip")) cfg.door.chip = c.String(d, "chip", "door.chip");
        if (!d.contains("lines") || !d.at("lines").is_array() || d.at("lines").empty())
          c.Bad("door.lines", "must be a non-empty list of GPIO line offsets, one per door");
        for (const auto& l : d.at("lines")) {
          if (!l.is_number_unsigned()) c.Bad("door.lines", "offsets are integers ≥ 0");
          cfg.door.lines.push_back(l.get<unsigned>());
        }
        if (d.contains("active_low"))
          cfg.door.active_low = c.Bool(d, "active_low", "door.active_low");
        if (d.contains("doors") || d.contains("address"))
          c.Bad("door", "\"doors\" / \"address\" do not apply to output \"gpio\"");
      } else {
        c.Bad("door.output", "'" + cfg.door.output + "' is not one of log, converter, gpio");
      }
    }
  }

  if (j.contains("server")) {
    const json& s = j.at("server");
    c.Keys(s, "server.", {"url", "enrolment_code", "poll_ms", "heartbeat_ms", "ca_file"});
    if (!s.contains("url")) c.Bad("server.url", "missing (e.g. http://10.0.0.1:8640)");
    cfg.server_url = c.String(s, "url", "server.url");
    if (cfg.server_url.rfind("http://", 0) != 0 && cfg.server_url.rfind("https://", 0) != 0)
      c.Bad("server.url", "'" + cfg.server_url + "' must start with http:// or https://");
    if (s.contains("ca_file")) cfg.server_ca_file = path(c.String(s, "ca_file", "server.ca_file"));
    if (s.contains("enrolment_code"))
      cfg.enrolment_code = c.String(s, "enrolment_code", "server.enrolment_code");
    if (s.contains("poll_ms"))
      cfg.poll = std::chrono::milliseconds(c.Int(s, "poll_ms", "server.poll_ms", 100, 3'600'000));
    if (s.contains("heartbeat_ms"))
      cfg.heartbeat = std::chrono::milliseconds(
          c.Int(s, "heartbeat_ms", "server.heartbeat_ms", 1000, 3'600'000));
  }
  if (j.contains("status_listen")) {
    cfg.status_listen = c.String(j, "status_listen", "status_listen", true);
    if (!cfg.status_listen.empty()) host_port(cfg.status_listen, "status_listen");
  }
  if (j.contains("status_tls")) cfg.status_tls = c.Bool(j, "status_tls", "status_tls");
  if (j.contains("thresholds")) cfg.thresholds = path(c.String(j, "thresholds", "thresholds"));
  if (j.contains("model_dir")) cfg.model_dir = path(c.String(j, "model_dir", "model_dir"));
  if (j.contains("outbox_quota_mb"))
    cfg.outbox_quota_mb = c.Int(j, "outbox_quota_mb", "outbox_quota_mb", 16, 1'048'576);
  if (j.contains("pipeline")) {
    cfg.pipeline_json = j.at("pipeline");
    try {
      cfg.pipeline = PipelineOptions::FromJson(cfg.pipeline_json);
    } catch (const Error& e) {
      c.Bad("pipeline", e.what());
    }
  }
  if (cfg.pipeline.terminal_id.empty()) cfg.pipeline.terminal_id = cfg.name;
  // An IR camera nobody looks at, or an IR rule without a camera (every approach would
  // be refused as "ir_missing"), is a configuration mistake.
  if (!cfg.ir_camera.empty() && !cfg.pipeline.ir_required)
    c.Bad("ir_camera", "set \"pipeline\": {\"ir_mode\": \"require\"} to use it");
  if (cfg.ir_camera.empty() && cfg.pipeline.ir_required)
    c.Bad("pipeline", "ir_mode \"require\" needs an \"ir_camera\"");
  return cfg;
}

TerminalConfig TerminalConfig::Load(const fs::path& file) {
  std::ifstream in(file);
  if (!in)
    throw Error(ErrorCode::kNotFound, "找不到配置文件 / cannot read config file " + file.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), file.string(), fs::absolute(file).parent_path());
}

}  // namespace anju::terminal
