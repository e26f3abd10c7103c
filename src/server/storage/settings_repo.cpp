#include "server/storage/settings_repo.h"

#include "server/storage/repo_sql.h"

namespace anju::server::storage {

using db::Stmt;

std::map<std::string, std::string> SettingsRepo::All(db::Conn& c) {
  Stmt s(c, "SELECT key, value FROM settings");
  std::map<std::string, std::string> out;
  while (s.Step()) out[s.Text(0)] = s.Text(1);
  return out;
}

void SettingsRepo::Put(db::Conn& c, const std::string& key, const std::string& value,
                       int64_t now_ms, const std::string& by) {
  Stmt s(c,
         "INSERT INTO settings(key, value, updated_ms, updated_by) VALUES(?,?,?,?) "
         "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_ms = "
         "excluded.updated_ms, updated_by = excluded.updated_by");
  s.Bind(1, key).Bind(2, value).Bind(3, now_ms).Bind(4, by).Run();
}

std::optional<std::pair<int64_t, std::string>> SettingsRepo::LatestChange(
    db::Conn& c, const std::string& suffix) {
  Stmt s(c,
         "SELECT updated_ms, updated_by FROM settings WHERE lower(key) LIKE lower(?) ESCAPE '\\' "
         "ORDER BY updated_ms DESC LIMIT 1");
  s.Bind(1, "%" + LikeText(suffix));
  if (!s.Step()) return std::nullopt;
  return std::pair{s.Int(0), s.Text(1)};
}

}  // namespace anju::server::storage
