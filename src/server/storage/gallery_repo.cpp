#include "server/storage/gallery_repo.h"

namespace anju::server::storage {

using db::Stmt;

int64_t GalleryRepo::Latest(db::Conn& c, const std::string& device_id) {
  Stmt s(c, "SELECT COALESCE(MAX(seq), 0) FROM device_changes WHERE device_id=?");
  s.Bind(1, device_id).Step();
  return s.Int(0);
}

void GalleryRepo::AppendChange(db::Conn& c, const std::string& device_id, int64_t seq,
                               const std::string& code, const std::string& op,
                               const std::string& reason, int64_t now_ms) {
  Stmt s(c,
         "INSERT INTO device_changes(device_id, seq, person_code, op, reason, time_ms) "
         "VALUES(?,?,?,?,?,?)");
  s.Bind(1, device_id).Bind(2, seq).Bind(3, code).Bind(4, op).Bind(5, reason).Bind(6, now_ms);
  s.Run();
}

void GalleryRepo::AppendRemoval(db::Conn& c, const std::string& device_id, const std::string& code,
                                int64_t seq, const std::string& reason, int64_t now_ms) {
  Stmt r(c,
         "INSERT INTO device_removals(device_id, person_code, seq, reason, queued_ms) "
         "VALUES(?,?,?,?,?)");
  r.Bind(1, device_id).Bind(2, code).Bind(3, seq).Bind(4, reason).Bind(5, now_ms).Run();
}

std::optional<std::pair<std::string, bool>> GalleryRepo::Eligibility(
    db::Conn& c, int64_t person_id, const std::string& model_version) {
  Stmt s(c,
         "SELECT code, status = 'active' "
         "AND EXISTS(SELECT 1 FROM consents c WHERE c.person_id = p.id AND c.withdrawn_ms IS "
         "NULL) "
         "AND EXISTS(SELECT 1 FROM features f WHERE f.person_id = p.id AND f.model_version = ?) "
         "FROM persons p WHERE id = ?");
  s.Bind(1, model_version).Bind(2, person_id);
  if (!s.Step()) return std::nullopt;
  return std::make_pair(s.Text(0), s.Int(1) != 0);
}

std::set<std::string> GalleryRepo::Reaching(db::Conn& c, int64_t person_id) {
  Stmt s(c,
         "SELECT DISTINCT d.device_id FROM access_group_members m "
         "JOIN access_group_doors d ON d.group_id = m.group_id "
         "JOIN access_groups g ON g.id = m.group_id "
         "JOIN devices v ON v.id = d.device_id "
         "WHERE m.person_id = ? AND v.status != 'revoked'");
  s.Bind(1, person_id);
  std::set<std::string> out;
  while (s.Step()) out.insert(s.Text(0));
  return out;
}

std::set<std::string> GalleryRepo::Holders(db::Conn& c, const std::string& code) {
  Stmt s(c, "SELECT device_id FROM device_persons WHERE person_code = ?");
  s.Bind(1, code);
  std::set<std::string> out;
  while (s.Step()) out.insert(s.Text(0));
  return out;
}

void GalleryRepo::AddHolder(db::Conn& c, const std::string& device_id, const std::string& code) {
  Stmt s(c,
         "INSERT INTO device_persons(device_id, person_code) VALUES(?,?) ON CONFLICT(device_id, "
         "person_code) DO NOTHING");
  s.Bind(1, device_id).Bind(2, code).Run();
}

void GalleryRepo::RemoveHolder(db::Conn& c, const std::string& device_id, const std::string& code) {
  Stmt s(c, "DELETE FROM device_persons WHERE device_id = ? AND person_code = ?");
  s.Bind(1, device_id).Bind(2, code).Run();
}

std::vector<int64_t> GalleryRepo::GroupMembers(db::Conn& c, int64_t group_id) {
  Stmt s(c, "SELECT person_id FROM access_group_members WHERE group_id = ?");
  s.Bind(1, group_id);
  std::vector<int64_t> out;
  while (s.Step()) out.push_back(s.Int(0));
  return out;
}

std::vector<std::pair<int64_t, std::vector<uint8_t>>> GalleryRepo::Features(
    db::Conn& c, int64_t person_id, const std::string& model_version) {
  Stmt s(c,
         "SELECT id, sealed FROM features WHERE person_id = ? AND model_version = ? ORDER BY id");
  s.Bind(1, person_id).Bind(2, model_version);
  std::vector<std::pair<int64_t, std::vector<uint8_t>>> out;
  while (s.Step()) out.emplace_back(s.Int(0), s.Blob(1));
  return out;
}

std::set<int> GalleryRepo::Doors(db::Conn& c, int64_t person_id, const std::string& device_id) {
  Stmt s(c,
         "SELECT DISTINCT d.door FROM access_group_doors d "
         "JOIN access_group_members m ON m.group_id = d.group_id "
         "WHERE m.person_id = ? AND d.device_id = ?");
  s.Bind(1, person_id).Bind(2, device_id);
  std::set<int> out;
  while (s.Step()) out.insert(int(s.Int(0)));
  return out;
}

std::vector<GroupRuleRow> GalleryRepo::Rules(db::Conn& c, int64_t person_id,
                                             const std::string& device_id) {
  Stmt s(c,
         "SELECT g.windows, g.valid_from_ms, g.valid_until_ms, g.open_ms FROM access_groups g "
         "JOIN access_group_members m ON m.group_id = g.id WHERE m.person_id = ? AND "
         "EXISTS(SELECT 1 FROM access_group_doors d WHERE d.group_id = g.id AND d.device_id = ?)");
  s.Bind(1, person_id).Bind(2, device_id);
  std::vector<GroupRuleRow> out;
  while (s.Step()) out.push_back({s.Text(0), s.OptInt(1), s.OptInt(2), s.Int(3)});
  return out;
}

void GalleryRepo::Confirm(db::Conn& c, const std::string& device_id, int64_t since,
                          int64_t now_ms) {
  Stmt r(c,
         "UPDATE device_removals SET confirmed_ms = ? WHERE device_id = ? AND seq <= ? "
         "AND confirmed_ms IS NULL");
  r.Bind(1, now_ms).Bind(2, device_id).Bind(3, since).Run();
  Stmt v(c, "UPDATE devices SET gallery_version = ?, last_seen_ms = ? WHERE id = ?");
  v.Bind(1, since).Bind(2, now_ms).Bind(3, device_id).Run();
}

std::vector<GalleryChangeRow> GalleryRepo::Changes(db::Conn& c, const std::string& device_id,
                                                   int64_t since, int64_t limit) {
  Stmt s(c,
         "SELECT c.person_code, c.m, (SELECT reason FROM device_changes x WHERE x.device_id = ?1 "
         "AND x.seq = c.m), p.id, p.name, p.open_ms, "
         "EXISTS(SELECT 1 FROM device_persons h WHERE h.device_id = ?1 AND h.person_code = "
         "c.person_code) "
         "FROM (SELECT person_code, MAX(seq) AS m FROM device_changes WHERE device_id = ?1 AND "
         "seq > ?2 GROUP BY person_code ORDER BY m LIMIT ?3) c "
         "LEFT JOIN persons p ON p.code = c.person_code ORDER BY c.m");
  s.Bind(1, device_id).Bind(2, since).Bind(3, limit);
  std::vector<GalleryChangeRow> out;
  while (s.Step()) {
    GalleryChangeRow r;
    r.person_code = s.Text(0);
    r.seq = s.Int(1);
    r.reason = s.Text(2);
    r.person_id = s.OptInt(3);
    if (r.person_id) {
      r.name = s.Text(4);
      r.open_ms = s.Int(5);
    }
    r.held = s.Int(6) != 0;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace anju::server::storage
