// Settings changed at run time (archive.db table settings, schema version 5): retention
// periods saved from the console, which override the config file.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "db/db.h"

namespace anju::server::storage {

class SettingsRepo {
 public:
  static std::map<std::string, std::string> All(db::Conn& c);
  static void Put(db::Conn& c, const std::string& key, const std::string& value, int64_t now_ms,
                  const std::string& by);
  // The newest change to a key ending in SUFFIX: (time, who).
  static std::optional<std::pair<int64_t, std::string>> LatestChange(db::Conn& c,
                                                                     const std::string& suffix);
};

}  // namespace anju::server::storage
