// The key hierarchy as the security administrator sees it (docs/audit-and-keys.md): ids of
// the master and class keys, which master wraps each, the server's SM2 and TLS fingerprints,
// the last rotation — never key material (R3.3.3.2).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "server/audit/server_keys.h"

namespace anju::server {

struct TlsInfo {
  std::string certificate;  // file
  std::string fingerprint;
};

// LAST_ROTATION: the newest keys.rotate audit record ({"time_ms", "actor", "detail"}) or null.
nlohmann::json KeyHierarchy(const std::filesystem::path& data_dir, const ServerKeys& keys,
                            const std::optional<TlsInfo>& tls, nlohmann::json last_rotation);

}  // namespace anju::server
