#include "server/http/outbound_client.h"

#include <httplib.h>

namespace anju::server::http {

struct OutboundClient::Impl {
  explicit Impl(const std::string& base) : client(base) {}
  httplib::Client client;
};

OutboundClient::OutboundClient(const std::string& base, int connect_s, int io_s)
    : impl_(std::make_unique<Impl>(base)) {
  impl_->client.set_connection_timeout(connect_s, 0);
  impl_->client.set_read_timeout(io_s, 0);
  impl_->client.set_write_timeout(io_s, 0);
}

OutboundClient::~OutboundClient() = default;

void OutboundClient::TrustCertificate(const std::string& file) {
  impl_->client.set_ca_cert_path(file.c_str());
  impl_->client.enable_server_certificate_verification(true);
}

OutboundReply OutboundClient::Post(const std::string& path,
                                   const std::vector<std::pair<std::string, std::string>>& headers,
                                   const std::string& body, const std::string& content_type) {
  httplib::Headers h;
  for (const auto& [k, v] : headers) h.emplace(k, v);
  const httplib::Result res = impl_->client.Post(path, h, body, content_type);
  OutboundReply r;
  if (!res) {
    r.error = httplib::to_string(res.error());
    return r;
  }
  r.status = res->status;
  r.www_authenticate = res->get_header_value("WWW-Authenticate");
  r.body = res->body.substr(0, OutboundReply::kMaxBody);
  return r;
}

}  // namespace anju::server::http
