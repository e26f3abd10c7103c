#include "server/storage/audit_repo.h"

#include <variant>

namespace anju::server::storage {

using db::Stmt;

namespace {

constexpr const char* kSelectRecord =
    "SELECT id, time_ms, actor, source, action, object, result, detail, hash FROM audit";

AuditRecord ReadRecord(const Stmt& s) {
  AuditRecord r;
  r.id = s.Int(0);
  r.time_ms = s.Int(1);
  r.actor = s.Text(2);
  r.source = s.Text(3);
  r.action = s.Text(4);
  r.object = s.Text(5);
  r.result = s.Text(6);
  r.detail = s.Text(7);
  r.hash = s.IsNull(8) ? "" : s.Text(8);
  return r;
}

CheckpointRow ReadCheckpoint(const Stmt& s) {
  return {s.Int(0), s.Int(1), s.Int(3), s.Text(2), s.Text(4), s.Text(5), s.Text(6)};
}

constexpr const char* kSelectCheckpoint =
    "SELECT id, audit_id, hash, time_ms, reason, key_id, mac FROM audit_checkpoints";

}  // namespace

void AuditRepo::Insert(db::Conn& c, const AuditRecord& r) {
  Stmt s(c,
         "INSERT INTO audit(id, time_ms, actor, source, action, object, result, detail, hash) "
         "VALUES(?,?,?,?,?,?,?,?,?)");
  s.Bind(1, r.id)
      .Bind(2, r.time_ms)
      .Bind(3, r.actor)
      .Bind(4, r.source)
      .Bind(5, r.action)
      .Bind(6, r.object)
      .Bind(7, r.result)
      .Bind(8, r.detail)
      .Bind(9, r.hash)
      .Run();
}

std::optional<std::pair<int64_t, std::string>> AuditRepo::Last(db::Conn& c) {
  Stmt s(c, "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1");
  if (!s.Step()) return std::nullopt;
  return std::pair{s.Int(0), s.IsNull(1) ? std::string() : s.Text(1)};
}

void AuditRepo::ForEach(db::Conn& c, const std::function<bool(const AuditRecord&)>& fn) {
  Stmt s(c, std::string(kSelectRecord) + " ORDER BY id");
  while (s.Step())
    if (!fn(ReadRecord(s))) return;
}

void AuditRepo::SetHash(db::Conn& c, int64_t id, const std::string& hash) {
  Stmt u(c, "UPDATE audit SET hash = ? WHERE id = ? AND hash IS NULL");
  u.Bind(1, hash).Bind(2, id).Run();
}

std::optional<std::string> AuditRepo::HashOf(db::Conn& c, int64_t id) {
  Stmt s(c, "SELECT hash FROM audit WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return s.Text(0);
}

std::optional<int64_t> AuditRepo::TimeOf(db::Conn& c, int64_t id) {
  Stmt s(c, "SELECT time_ms FROM audit WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return s.Int(0);
}

std::vector<AuditRecord> AuditRepo::Query(db::Conn& c, const AuditQuery& q, bool ignore_limit) {
  std::vector<std::variant<int64_t, std::string>> binds;
  std::string w = " WHERE id > ?";
  binds.emplace_back(q.after_id);
  if (q.before_id > 0) w += " AND id < ?", binds.emplace_back(q.before_id);
  if (q.from_ms) w += " AND time_ms >= ?", binds.emplace_back(*q.from_ms);
  if (q.to_ms) w += " AND time_ms < ?", binds.emplace_back(*q.to_ms);
  if (!q.actor.empty()) w += " AND actor = ?", binds.emplace_back(q.actor);
  if (!q.action.empty()) w += " AND action = ?", binds.emplace_back(q.action);
  if (!q.object_prefix.empty()) {
    w += " AND substr(object, 1, length(?)) = ?";
    binds.emplace_back(q.object_prefix);
    binds.emplace_back(q.object_prefix);
  }
  std::string sql = std::string(kSelectRecord) + w;
  sql += q.newest_first ? " ORDER BY id DESC" : " ORDER BY id";
  if (!ignore_limit && q.limit > 0) sql += " LIMIT " + std::to_string(q.limit);
  Stmt s(c, sql);
  for (size_t i = 0; i < binds.size(); ++i)
    std::visit([&](const auto& v) { s.Bind(int(i + 1), v); }, binds[i]);
  std::vector<AuditRecord> out;
  while (s.Step()) out.push_back(ReadRecord(s));
  return out;
}

std::optional<AuditRecord> AuditRepo::LatestWithAction(db::Conn& c, const std::string& action) {
  Stmt s(c, std::string(kSelectRecord) + " WHERE action = ? ORDER BY id DESC LIMIT 1");
  s.Bind(1, action);
  if (!s.Step()) return std::nullopt;
  return ReadRecord(s);
}

std::pair<std::vector<AuditRecord>, int64_t> AuditRepo::Page(db::Conn& c, const std::string& action,
                                                             const std::string& object,
                                                             const std::string& actor,
                                                             int64_t limit, int64_t offset) {
  const std::string where =
      " WHERE (?1 = '' OR action = ?1) AND (?2 = '' OR object = ?2) AND (?3 = '' OR actor = ?3)";
  Stmt n(c, "SELECT COUNT(*) FROM audit" + where);
  n.Bind(1, action).Bind(2, object).Bind(3, actor).Step();
  Stmt s(c, std::string(kSelectRecord) + where + " ORDER BY id DESC LIMIT ?4 OFFSET ?5");
  s.Bind(1, action).Bind(2, object).Bind(3, actor).Bind(4, limit).Bind(5, offset);
  std::vector<AuditRecord> out;
  while (s.Step()) out.push_back(ReadRecord(s));
  return {std::move(out), n.Int(0)};
}

std::optional<CheckpointRow> AuditRepo::LastCheckpoint(db::Conn& c) {
  Stmt s(c, std::string(kSelectCheckpoint) + " ORDER BY id DESC LIMIT 1");
  if (!s.Step()) return std::nullopt;
  return ReadCheckpoint(s);
}

int64_t AuditRepo::NextCheckpointId(db::Conn& c) {
  Stmt s(c, "SELECT COALESCE(MAX(id), 0) + 1 FROM audit_checkpoints");
  s.Step();
  return s.Int(0);
}

void AuditRepo::InsertCheckpoint(db::Conn& c, const CheckpointRow& cp) {
  Stmt ins(c,
           "INSERT INTO audit_checkpoints(id, audit_id, hash, time_ms, reason, key_id, mac) "
           "VALUES(?,?,?,?,?,?,?)");
  ins.Bind(1, cp.id)
      .Bind(2, cp.audit_id)
      .Bind(3, cp.hash)
      .Bind(4, cp.time_ms)
      .Bind(5, cp.reason)
      .Bind(6, cp.key_id)
      .Bind(7, cp.mac)
      .Run();
}

std::vector<CheckpointRow> AuditRepo::Checkpoints(db::Conn& c) {
  Stmt s(c, std::string(kSelectCheckpoint) + " ORDER BY id");
  std::vector<CheckpointRow> out;
  while (s.Step()) out.push_back(ReadCheckpoint(s));
  return out;
}

void AuditRepo::InsertHistory(db::Conn& c, int64_t person_id, const std::string& action,
                              const std::string& detail, const std::string& actor,
                              int64_t time_ms) {
  Stmt s(c, "INSERT INTO history(person_id, action, detail, actor, time_ms) VALUES(?,?,?,?,?)");
  s.Bind(1, person_id).Bind(2, action).Bind(3, detail).Bind(4, actor).Bind(5, time_ms).Run();
}

}  // namespace anju::server::storage
