#include "server/gallery_sync.h"

#include <set>

#include "protocol/feature_codec.h"
#include "server/audit/audit_log.h"
#include "server/audit/sealing.h"

namespace anju::server {

using nlohmann::json;

namespace {

std::vector<std::string> Utf8Chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace

std::string MaskName(const std::string& name) {
  const auto chars = Utf8Chars(name);
  if (chars.empty()) return "";
  if (chars.size() == 1) return chars[0];
  if (chars.size() == 2) return chars[0] + "*";
  std::string out = chars.front();
  for (size_t i = 1; i + 1 < chars.size(); ++i) out += "*";
  return out + chars.back();
}

int64_t GallerySync::Latest(Conn& conn, const std::string& device_id) {
  Stmt s(conn, "SELECT COALESCE(MAX(seq), 0) FROM device_changes WHERE device_id=?");
  s.Bind(1, device_id).Step();
  return s.Int(0);
}

void GallerySync::Append(Conn& conn, const std::string& device, const std::string& code, const char* op,
                         const std::string& reason) {
  const int64_t seq = Latest(conn, device) + 1;
  const int64_t now = NowMs();
  Stmt s(conn,
         "INSERT INTO device_changes(device_id, seq, person_code, op, reason, time_ms) "
         "VALUES(?,?,?,?,?,?)");
  s.Bind(1, device).Bind(2, seq).Bind(3, code).Bind(4, op).Bind(5, reason).Bind(6, now).Run();
  if (std::string_view(op) == "remove") {
    Stmt r(conn,
           "INSERT INTO device_removals(device_id, person_code, seq, reason, queued_ms) "
           "VALUES(?,?,?,?,?)");
    r.Bind(1, device).Bind(2, code).Bind(3, seq).Bind(4, reason).Bind(5, now).Run();
  }
}

void GallerySync::PersonChanged(Conn& conn, int64_t person_id, const std::string& reason) {
  if (on_change_) on_change_();
  std::string code;
  bool eligible = false;
  {
    // Eligible: an active resident with a standing consent and at least one feature of
    // the model version devices use.
    Stmt s(
        conn,
        "SELECT code, status = 'active' "
        "AND EXISTS(SELECT 1 FROM consents c WHERE c.person_id = p.id AND c.withdrawn_ms IS NULL) "
        "AND EXISTS(SELECT 1 FROM features f WHERE f.person_id = p.id AND f.model_version = ?) "
        "FROM persons p WHERE id = ?");
    s.Bind(1, model_version_).Bind(2, person_id);
    if (!s.Step()) return;
    code = s.Text(0);
    eligible = s.Int(1) != 0;
  }
  std::set<std::string> targets, holders;
  if (eligible) {
    Stmt s(conn,
           "SELECT DISTINCT d.device_id FROM access_group_members m "
           "JOIN access_group_doors d ON d.group_id = m.group_id "
           "JOIN access_groups g ON g.id = m.group_id "
           "JOIN devices v ON v.id = d.device_id "
           "WHERE m.person_id = ? AND v.status != 'revoked'");
    s.Bind(1, person_id);
    while (s.Step()) targets.insert(s.Text(0));
  }
  {
    Stmt s(conn, "SELECT device_id FROM device_persons WHERE person_code = ?");
    s.Bind(1, code);
    while (s.Step()) holders.insert(s.Text(0));
  }
  for (const auto& d : targets) {
    Append(conn, d, code, "upsert", reason);
    Stmt s(conn,
           "INSERT OR IGNORE INTO device_persons(device_id, person_code) VALUES(?,?)");
    s.Bind(1, d).Bind(2, code).Run();
  }
  for (const auto& d : holders) {
    if (targets.count(d)) continue;
    Append(conn, d, code, "remove", reason);
    Stmt s(conn, "DELETE FROM device_persons WHERE device_id = ? AND person_code = ?");
    s.Bind(1, d).Bind(2, code).Run();
  }
}

void GallerySync::GroupChanged(Conn& conn, int64_t group_id, const std::string& reason) {
  std::vector<int64_t> members;
  {
    Stmt s(conn, "SELECT person_id FROM access_group_members WHERE group_id = ?");
    s.Bind(1, group_id);
    while (s.Step()) members.push_back(s.Int(0));
  }
  for (int64_t p : members) PersonChanged(conn, p, reason);
}

json GallerySync::Upsert(Conn& conn, int64_t person_id, const std::string& code, const std::string& name,
                         int open_ms, const std::string& device_id, int doors,
                         const crypto::DataKey& device_key) {
  json templates = json::array();
  {
    Stmt s(conn,
           "SELECT id, sealed FROM features WHERE person_id = ? AND model_version = ? ORDER BY id");
    s.Bind(1, person_id).Bind(2, model_version_);
    while (s.Step()) {
      const auto f = OpenFeatureAtRest(key_, code, s.Blob(1));
      templates.push_back({{"id", "t-" + std::to_string(s.Int(0))},
                           {"feature", protocol::SealFeature(device_key, code, f)}});
    }
  }
  // Rules: the union of the person's access groups that reach this device.
  std::set<int> door_set;
  {
    Stmt s(conn,
           "SELECT DISTINCT d.door FROM access_group_doors d "
           "JOIN access_group_members m ON m.group_id = d.group_id "
           "WHERE m.person_id = ? AND d.device_id = ?");
    s.Bind(1, person_id).Bind(2, device_id);
    while (s.Step()) door_set.insert(int(s.Int(0)));
  }
  json windows = json::array();
  bool any_time = false;
  std::optional<int64_t> from, until;
  bool unbounded_from = false, unbounded_until = false;
  {
    Stmt s(
        conn,
        "SELECT g.windows, g.valid_from_ms, g.valid_until_ms, g.open_ms FROM access_groups g "
        "JOIN access_group_members m ON m.group_id = g.id WHERE m.person_id = ? AND "
        "EXISTS(SELECT 1 FROM access_group_doors d WHERE d.group_id = g.id AND d.device_id = ?)");
    s.Bind(1, person_id).Bind(2, device_id);
    while (s.Step()) {
      const json w = json::parse(s.Text(0));
      if (w.empty()) any_time = true;
      for (const auto& x : w) windows.push_back(x);
      if (s.IsNull(1))
        unbounded_from = true;
      else
        from = from ? std::min(*from, s.Int(1)) : s.Int(1);
      if (s.IsNull(2))
        unbounded_until = true;
      else
        until = until ? std::max(*until, s.Int(2)) : s.Int(2);
      open_ms = std::max(open_ms, int(s.Int(3)));
    }
  }
  json door_list = json::array();
  if (int(door_set.size()) < doors)
    for (int d : door_set) door_list.push_back(d);
  json rules = {{"valid_from_ms", unbounded_from || !from ? json(nullptr) : json(*from)},
                {"valid_until_ms", unbounded_until || !until ? json(nullptr) : json(*until)},
                {"doors", door_list},
                {"windows", any_time ? json::array() : windows},
                {"open_ms", open_ms}};
  (void)person_id;
  return {{"op", "upsert"},
          {"person", code},
          {"display_name", MaskName(name)},
          {"templates", templates},
          {"rules", rules}};
}

json GallerySync::Fetch(Conn& conn, const std::string& device_id, const crypto::DataKey& device_key,
                        int64_t since, int64_t limit) {
  int64_t latest = Latest(conn, device_id);
  // A device ahead of the server (the archive was restored from a backup) starts over.
  if (since > latest) since = 0;
  const int64_t now = NowMs();
  {
    Transaction tx(conn);
    Stmt c(conn,
           "UPDATE device_removals SET confirmed_ms = ? WHERE device_id = ? AND seq <= ? "
           "AND confirmed_ms IS NULL");
    c.Bind(1, now).Bind(2, device_id).Bind(3, since).Run();
    Stmt v(conn, "UPDATE devices SET gallery_version = ?, last_seen_ms = ? WHERE id = ?");
    v.Bind(1, since).Bind(2, now).Bind(3, device_id).Run();
    tx.Commit();
  }
  int doors = 1;
  {
    Stmt s(conn, "SELECT doors FROM devices WHERE id = ?");
    s.Bind(1, device_id);
    if (s.Step()) doors = int(s.Int(0));
  }
  json changes = json::array();
  int64_t version = since, rows = 0;
  Stmt s(conn,
         "SELECT c.person_code, c.m, (SELECT reason FROM device_changes x WHERE x.device_id = ?1 "
         "AND x.seq = c.m), p.id, p.name, p.open_ms, "
         "EXISTS(SELECT 1 FROM device_persons h WHERE h.device_id = ?1 AND h.person_code = "
         "c.person_code) "
         "FROM (SELECT person_code, MAX(seq) AS m FROM device_changes WHERE device_id = ?1 AND "
         "seq > ?2 GROUP BY person_code ORDER BY m LIMIT ?3) c "
         "LEFT JOIN persons p ON p.code = c.person_code ORDER BY c.m");
  s.Bind(1, device_id).Bind(2, since).Bind(3, limit);
  while (s.Step()) {
    ++rows;
    version = s.Int(1);
    const std::string code = s.Text(0);
    const bool holds = s.Int(6) != 0 && !s.IsNull(3);
    if (holds) {
      changes.push_back(
          Upsert(conn, s.Int(3), code, s.Text(4), int(s.Int(5)), device_id, doors, device_key));
    } else if (since > 0) {  // a full sync (since=0) sends only what the device must hold
      changes.push_back({{"op", "remove"}, {"person", code}, {"reason", s.Text(2)}});
    }
  }
  if (rows < limit) version = latest;
  return {{"model_version", model_version_},
          {"since", since},
          {"version", version},
          {"latest", latest},
          {"more", version < latest},
          {"changes", changes}};
}

}  // namespace anju::server
