// Where this server stands in the three-level platform (三级平台, docs/platform.md):
// a community server (the default), a district platform or a city platform: one program,
// configured (R3.1.4.4, R3.3.2.4, R3.4.2.1).
#pragma once

#include <filesystem>
#include <string>

namespace anju::server {

struct PlatformOptions {
  // "community", "district" or "city".
  std::string level = "community";
  // This node's code, unique in the city (a community's or district's code, e.g.
  // "110105-007"); required with an upstream and at a district or city.
  std::string id;
  std::string name;
  // The level above: "https://host:port" of its anju-server ("" = none: nothing goes up).
  std::string upstream;
  // The link secret the level above issued for this node (POST /api/v1/platform/nodes):
  // 64 hex digits, in this file (0600).
  std::filesystem::path upstream_secret_file;
  // The certificate (or CA) that the level above's TLS certificate is checked against;
  // empty = the system's trust store.
  std::filesystem::path upstream_ca_file;
  // Privacy by default (R4.2.1.1): identity codes and events go up, face crops of recognised
  // captures only when the policy says so.
  bool send_photos = false;
  // How often the link is used when there is nothing to send (commands from above come
  // back on it), and how often the node's health goes up.
  int heartbeat_ms = 2000;
  int health_interval_s = 60;
  // Records per push.
  int batch = 500;

  bool upper() const { return level == "district" || level == "city"; }
};

// Error(kInvalidArgument) for an unknown level, an upstream without an id or secret file,
// an upper level without an id, a city with an upstream.
void ValidatePlatformOptions(const PlatformOptions& o);

}  // namespace anju::server
