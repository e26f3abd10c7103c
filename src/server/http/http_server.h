// The server's HTTP front: an event-driven HTTP/1.1 server (Boost.Beast over Boost.Asio, TLS
// through Asio SSL / OpenSSL 3) in front of a RequestHandler (the router).
//
// A few I/O threads accept, handshake, read and write every connection; handlers run on a
// bounded pool of worker threads, handed one complete request at a time, so an idle or slow
// connection costs a socket and a few kilobytes, never a worker. Deadlines drop slow clients
// (TLS handshake and request header, request body, each write); connections are capped per
// source address and overall; request bodies are capped while they are read, chunked ones
// included, and all bodies being read at once share a memory budget. Streamed replies (MJPEG)
// are pulled chunk by chunk by the I/O thread (http::StreamPull). docs/reliability.md has the
// figures, docs/server-api.md ("The HTTP front") the behaviour.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "server/http/address_list.h"
#include "server/http/message.h"

namespace anju::server::http {

enum class TlsMode { kOff, kTls12, kTls13 };
// "off", "tls12", "tls13"; throws Error(kInvalidArgument) otherwise.
TlsMode ParseTlsMode(const std::string& s);
const char* TlsModeName(TlsMode m);

struct ListenerConfig {
  Listener kind = Listener::kMain;
  std::string host = "127.0.0.1";   // address or name; "0.0.0.0" / "::" for every interface
  int port = 0;                     // 0 = any free port
  TlsMode tls = TlsMode::kTls13;    // TLS 1.3 only, TLS 1.2 and up, or plain HTTP
  std::filesystem::path cert_file;  // PEM certificate chain and key, with TLS
  std::filesystem::path key_file;
  AddressList allow_from;  // source addresses admitted; empty = every address
};

struct Limits {
  int io_threads = 2;
  int worker_threads = 32;  // handlers at once (they block on SQLite and face recognition)
  size_t max_body_bytes = 16u << 20;
  size_t max_header_bytes = 32u << 10;  // request line and header fields
  // Memory for request bodies being read at once: a body reserves its Content-Length (a chunked
  // one the whole max_body_bytes) before it is read; past the budget the request gets 503.
  size_t body_budget_bytes = size_t(512) << 20;
  size_t max_connections = 10000;  // lowered to what RLIMIT_NOFILE allows at Start
  size_t max_connections_per_address = 256;
  // A new connection must complete its TLS handshake and then its first request header
  // within this; a request header must complete within this of its first byte.
  std::chrono::milliseconds header_timeout{10'000};
  // A kept-alive connection may wait this long for its next request.
  std::chrono::milliseconds idle_timeout{30'000};
  // A request body must arrive within this plus its length at min_rate_bytes_per_s.
  std::chrono::milliseconds body_timeout{60'000};
  // Each reply (and each chunk of a stream) must be written within this plus its length at
  // min_rate_bytes_per_s.
  std::chrono::milliseconds write_timeout{60'000};
  size_t min_rate_bytes_per_s = 64u << 10;
  // A refused request's unread body is read and dropped for at most this long / this many
  // bytes, so the client can read the refusal (413, 503) before the connection closes.
  std::chrono::milliseconds drain_timeout{5'000};
  size_t drain_max_bytes = size_t(64) << 20;
  // How soon a stream that had nothing to send (StreamStep::kWait) is asked again.
  std::chrono::milliseconds stream_poll{40};
};

struct Stats {
  size_t open = 0;  // connections open now
  uint64_t accepted = 0;
  uint64_t refused_capacity = 0;  // over max_connections
  uint64_t refused_per_address = 0;
  uint64_t refused_source = 0;  // not on a listener's allow-list
  uint64_t timed_out = 0;       // dropped by a deadline
  uint64_t refused_body = 0;    // 413 (too large) and 503 (body budget)
  uint64_t requests = 0;        // handed to the handler
  size_t body_bytes_reserved = 0;
};

class HttpServer {
 public:
  HttpServer(Limits limits, RequestHandler handler);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds CONFIG's address now and returns the bound port (before Start). Throws
  // Error(kUnavailable) when the address cannot be bound, Error(kInvalidArgument) when the
  // TLS certificate or key cannot be used.
  int Listen(const ListenerConfig& config);
  // Starts the I/O and worker threads; requests are served when it returns.
  void Start();
  // Closes the listeners and every connection and waits for the handlers that are running
  // (idempotent). The server cannot be started again.
  void Stop();
  Stats stats() const;
  const Limits& limits() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anju::server::http
