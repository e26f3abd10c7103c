// The terminal's local status page (R3.1.2.5): a small HTTPS server
// for the kiosk browser on the device and for health checks (plain HTTP only when asked,
// for development). The certificate is self-signed, made at first start and kept.
//
//   GET /             the display page: the live result in very large, high-contrast text,
//                     Chinese first with an English toggle, platform notices; it polls
//                     /status.json twice a second
//   GET /status.json  everything the terminal knows about itself (Terminal::Status)
//   GET /healthz      {"status": "ok" | "degraded", "problems": [...]}; 503 when degraded
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace anju::terminal {

// The display page (self-contained HTML, no external resources).
const std::string& StatusPageHtml();

// Problems a health check reports for a status document: camera not delivering, outbox
// near full, pipeline failures. Empty = healthy. (Being offline is not a problem: the
// terminal works the same without the server, R3.1.2.7.)
std::vector<std::string> HealthProblems(const nlohmann::json& status);

class StatusServer {
 public:
  using Provider = std::function<nlohmann::json()>;
  // LISTEN: "host:port" (port 0 = any free port). TLS_DIR: where status.crt / status.key
  // live (created when missing); empty = plain HTTP.
  StatusServer(const std::string& listen, Provider provider, std::filesystem::path tls_dir = {});
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // Binds and serves on a thread; Error(kUnavailable) when the address cannot be bound.
  void Start();
  void Stop();
  int port() const { return port_; }
  std::string url() const;  // https://host:port (http:// without TLS)
  // The certificate (clients trust it as their CA file) and its SHA-256 fingerprint;
  // empty without TLS or before Start().
  const std::filesystem::path& cert_file() const { return cert_file_; }
  const std::string& fingerprint() const { return fingerprint_; }
  bool cert_created() const { return cert_created_; }

 private:
  std::string host_;
  int port_ = 0;
  Provider provider_;
  std::filesystem::path tls_dir_, cert_file_;
  std::string fingerprint_;
  bool cert_created_ = false;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
};

}  // namespace anju::terminal
