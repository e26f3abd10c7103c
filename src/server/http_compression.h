// Response compression that does not depend on cpp-httplib's own: Debian's cpp-httplib
// compresses every compressible body with brotli at its slowest quality on each request
// (1 MB took 4.7 s), so the server compresses with gzip itself, or sends precompressed files,
// and hands httplib a sized content provider, which it sends as is.
#pragma once

#include <memory>
#include <string>

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace anju::server {

// True when the Accept-Encoding header lists CODING as a token with a non-zero quality.
bool AcceptsEncoding(const std::string& accept_encoding, const std::string& coding);

// The gzip (RFC 1952) form of DATA at zlib level LEVEL.
std::string Gzip(const std::string& data, int level = 6);

// Sets RES's body to BYTES, already in CODING ("" = none), sent without further compression.
void SetBodyAsIs(httplib::Response& res, std::shared_ptr<const std::string> bytes,
                 const std::string& content_type, const std::string& coding);

// Sets RES's body to BODY, gzip-compressed when it is large enough to be worth it, of a
// compressible type, and REQ accepts gzip.
void SetBodyCompressed(const httplib::Request& req, httplib::Response& res, std::string body,
                       const std::string& content_type);

}  // namespace anju::server
