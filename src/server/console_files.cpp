#include "server/console_files.h"

#include <httplib.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "server/http_compression.h"

namespace anju::server {
namespace fs = std::filesystem;

namespace {

std::shared_ptr<const std::string> ReadAll(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return nullptr;
  return std::make_shared<const std::string>(std::istreambuf_iterator<char>(in),
                                             std::istreambuf_iterator<char>());
}

}  // namespace

bool ServeConsole(httplib::Server& http, const fs::path& dir) {
  if (!http.set_mount_point("/", dir.string())) return false;
  http.set_file_request_handler([dir](const httplib::Request& req, httplib::Response& res) {
    if (res.status != 200) return;  // a range request keeps httplib's own answer
    // httplib has already checked the path (no "..") and found the file.
    std::string rel = req.path.substr(1);
    if (rel.empty() || rel.back() == '/') rel += "index.html";
    const bool hashed = rel.rfind("assets/", 0) == 0;
    res.set_header("Cache-Control", hashed ? "public, max-age=31536000, immutable" : "no-cache");
    res.set_header("Vary", "Accept-Encoding");
    const std::string accept = req.get_header_value("Accept-Encoding");
    for (const auto& [coding, suffix] : {std::pair{"br", ".br"}, std::pair{"gzip", ".gz"}}) {
      if (!AcceptsEncoding(accept, coding)) continue;
      fs::path packed = dir / rel;
      packed += suffix;
      std::error_code ec;
      if (!fs::is_regular_file(packed, ec)) continue;
      auto bytes = ReadAll(packed);
      if (!bytes) continue;
      SetBodyAsIs(res, std::move(bytes), res.get_header_value("Content-Type"), coding);
      return;
    }
    // No sibling (a build without the precompress step): gzip here rather than let httplib
    // brotli it.
    std::string body = std::move(res.body);
    SetBodyCompressed(req, res, std::move(body), res.get_header_value("Content-Type"));
  });
  return true;
}

}  // namespace anju::server
