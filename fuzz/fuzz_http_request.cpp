// The HTTP request path of the server's front (src/server/http/): arbitrary bytes go through
// Boost.Beast's request parser with the server's limits (header 32 KiB, body 1 MiB here),
// then the request model's own parsing: target → path and query, multipart/form-data parts,
// the allow-list address check. Failures must be parse errors, never a crash, a leak or
// undefined behaviour.
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/http/address_list.h"
#include "server/http/message.h"

namespace bhttp = boost::beast::http;
using namespace anju::server::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(32u << 10);
  parser.body_limit(1u << 20);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  static const AddressList allow = AddressList::Parse({"10.0.0.0/8", "2001:db8::/32"});
  if (parser.is_header_done()) {
    const auto& msg = parser.get();
    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    for (const auto& f : msg)
      req.headers.emplace(std::string(f.name_string()), std::string(f.value()));
    if (parser.is_done()) req.body = msg.body();
    ParseTarget(req);
    if (req.IsMultipartFormData()) {
      if (auto parts = ParseMultipart(req.Header("Content-Type"), req.body))
        for (const auto& p : *parts) (void)req.Part(p.name);
    }
    (void)allow.Contains(req.Header("X-Forwarded-For"));
  }
  // The multipart parser on its own, with the input as the body and a fixed boundary.
  (void)ParseMultipart("multipart/form-data; boundary=b", bytes);
  return 0;
}
