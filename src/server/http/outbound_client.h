// Outbound HTTP of the server: the snapshot service's POSTs to the alarm webhook and to an
// upper platform (docs/viid.md, "Webhook", "Forwarding"). One client per target; each Post
// either gets an answer (its status and WWW-Authenticate) or says why there was none.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace anju::server::http {

struct OutboundReply {
  int status = 0;                // 0 = no answer (ERROR says why)
  std::string error;             // the transport's reason when there was no answer
  std::string www_authenticate;  // of a 401
  std::string body;              // the answer's body (at most kMaxBody bytes kept)
  // A platform link's sealed answer carries up to 100 commands.
  static constexpr size_t kMaxBody = 4 * 1024 * 1024;
  bool answered() const { return status != 0; }
  bool ok() const { return status >= 200 && status < 300; }
  // "HTTP <status>" or the transport's reason, for an outbox's last_error.
  std::string Describe() const { return answered() ? "HTTP " + std::to_string(status) : error; }
};

class OutboundClient {
 public:
  // BASE: "http(s)://host[:port]"; CONNECT_S to connect, IO_S to send and to read.
  OutboundClient(const std::string& base, int connect_s, int io_s);
  ~OutboundClient();
  OutboundClient(const OutboundClient&) = delete;
  OutboundClient& operator=(const OutboundClient&) = delete;

  // Checks the peer's TLS certificate against FILE (a certificate or CA bundle) instead
  // of the system's trust store.
  void TrustCertificate(const std::string& file);

  OutboundReply Post(const std::string& path,
                     const std::vector<std::pair<std::string, std::string>>& headers,
                     const std::string& body, const std::string& content_type);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anju::server::http
