#include "server/archive/person_service.h"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <chrono>
#include <functional>

#include "core/clock.h"
#include "crypto/bytes.h"
#include "crypto/password.h"
#include "crypto/sm3.h"
#include "match/thresholds.h"
#include "protocol/feature_codec.h"
#include "server/access/account_support.h"
#include "server/audit/audit_log.h"
#include "server/audit/sealing.h"
#include "server/storage/person_repo.h"
#include "server/storage/photo_repo.h"
#include "server/storage/place_repo.h"
#include "server/storage/site_scope.h"
#include "store/gallery.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;
using storage::PersonRepo;
using storage::PhotoRepo;

namespace {

json J(const std::optional<int64_t>& v) {
  return v ? json(*v) : json();
}

std::string MaskIdNumber(const std::string& id) {
  if (id.size() <= 8) return std::string(id.size(), '*');
  return id.substr(0, 4) + std::string(id.size() - 8, '*') + id.substr(id.size() - 4);
}

// The digits of a phone query; kInvalidArgument when fewer than 4 (a shorter suffix matches
// too many people to be a search). Empty when no phone filter was given.
std::string PhoneDigits(const std::string& query) {
  std::string d;
  for (char c : query)
    if (c >= '0' && c <= '9') d += c;
  if (query.empty()) return d;
  if (d.size() < 4)
    throw Error(ErrorCode::kInvalidArgument,
                "电话至少输入 4 位数字 / phone: give at least 4 digits");
  return d;
}

// A date of birth "YYYY-MM-DD": a real calendar day from 1900-01-01 up to today (UTC+8,
// the archive's local day); kInvalidArgument otherwise. Null clears it (nullopt).
std::optional<std::string> BirthDate(const json& v, int64_t now_ms) {
  using namespace std::chrono;
  if (v.is_null()) return std::nullopt;
  auto bad = [] {
    throw Error(ErrorCode::kInvalidArgument,
                "出生日期无效 / birth_date must be a date YYYY-MM-DD, not in the future");
  };
  if (!v.is_string()) bad();
  const std::string s = v.get<std::string>();
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') bad();
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (s[i] < '0' || s[i] > '9') bad();
  const year_month_day d{year(std::stoi(s.substr(0, 4))),
                         month(unsigned(std::stoi(s.substr(5, 2)))),
                         day(unsigned(std::stoi(s.substr(8, 2))))};
  const year_month_day today{floor<days>(sys_time<milliseconds>(milliseconds(now_ms)) + hours(8))};
  if (!d.ok() || d < year(1900) / January / 1 || d > today) bad();
  return s;
}

json Summary(const storage::PersonRow& p) {
  return {{"code", p.code},
          {"name", p.name},
          {"phone", p.phone},
          {"minor", p.minor},
          {"status", p.status},
          {"moved_in_ms", J(p.moved_in_ms)},
          {"moved_out_ms", J(p.moved_out_ms)},
          {"open_ms", p.open_ms},
          {"created_ms", p.created_ms},
          {"updated_ms", p.updated_ms}};
}

std::optional<int64_t> OptMs(const json& b, const char* key) {
  if (b.contains(key) && !b[key].is_null()) return b[key].get<int64_t>();
  return std::nullopt;
}

// A PIN stored by servers before the scrypt hash: "sm3$<salt hex>$<SM3(salt + pin) hex>".
bool VerifySm3Pin(const std::string& pin, const std::string& stored) {
  const size_t a = stored.find('$'), b = stored.find('$', a + 1);
  if (a == std::string::npos || b == std::string::npos) return false;
  const std::string salt = stored.substr(a + 1, b - a - 1);
  const std::string want = stored.substr(b + 1);
  const std::string got = crypto::Sm3Hex(salt + pin);
  if (got.size() != want.size()) return false;
  unsigned diff = 0;
  for (size_t i = 0; i < got.size(); ++i) diff |= unsigned(got[i] ^ want[i]);
  return diff == 0;
}

}  // namespace

int64_t PersonService::Id(db::Conn& conn, const std::string& code) {
  const auto id = PersonRepo::IdByCode(conn, code);
  if (!id) NotFound("person " + code);
  return *id;
}

int64_t PersonService::ScopedId(db::Conn& conn, const Scope& scope, const std::string& code) {
  const int64_t id = Id(conn, code);
  if (!SiteScope(scope).PersonVisible(conn, id)) NotFound("person " + code);
  return id;
}

json PersonService::List(const PersonQuery& query, const Scope& scope, int64_t limit,
                         int64_t offset) {
  const storage::PersonFilter f{query.q, query.status, PhoneDigits(query.phone)};
  const SiteScope site_scope(scope);
  auto conn = d_.db->Acquire();
  const int64_t total = PersonRepo::Count(conn, f, site_scope);
  json items = json::array();
  std::vector<int64_t> ids;
  for (const auto& p : PersonRepo::List(conn, f, site_scope, limit, offset)) {
    items.push_back(Summary(p));
    ids.push_back(p.id);
  }
  PersonRepo::AddFaceAndHome(conn, items, ids);  // face on file, thumbnail, household
  return {{"items", items}, {"total", total}};
}

json PersonService::Create(const json& b, const std::string& actor, const Scope& scope) {
  std::string code = b.value("code", "");
  if (code.empty()) code = "P" + crypto::ToHex(crypto::RandomBytes(5));
  if (!store::IsValidIdentityCode(code))
    throw Error(ErrorCode::kInvalidArgument, "编号无效 / code must be 1-64 of [A-Za-z0-9_.-]");
  const int64_t now = NowMs();
  auto conn = d_.db->Acquire();
  db::Transaction tx(conn);
  // An account limited to sites creates persons only into its households (a person in no
  // household would be invisible to it at once).
  if (const SiteScope site_scope(scope); !site_scope.unscoped()) {
    if (!b.contains("household_id"))
      throw Error(ErrorCode::kInvalidArgument,
                  "须指定本小区的住户 / household_id required (account limited to sites)");
    if (!site_scope.HouseholdVisible(conn, b["household_id"].get<int64_t>()))
      NotFound("household " + b["household_id"].dump());
  }
  if (PersonRepo::IdByCode(conn, code))
    throw Error(ErrorCode::kConflict, "编号已存在 / code exists: " + code);
  storage::NewPersonRow row;
  row.code = code;
  row.name = b["name"].get<std::string>();
  if (b.contains("id_number"))
    row.id_number_sealed = SealIdNumber(d_.data_key, code, b["id_number"].get<std::string>());
  row.phone = b.value("phone", "");
  row.minor = b.value("minor", false);
  if (b.contains("birth_date")) row.birth_date = BirthDate(b["birth_date"], now);
  row.moved_in_ms = OptMs(b, "moved_in_ms").value_or(now);
  row.open_ms = b.value("open_ms", int64_t{0});
  row.now_ms = now;
  const int64_t pid = PersonRepo::Insert(conn, row);
  if (b.contains("household_id")) {
    try {
      PersonRepo::AddToHousehold(conn, b["household_id"].get<int64_t>(), pid,
                                 b.value("role", "tenant"), now, false);
    } catch (const Error&) {
      NotFound("household " + b["household_id"].dump());
    }
  }
  anju::server::History(conn, pid, "moved_in", actor);
  Audit(conn, actor, "person_create", "persons/" + code);
  tx.Commit();
  return {{"code", code}, {"id", pid}};
}

json PersonService::Get(const std::string& code, bool reveal, bool may_reveal,
                        const std::string& actor, const Scope& scope) {
  if (reveal && !may_reveal)
    throw Error(ErrorCode::kPermissionDenied,
                "无权查看完整证件号 / forbidden: needs permission archive.reveal");
  auto conn = d_.db->Acquire();
  const auto row = PersonRepo::Get(conn, code);
  if (!row) NotFound("person " + code);
  json p = Summary(*row);
  // Only in the whole archive, not in the list (least exposure of personal data).
  p["birth_date"] = row->birth_date ? json(*row->birth_date) : json();
  const int64_t pid = row->id;
  if (row->id_number_sealed) {
    const std::string id = OpenIdNumber(d_.data_key, code, *row->id_number_sealed);
    p["id_number"] = reveal ? id : MaskIdNumber(id);
    if (reveal) Audit(conn, actor, "id_number_reveal", "persons/" + code);
  }
  const json consents = PersonRepo::Consents(conn, pid);
  p["households"] = PersonRepo::Households(conn, pid);
  p["consents"] = consents;
  p["photos"] = PhotoRepo::Photos(conn, pid);
  p["credentials"] = PersonRepo::Credentials(conn, pid);
  p["access_groups"] = PersonRepo::AccessGroups(conn, pid, SiteScope(scope));
  p["features"] = PhotoRepo::CountFeatures(conn, pid);  // photos or imported
  p["consent_active"] = std::any_of(consents.begin(), consents.end(),
                                    [](const json& x) { return x["withdrawn_ms"].is_null(); });
  return p;
}

void PersonService::Update(const std::string& code, const json& b, const std::string& actor) {
  auto conn = d_.db->Acquire();
  db::Transaction tx(conn);
  const int64_t pid = Id(conn, code);
  if (b.contains("name"))
    PersonRepo::SetText(conn, pid, "name", b["name"].get<std::string>(), NowMs());
  if (b.contains("phone"))
    PersonRepo::SetText(conn, pid, "phone", b["phone"].get<std::string>(), NowMs());
  if (b.contains("minor"))
    PersonRepo::SetInt(conn, pid, "minor", int64_t(b["minor"].get<bool>()), NowMs());
  if (b.contains("open_ms"))
    PersonRepo::SetInt(conn, pid, "open_ms", b["open_ms"].get<int64_t>(), NowMs());
  if (b.contains("birth_date"))
    PersonRepo::SetBirthDate(conn, pid, BirthDate(b["birth_date"], NowMs()), NowMs());
  if (b.contains("id_number"))
    PersonRepo::SetBlob(conn, pid, "id_number_sealed",
                        SealIdNumber(d_.data_key, code, b["id_number"].get<std::string>()),
                        NowMs());
  json detail = b;
  if (detail.contains("id_number")) detail["id_number"] = "(changed)";
  if (detail.contains("birth_date")) detail["birth_date"] = "(changed)";
  anju::server::History(conn, pid, "changed", actor, detail);
  Audit(conn, actor, "person_update", "persons/" + code, detail);
  // Name (display name) and open time reach the devices.
  if (b.contains("name") || b.contains("open_ms")) d_.gallery->PersonChanged(conn, pid, "changed");
  tx.Commit();
}

size_t PersonService::MoveOut(const std::string& code, const json& note, const std::string& actor) {
  std::vector<std::string> files;
  {
    auto conn = d_.db->Acquire();
    db::Transaction tx(conn);
    const int64_t pid = Id(conn, code);
    const int64_t now = NowMs();
    files = DeleteBiometrics(conn, pid);
    PersonRepo::MoveOut(conn, pid, now);
    d_.gallery->PersonChanged(conn, pid, "moved_out");
    anju::server::History(conn, pid, "moved_out", actor, note);
    Audit(conn, actor, "move_out", "persons/" + code, {{"photos_deleted", files.size()}});
    tx.Commit();
  }
  FinishDelete(code, files);
  return files.size();
}

// ---- consent

int64_t PersonService::GrantConsent(const std::string& code, const json& b,
                                    const std::string& actor) {
  auto conn = d_.db->Acquire();
  db::Transaction tx(conn);
  const int64_t pid = Id(conn, code);
  const auto row = PersonRepo::GetById(conn, pid);
  if (row->status != "active") throw Error(ErrorCode::kConflict, "已迁出 / person has moved out");
  if (row->minor && b.value("guardian_name", "").empty())
    throw Error(ErrorCode::kInvalidArgument,
                "未成年人须由监护人同意 / a minor's consent needs guardian_name and "
                "guardian_relation",
                "guardian_required");
  storage::ConsentRow c;
  c.notice_version = b["notice_version"].get<std::string>();
  c.purpose = b["purpose"].get<std::string>();
  c.granted_ms = b.value("granted_ms", NowMs());
  c.operator_name = b.value("operator", actor);
  c.evidence_file = b.value("evidence_file", "");
  c.guardian_name = b.value("guardian_name", "");
  c.guardian_relation = b.value("guardian_relation", "");
  const int64_t id = PersonRepo::InsertConsent(conn, pid, c);
  anju::server::History(conn, pid, "consent_granted", actor, b);
  Audit(conn, actor, "consent_grant", "persons/" + code, b);
  d_.gallery->PersonChanged(conn, pid, "consent_granted");
  tx.Commit();
  return id;
}

std::pair<int, size_t> PersonService::WithdrawConsent(const std::string& code, const json& note,
                                                      const std::string& actor) {
  std::vector<std::string> files;
  int withdrawn = 0;
  {
    auto conn = d_.db->Acquire();
    db::Transaction tx(conn);
    const int64_t pid = Id(conn, code);
    withdrawn = PersonRepo::WithdrawConsents(conn, pid, NowMs(), actor);
    files = DeleteBiometrics(conn, pid);
    d_.gallery->PersonChanged(conn, pid, "consent_withdrawn");
    anju::server::History(conn, pid, "consent_withdrawn", actor, note);
    Audit(conn, actor, "consent_withdraw", "persons/" + code, {{"photos_deleted", files.size()}});
    tx.Commit();
  }
  FinishDelete(code, files);
  return {withdrawn, files.size()};
}

// ---- credentials

json PersonService::AddCredential(const std::string& code, const json& b,
                                  const std::string& actor) {
  storage::CredentialRow row;
  row.kind = b["kind"].get<std::string>();
  if (row.kind == "card") {
    row.card_number = b.value("card_number", "");
    if (row.card_number->empty())
      throw Error(ErrorCode::kInvalidArgument, "card_number required for a card");
  } else if (row.kind == "pin") {
    const std::string pin = b.value("pin", "");
    if (pin.size() < 4 || pin.size() > 8 ||
        pin.find_first_not_of("0123456789") != std::string::npos)
      throw Error(ErrorCode::kInvalidArgument, "PIN 为 4-8 位数字 / PIN: 4-8 digits");
    row.pin_hash = crypto::HashPassword(pin);
  } else {
    row.qr_token = crypto::ToHex(crypto::RandomBytes(16));
  }
  row.valid_from_ms = OptMs(b, "valid_from_ms");
  row.valid_until_ms = OptMs(b, "valid_until_ms");
  auto conn = d_.db->Acquire();
  db::Transaction tx(conn);
  const int64_t pid = Id(conn, code);
  row.created_ms = NowMs();
  int64_t id = 0;
  try {
    id = PersonRepo::InsertCredential(conn, pid, row);
  } catch (const Error&) {
    throw Error(ErrorCode::kConflict, "卡号已被使用 / card number in use");
  }
  anju::server::History(conn, pid, "credential_added", actor, {{"kind", row.kind}});
  Audit(conn, actor, "credential_add", "persons/" + code, {{"kind", row.kind}});
  tx.Commit();
  json out = {{"id", id}, {"kind", row.kind}};
  if (row.qr_token) out["qr_token"] = *row.qr_token;
  return out;
}

void PersonService::DeleteCredential(const std::string& code, const std::string& id,
                                     const std::string& actor) {
  auto conn = d_.db->Acquire();
  db::Transaction tx(conn);
  const int64_t pid = Id(conn, code);
  if (!PersonRepo::DeleteCredential(conn, id, pid)) NotFound("credential " + id);
  anju::server::History(conn, pid, "credential_deleted", actor, {{"id", id}});
  Audit(conn, actor, "credential_delete", "persons/" + code);
  tx.Commit();
}

bool PersonService::VerifyPin(const std::string& code, const std::string& pin) {
  auto conn = d_.db->Acquire();
  const auto pid = PersonRepo::IdByCode(conn, code);
  if (!pid) return false;
  for (const auto& [id, stored] : PersonRepo::PinHashes(conn, *pid, NowMs())) {
    if (stored.starts_with("sm3$")) {
      if (!VerifySm3Pin(pin, stored)) continue;
      // The old hash is cheap to attack: replace it now that the PIN is known.
      PersonRepo::SetPinHash(conn, id, crypto::HashPassword(pin));
      return true;
    }
    if (crypto::VerifyPassword(pin, stored)) return true;
  }
  return false;
}

// ---- history and removals

json PersonService::History(const std::string& code, int64_t limit, int64_t offset) {
  auto conn = d_.db->Acquire();
  const int64_t pid = Id(conn, code);
  const int64_t total = PersonRepo::CountHistory(conn, pid);
  return {{"items", PersonRepo::History(conn, pid, limit, offset)}, {"total", total}};
}

json PersonService::Removals(const std::string& code) {
  auto conn = d_.db->Acquire();
  Id(conn, code);
  const json items = PersonRepo::Removals(conn, code);
  const bool all = std::all_of(items.begin(), items.end(),
                               [](const json& x) { return !x["confirmed_ms"].is_null(); });
  return {{"person", code}, {"removals", items}, {"all_confirmed", all}};
}

// ---- bulk (migration, large sites, end-to-end tests)

BatchResult PersonService::Batch(const json& persons, bool accept_dup, const std::string& actor,
                                 const Scope& scope) {
  // The batch has no household per person: an account limited to sites would create
  // persons it cannot see. It imports with household ids instead.
  const SiteScope site_scope(scope);
  if (!site_scope.unscoped())
    throw Error(ErrorCode::kPermissionDenied,
                "限定小区的账号不能批量建档，请用导入并指定住户 / an account limited to sites "
                "cannot use the batch; import with household_id instead");
  const std::string& version = d_.model_version;
  match::FeatureIndex* index = d_.index;
  BatchResult result;
  struct Added {
    std::string code;
    std::vector<std::pair<int64_t, std::vector<float>>> features;
  };
  std::vector<Added> added;
  bool committed = false;
  struct Undo {
    std::function<void()> f;
    ~Undo() { f(); }
  } undo{[&] {
    if (!committed && index)
      for (const auto& a : added) index->RemovePerson(a.code);
  }};
  auto conn = d_.db->Acquire();
  db::Transaction tx(conn);
  for (const auto& p : persons) {
    const std::string code = p["code"].get<std::string>();
    BatchItem item{code, std::nullopt};
    try {
      if (!store::IsValidIdentityCode(code))
        throw Error(ErrorCode::kInvalidArgument, "编号无效 / invalid code");
      if (PersonRepo::IdByCode(conn, code))
        throw Error(ErrorCode::kConflict, "编号已存在 / code exists");
      // Check everything before writing anything of this person.
      std::vector<std::vector<float>> features;
      for (const auto& f64 : p.value("features", json::array())) {
        if (version.empty() || !index)
          throw Error(ErrorCode::kUnavailable, "no face models installed");
        if (!p.contains("consent"))
          throw Error(ErrorCode::kConflict, "未登记同意 / features need a consent",
                      "consent_required");
        std::vector<float> f =
            protocol::DecodePlainFeature(f64.get<std::string>(), index->options().dim);
        if (!accept_dup &&
            !match::FindDuplicates(*index, f, version, d_.duplicate_threshold, code).empty())
          throw Error(ErrorCode::kConflict, "此人脸已登记 / face already enrolled",
                      "duplicate_face");
        features.push_back(std::move(f));
      }
      std::vector<int64_t> groups;
      for (const auto& g : p.value("access_groups", json::array())) {
        if (!storage::PlaceRepo::GroupExists(conn, g.get<int64_t>()) ||
            !site_scope.GroupVisible(conn, g.get<int64_t>()))
          NotFound("access group " + g.dump());
        groups.push_back(g.get<int64_t>());
      }
      const int64_t now = NowMs();
      storage::NewPersonRow row;
      row.code = code;
      row.name = p["name"].get<std::string>();
      if (p.contains("id_number"))
        row.id_number_sealed = SealIdNumber(d_.data_key, code, p["id_number"].get<std::string>());
      row.phone = p.value("phone", "");
      row.minor = p.value("minor", false);
      row.moved_in_ms = now;
      row.open_ms = p.value("open_ms", int64_t{0});
      row.now_ms = now;
      const int64_t pid = PersonRepo::Insert(conn, row);
      anju::server::History(conn, pid, "moved_in", actor, {{"batch", true}});
      if (p.contains("consent")) {
        const json& c = p["consent"];
        storage::ConsentRow cr;
        cr.notice_version = c["notice_version"].get<std::string>();
        cr.purpose = c["purpose"].get<std::string>();
        cr.granted_ms = now;
        cr.operator_name = actor;
        cr.evidence_file = c.value("evidence_file", "");
        PersonRepo::InsertConsent(conn, pid, cr);
      }
      Added a{code, {}};
      for (auto& f : features) {
        const int64_t id = PhotoRepo::InsertFeature(conn, pid, std::nullopt, version,
                                                    SealFeatureAtRest(d_.data_key, code, f), now);
        a.features.emplace_back(id, std::move(f));
      }
      for (int64_t g : groups) PersonRepo::AddToGroup(conn, g, pid);
      d_.gallery->PersonChanged(conn, pid, a.features.empty() ? "created" : "enrolled");
      // Later persons of this batch are checked against this one too.
      for (const auto& [id, f] : a.features) index->Put(code, match::TemplateId(id), f, version);
      added.push_back(std::move(a));
    } catch (const Error& e) {
      item.error = e;
    }
    result.items.push_back(std::move(item));
  }
  result.created = int64_t(added.size());
  Audit(conn, actor, "person_batch", "persons", {{"created", added.size()}});
  tx.Commit();
  committed = true;
  return result;
}

std::vector<std::string> PersonService::DeleteBiometrics(db::Conn& conn, int64_t person_id) {
  std::vector<std::string> keys;
  for (const auto& name : PhotoRepo::PhotoFiles(conn, person_id))
    keys.push_back(PhotoRepo::BlobKey(name));
  PhotoRepo::DeleteBiometrics(conn, person_id);
  return keys;
}

void PersonService::FinishDelete(const std::string& code, const std::vector<std::string>& photos) {
  for (const auto& key : photos) {
    try {
      d_.blobs->Remove(key);
    } catch (const std::exception& e) {
      // The rows are gone: the sealed file stays unreadable without them and the key.
      spdlog::warn("photo {} of {} not removed: {}", key, code, e.what());
    }
  }
  if (d_.index) d_.index->RemovePerson(code);
}

}  // namespace anju::server
