// The web console's static files (console/, built by Vite) served at "/".
#pragma once

#include <filesystem>

namespace httplib {
class Server;
}

namespace anju::server {

// Mounts `dir` at "/". A file with a precompressed sibling (`name.br`, `name.gz`, written at
// build time) is answered with that sibling when the client accepts its encoding, so the
// server spends no time compressing (cpp-httplib would brotli-compress every file at its
// slowest quality on each request: 1 MB took 4.7 s). Hashed assets are cached for a year,
// everything else is revalidated. Returns false when the directory cannot be mounted.
bool ServeConsole(httplib::Server& http, const std::filesystem::path& dir);

}  // namespace anju::server
