// Persons (one person one archive, R3.3.2.2): identity data, move-in / move-out, consent
// (R1.0.3.1), credentials for people without face enrolment, history and the removal
// confirmations of every device.
#include <cmath>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>

#include "crypto/sm3.h"
#include "match/thresholds.h"
#include "protocol/api_error.h"
#include "server/audit/audit_log.h"
#include "server/person_extras.h"
#include "server/audit/sealing.h"
#include "server/server_state.h"
#include "server/storage/site_scope.h"
#include "store/gallery.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string MaskIdNumber(const std::string& id) {
  if (id.size() <= 8) return std::string(id.size(), '*');
  return id.substr(0, 4) + std::string(id.size() - 8, '*') + id.substr(id.size() - 4);
}

std::string PinHash(const std::string& pin) {
  const std::string salt = crypto::ToHex(crypto::RandomBytes(8));
  return "sm3$" + salt + "$" + crypto::Sm3Hex(salt + pin);
}

// The digits of a phone query; 400 when fewer than 4 (a shorter suffix matches too many
// people to be a search). Empty when no phone filter was given.
std::string PhoneDigits(const std::string& query) {
  std::string d;
  for (char c : query)
    if (c >= '0' && c <= '9') d += c;
  if (query.empty()) return d;
  if (d.size() < 4)
    throw protocol::ApiError(400, "bad_request",
                             "电话至少输入 4 位数字 / phone: give at least 4 digits");
  return d;
}

json PersonSummary(Stmt& s) {
  return {{"code", s.Text(0)},
          {"name", s.Text(1)},
          {"phone", s.Text(2)},
          {"minor", s.Int(3) != 0},
          {"status", s.Text(4)},
          {"moved_in_ms", J(s.OptInt(5))},
          {"moved_out_ms", J(s.OptInt(6))},
          {"open_ms", s.Int(7)},
          {"created_ms", s.Int(8)},
          {"updated_ms", s.Int(9)}};
}

constexpr const char* kPersonCols =
    "code, name, phone, minor, status, moved_in_ms, moved_out_ms, open_ms, created_ms, "
    "updated_ms, id, id_number_sealed";

}  // namespace

std::vector<fs::path> Server::Impl::DeleteBiometrics(Conn& conn, int64_t person_id) {
  std::vector<fs::path> files;
  Stmt s(conn, "SELECT file FROM photos WHERE person_id = ?");
  s.Bind(1, person_id);
  while (s.Step()) files.push_back(options.data_dir / "photos" / s.Text(0));
  Stmt f(conn, "DELETE FROM features WHERE person_id = ?");
  f.Bind(1, person_id).Run();
  Stmt p(conn, "DELETE FROM photos WHERE person_id = ?");
  p.Bind(1, person_id).Run();
  return files;
}

void Server::Impl::FinishDelete(const std::string& code, const std::vector<fs::path>& files) {
  for (const auto& f : files) {
    std::error_code ec;
    fs::remove(f, ec);
  }
  if (index) index->RemovePerson(code);
}

void Server::Impl::AddPersonRoutes() {
  const Schema person_fields = Obj(
      {Opt("code", Str("identity code, 1-64 of [A-Za-z0-9_.-]; generated when absent")
                       .Pattern("^[A-Za-z0-9_.-]{1,64}$")),
       Req("name", Str("full name").MaxLength(200)),
       Opt("id_number", Str("ID card number (stored SM4-sealed)").MaxLength(64)),
       Opt("phone", Str().MaxLength(40)), Opt("minor", Bool("under 18: consent from a guardian")),
       Opt("moved_in_ms", Int().Nullable()),
       Opt("open_ms", Int("door open time for this person, 0 = default").Range(0, 600000)),
       Opt("household_id", Int("join this household")),
       Opt("role", Str().Enum({"tenant", "family", "carer", "staff", "visitor"}))});

  router
      .Add("GET", "/api/v1/persons", "persons", Auth::kAdmin, "archive.read",
           "List persons (identity data without ID numbers)",
           [this](Request& r) {
             const Paging p = ReadPaging(r);
             const std::string q = r.Query("q").value_or("");
             const std::string status = r.Query("status").value_or("");
             const std::string phone = PhoneDigits(r.Query("phone").value_or(""));
             auto conn = db->Acquire();
             // Stored numbers keep the separators people typed ("138-0013 8000", "+86 …"):
             // compare digits only. The query's digits are a suffix of the number's.
             const std::string where =
                 " WHERE (?1 = '' OR code LIKE '%' || ?1 || '%' OR name LIKE '%' || ?1 || '%') "
                 "AND (?2 = '' OR status = ?2) AND (?5 = '' OR REPLACE(REPLACE(REPLACE(REPLACE("
                 "REPLACE(REPLACE(phone, ' ', ''), '-', ''), '+', ''), '(', ''), ')', ''), '.', "
                 "'') LIKE '%' || ?5) AND " +
                 SiteScope(r.principal).PersonCondition("id");
             Stmt c(conn, "SELECT COUNT(*) FROM persons" + where);
             c.Bind(1, q).Bind(2, status).Bind(5, phone).Step();
             Stmt s(conn, std::string("SELECT ") + kPersonCols + " FROM persons" + where +
                                      " ORDER BY code LIMIT ?3 OFFSET ?4");
             s.Bind(1, q).Bind(2, status).Bind(3, p.limit).Bind(4, p.offset).Bind(5, phone);
             json items = json::array();
             std::vector<int64_t> ids;
             while (s.Step()) {
               items.push_back(PersonSummary(s));
               ids.push_back(s.Int(10));
               r.persons_listed.push_back(items.back().value("code", ""));
             }
             AddFaceAndHome(conn, items, ids);  // face on file, thumbnail, household
             return Reply::Json(PageJson(items, c.Int(0), p));
           })
      .Query(PagingParams({{"q", JType::kString, "code or name contains"},
                           {"status", JType::kString, "active | moved_out"},
                           {"phone", JType::kString,
                            "phone number or its last digits (at least 4; other characters "
                            "ignored): the number's digits end with these"}}));

  router
      .Add("POST", "/api/v1/persons", "persons", Auth::kAdmin, "archive.write",
           "Create a person's archive (move-in)",
           [this](Request& r) {
             const json& b = r.body;
             std::string code = b.value("code", "");
             if (code.empty()) code = "P" + crypto::ToHex(crypto::RandomBytes(5));
             if (!store::IsValidIdentityCode(code))
               throw protocol::ApiError(400, "bad_request",
                                        "编号无效 / code must be 1-64 of [A-Za-z0-9_.-]");
             const int64_t now = NowMs();
             auto conn = db->Acquire();
             Transaction tx(conn);
             // An account limited to sites creates persons only into its households (a
             // person in no household would be invisible to it at once).
             if (const SiteScope scope(r.principal); !scope.unscoped()) {
               if (!b.contains("household_id"))
                 throw protocol::ApiError(
                     400, "bad_request",
                     "须指定本小区的住户 / household_id required (account limited to sites)");
               if (!scope.HouseholdVisible(conn, b["household_id"].get<int64_t>()))
                 NotFound("household " + b["household_id"].dump());
             }
             {
               Stmt e(conn, "SELECT 1 FROM persons WHERE code = ?");
               e.Bind(1, code);
               if (e.Step())
                 throw protocol::ApiError(409, "conflict", "编号已存在 / code exists: " + code);
             }
             Stmt s(conn,
                    "INSERT INTO persons(code, name, id_number_sealed, phone, minor, moved_in_ms, "
                    "open_ms, created_ms, updated_ms) VALUES(?,?,?,?,?,?,?,?,?)");
             s.Bind(1, code).Bind(2, b["name"].get<std::string>());
             if (b.contains("id_number"))
               s.Bind(3, SealIdNumber(keys.data_key, code, b["id_number"].get<std::string>()));
             else
               s.BindNull(3);
             s.Bind(4, b.value("phone", "")).Bind(5, int64_t(b.value("minor", false)));
             if (b.contains("moved_in_ms") && !b["moved_in_ms"].is_null())
               s.Bind(6, b["moved_in_ms"].get<int64_t>());
             else
               s.Bind(6, now);
             s.Bind(7, b.value("open_ms", int64_t{0})).Bind(8, now).Bind(9, now).Run();
             const int64_t pid = conn.LastInsertId();
             if (b.contains("household_id")) {
               Stmt m(conn,
                      "INSERT INTO household_members(household_id, person_id, role, since_ms) "
                      "VALUES(?,?,?,?)");
               try {
                 m.Bind(1, b["household_id"].get<int64_t>())
                     .Bind(2, pid)
                     .Bind(3, b.value("role", "tenant"))
                     .Bind(4, now)
                     .Run();
               } catch (const Error&) {
                 NotFound("household " + b["household_id"].dump());
               }
             }
             History(conn, pid, "moved_in", r.actor);
             Audit(conn, r.actor, "person_create", "persons/" + code);
             tx.Commit();
             return Reply::Json({{"code", code}, {"id", pid}}, 201);
           })
      .Body(person_fields);

  router
      .Add("GET", "/api/v1/persons/{code}", "persons", Auth::kAdmin, "archive.read",
           "A person's whole archive: identity, households, consents, photos, features, "
           "credentials, access groups (reveal=true shows the ID number, audited)",
           [this](Request& r) {
             const std::string& code = r.Path("code");
             const bool reveal = r.Query("reveal").value_or("") == "true";
             if (reveal && !r.principal.Can("archive.reveal"))
               throw protocol::ApiError(403, "forbidden",
                                        "无权查看完整证件号 / forbidden: needs permission archive.reveal");
             auto conn = db->Acquire();
             Stmt s(conn,
                    std::string("SELECT ") + kPersonCols + " FROM persons WHERE code = ?");
             s.Bind(1, code);
             if (!s.Step()) NotFound("person " + code);
             json p = PersonSummary(s);
             const int64_t pid = s.Int(10);
             if (!s.IsNull(11)) {
               const std::string id = OpenIdNumber(keys.data_key, code, s.Blob(11));
               p["id_number"] = reveal ? id : MaskIdNumber(id);
               if (reveal) Audit(conn, r.actor, "id_number_reveal", "persons/" + code);
             }
             json households = json::array(), consents = json::array(), photos = json::array(),
                  creds = json::array(), groups = json::array();
             Stmt h(
                 conn,
                 "SELECT household_id, role, since_ms FROM household_members WHERE person_id = ?");
             h.Bind(1, pid);
             while (h.Step())
               households.push_back(
                   {{"household_id", h.Int(0)}, {"role", h.Text(1)}, {"since_ms", h.Int(2)}});
             Stmt c(conn,
                    "SELECT id, notice_version, purpose, granted_ms, operator, evidence_file, "
                    "guardian_name, guardian_relation, withdrawn_ms, withdrawn_by FROM consents "
                    "WHERE person_id = ? ORDER BY id");
             c.Bind(1, pid);
             while (c.Step())
               consents.push_back({{"id", c.Int(0)},
                                   {"notice_version", c.Text(1)},
                                   {"purpose", c.Text(2)},
                                   {"granted_ms", c.Int(3)},
                                   {"operator", c.Text(4)},
                                   {"evidence_file", c.Text(5)},
                                   {"guardian_name", c.Text(6)},
                                   {"guardian_relation", c.Text(7)},
                                   {"withdrawn_ms", J(c.OptInt(8))},
                                   {"withdrawn_by", c.IsNull(9) ? json() : json(c.Text(9))}});
             Stmt ph(conn,
                     "SELECT p.id, p.bytes, p.quality, p.created_ms, p.operator, f.id, "
                     "f.model_version FROM photos p LEFT JOIN features f ON f.photo_id = p.id "
                     "WHERE p.person_id = ? ORDER BY p.id");
             ph.Bind(1, pid);
             while (ph.Step())
               photos.push_back({{"id", ph.Int(0)},
                                 {"bytes", ph.Int(1)},
                                 {"quality", json::parse(ph.Text(2))},
                                 {"created_ms", ph.Int(3)},
                                 {"operator", ph.Text(4)},
                                 {"template", "t-" + std::to_string(ph.Int(5))},
                                 {"model_version", ph.Text(6)}});
             Stmt cr(conn,
                     "SELECT id, kind, card_number, valid_from_ms, valid_until_ms, created_ms FROM "
                     "credentials WHERE person_id = ? ORDER BY id");
             cr.Bind(1, pid);
             while (cr.Step())
               creds.push_back({{"id", cr.Int(0)},
                                {"kind", cr.Text(1)},
                                {"card_number", cr.IsNull(2) ? json() : json(cr.Text(2))},
                                {"valid_from_ms", J(cr.OptInt(3))},
                                {"valid_until_ms", J(cr.OptInt(4))},
                                {"created_ms", cr.Int(5)}});
             Stmt g(conn,
                    "SELECT g.id, g.name FROM access_group_members m JOIN access_groups g ON g.id "
                    "= m.group_id WHERE m.person_id = ? AND " +
                        SiteScope(r.principal).GroupCondition("g.id") + " ORDER BY g.id");
             g.Bind(1, pid);
             while (g.Step()) groups.push_back({{"id", g.Int(0)}, {"name", g.Text(1)}});
             p["households"] = households;
             p["consents"] = consents;
             p["photos"] = photos;
             p["credentials"] = creds;
             p["access_groups"] = groups;
             Stmt fc(conn, "SELECT COUNT(*) FROM features WHERE person_id = ?");
             fc.Bind(1, pid).Step();
             p["features"] = fc.Int(0);  // feature codes on file (photos or imported)
             p["consent_active"] = std::any_of(consents.begin(), consents.end(), [](const json& x) {
               return x["withdrawn_ms"].is_null();
             });
             return Reply::Json(p);
           })
      .Query({{"reveal", JType::kBoolean, "show the full ID number (archive.reveal; audited)"}});

  router
      .Add("PATCH", "/api/v1/persons/{code}", "persons", Auth::kAdmin, "archive.write",
           "Change identity data or the door open time",
           [this](Request& r) {
             const std::string& code = r.Path("code");
             const json& b = r.body;
             auto conn = db->Acquire();
             Transaction tx(conn);
             const int64_t pid = PersonId(conn, code);
             auto set = [&](const char* col, auto value) {
               Stmt s(conn, std::string("UPDATE persons SET ") + col +
                                        " = ?, updated_ms = ? WHERE id = ?");
               s.Bind(1, value).Bind(2, NowMs()).Bind(3, pid).Run();
             };
             if (b.contains("name")) set("name", b["name"].get<std::string>());
             if (b.contains("phone")) set("phone", b["phone"].get<std::string>());
             if (b.contains("minor")) set("minor", int64_t(b["minor"].get<bool>()));
             if (b.contains("open_ms")) set("open_ms", b["open_ms"].get<int64_t>());
             if (b.contains("id_number"))
               set("id_number_sealed",
                   std::span<const uint8_t>(
                       SealIdNumber(keys.data_key, code, b["id_number"].get<std::string>())));
             json detail = b;
             if (detail.contains("id_number")) detail["id_number"] = "(changed)";
             History(conn, pid, "changed", r.actor, detail);
             Audit(conn, r.actor, "person_update", "persons/" + code, detail);
             // Name (display name) and open time reach the devices.
             if (b.contains("name") || b.contains("open_ms")) sync->PersonChanged(conn, pid, "changed");
             tx.Commit();
             return Reply::Json({{"code", code}, {"updated", true}});
           })
      .Body(Obj({Opt("name", Str().MaxLength(200)), Opt("id_number", Str().MaxLength(64)),
                 Opt("phone", Str().MaxLength(40)), Opt("minor", Bool()),
                 Opt("open_ms", Int().Range(0, 600000))}));

  router
      .Add("POST", "/api/v1/persons/{code}/move-out", "persons", Auth::kAdmin, "archive.write",
           "Move out: photos and feature codes deleted, removal queued to every device",
           [this](Request& r) {
             const std::string& code = r.Path("code");
             std::vector<fs::path> files;
             {
               auto conn = db->Acquire();
               Transaction tx(conn);
               const int64_t pid = PersonId(conn, code);
               Stmt s(conn,
                      "UPDATE persons SET status = 'moved_out', moved_out_ms = ?, updated_ms = ? "
                      "WHERE id = ?");
               s.Bind(1, NowMs()).Bind(2, NowMs()).Bind(3, pid).Run();
               files = DeleteBiometrics(conn, pid);
               Stmt cr(conn, "DELETE FROM credentials WHERE person_id = ?");
               cr.Bind(1, pid).Run();
               Stmt hm(conn, "DELETE FROM household_members WHERE person_id = ?");
               hm.Bind(1, pid).Run();
               Stmt gm(conn, "DELETE FROM access_group_members WHERE person_id = ?");
               gm.Bind(1, pid).Run();
               sync->PersonChanged(conn, pid, "moved_out");
               History(conn, pid, "moved_out", r.actor, r.body);
               Audit(conn, r.actor, "move_out", "persons/" + code,
                     {{"photos_deleted", files.size()}});
               tx.Commit();
             }
             FinishDelete(code, files);
             return Reply::Json(
                 {{"code", code}, {"status", "moved_out"}, {"photos_deleted", files.size()}});
           })
      .Body(Obj({Opt("note", Str().MaxLength(1000))}));

  // ---- consent
  router
      .Add("POST", "/api/v1/persons/{code}/consents", "consent", Auth::kAdmin, "archive.write",
           "Record consent to face collection (a minor's from a guardian, R1.0.3.1)",
           [this](Request& r) {
             const std::string& code = r.Path("code");
             const json& b = r.body;
             auto conn = db->Acquire();
             Transaction tx(conn);
             const int64_t pid = PersonId(conn, code);
             Stmt m(conn, "SELECT minor, status FROM persons WHERE id = ?");
             m.Bind(1, pid).Step();
             if (m.Text(1) != "active")
               throw protocol::ApiError(409, "conflict", "已迁出 / person has moved out");
             if (m.Int(0) && b.value("guardian_name", "").empty())
               throw protocol::ApiError(400, "guardian_required",
                                        "未成年人须由监护人同意 / a minor's consent needs "
                                        "guardian_name and guardian_relation");
             Stmt s(
                 conn,
                 "INSERT INTO consents(person_id, notice_version, purpose, granted_ms, operator, "
                 "evidence_file, guardian_name, guardian_relation) VALUES(?,?,?,?,?,?,?,?)");
             s.Bind(1, pid)
                 .Bind(2, b["notice_version"].get<std::string>())
                 .Bind(3, b["purpose"].get<std::string>())
                 .Bind(4, b.value("granted_ms", NowMs()))
                 .Bind(5, b.value("operator", r.actor))
                 .Bind(6, b.value("evidence_file", ""))
                 .Bind(7, b.value("guardian_name", ""))
                 .Bind(8, b.value("guardian_relation", ""))
                 .Run();
             const int64_t id = conn.LastInsertId();
             History(conn, pid, "consent_granted", r.actor, b);
             Audit(conn, r.actor, "consent_grant", "persons/" + code, b);
             sync->PersonChanged(conn, pid, "consent_granted");
             tx.Commit();
             return Reply::Json({{"id", id}, {"person", code}}, 201);
           })
      .Body(Obj({Req("notice_version", Str("version of the notice text shown").MaxLength(100)),
                 Req("purpose", Str("e.g. access control of building 3").MaxLength(500)),
                 Opt("granted_ms", Int("when given; default now")),
                 Opt("operator", Str("who collected it; default the admin").MaxLength(100)),
                 Opt("evidence_file", Str("signed form scan reference").MaxLength(500)),
                 Opt("guardian_name", Str().MaxLength(200)),
                 Opt("guardian_relation", Str().MaxLength(100))}));

  router
      .Add("POST", "/api/v1/persons/{code}/consents/withdraw", "consent", Auth::kAdmin,
           "archive.write",
           "Withdraw consent: photos and feature codes deleted, removal queued to every device",
           [this](Request& r) {
             const std::string& code = r.Path("code");
             std::vector<fs::path> files;
             int withdrawn = 0;
             {
               auto conn = db->Acquire();
               Transaction tx(conn);
               const int64_t pid = PersonId(conn, code);
               Stmt s(conn,
                      "UPDATE consents SET withdrawn_ms = ?, withdrawn_by = ? WHERE person_id = ? "
                      "AND withdrawn_ms IS NULL");
               s.Bind(1, NowMs()).Bind(2, r.actor).Bind(3, pid).Run();
               withdrawn = conn.Changes();
               files = DeleteBiometrics(conn, pid);
               sync->PersonChanged(conn, pid, "consent_withdrawn");
               History(conn, pid, "consent_withdrawn", r.actor, r.body);
               Audit(conn, r.actor, "consent_withdraw", "persons/" + code,
                     {{"photos_deleted", files.size()}});
               tx.Commit();
             }
             FinishDelete(code, files);
             return Reply::Json(
                 {{"person", code}, {"withdrawn", withdrawn}, {"photos_deleted", files.size()}});
           })
      .Body(Obj({Opt("note", Str().MaxLength(1000))}));

  // ---- credentials (the non-face alternative, R1.0.3.1)
  router
      .Add("POST", "/api/v1/persons/{code}/credentials", "persons", Auth::kAdmin, "archive.write",
           "Add a card, PIN or QR credential (a QR token is returned once)",
           [this](Request& r) {
             const std::string& code = r.Path("code");
             const json& b = r.body;
             const std::string kind = b["kind"].get<std::string>();
             std::optional<std::string> card, pin_hash, qr;
             if (kind == "card") {
               card = b.value("card_number", "");
               if (card->empty())
                 throw protocol::ApiError(400, "bad_request", "card_number required for a card");
             } else if (kind == "pin") {
               const std::string pin = b.value("pin", "");
               if (pin.size() < 4 || pin.size() > 8 ||
                   pin.find_first_not_of("0123456789") != std::string::npos)
                 throw protocol::ApiError(400, "bad_request",
                                          "PIN 为 4-8 位数字 / PIN: 4-8 digits");
               pin_hash = PinHash(pin);
             } else {
               qr = crypto::ToHex(crypto::RandomBytes(16));
             }
             auto conn = db->Acquire();
             Transaction tx(conn);
             const int64_t pid = PersonId(conn, code);
             Stmt s(conn,
                    "INSERT INTO credentials(person_id, kind, card_number, pin_hash, qr_token, "
                    "valid_from_ms, valid_until_ms, created_ms) VALUES(?,?,?,?,?,?,?,?)");
             s.Bind(1, pid).Bind(2, kind).Bind(3, card).Bind(4, pin_hash).Bind(5, qr);
             s.Bind(6, b.contains("valid_from_ms") && !b["valid_from_ms"].is_null()
                           ? std::optional<int64_t>(b["valid_from_ms"].get<int64_t>())
                           : std::nullopt);
             s.Bind(7, b.contains("valid_until_ms") && !b["valid_until_ms"].is_null()
                           ? std::optional<int64_t>(b["valid_until_ms"].get<int64_t>())
                           : std::nullopt);
             s.Bind(8, NowMs());
             try {
               s.Run();
             } catch (const Error&) {
               throw protocol::ApiError(409, "conflict", "卡号已被使用 / card number in use");
             }
             const int64_t id = conn.LastInsertId();
             History(conn, pid, "credential_added", r.actor, {{"kind", kind}});
             Audit(conn, r.actor, "credential_add", "persons/" + code, {{"kind", kind}});
             tx.Commit();
             json out = {{"id", id}, {"kind", kind}};
             if (qr) out["qr_token"] = *qr;
             return Reply::Json(out, 201);
           })
      .Body(Obj({Req("kind", Str().Enum({"card", "pin", "qr"})),
                 Opt("card_number", Str("Wiegand card number").MaxLength(64)),
                 Opt("pin", Str("4-8 digits (stored as salted SM3)").MaxLength(8)),
                 Opt("valid_from_ms", Int().Nullable()), Opt("valid_until_ms", Int().Nullable())}));

  router.Add("DELETE", "/api/v1/persons/{code}/credentials/{id}", "persons", Auth::kAdmin,
             "archive.write", "Delete a credential", [this](Request& r) {
               const std::string& code = r.Path("code");
               auto conn = db->Acquire();
               Transaction tx(conn);
               const int64_t pid = PersonId(conn, code);
               Stmt s(conn, "DELETE FROM credentials WHERE id = ? AND person_id = ?");
               s.Bind(1, std::string_view(r.Path("id"))).Bind(2, pid).Run();
               if (conn.Changes() == 0) NotFound("credential " + r.Path("id"));
               History(conn, pid, "credential_deleted", r.actor, {{"id", r.Path("id")}});
               Audit(conn, r.actor, "credential_delete", "persons/" + code);
               tx.Commit();
               return Reply::Json({{"deleted", r.Path("id")}});
             });

  router
      .Add("GET", "/api/v1/persons/{code}/history", "persons", Auth::kAdmin, "archive.read",
           "History: move-in, move-out, changes (who, when)",
           [this](Request& r) {
             const Paging p = ReadPaging(r);
             auto conn = db->Acquire();
             const int64_t pid = PersonId(conn, r.Path("code"));
             Stmt c(conn, "SELECT COUNT(*) FROM history WHERE person_id = ?");
             c.Bind(1, pid).Step();
             Stmt s(conn,
                    "SELECT action, detail, actor, time_ms FROM history WHERE person_id = ? ORDER "
                    "BY id LIMIT ? OFFSET ?");
             s.Bind(1, pid).Bind(2, p.limit).Bind(3, p.offset);
             json items = json::array();
             while (s.Step())
               items.push_back({{"action", s.Text(0)},
                                {"detail", json::parse(s.Text(1))},
                                {"actor", s.Text(2)},
                                {"time_ms", s.Int(3)}});
             return Reply::Json(PageJson(items, c.Int(0), p));
           })
      .Query(PagingParams());

  router.Add("GET", "/api/v1/persons/{code}/removals", "consent", Auth::kAdmin, "archive.read",
             "Removals queued to devices for this person and when each device confirmed",
             [this](Request& r) {
               const std::string& code = r.Path("code");
               auto conn = db->Acquire();
               PersonId(conn, code);
               Stmt s(conn,
                      "SELECT r.device_id, d.name, r.seq, r.reason, r.queued_ms, r.confirmed_ms "
                      "FROM device_removals r JOIN devices d ON d.id = r.device_id WHERE "
                      "r.person_code = ? ORDER BY r.queued_ms, r.device_id");
               s.Bind(1, code);
               json items = json::array();
               bool all = true;
               while (s.Step()) {
                 items.push_back({{"device_id", s.Text(0)},
                                  {"device_name", s.Text(1)},
                                  {"seq", s.Int(2)},
                                  {"reason", s.Text(3)},
                                  {"queued_ms", s.Int(4)},
                                  {"confirmed_ms", J(s.OptInt(5))}});
                 all = all && !s.IsNull(5);
               }
               return Reply::Json({{"person", code}, {"removals", items}, {"all_confirmed", all}});
             });
  // ---- bulk (migration, large sites, end-to-end tests): one transaction per request
  router
      .Add(
          "POST", "/api/v1/persons/batch", "persons", Auth::kAdmin, "archive.write",
          "Create up to 1000 persons in one transaction, each optionally with consent, "
          "feature codes (base64 float32, this server's model) and access groups; per-person "
          "results, failed persons are skipped",
          [this](Request& r) {
            // The batch has no household per person: an account limited to sites would
            // create persons it cannot see. It imports with household ids instead.
            if (!SiteScope(r.principal).unscoped())
              throw protocol::ApiError(403, "forbidden",
                                       "限定小区的账号不能批量建档，请用导入并指定住户 / an "
                                       "account limited to sites cannot use the batch; import "
                                       "with household_id instead");
            const std::string& version = gate->model_version();
            const bool accept_dup = r.body.value("accept_duplicates", false);
            json results = json::array();
            struct Added {
              std::string code;
              std::vector<std::pair<int64_t, std::vector<float>>> features;
            };
            std::vector<Added> added;
            // Features go into the duplicate index as they are added (later persons of the
            // batch are checked against earlier ones); a rollback takes them out again.
            bool committed = false;
            struct Undo {
              std::function<void()> f;
              ~Undo() { f(); }
            } undo{[&] {
              if (!committed && index)
                for (const auto& a : added) index->RemovePerson(a.code);
            }};
            {
              auto conn = db->Acquire();
              Transaction tx(conn);
              for (const auto& p : r.body["persons"]) {
                const std::string code = p["code"].get<std::string>();
                json out = {{"code", code}};
                try {
                  if (!store::IsValidIdentityCode(code))
                    throw protocol::ApiError(400, "bad_request", "编号无效 / invalid code");
                  Stmt e(conn, "SELECT 1 FROM persons WHERE code = ?");
                  e.Bind(1, code);
                  if (e.Step())
                    throw protocol::ApiError(409, "conflict", "编号已存在 / code exists");
                  // Check everything before writing anything of this person.
                  std::vector<std::vector<float>> features;
                  for (const auto& f64 : p.value("features", json::array())) {
                    if (version.empty() || !index)
                      throw protocol::ApiError(503, "unavailable", "no face models installed");
                    if (!p.contains("consent"))
                      throw protocol::ApiError(409, "consent_required",
                                               "未登记同意 / features need a consent");
                    crypto::Bytes raw;
                    try {
                      raw = crypto::FromBase64(f64.get<std::string>());
                    } catch (const Error&) {
                      throw protocol::ApiError(400, "bad_request", "feature: bad base64");
                    }
                    if (raw.size() != index->options().dim * sizeof(float))
                      throw protocol::ApiError(400, "bad_request", "feature: wrong size");
                    std::vector<float> f(index->options().dim);
                    std::memcpy(f.data(), raw.data(), raw.size());
                    double norm = 0;
                    for (float v : f) norm += double(v) * v;
                    if (!(std::abs(norm - 1.0) < 0.01))
                      throw protocol::ApiError(400, "bad_request", "feature: not L2-normalised");
                    if (!accept_dup &&
                        !match::FindDuplicates(*index, f, version, duplicate_threshold, code)
                             .empty())
                      throw protocol::ApiError(409, "duplicate_face",
                                               "此人脸已登记 / face already enrolled");
                    features.push_back(std::move(f));
                  }
                  std::vector<int64_t> groups;
                  for (const auto& g : p.value("access_groups", json::array())) {
                    Stmt q(conn, "SELECT 1 FROM access_groups WHERE id = ?");
                    q.Bind(1, g.get<int64_t>());
                    if (!q.Step() || !SiteScope(r.principal).GroupVisible(conn, g.get<int64_t>()))
                      NotFound("access group " + g.dump());
                    groups.push_back(g.get<int64_t>());
                  }
                  const int64_t now = NowMs();
                  Stmt s(conn,
                         "INSERT INTO persons(code, name, id_number_sealed, phone, minor, "
                         "moved_in_ms, open_ms, created_ms, updated_ms) VALUES(?,?,?,?,?,?,?,?,?)");
                  s.Bind(1, code).Bind(2, p["name"].get<std::string>());
                  if (p.contains("id_number"))
                    s.Bind(3, SealIdNumber(keys.data_key, code, p["id_number"].get<std::string>()));
                  else
                    s.BindNull(3);
                  s.Bind(4, p.value("phone", ""))
                      .Bind(5, int64_t(p.value("minor", false)))
                      .Bind(6, now)
                      .Bind(7, p.value("open_ms", int64_t{0}))
                      .Bind(8, now)
                      .Bind(9, now)
                      .Run();
                  const int64_t pid = conn.LastInsertId();
                  History(conn, pid, "moved_in", r.actor, {{"batch", true}});
                  if (p.contains("consent")) {
                    const json& c = p["consent"];
                    Stmt ci(conn,
                            "INSERT INTO consents(person_id, notice_version, purpose, granted_ms, "
                            "operator, evidence_file) VALUES(?,?,?,?,?,?)");
                    ci.Bind(1, pid)
                        .Bind(2, c["notice_version"].get<std::string>())
                        .Bind(3, c["purpose"].get<std::string>())
                        .Bind(4, now)
                        .Bind(5, r.actor)
                        .Bind(6, c.value("evidence_file", ""))
                        .Run();
                  }
                  Added a{code, {}};
                  for (auto& f : features) {
                    Stmt fi(conn,
                            "INSERT INTO features(person_id, model_version, sealed, created_ms) "
                            "VALUES(?,?,?,?)");
                    fi.Bind(1, pid)
                        .Bind(2, version)
                        .Bind(3,
                              std::span<const uint8_t>(SealFeatureAtRest(keys.data_key, code, f)))
                        .Bind(4, now)
                        .Run();
                    a.features.emplace_back(conn.LastInsertId(), std::move(f));
                  }
                  for (int64_t g : groups) {
                    Stmt gi(conn,
                            "INSERT OR IGNORE INTO access_group_members(group_id, person_id) "
                            "VALUES(?,?)");
                    gi.Bind(1, g).Bind(2, pid).Run();
                  }
                  sync->PersonChanged(conn, pid, a.features.empty() ? "created" : "enrolled");
                  // Later persons of this batch are checked against this one too.
                  for (const auto& [id, f] : a.features)
                    index->Put(code, match::TemplateId(id), f, version);
                  added.push_back(std::move(a));
                  out["status"] = 201;
                } catch (const protocol::ApiError& e) {
                  out["status"] = e.status();
                  out["error"] = {{"code", e.code()}, {"message", e.what()}};
                } catch (const Error& e) {
                  const auto a = protocol::FromError(e);
                  out["status"] = a.status();
                  out["error"] = {{"code", a.code()}, {"message", a.what()}};
                }
                results.push_back(out);
              }
              Audit(conn, r.actor, "person_batch", "persons", {{"created", added.size()}});
              tx.Commit();
              committed = true;
            }
            return Reply::Json({{"created", added.size()}, {"results", results}});
          })
      .Body(Obj({Req("persons",
                     Arr(Obj({Req("code", Str().Pattern("^[A-Za-z0-9_.-]{1,64}$")),
                              Req("name", Str().MaxLength(200)), Opt("phone", Str().MaxLength(40)),
                              Opt("id_number", Str().MaxLength(64)), Opt("minor", Bool()),
                              Opt("open_ms", Int().Range(0, 600000)),
                              Opt("consent", Obj({Req("notice_version", Str().MaxLength(100)),
                                                  Req("purpose", Str().MaxLength(500)),
                                                  Opt("evidence_file", Str().MaxLength(500))})),
                              Opt("features", Arr(Str("base64 float32")).MaxLength(10)),
                              Opt("access_groups", Arr(Int()).MaxLength(100))}))
                         .MaxLength(1000)),
                 Opt("accept_duplicates", Bool())}));
}

}  // namespace anju::server
