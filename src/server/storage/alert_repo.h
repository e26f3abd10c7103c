// Alert rules and the de-duplication state of the alarms they raise, in captures.db
// (docs/viid.md); and the residents the tenant_absent and elderly_not_seen rules watch, read
// from archive.db.
// Rows in, rows out, on the caller's connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/db.h"

namespace anju::server::storage {

struct AlertRuleRow {
  int64_t id = 0;
  std::string type, name;
  bool enabled = true;
  std::string params;  // JSON text
  int64_t created_ms = 0;
};

// An active tenant and since when they live there.
struct TenantRow {
  std::string code;
  int64_t since_ms = 0;
};

class AlertRepo {
 public:
  // ---- rules ----
  // Ordered by id.
  static std::vector<AlertRuleRow> Rules(db::Conn& c);
  // Returns the new rule's id.
  static int64_t InsertRule(db::Conn& c, const AlertRuleRow& r);
  static void UpdateRule(db::Conn& c, int64_t id, const std::string& name, bool enabled,
                         const std::string& params);
  // True when the rule existed.
  static bool DeleteRule(db::Conn& c, int64_t id);

  // ---- de-duplication ----
  // When the alarm of KEY was last raised.
  static std::optional<int64_t> LastRaised(db::Conn& c, const std::string& key);
  static void SetRaised(db::Conn& c, const std::string& key, int64_t now_ms);

  // ---- archive.db ----
  // Active persons with the tenant role in a household, and since when: the later of their
  // move-in (or creation) and their earliest membership.
  static std::vector<TenantRow> ActiveTenants(db::Conn& archive);
  // Active persons born on or before BORN_BY ("YYYY-MM-DD") who live in a household (role
  // tenant or family), and since when, as ActiveTenants. Persons without a date of birth are
  // not among them.
  static std::vector<TenantRow> ElderlyResidents(db::Conn& archive, const std::string& born_by);
};

}  // namespace anju::server::storage
