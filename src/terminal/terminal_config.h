// The terminal's config file (JSON; docs/terminal.md, "Services"). Every key is checked:
// an unknown key or a bad value is refused with Error(kInvalidArgument) naming the key,
// so a typo never silently falls back to a default.
//
//   {
//     "data_dir": "/var/lib/anju-terminal",          required; relative = to the file
//     "camera": "dir:/srv/frames?fps=5",               required; video/source_uri.h
//     "ir_camera": "/dev/video2",                      optional near-infrared camera; needs
//                                                      "pipeline": {"ir_mode": "require"}
//     "name": "3号楼1单元",
//     "door": {"output": "log", "doors": 1}            or {"output": "converter",
//              "address": "10.0.0.5:502"} or {"output": "gpio", "chip": "gpiochip0",
//              "lines": [17], "active_low": false}
//     "server": {"url": "http://10.0.0.1:8640", "enrolment_code": "K7Q4-9XDM-2PLA",
//                "poll_ms": 2000, "heartbeat_ms": 30000},     optional: offline terminal
//     "status_listen": "127.0.0.1:8650",                "" = no status page
//     "status_tls": true,                               false = plain HTTP (development)
//     "thresholds": "/etc/anju/thresholds.json",       default: the shipped file
//     "model_dir": "/opt/anju/models",                  default: core DefaultModelDir()
//     "outbox_quota_mb": 2048,
//     "pipeline": {…}                                   PipelineOptions::FromJson
//   }
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "terminal/access_pipeline.h"

namespace anju::terminal {

struct DoorConfig {
  std::string output = "log";      // "log" | "converter" | "gpio"
  int doors = 1;                   // log
  std::string host;                // converter
  int port = 502;                  // converter
  std::string chip = "gpiochip0";  // gpio
  std::vector<unsigned> lines;     // gpio: one relay line per door
  bool active_low = false;         // gpio
};

struct TerminalConfig {
  std::filesystem::path data_dir;
  std::string camera;
  std::string ir_camera;  // empty = none (R3.1.2.4, vision/ir_check.h)
  std::string name = "anju-terminal";
  DoorConfig door;
  std::string server_url;  // empty = offline only (packages)
  std::string enrolment_code;
  std::filesystem::path server_ca_file;  // https:// with a self-signed server certificate
  std::chrono::milliseconds poll{2'000};
  std::chrono::milliseconds heartbeat{30'000};
  std::string status_listen = "127.0.0.1:8650";
  // HTTPS with a self-signed certificate in <data_dir>/tls (status.crt, status.key).
  bool status_tls = true;
  std::filesystem::path thresholds;
  std::filesystem::path model_dir;
  int64_t outbox_quota_mb = 2048;
  PipelineOptions pipeline;
  nlohmann::json pipeline_json = nlohmann::json::object();

  // ORIGIN names the source in messages; BASE_DIR resolves relative paths.
  static TerminalConfig Parse(const std::string& json_text, const std::string& origin = "config",
                              const std::filesystem::path& base_dir = {});
  static TerminalConfig Load(const std::filesystem::path& file);
};

// "host:port" → (host, port); throws Error(kInvalidArgument) naming KEY.
std::pair<std::string, int> ParseHostPort(const std::string& text, const std::string& key);

}  // namespace anju::terminal
