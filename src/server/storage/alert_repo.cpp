#include "server/storage/alert_repo.h"

#include "server/storage/repo_sql.h"

namespace anju::server::storage {

using db::Stmt;

// ---- rules ----

std::vector<AlertRuleRow> AlertRepo::Rules(db::Conn& c) {
  Stmt s(c, "SELECT id, type, name, enabled, params, created_ms FROM alert_rules ORDER BY id");
  std::vector<AlertRuleRow> out;
  while (s.Step())
    out.push_back({s.Int(0), s.Text(1), s.Text(2), s.Int(3) != 0, s.Text(4), s.Int(5)});
  return out;
}

int64_t AlertRepo::InsertRule(db::Conn& c, const AlertRuleRow& r) {
  Stmt s(c,
         "INSERT INTO alert_rules(type, name, enabled, params, created_ms) VALUES(?,?,?,?,?) "
         "RETURNING id");
  s.Bind(1, r.type).Bind(2, r.name).Bind(3, int64_t(r.enabled));
  s.Bind(4, r.params).Bind(5, r.created_ms);
  return InsertReturningId(s);
}

void AlertRepo::UpdateRule(db::Conn& c, int64_t id, const std::string& name, bool enabled,
                           const std::string& params) {
  Stmt s(c, "UPDATE alert_rules SET name = ?, enabled = ?, params = ? WHERE id = ?");
  s.Bind(1, name).Bind(2, int64_t(enabled)).Bind(3, params).Bind(4, id);
  s.Run();
}

bool AlertRepo::DeleteRule(db::Conn& c, int64_t id) {
  Stmt s(c, "DELETE FROM alert_rules WHERE id = ?");
  s.Bind(1, id);
  s.Run();
  return c.Changes() > 0;
}

// ---- de-duplication ----

std::optional<int64_t> AlertRepo::LastRaised(db::Conn& c, const std::string& key) {
  Stmt q(c, "SELECT last_ms FROM alert_state WHERE key = ?");
  q.Bind(1, key);
  if (!q.Step()) return std::nullopt;
  return q.Int(0);
}

void AlertRepo::SetRaised(db::Conn& c, const std::string& key, int64_t now_ms) {
  Stmt s(c,
         "INSERT INTO alert_state(key, last_ms) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET "
         "last_ms = excluded.last_ms");
  s.Bind(1, key).Bind(2, now_ms);
  s.Run();
}

// ---- archive.db ----

std::vector<TenantRow> AlertRepo::ActiveTenants(db::Conn& archive) {
  Stmt s(archive,
         "SELECT p.code, CASE WHEN COALESCE(p.moved_in_ms, p.created_ms) > MIN(m.since_ms) "
         "THEN COALESCE(p.moved_in_ms, p.created_ms) ELSE MIN(m.since_ms) END FROM "
         "persons p JOIN household_members m ON m.person_id = p.id WHERE p.status = 'active' "
         "AND m.role = 'tenant' GROUP BY p.id");
  std::vector<TenantRow> out;
  while (s.Step()) out.push_back({s.Text(0), s.Int(1)});
  return out;
}

std::vector<TenantRow> AlertRepo::ElderlyResidents(db::Conn& archive, const std::string& born_by) {
  // Dates of birth are "YYYY-MM-DD": text order is date order on both dialects.
  Stmt s(archive,
         "SELECT p.code, CASE WHEN COALESCE(p.moved_in_ms, p.created_ms) > MIN(m.since_ms) "
         "THEN COALESCE(p.moved_in_ms, p.created_ms) ELSE MIN(m.since_ms) END FROM "
         "persons p JOIN household_members m ON m.person_id = p.id WHERE p.status = 'active' "
         "AND m.role IN ('tenant', 'family') AND p.birth_date IS NOT NULL AND p.birth_date <= ? "
         "GROUP BY p.id, p.code, p.moved_in_ms, p.created_ms ORDER BY p.code");
  s.Bind(1, born_by);
  std::vector<TenantRow> out;
  while (s.Step()) out.push_back({s.Text(0), s.Int(1)});
  return out;
}

}  // namespace anju::server::storage
