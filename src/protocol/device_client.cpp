#include "protocol/device_client.h"

#include <httplib.h>

#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "crypto/bytes.h"
#include "protocol/api_error.h"
#include "protocol/device_auth.h"
#include "protocol/json_limits.h"

namespace anju::protocol {

namespace {

std::unique_ptr<httplib::Client> MakeClient(const std::string& base_url,
                                            const ClientOptions& options) {
  auto client = std::make_unique<httplib::Client>(base_url);
  if (!client->is_valid())
    throw Error(ErrorCode::kInvalidArgument, "服务器地址无效 / invalid server URL: " + base_url);
  client->set_connection_timeout(options.connect_timeout);
  client->set_read_timeout(options.read_timeout);
  client->set_write_timeout(options.read_timeout);
  client->set_keep_alive(true);
  if (base_url.rfind("https://", 0) == 0) {
    client->enable_server_certificate_verification(true);
    if (!options.ca_file.empty()) client->set_ca_cert_path(options.ca_file.c_str());
  }
  return client;
}

[[noreturn]] void ThrowUnreachable(const std::string& base_url, httplib::Error error) {
  throw Error(ErrorCode::kUnavailable,
              "服务器不可达 / server unreachable: " + base_url + ": " + httplib::to_string(error));
}

// The API error inside a non-2xx body, or a generic one.
ApiError ToApiError(int status, const std::string& body) {
  try {
    const auto j = ParseJson(body);
    const auto& e = j.at("error");
    return ApiError(status, e.at("code").get<std::string>(), e.at("message").get<std::string>());
  } catch (const std::exception&) {
    return ApiError(status, "http_" + std::to_string(status),
                    "HTTP " + std::to_string(status) + ": " + body.substr(0, 200));
  }
}

}  // namespace

struct DeviceClient::Impl {
  std::mutex mu;  // one request at a time on the kept-alive connection
  std::unique_ptr<httplib::Client> http;
  ClientOptions options;
  bool answered = false;  // a request was answered: the connection may be a kept-alive one
};

namespace {

// Whether a failed request broke on a connection the server had closed while it was idle
// (servers drop kept-alive connections after a few seconds; cpp-httplib 0.11 does not notice
// a TLS peer's close before writing on it): the write or the read failed at once, not by
// timing out. Such a request is tried once more on a new connection before the server is
// called unreachable.
bool StaleConnection(httplib::Error error, std::chrono::steady_clock::duration took,
                     const ClientOptions& options) {
  if (error == httplib::Error::Write) return true;
  return (error == httplib::Error::Read || error == httplib::Error::Unknown) &&
         took < options.read_timeout;
}

}  // namespace

DeviceClient::DeviceClient(std::string base_url, std::string device_id, crypto::Sm2Key device_key,
                           crypto::Sm2Key server_public_key, ClientOptions options)
    : impl_(std::make_unique<Impl>()),
      base_url_(std::move(base_url)),
      device_id_(std::move(device_id)),
      device_key_(std::move(device_key)),
      server_public_key_(std::move(server_public_key)) {
  impl_->options = std::move(options);
  impl_->http = MakeClient(base_url_, impl_->options);
}

DeviceClient::~DeviceClient() = default;

Response DeviceClient::Call(std::string_view method, std::string_view path_and_query,
                            std::string_view body) {
  SignedHeaders h;
  httplib::Headers headers;
  auto sign = [&] {
    h = SignRequest(device_key_, device_id_, method, path_and_query, body);
    headers = {{kHeaderDevice, h.device},
               {kHeaderTime, h.time},
               {kHeaderNonce, h.nonce},
               {kHeaderSignature, h.signature}};
  };
  sign();
  const std::string path(path_and_query);
  std::lock_guard lock(impl_->mu);
  auto send = [&]() -> httplib::Result {
    if (method == "GET") return impl_->http->Get(path, headers);
    const std::string payload(body);
    if (method == "POST") return impl_->http->Post(path, headers, payload, "application/json");
    if (method == "PUT") return impl_->http->Put(path, headers, payload, "application/json");
    if (method == "DELETE") return impl_->http->Delete(path, headers, payload, "application/json");
    throw Error(ErrorCode::kInvalidArgument, "unsupported method " + std::string(method));
  };
  const auto start = std::chrono::steady_clock::now();
  httplib::Result res = send();
  if (!res && impl_->answered &&
      StaleConnection(res.error(), std::chrono::steady_clock::now() - start, impl_->options)) {
    // Once more on a new connection, signed anew: the server may have seen the first nonce
    // (every device request is idempotent: events by id, acks and heartbeats by content).
    impl_->http = MakeClient(base_url_, impl_->options);
    sign();
    res = send();
  }
  if (!res) {
    impl_->answered = false;  // the next request starts on a new connection anyway
    ThrowUnreachable(base_url_, res.error());
  }
  impl_->answered = true;
  const std::string signature = res->get_header_value(kHeaderSignature);
  if (!VerifyResponse(server_public_key_, device_id_, h.nonce, res->status, res->body, signature))
    throw Error(ErrorCode::kCrypto,
                "服务器应答签名无效 / server response signature missing or invalid (HTTP " +
                    std::to_string(res->status) + ")");
  return Response{res->status, std::move(res->body)};
}

nlohmann::json DeviceClient::CallJson(std::string_view method, std::string_view path_and_query,
                                      const nlohmann::json* body) {
  const Response r = Call(method, path_and_query, body ? body->dump() : std::string());
  if (r.status < 200 || r.status >= 300) throw ToApiError(r.status, r.body);
  // The answer is signed, but the server's JSON is still held to the peer limits
  // (json_limits.h) before anything walks it.
  try {
    return r.body.empty() ? nlohmann::json::object() : ParseJson(r.body);
  } catch (const Error& e) {
    throw Error(ErrorCode::kCorrupt,
                std::string("服务器应答无效 / server sent bad JSON: ") + e.what());
  }
}

Registration DeviceClient::Register(const std::string& base_url, const crypto::Sm2Key& device_key,
                                    const RegisterRequest& request, ClientOptions options) {
  auto http = MakeClient(base_url, options);
  const nlohmann::json body = {{"enrolment_code", request.enrolment_code},
                               {"public_key", device_key.PublicPem()},
                               {"name", request.name},
                               {"software_version", request.software_version},
                               {"model_version", request.model_version},
                               {"doors", request.doors}};
  auto res = http->Post("/api/v1/device/register", body.dump(), "application/json");
  if (!res) ThrowUnreachable(base_url, res.error());
  if (res->status != 200) throw ToApiError(res->status, res->body);
  nlohmann::json j;
  try {
    j = ParseJson(res->body);
  } catch (const Error& e) {
    throw Error(ErrorCode::kCorrupt, std::string("malformed registration answer: ") + e.what());
  }
  try {
    const crypto::Bytes wrapped = crypto::FromHex(j.at("data_key").get<std::string>());
    crypto::Bytes raw = device_key.Decrypt(wrapped);
    Registration reg{j.at("device_id").get<std::string>(), crypto::DataKey::FromBytes(raw),
                     crypto::Sm2Key::FromPublicPem(j.at("server_public_key").get<std::string>()),
                     j.value("server_time_ms", int64_t{0})};
    crypto::SecureZero(raw);
    return reg;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kCorrupt, std::string("malformed registration answer: ") + e.what());
  }
}

}  // namespace anju::protocol
