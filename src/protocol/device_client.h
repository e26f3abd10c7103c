// DeviceClient: the device end of the protocol (docs/device-protocol.md) over HTTP:
// registration, then requests signed with the device key whose responses must carry the
// server's signature. Used by anju-terminal, the capture program and the benchmarks.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "crypto/envelope.h"
#include "crypto/sm2.h"

namespace anju::protocol {

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{3'000};
  std::chrono::milliseconds read_timeout{15'000};
  // https:// servers: the PEM certificate (or CA) to trust, e.g. the server's self-signed
  // tls/server.crt; empty = the system's CA store. Certificates are always verified.
  std::string ca_file;
};

// What registration gives a device; it stores all of it (the keys in 0600 files).
struct Registration {
  std::string device_id;
  crypto::DataKey data_key;
  crypto::Sm2Key server_public_key;
  int64_t server_time_ms;
};

struct RegisterRequest {
  std::string enrolment_code;
  std::string name;
  std::string software_version;
  std::string model_version;
  int doors = 1;
};

// A response whose signature verified. `status` may be any HTTP status: 4xx/5xx answers
// are returned, not thrown (body holds the API error).
struct Response {
  int status = 0;
  std::string body;
};

class DeviceClient {
 public:
  // BASE_URL: "http://host:port" (https:// when the server has TLS).
  DeviceClient(std::string base_url, std::string device_id, crypto::Sm2Key device_key,
               crypto::Sm2Key server_public_key, ClientOptions options = {});
  ~DeviceClient();
  DeviceClient(const DeviceClient&) = delete;
  DeviceClient& operator=(const DeviceClient&) = delete;

  // One signed request. Throws Error(kUnavailable) when the server cannot be reached or
  // the connection drops, Error(kCrypto) when the response's signature is missing or
  // wrong (the answer is then not trusted at all).
  Response Call(std::string_view method, std::string_view path_and_query,
                std::string_view body = {});
  // Call() with a JSON body; throws ApiError (api_error.h) for a non-2xx answer and
  // returns the parsed JSON otherwise.
  nlohmann::json CallJson(std::string_view method, std::string_view path_and_query,
                          const nlohmann::json* body = nullptr);

  const std::string& device_id() const { return device_id_; }
  const std::string& base_url() const { return base_url_; }

  // Unsigned registration (the only such call). Throws ApiError for a refusal (e.g. 403
  // enrolment_code_invalid), Error(kUnavailable) when unreachable, Error(kCrypto) when the
  // data key does not decrypt with DEVICE_KEY.
  static Registration Register(const std::string& base_url, const crypto::Sm2Key& device_key,
                               const RegisterRequest& request, ClientOptions options = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string base_url_;
  std::string device_id_;
  crypto::Sm2Key device_key_;
  crypto::Sm2Key server_public_key_;
};

}  // namespace anju::protocol
