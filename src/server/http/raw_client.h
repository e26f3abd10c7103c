// A blocking HTTP/1.1 client connection over TCP or TLS that can bind a source address, stop
// half-way through a request and hold a connection idle: what probes of the HTTP front need
// (`anju bench http-hostile`, tests/server/http_front_test.cpp) and ordinary clients cannot
// do. The server itself never uses it. IPv4 only. The first Connect ignores SIGPIPE for the
// process (OpenSSL writes with write(2)).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "server/http/message.h"

namespace anju::server::http {

enum class TlsVersion { kAny, kTls12, kTls13 };

struct RawClientOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string source;  // local address to connect from ("127.0.0.2"); "" = any
  bool tls = true;     // the server's certificate is not verified (a probe)
  TlsVersion min_tls = TlsVersion::kAny;
  TlsVersion max_tls = TlsVersion::kAny;
  bool handshake = true;  // false: TCP connection only, no TLS handshake (an idle client)
  std::chrono::milliseconds timeout{10'000};  // each connect, read and write
};

struct RawReply {
  int status = 0;
  Headers headers;
  std::string body;  // decoded from chunked transfer coding; content codings left as they are
  std::string Header(std::string_view name) const;
};

class RawClient {
 public:
  // Connects (and completes the TLS handshake); nullptr with *ERROR set when it fails.
  static std::unique_ptr<RawClient> Connect(const RawClientOptions& options,
                                            std::string* error = nullptr);
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // Writes BYTES; false once the connection is broken.
  bool Send(std::string_view bytes);
  // Reads one response; nullopt when the connection closed, failed or timed out first.
  std::optional<RawReply> Read();
  // Waits up to TIMEOUT for the peer to close; true when it did (EOF or reset), false when the
  // connection is still open (bytes that arrive meanwhile are kept for Read).
  bool WaitClosed(std::chrono::milliseconds timeout);
  // "TLSv1.3", "TLSv1.2"; "" without TLS.
  std::string tls_version() const;

  // GET PATH on a kept-alive connection ("Host: anju").
  static std::string Get(const std::string& path, const std::string& extra_headers = "");

 private:
  RawClient() = default;
  int ReadSome(char* buf, int n);  // > 0 bytes, 0 closed, < 0 error or timeout
  struct Tls;
  int fd_ = -1;
  std::unique_ptr<Tls> tls_;
  std::string in_;  // received, not yet consumed
  std::chrono::milliseconds timeout_{10'000};
};

// Resident memory of this process in bytes (/proc/self/status VmRSS); 0 when unknown.
size_t ResidentBytes();

}  // namespace anju::server::http
