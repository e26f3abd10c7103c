#include "server/storage/person_repo.h"

#include <map>

#include "server/storage/repo_sql.h"
#include "server/storage/site_scope.h"

namespace anju::server::storage {

using nlohmann::json;

namespace {

json J(const std::optional<int64_t>& v) {
  return v ? json(*v) : json();
}

constexpr const char* kPersonCols =
    "code, name, phone, minor, status, moved_in_ms, moved_out_ms, open_ms, created_ms, "
    "updated_ms, id, id_number_sealed, birth_date";

PersonRow ReadPerson(db::Stmt& s) {
  PersonRow p;
  p.code = s.Text(0);
  p.name = s.Text(1);
  p.phone = s.Text(2);
  p.minor = s.Int(3) != 0;
  p.status = s.Text(4);
  p.moved_in_ms = s.OptInt(5);
  p.moved_out_ms = s.OptInt(6);
  p.open_ms = s.Int(7);
  p.created_ms = s.Int(8);
  p.updated_ms = s.Int(9);
  p.id = s.Int(10);
  if (!s.IsNull(11)) {
    const auto b = s.Blob(11);
    p.id_number_sealed = std::vector<uint8_t>(b.begin(), b.end());
  }
  if (!s.IsNull(12)) p.birth_date = s.Text(12);
  return p;
}

// Stored numbers keep the separators people typed ("138-0013 8000", "+86 …"): compare
// digits only. The query's digits are a suffix of the number's. ?1 the text searched (from
// LikeText), ?2 the status, ?3 the phone digits. The text matches ignoring ASCII case, as
// SQLite's LIKE does (lower() on both sides, for PostgreSQL's case-sensitive LIKE).
std::string Where(const SiteScope& scope) {
  return " WHERE (?1 = '' OR lower(code) LIKE lower('%' || ?1 || '%') ESCAPE '\\' OR "
         "lower(name) LIKE lower('%' || ?1 || '%') ESCAPE '\\') "
         "AND (?2 = '' OR status = ?2) AND (?3 = '' OR REPLACE(REPLACE(REPLACE(REPLACE("
         "REPLACE(REPLACE(phone, ' ', ''), '-', ''), '+', ''), '(', ''), ')', ''), '.', "
         "'') LIKE '%' || ?3) AND " +
         scope.PersonCondition("id");
}

}  // namespace

std::optional<int64_t> PersonRepo::IdByCode(db::Conn& c, const std::string& code) {
  db::Stmt s(c, "SELECT id FROM persons WHERE code = ?");
  s.Bind(1, code);
  if (!s.Step()) return std::nullopt;
  return s.Int(0);
}

std::optional<PersonRow> PersonRepo::Get(db::Conn& c, const std::string& code) {
  db::Stmt s(c, std::string("SELECT ") + kPersonCols + " FROM persons WHERE code = ?");
  s.Bind(1, code);
  if (!s.Step()) return std::nullopt;
  return ReadPerson(s);
}

std::optional<PersonRow> PersonRepo::GetById(db::Conn& c, int64_t id) {
  db::Stmt s(c, std::string("SELECT ") + kPersonCols + " FROM persons WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return ReadPerson(s);
}

int64_t PersonRepo::Count(db::Conn& c, const PersonFilter& f, const SiteScope& scope) {
  db::Stmt s(c, "SELECT COUNT(*) FROM persons" + Where(scope));
  s.Bind(1, LikeText(f.q)).Bind(2, f.status).Bind(3, f.phone_digits).Step();
  return s.Int(0);
}

std::vector<PersonRow> PersonRepo::List(db::Conn& c, const PersonFilter& f, const SiteScope& scope,
                                        int64_t limit, int64_t offset) {
  db::Stmt s(c, std::string("SELECT ") + kPersonCols + " FROM persons" + Where(scope) +
                    " ORDER BY code LIMIT ?4 OFFSET ?5");
  s.Bind(1, LikeText(f.q)).Bind(2, f.status).Bind(3, f.phone_digits).Bind(4, limit).Bind(5, offset);
  std::vector<PersonRow> out;
  while (s.Step()) out.push_back(ReadPerson(s));
  return out;
}

int64_t PersonRepo::CountAll(db::Conn& c) {
  db::Stmt s(c, "SELECT COUNT(*) FROM persons");
  s.Step();
  return s.Int(0);
}

int64_t PersonRepo::Insert(db::Conn& c, const NewPersonRow& p) {
  db::Stmt s(c,
             "INSERT INTO persons(code, name, id_number_sealed, phone, minor, moved_in_ms, "
             "open_ms, created_ms, updated_ms, birth_date) VALUES(?,?,?,?,?,?,?,?,?,?) "
             "RETURNING id");
  s.Bind(1, p.code).Bind(2, p.name).Bind(3, p.id_number_sealed);
  s.Bind(4, p.phone)
      .Bind(5, int64_t(p.minor))
      .Bind(6, p.moved_in_ms)
      .Bind(7, p.open_ms)
      .Bind(8, p.now_ms)
      .Bind(9, p.now_ms)
      .Bind(10, p.birth_date);
  return InsertReturningId(s);
}

void PersonRepo::SetText(db::Conn& c, int64_t id, const char* column, const std::string& value,
                         int64_t now_ms) {
  db::Stmt s(c, std::string("UPDATE persons SET ") + column + " = ?, updated_ms = ? WHERE id = ?");
  s.Bind(1, value).Bind(2, now_ms).Bind(3, id).Run();
}

void PersonRepo::SetInt(db::Conn& c, int64_t id, const char* column, int64_t value,
                        int64_t now_ms) {
  db::Stmt s(c, std::string("UPDATE persons SET ") + column + " = ?, updated_ms = ? WHERE id = ?");
  s.Bind(1, value).Bind(2, now_ms).Bind(3, id).Run();
}

void PersonRepo::SetBlob(db::Conn& c, int64_t id, const char* column,
                         const std::vector<uint8_t>& value, int64_t now_ms) {
  db::Stmt s(c, std::string("UPDATE persons SET ") + column + " = ?, updated_ms = ? WHERE id = ?");
  s.Bind(1, std::span<const uint8_t>(value)).Bind(2, now_ms).Bind(3, id).Run();
}

void PersonRepo::SetBirthDate(db::Conn& c, int64_t id, const std::optional<std::string>& value,
                              int64_t now_ms) {
  db::Stmt s(c, "UPDATE persons SET birth_date = ?, updated_ms = ? WHERE id = ?");
  s.Bind(1, value).Bind(2, now_ms).Bind(3, id).Run();
}

void PersonRepo::MoveOut(db::Conn& c, int64_t id, int64_t now_ms) {
  db::Stmt s(c,
             "UPDATE persons SET status = 'moved_out', moved_out_ms = ?, updated_ms = ? "
             "WHERE id = ?");
  s.Bind(1, now_ms).Bind(2, now_ms).Bind(3, id).Run();
  db::Stmt cr(c, "DELETE FROM credentials WHERE person_id = ?");
  cr.Bind(1, id).Run();
  db::Stmt hm(c, "DELETE FROM household_members WHERE person_id = ?");
  hm.Bind(1, id).Run();
  db::Stmt gm(c, "DELETE FROM access_group_members WHERE person_id = ?");
  gm.Bind(1, id).Run();
}

std::optional<std::pair<std::string, std::string>> PersonRepo::NameAndStatus(
    db::Conn& c, const std::string& code) {
  db::Stmt s(c, "SELECT name, status FROM persons WHERE code = ?");
  s.Bind(1, code);
  if (!s.Step()) return std::nullopt;
  return std::pair{s.Text(0), s.Text(1)};
}

std::optional<EnrolState> PersonRepo::EnrolStateOf(db::Conn& c, const std::string& code) {
  db::Stmt s(c,
             "SELECT status, EXISTS(SELECT 1 FROM consents c WHERE c.person_id = p.id AND "
             "c.withdrawn_ms IS NULL) FROM persons p WHERE code = ?");
  s.Bind(1, code);
  if (!s.Step()) return std::nullopt;
  return EnrolState{s.Text(0), s.Int(1) != 0};
}

// ---- households and access groups

void PersonRepo::AddToHousehold(db::Conn& c, int64_t household, int64_t person_id,
                                const std::string& role, int64_t now_ms, bool or_ignore) {
  db::Stmt m(c, std::string("INSERT INTO household_members(household_id, person_id, role, "
                            "since_ms) VALUES(?,?,?,?)") +
                    (or_ignore ? " ON CONFLICT(household_id, person_id) DO NOTHING" : ""));
  m.Bind(1, household).Bind(2, person_id).Bind(3, role).Bind(4, now_ms).Run();
}

json PersonRepo::Households(db::Conn& c, int64_t person_id) {
  db::Stmt h(c, "SELECT household_id, role, since_ms FROM household_members WHERE person_id = ?");
  h.Bind(1, person_id);
  json out = json::array();
  while (h.Step())
    out.push_back({{"household_id", h.Int(0)}, {"role", h.Text(1)}, {"since_ms", h.Int(2)}});
  return out;
}

json PersonRepo::AccessGroups(db::Conn& c, int64_t person_id, const SiteScope& scope) {
  db::Stmt g(c,
             "SELECT g.id, g.name FROM access_group_members m JOIN access_groups g ON g.id "
             "= m.group_id WHERE m.person_id = ? AND " +
                 scope.GroupCondition("g.id") + " ORDER BY g.id");
  g.Bind(1, person_id);
  json out = json::array();
  while (g.Step()) out.push_back({{"id", g.Int(0)}, {"name", g.Text(1)}});
  return out;
}

void PersonRepo::AddToGroup(db::Conn& c, int64_t group, int64_t person_id) {
  db::Stmt gi(c,
              "INSERT INTO access_group_members(group_id, person_id) VALUES(?,?) ON CONFLICT("
              "group_id, person_id) DO NOTHING");
  gi.Bind(1, group).Bind(2, person_id).Run();
}

void PersonRepo::AddFaceAndHome(db::Conn& c, json& items, const std::vector<int64_t>& ids) {
  if (ids.empty()) return;
  // Row ids are integers from our own query: written inline as the IN list.
  std::string in;
  for (const int64_t id : ids) in += (in.empty() ? "" : ",") + std::to_string(id);

  std::map<int64_t, int64_t> features, photos;
  std::map<int64_t, json> photo, home;
  db::Stmt f(c, "SELECT person_id, COUNT(*) FROM features WHERE person_id IN (" + in +
                    ") GROUP BY person_id");
  while (f.Step()) features[f.Int(0)] = f.Int(1);
  // Newest first; a photo with a feature code before one without.
  db::Stmt p(c,
             "SELECT p.person_id, p.id, EXISTS(SELECT 1 FROM features x WHERE x.photo_id = p.id) "
             "AS usable FROM photos p WHERE p.person_id IN (" +
                 in + ") ORDER BY p.person_id, usable DESC, p.id DESC");
  while (p.Step()) {
    const int64_t pid = p.Int(0);
    if (photos[pid]++ == 0) photo[pid] = p.Int(1);
  }
  db::Stmt h(c,
             "SELECT m.person_id, h.id, h.name, r.name, u.name, b.name, s.name FROM "
             "household_members m JOIN households h ON h.id = m.household_id LEFT JOIN rooms r "
             "ON r.id = h.room_id LEFT JOIN units u ON u.id = r.unit_id LEFT JOIN buildings b ON "
             "b.id = u.building_id LEFT JOIN sites s ON s.id = b.site_id WHERE m.person_id IN (" +
                 in + ") ORDER BY m.person_id, m.since_ms, h.id");
  auto text = [&](int col) { return h.IsNull(col) ? json() : json(h.Text(col)); };
  while (h.Step()) {
    const int64_t pid = h.Int(0);
    if (home.count(pid)) continue;
    home[pid] = {{"household_id", h.Int(1)}, {"household", h.Text(2)}, {"room", text(3)},
                 {"unit", text(4)},          {"building", text(5)},    {"site", text(6)}};
  }
  for (size_t i = 0; i < ids.size() && i < items.size(); ++i) {
    const int64_t pid = ids[i];
    items[i]["features"] = features.count(pid) ? features[pid] : 0;
    items[i]["photos"] = photos.count(pid) ? photos[pid] : 0;
    items[i]["photo_id"] = photo.count(pid) ? photo[pid] : json();
    items[i]["home"] = home.count(pid) ? home[pid] : json();
  }
}

// ---- consents

int64_t PersonRepo::InsertConsent(db::Conn& c, int64_t person_id, const ConsentRow& row) {
  db::Stmt s(c,
             "INSERT INTO consents(person_id, notice_version, purpose, granted_ms, operator, "
             "evidence_file, guardian_name, guardian_relation) VALUES(?,?,?,?,?,?,?,?) "
             "RETURNING id");
  s.Bind(1, person_id)
      .Bind(2, row.notice_version)
      .Bind(3, row.purpose)
      .Bind(4, row.granted_ms)
      .Bind(5, row.operator_name)
      .Bind(6, row.evidence_file)
      .Bind(7, row.guardian_name)
      .Bind(8, row.guardian_relation);
  return InsertReturningId(s);
}

json PersonRepo::Consents(db::Conn& c, int64_t person_id) {
  db::Stmt s(c,
             "SELECT id, notice_version, purpose, granted_ms, operator, evidence_file, "
             "guardian_name, guardian_relation, withdrawn_ms, withdrawn_by FROM consents "
             "WHERE person_id = ? ORDER BY id");
  s.Bind(1, person_id);
  json out = json::array();
  while (s.Step())
    out.push_back({{"id", s.Int(0)},
                   {"notice_version", s.Text(1)},
                   {"purpose", s.Text(2)},
                   {"granted_ms", s.Int(3)},
                   {"operator", s.Text(4)},
                   {"evidence_file", s.Text(5)},
                   {"guardian_name", s.Text(6)},
                   {"guardian_relation", s.Text(7)},
                   {"withdrawn_ms", J(s.OptInt(8))},
                   {"withdrawn_by", s.IsNull(9) ? json() : json(s.Text(9))}});
  return out;
}

int PersonRepo::WithdrawConsents(db::Conn& c, int64_t person_id, int64_t now_ms,
                                 const std::string& by) {
  db::Stmt s(c,
             "UPDATE consents SET withdrawn_ms = ?, withdrawn_by = ? WHERE person_id = ? "
             "AND withdrawn_ms IS NULL");
  s.Bind(1, now_ms).Bind(2, by).Bind(3, person_id).Run();
  return c.Changes();
}

// ---- credentials

int64_t PersonRepo::InsertCredential(db::Conn& c, int64_t person_id, const CredentialRow& row) {
  db::Stmt s(c,
             "INSERT INTO credentials(person_id, kind, card_number, pin_hash, qr_token, "
             "valid_from_ms, valid_until_ms, created_ms) VALUES(?,?,?,?,?,?,?,?) RETURNING id");
  s.Bind(1, person_id)
      .Bind(2, row.kind)
      .Bind(3, row.card_number)
      .Bind(4, row.pin_hash)
      .Bind(5, row.qr_token)
      .Bind(6, row.valid_from_ms)
      .Bind(7, row.valid_until_ms)
      .Bind(8, row.created_ms);
  return InsertReturningId(s);
}

bool PersonRepo::DeleteCredential(db::Conn& c, std::string_view id, int64_t person_id) {
  const auto row = RowIdOf(id);
  if (!row) return false;
  db::Stmt s(c, "DELETE FROM credentials WHERE id = ? AND person_id = ?");
  s.Bind(1, *row).Bind(2, person_id).Run();
  return c.Changes() != 0;
}

json PersonRepo::Credentials(db::Conn& c, int64_t person_id) {
  db::Stmt s(c,
             "SELECT id, kind, card_number, valid_from_ms, valid_until_ms, created_ms FROM "
             "credentials WHERE person_id = ? ORDER BY id");
  s.Bind(1, person_id);
  json out = json::array();
  while (s.Step())
    out.push_back({{"id", s.Int(0)},
                   {"kind", s.Text(1)},
                   {"card_number", s.IsNull(2) ? json() : json(s.Text(2))},
                   {"valid_from_ms", J(s.OptInt(3))},
                   {"valid_until_ms", J(s.OptInt(4))},
                   {"created_ms", s.Int(5)}});
  return out;
}

std::vector<std::pair<int64_t, std::string>> PersonRepo::PinHashes(db::Conn& c, int64_t person_id,
                                                                   int64_t now_ms) {
  db::Stmt s(c,
             "SELECT id, pin_hash FROM credentials WHERE person_id = ? AND kind = 'pin' AND "
             "pin_hash IS NOT NULL AND (valid_from_ms IS NULL OR valid_from_ms <= ?2) AND "
             "(valid_until_ms IS NULL OR valid_until_ms > ?2) ORDER BY id");
  s.Bind(1, person_id).Bind(2, now_ms);
  std::vector<std::pair<int64_t, std::string>> out;
  while (s.Step()) out.emplace_back(s.Int(0), s.Text(1));
  return out;
}

void PersonRepo::SetPinHash(db::Conn& c, int64_t credential_id, const std::string& hash) {
  db::Stmt s(c, "UPDATE credentials SET pin_hash = ? WHERE id = ? AND kind = 'pin'");
  s.Bind(1, hash).Bind(2, credential_id).Run();
}

// ---- history and removals

int64_t PersonRepo::CountHistory(db::Conn& c, int64_t person_id) {
  db::Stmt s(c, "SELECT COUNT(*) FROM history WHERE person_id = ?");
  s.Bind(1, person_id).Step();
  return s.Int(0);
}

json PersonRepo::History(db::Conn& c, int64_t person_id, int64_t limit, int64_t offset) {
  db::Stmt s(c,
             "SELECT action, detail, actor, time_ms FROM history WHERE person_id = ? ORDER "
             "BY id LIMIT ? OFFSET ?");
  s.Bind(1, person_id).Bind(2, limit).Bind(3, offset);
  json items = json::array();
  while (s.Step())
    items.push_back({{"action", s.Text(0)},
                     {"detail", json::parse(s.Text(1))},
                     {"actor", s.Text(2)},
                     {"time_ms", s.Int(3)}});
  return items;
}

json PersonRepo::Removals(db::Conn& c, const std::string& code) {
  db::Stmt s(c,
             "SELECT r.device_id, d.name, r.seq, r.reason, r.queued_ms, r.confirmed_ms "
             "FROM device_removals r JOIN devices d ON d.id = r.device_id WHERE "
             "r.person_code = ? ORDER BY r.queued_ms, r.device_id");
  s.Bind(1, code);
  json items = json::array();
  while (s.Step())
    items.push_back({{"device_id", s.Text(0)},
                     {"device_name", s.Text(1)},
                     {"seq", s.Int(2)},
                     {"reason", s.Text(3)},
                     {"queued_ms", s.Int(4)},
                     {"confirmed_ms", J(s.OptInt(5))}});
  return items;
}

}  // namespace anju::server::storage
