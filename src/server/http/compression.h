// Response compression: the server gzips large JSON and text replies itself (zlib level 6,
// cheap next to the brotli-at-slowest-quality that cpp-httplib used to apply), and the
// console's files go out as their precompressed .br / .gz siblings (server/http/console_files.h).
// Every path sets exactly one Content-Encoding header.
#pragma once

#include <string>

#include "server/http/message.h"

namespace anju::server::http {

// True when the Accept-Encoding header lists CODING as a token with a non-zero quality.
bool AcceptsEncoding(const std::string& accept_encoding, const std::string& coding);

// The gzip (RFC 1952) form of DATA at zlib level LEVEL.
std::string Gzip(const std::string& data, int level = 6);

// Sets RES's body to BYTES, already in CODING ("" = none), sent without further compression.
void SetBodyAsIs(Response& res, std::string bytes, const std::string& content_type,
                 const std::string& coding);

// Sets RES's body to BODY, gzip-compressed when it is large enough to be worth it, of a
// compressible type, and REQ accepts gzip.
void SetBodyCompressed(const Request& req, Response& res, std::string body,
                       const std::string& content_type);

}  // namespace anju::server::http
