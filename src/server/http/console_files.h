// The web console's static files (console/, built by Vite) served at "/" for what no API route
// answers. A file with a precompressed sibling (`name.br`, `name.gz`, written at build time) is
// answered with that sibling when the client accepts its encoding, so the server spends no time
// compressing; other text files are gzipped on the fly (server/http/compression.h). Hashed
// assets are cached for a year, everything else is revalidated.
#pragma once

#include <filesystem>
#include <optional>

#include "server/http/message.h"

namespace anju::server::http {

class ConsoleFiles {
 public:
  // Serves DIR; false (and nothing served) when DIR is not a directory.
  bool Mount(const std::filesystem::path& dir);
  bool mounted() const { return !dir_.empty(); }
  // The file a GET or HEAD of REQ names ("/" and "dir/" mean index.html), or nullopt when
  // there is none: other methods, paths with "..", a backslash or a NUL, missing files.
  std::optional<Response> Serve(const Request& req) const;

 private:
  std::filesystem::path dir_;
};

// The Content-Type of a file by its extension (application/octet-stream when unknown).
const char* ContentTypeOf(const std::filesystem::path& file);

}  // namespace anju::server::http
