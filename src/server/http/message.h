// The server's HTTP messages, independent of the library that reads and writes them
// (server/http/http_server.h does, with Boost.Beast): what the router and the handlers see of
// a request, and what they answer. docs/server-api.md ("The HTTP front").
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace anju::server::http {

// Header names compare without regard to case (RFC 9110 §5.1).
struct CaseInsensitiveLess {
  bool operator()(std::string_view a, std::string_view b) const;
  using is_transparent = void;
};
using Headers = std::multimap<std::string, std::string, CaseInsensitiveLess>;

// Which listener a request arrived on: the main API (TLS 1.3) or the camera listener, which
// serves only /VIID/... (GA/T 1400 cameras; docs/viid.md).
enum class Listener { kMain, kCamera };
const char* ListenerName(Listener l);

// One part of a multipart/form-data body (RFC 7578): a file (filename set) or a field.
struct FormPart {
  std::string name;
  std::string filename;
  std::string content_type;
  std::string content;
};

struct Request {
  std::string method;  // "GET", "POST", ... (HEAD is answered as GET without the body)
  std::string target;  // as sent: "/api/v1/persons?limit=5" (signed by devices)
  std::string path;    // the target's path, percent-decoded
  std::multimap<std::string, std::string> params;  // decoded query parameters
  Headers headers;
  std::string body;
  std::string remote_addr;  // "192.0.2.7", "2001:db8::1" (IPv4-mapped IPv6 shown as IPv4)
  int remote_port = 0;
  Listener listener = Listener::kMain;
  bool tls = false;
  // The parts of a multipart/form-data body, parsed before the handler runs.
  std::vector<FormPart> form;

  // The first value of header NAME, "" when absent.
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
  // The first value of query parameter NAME.
  std::optional<std::string> Param(std::string_view name) const;
  bool IsMultipartFormData() const;
  // The first form part named NAME (file or field), nullptr when absent.
  const FormPart* Part(std::string_view name) const;
};

// One step of a streamed reply body (MJPEG live view).
struct StreamStep {
  enum Kind { kData, kWait, kEnd };
  Kind kind = kEnd;
  std::string data;  // kData: bytes to send as one chunk
  static StreamStep Data(std::string d) { return {kData, std::move(d)}; }
  static StreamStep Wait() { return {kWait, {}}; }
  static StreamStep End() { return {kEnd, {}}; }
};
// Pulled by the server's I/O thread whenever the previous chunk has been written: it must not
// block (kWait = nothing new yet, asked again a few tens of milliseconds later), so a
// long-lived stream costs no worker thread.
using StreamPull = std::function<StreamStep()>;

struct Response {
  int status = 200;
  Headers headers;  // Content-Type among them; Content-Length is set by the server
  std::string body;
  // A streamed answer: when set, BODY is ignored and the reply is sent chunked, one chunk per
  // kData step, until kEnd; STREAM_END runs once it is over (true = the client got all of it).
  StreamPull stream;
  std::function<void(bool complete)> stream_end;

  // Replaces every value of header NAME with VALUE.
  void Set(const std::string& name, std::string value);
  std::string Header(std::string_view name) const;
};

// Answers a request; runs on a worker thread and may block (SQLite, face recognition).
using RequestHandler = std::function<Response(Request&)>;

// Percent-decoding; PLUS_AS_SPACE for query strings (application/x-www-form-urlencoded).
// Malformed escapes are kept as they are.
std::string PercentDecode(std::string_view s, bool plus_as_space);
// Fills REQ.path and REQ.params from REQ.target.
void ParseTarget(Request& req);
// The parts of a multipart/form-data BODY whose Content-Type header is CONTENT_TYPE; nullopt
// when the body is malformed (no boundary, no closing delimiter, a part without a name).
std::optional<std::vector<FormPart>> ParseMultipart(std::string_view content_type,
                                                    std::string_view body);

}  // namespace anju::server::http
