// The retention periods in force (R3.3.2.6): the config file's values with those saved from
// the console over them (archive.db settings table), changeable within the guideline's
// limits: snapshots at most 12 months and video references at most 3 (R3.3.2.6), events at
// least 6 months (the log R4.2.3.1 asks to keep). Every retention run reads Current().
#pragma once

#include <mutex>
#include <nlohmann/json.hpp>

#include "db/db.h"
#include "server/access/principal.h"
#include "server/retention/retention.h"

namespace anju::server {

class RetentionSettings {
 public:
  // DEFAULTS: the config file's periods.
  RetentionSettings(db::Db& archive, RetentionPolicy defaults);

  RetentionPolicy Current() const;
  // Reads the saved periods again (at start; after a change).
  void Load();
  // {"snapshot_months", …, "limits", "source", "updated_ms", "updated_by", "last_run",
  //  "last_capture_run", "interval_s"}.
  nlohmann::json Json(int64_t interval_s);
  // Saves the periods CHANGE names (within the limits), audited with before and after.
  void Update(const nlohmann::json& change, const Principal& who);

  struct Limit {
    const char* key;  // settings key and JSON field
    int RetentionPolicy::*field;
    int min, max;
  };
  static const std::vector<Limit>& Limits();

 private:
  db::Db& archive_;
  RetentionPolicy defaults_;
  mutable std::mutex mu_;
  RetentionPolicy current_;
};

}  // namespace anju::server
