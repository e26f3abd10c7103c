#include "server/http/compression.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace anju::server::http {

bool AcceptsEncoding(const std::string& header, const std::string& coding) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(',', pos);
    if (end == std::string::npos) end = header.size();
    std::string token = header.substr(pos, end - pos);
    pos = end + 1;
    bool refused = false;
    if (const size_t semi = token.find(';'); semi != std::string::npos) {
      std::string params = token.substr(semi + 1);
      params.erase(std::remove_if(params.begin(), params.end(), ::isspace), params.end());
      // "q=0", "q=0.0", "q=0.000" refuse the coding.
      if (params.rfind("q=0", 0) == 0 && params.find_first_not_of("0.", 2) == std::string::npos)
        refused = true;
      token.resize(semi);
    }
    const size_t b = token.find_first_not_of(" \t");
    const size_t e = token.find_last_not_of(" \t");
    if (b == std::string::npos) continue;
    if (token.substr(b, e - b + 1) == coding) return !refused;
  }
  return false;
}

std::string Gzip(const std::string& data, int level) {
  z_stream zs{};
  // 15 + 16: a gzip header and trailer rather than a zlib one.
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate failed");
  return out;
}

void SetBodyAsIs(Response& res, std::string bytes, const std::string& content_type,
                 const std::string& coding) {
  res.Set("Content-Type", content_type);
  if (coding.empty())
    res.headers.erase("Content-Encoding");
  else
    res.Set("Content-Encoding", coding);
  res.body = std::move(bytes);
}

void SetBodyCompressed(const Request& req, Response& res, std::string body,
                       const std::string& content_type) {
  constexpr size_t kWorthIt = 1024;
  const bool compressible =
      content_type.rfind("application/json", 0) == 0 ||
      (content_type.rfind("text/", 0) == 0 && content_type.rfind("text/event-stream", 0) != 0);
  if (body.size() < kWorthIt || !compressible) {
    // Small or binary (JPEG, sealed files): sent as they are.
    SetBodyAsIs(res, std::move(body), content_type, "");
    return;
  }
  res.Set("Vary", "Accept-Encoding");
  if (AcceptsEncoding(req.Header("Accept-Encoding"), "gzip"))
    SetBodyAsIs(res, Gzip(body), content_type, "gzip");
  else
    SetBodyAsIs(res, std::move(body), content_type, "");
}

}  // namespace anju::server::http
