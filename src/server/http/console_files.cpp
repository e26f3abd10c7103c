#include "server/http/console_files.h"

#include <fstream>
#include <iterator>
#include <string>

#include "server/http/compression.h"

namespace anju::server::http {
namespace fs = std::filesystem;

namespace {

std::optional<std::string> ReadAll(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// True when REL (the decoded request path without its leading '/') stays inside the mounted
// directory: no "." or ".." segment, no backslash, no NUL, no empty segment but a final one.
bool SafeRelative(const std::string& rel) {
  if (rel.find('\\') != std::string::npos || rel.find('\0') != std::string::npos) return false;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    const std::string seg = rel.substr(start, end - start);
    if (seg == "." || seg == "..") return false;
    if (seg.empty() && end != rel.size()) return false;  // "a//b"
    start = end + 1;
  }
  return true;
}

}  // namespace

const char* ContentTypeOf(const fs::path& file) {
  const std::string ext = file.extension().string();
  static const std::pair<const char*, const char*> kTypes[] = {
      {".html", "text/html"},       {".htm", "text/html"},     {".js", "text/javascript"},
      {".mjs", "text/javascript"},  {".css", "text/css"},      {".json", "application/json"},
      {".map", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
      {".jpg", "image/jpeg"},       {".jpeg", "image/jpeg"},   {".gif", "image/gif"},
      {".webp", "image/webp"},      {".ico", "image/x-icon"},  {".woff", "font/woff"},
      {".woff2", "font/woff2"},     {".ttf", "font/ttf"},      {".txt", "text/plain"},
      {".wasm", "application/wasm"}};
  for (const auto& [e, type] : kTypes)
    if (ext == e) return type;
  return "application/octet-stream";
}

bool ConsoleFiles::Mount(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  dir_ = dir;
  return true;
}

std::optional<Response> ConsoleFiles::Serve(const Request& req) const {
  if (dir_.empty() || (req.method != "GET" && req.method != "HEAD")) return std::nullopt;
  if (req.path.empty() || req.path[0] != '/') return std::nullopt;
  std::string rel = req.path.substr(1);
  if (!SafeRelative(rel)) return std::nullopt;
  if (rel.empty() || rel.back() == '/') rel += "index.html";
  const fs::path file = dir_ / rel;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  Response res;
  const bool hashed = rel.rfind("assets/", 0) == 0;
  res.Set("Cache-Control", hashed ? "public, max-age=31536000, immutable" : "no-cache");
  res.Set("Vary", "Accept-Encoding");
  const std::string type = ContentTypeOf(file);
  const std::string accept = req.Header("Accept-Encoding");
  for (const auto& [coding, suffix] : {std::pair{"br", ".br"}, std::pair{"gzip", ".gz"}}) {
    if (!AcceptsEncoding(accept, coding)) continue;
    fs::path packed = file;
    packed += suffix;
    if (!fs::is_regular_file(packed, ec)) continue;
    auto bytes = ReadAll(packed);
    if (!bytes) continue;
    SetBodyAsIs(res, std::move(*bytes), type, coding);
    return res;
  }
  auto bytes = ReadAll(file);
  if (!bytes) return std::nullopt;
  // No sibling (a build without the precompress step): gzip here when worth it.
  SetBodyCompressed(req, res, std::move(*bytes), type);
  return res;
}

}  // namespace anju::server::http
