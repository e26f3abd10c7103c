#include "server/storage/forward_repo.h"

namespace anju::server::storage {

using db::Stmt;

namespace {

std::string Table(Outbox box) {
  return box == Outbox::kWebhook ? "webhook_outbox" : "forward_outbox";
}

}  // namespace

// ---- settings ----

std::optional<std::string> ForwardRepo::Setting(db::Conn& c, const std::string& key) {
  Stmt s(c, "SELECT value FROM settings WHERE key = ?");
  s.Bind(1, key);
  if (!s.Step()) return std::nullopt;
  return s.Text(0);
}

std::map<std::string, std::string> ForwardRepo::Settings(db::Conn& c,
                                                         const std::vector<std::string>& keys) {
  std::map<std::string, std::string> out;
  if (keys.empty()) return out;
  std::string in;
  for (size_t i = 0; i < keys.size(); ++i) in += i ? ",?" : "?";
  Stmt s(c, "SELECT key, value FROM settings WHERE key IN (" + in + ")");
  for (size_t i = 0; i < keys.size(); ++i) s.Bind(int(i + 1), keys[i]);
  while (s.Step()) out[s.Text(0)] = s.Text(1);
  return out;
}

void ForwardRepo::PutSetting(db::Conn& c, const std::string& key, const std::string& value) {
  Stmt s(c,
         "INSERT INTO settings(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = "
         "excluded.value");
  s.Bind(1, key).Bind(2, value);
  s.Run();
}

void ForwardRepo::AddSetting(db::Conn& c, const std::string& key, const std::string& value) {
  Stmt s(c, "INSERT INTO settings(key, value) VALUES(?, ?) ON CONFLICT(key) DO NOTHING");
  s.Bind(1, key).Bind(2, value);
  s.Run();
}

void ForwardRepo::UpdateSetting(db::Conn& c, const std::string& key, const std::string& value) {
  Stmt s(c, "UPDATE settings SET value = ? WHERE key = ?");
  s.Bind(1, value).Bind(2, key);
  s.Run();
}

// ---- outboxes ----

void ForwardRepo::EnqueueWebhook(db::Conn& c, const std::string& body, int64_t now_ms) {
  Stmt s(c, "INSERT INTO webhook_outbox(body, next_ms, created_ms) VALUES(?,?,?)");
  s.Bind(1, body).Bind(2, now_ms).Bind(3, now_ms);
  s.Run();
}

void ForwardRepo::EnqueueForward(db::Conn& c, const std::string& kind, const std::string& body,
                                 int64_t now_ms) {
  Stmt s(c, "INSERT INTO forward_outbox(kind, body, next_ms, created_ms) VALUES(?,?,?,?)");
  s.Bind(1, kind).Bind(2, body).Bind(3, now_ms).Bind(4, now_ms);
  s.Run();
}

std::vector<OutboxItem> ForwardRepo::Due(db::Conn& c, Outbox box, int64_t now_ms, int limit) {
  Stmt s(c, std::string("SELECT seq, ") + (box == Outbox::kWebhook ? "''" : "kind") +
                ", body FROM " + Table(box) + " WHERE next_ms <= ? ORDER BY seq LIMIT ?");
  s.Bind(1, now_ms).Bind(2, limit);
  std::vector<OutboxItem> out;
  while (s.Step()) out.push_back({s.Int(0), s.Text(1), s.Text(2)});
  return out;
}

void ForwardRepo::Sent(db::Conn& c, Outbox box, int64_t seq) {
  Stmt d(c, "DELETE FROM " + Table(box) + " WHERE seq = ?");
  d.Bind(1, seq);
  d.Run();
}

void ForwardRepo::Failed(db::Conn& c, Outbox box, int64_t seq, int64_t now_ms,
                         const std::string& error) {
  Stmt d(c, "UPDATE " + Table(box) +
                " SET attempts = attempts + 1, next_ms = ? + CASE WHEN attempts >= 9 THEN "
                "300000 ELSE 1000 * (1 << CAST(attempts AS INTEGER)) END, last_error = ? WHERE "
                "seq = ?");  // 1 s doubling to 256 s, then 5 min
  d.Bind(1, now_ms).Bind(2, error).Bind(3, seq);
  d.Run();
}

OutboxState ForwardRepo::State(db::Conn& c, Outbox box) {
  OutboxState out;
  Stmt s(c, "SELECT COUNT(*), COALESCE(MAX(attempts), 0), COALESCE(MIN(created_ms), 0) FROM " +
                Table(box));
  s.Step();
  out.pending = s.Int(0);
  out.max_attempts = s.Int(1);
  out.oldest_ms = s.Int(2);
  Stmt e(c,
         "SELECT last_error FROM " + Table(box) + " WHERE last_error != '' ORDER BY seq LIMIT 1");
  if (e.Step()) out.last_error = e.Text(0);
  return out;
}

}  // namespace anju::server::storage
